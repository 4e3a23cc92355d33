// The pair driver's reads: the source through source_reader (what its answer means for the round: the
// wake, the fast no-change pause, the books), the destination through destination_reader.
#include "replicator_parts.hpp"

namespace kvship::replicate {

using namespace driver_detail;

void pair_replicator::begin_full_read()
{
    // A full read: at start, after the index went backwards, or when retrying one. The
    // destination is read again too.
    auto const reason =
        engine::reason_for_full_read(first_read_, std::exchange(next_full_reason_, std::nullopt), books_.failures() > 0);
    if (!first_read_ && reason == engine::full_read_reason::index_reset)
        log_.info("runner", "{}: source index went backwards, starting over with a full read", params_.label);
    metrics_.add(metric::full_syncs, labels("reason", engine::to_string(reason)));
    first_read_ = false;
    destination_reader_.forget();
}

awaitable<engine::replicator_event> pair_replicator::read_source(std::uint64_t index)
{
    if (index == 0)
        begin_full_read();
    if (index > 0 && fast_no_change_) {
        // A blocking read that came back at once with nothing new: do not spin on a server that
        // answers early (consul-template waits too).
        fast_no_change_ = false;
        auto pause = sleep(engine::fast_answer);
        auto paused = co_await std::move(pause);
        if (std::holds_alternative<engine::event::stop>(paused))
            co_return engine::event::stop{};
    }
    auto const read_started = clock::now();
    auto read = source_reader_.read(index);
    auto got_read = co_await std::move(read);
    if (got_read.stopped || (got_read.error && stopping_))
        co_return engine::event::stop{};
    if (!got_read.listing)
        co_return fail(got_read.kind, std::move(got_read.what));
    auto& r = got_read.listing;

    auto const wake = engine::judge_wake(index, r->index, clock::now() - read_started);
    std::uint64_t const got = wake.index;
    if (index > 0) {
        metrics_.add(metric::wakeups, labels("result", engine::to_string(wake.what)));
        fast_no_change_ = wake.pause;
    }
    if (index == 0)
        metrics_.observe(metric::full_read_duration, labels(), seconds_since(read_started));
    books_.source_read(r->known_leader, r->last_contact, got);
    co_return engine::event::source_read{to_snapshot(std::move(*r))};
}

awaitable<engine::replicator_event> pair_replicator::read_destination(std::vector<std::string> ranges)
{
    auto read = destination_reader_.read(std::move(ranges));
    auto r = co_await std::move(read);
    if (r.read) {
        if (r.whole)
            books_.destination_read();
        co_return std::move(*r.read);
    }
    if (r.error && stopping_)
        co_return engine::event::stop{};
    co_return fail(r.kind, std::move(r.what));
}

}  // namespace kvship::replicate
