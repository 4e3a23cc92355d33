// The pair driver's streamed full rounds (DRIVER.md "Streamed full rounds"): a stream_round reads the
// source listing while the machine's puts go out; its outcomes become the machine's events.
#include "replicator_parts.hpp"

namespace kvship::replicate {

using namespace driver_detail;

void pair_replicator::start_stream()
{
    stream_ = std::make_unique<stream_round>(
        timer_->get_executor(), source_, stream_settings(params_), writer_, [this] { return stopping_; }, log_, metrics_
    );
}

awaitable<void> pair_replicator::close_stream()
{
    auto s = std::exchange(stream_, nullptr);
    if (s)
        co_await s->close();
}

awaitable<engine::replicator_event> pair_replicator::stream_event(stream_round::outcome o)
{
    using k = stream_round::outcome::kind;
    if (o.what == k::chunk)
        co_return engine::event::source_chunk{std::move(o.entries)};
    if (o.what == k::queued)
        co_return engine::event::puts_queued{};
    co_await close_stream();  // the round has closed itself; this lets it go
    if (o.what == k::stop)
        co_return engine::event::stop{};
    if (o.what == k::failed)
        co_return fail(o.error_kind, std::move(o.what_failed));
    std::uint64_t const got = std::max<std::uint64_t>(o.meta.index, 1);
    log_.trace("view", "kv.list({}): streamed, index {}", params_.label, got);
    books_.source_read(o.meta.known_leader, o.meta.last_contact, got);
    co_return engine::event::source_end{o.meta.index};
}

awaitable<engine::replicator_event> pair_replicator::queue_puts(engine::batch b)
{
    auto o = co_await stream_->queue(std::move(b));
    co_return co_await stream_event(std::move(o));
}

awaitable<engine::replicator_event> pair_replicator::next_stream_event()
{
    auto o = co_await stream_->next();
    co_return co_await stream_event(std::move(o));
}

}  // namespace kvship::replicate
