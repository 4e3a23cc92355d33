// The pair driver's streamed full rounds (DRIVER.md "Streamed full rounds"): a source_stream decodes
// the source listing into a bounded queue; the machine's puts go out through a txn window meanwhile.
#include "replicator_parts.hpp"

namespace kvship::replicate {

using namespace driver_detail;

// ---- Streamed full rounds (DRIVER.md "Streamed full rounds") ----

void pair_replicator::start_stream()
{
    auto ex = timer_->get_executor();
    auto s = std::make_shared<stream_state>();
    source_stream::settings st;
    st.label = params_.label;
    st.prefix = params_.fsm.rule.spec.source;
    st.reads = source_reads();
    s->read = std::make_unique<source_stream>(ex, source_, std::move(st), log_, metrics_);
    s->writer = writer_.open(ex, [weak = std::weak_ptr<stream_state>(s)] {
        if (auto live = weak.lock())
            live->read->wake();
    });
    stream_ = s;
    s->read->start();
}

awaitable<void> pair_replicator::close_stream()
{
    auto s = std::exchange(stream_, nullptr);
    if (!s)
        co_return;
    s->read->abandon();
    // In-flight txns finish (abort() cancels them); nothing more is sent.
    // The reader and the txns point at this object: wait until every one has ended. Txns are
    // atomic; what committed is counted (and kept in the known destination).
    s->writer->stop();
    for (;;) {
        s->writer->pump();
        if (s->read->done() && s->writer->in_flight() == 0)
            break;
        auto waited = s->read->wait();
        co_await std::move(waited);
    }
}

awaitable<engine::replicator_event> pair_replicator::queue_puts(engine::batch b)
{
    auto s = stream_;
    auto& w = s->writer;
    // One batch, one txn (the machine cut it by writer_.limits()), once the window has room.
    for (;;) {
        w->pump();
        if (stopping_ || w->fenced() || w->failure()) {
            auto step = next_stream_event();  // reports the failure or the stop
            co_return co_await std::move(step);
        }
        if (w->room())
            break;
        auto waited = s->read->wait();
        co_await std::move(waited);
    }
    w->append(std::move(b));
    w->pump();
    co_return engine::event::puts_queued{};
}

awaitable<engine::replicator_event> pair_replicator::next_stream_event()
{
    auto s = stream_;
    for (;;) {
        s->writer->pump();
        if (stopping_ || s->writer->fenced()) {
            co_await close_stream();
            co_return engine::event::stop{};
        }
        if (s->writer->failure()) {
            auto const f = *s->writer->failure();
            co_await close_stream();
            co_return fail(f.first, f.second);
        }
        if (auto entries = s->read->take_chunk())
            co_return engine::event::source_chunk{std::move(*entries)};
        if (s->read->done() && s->read->failure()) {
            auto const f = *s->read->failure();
            co_await close_stream();
            co_return fail(f.first, f.second);
        }
        if (s->read->done() && s->writer->idle()) {
            // The whole listing arrived and every put written so far has committed: the machine
            // may now decide deletes and the checkpoint.
            auto const meta = *s->read->end();
            co_await close_stream();
            if (auto const& f = s->writer->failure())
                co_return fail(f->first, f->second);
            std::uint64_t const got = std::max<std::uint64_t>(meta.index, 1);
            log_.trace("view", "kv.list({}): streamed, index {}", params_.label, got);
            books_.source_read(meta.known_leader, meta.last_contact, got);
            co_return engine::event::source_end{meta.index};
        }
        auto waited = s->read->wait();
        co_await std::move(waited);
    }
}

}  // namespace kvship::replicate
