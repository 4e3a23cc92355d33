// The pair driver's streamed full rounds (DRIVER.md "Streamed full rounds"): a reader coroutine decodes
// the source listing into a bounded queue; the machine's puts go out through a txn window meanwhile.
#include "replicator_parts.hpp"

namespace kvship::replicate {

using namespace driver_detail;

// ---- Streamed full rounds (DRIVER.md "Streamed full rounds") ----

void pair_replicator::start_stream()
{
    auto ex = timer_->get_executor();
    auto s = std::make_shared<stream_state>(ex);
    s->writer = writer_.open(ex, [weak = std::weak_ptr<stream_state>(s)] {
        if (auto live = weak.lock())
            live->wake.cancel();
    });
    stream_ = s;
    asio::co_spawn(
        ex, stream_reader(s), asio::bind_cancellation_slot(s->reader_cancel.slot(), asio::detached)
    );
}

awaitable<void> pair_replicator::stream_reader(std::shared_ptr<stream_state> s)
{
    // Whatever happens, the loop must learn that the reader has ended.
    struct done_guard
    {
        stream_state& s;

        ~done_guard()
        {
            if (!s.end_index && !s.read_failure)
                s.read_failure.emplace("source_read", "the streamed source read was abandoned");
            s.reader_done = true;
            s.wake.cancel();
        }
    } const guard{*s};
    // A cancelled read returns its error like any other failure (no exception at the next co_await).
    co_await asio::this_coro::throw_if_cancelled(false);
    auto const read_started = clock::now();
    auto const& prefix = params_.fsm.rule.spec.source;
    auto const reads = source_reads();
    auto q = transport::read_query(reads, 0);
    bool filtered = false;
    // The stale re-read (as read_fresh's): judged on the meta before the first entry is taken, else on
    // the answer when no entry came.
    std::optional<transport::query_options> reread;
    bool delivered = false;
    auto sink = [this, s, &filtered, &reread, &delivered, &q, &reads](
                    const transport::query_meta& meta, std::vector<transport::kv_entry> entries
                ) -> awaitable<std::optional<transport::consul_error>> {
        if (!delivered)
            reread = transport::stale_reread(reads, q, meta.last_contact);
        if (reread) {
            // Too far behind the leader: nothing was taken yet, read again consistently.
            co_return transport::consul_error{
                transport::make_error_code(transport::errc::cancelled), 200, "stale read too far behind"};
        }
        delivered = true;
        if (meta.results_filtered) {
            // A partial listing must never drive deletes; no put of it goes out either.
            filtered = true;
            co_return transport::filtered_by_acls_error();
        }
        s->chunks.push_back(to_engine_entries(std::move(entries)));
        s->wake.cancel();
        // Back-pressure: the body waits in the socket while the loop is behind.
        while (!s->closing && s->chunks.size() >= s->max_chunks) {
            s->reader_wake.expires_at(clock::time_point::max());
            co_await s->reader_wake.async_wait(nothrow_awaitable);
        }
        if (s->closing)
            co_return transport::consul_error{
                transport::make_error_code(transport::errc::cancelled), 0, "the streamed round was abandoned"};
        co_return std::nullopt;
    };
    log_.trace(
        "view",
        "kv.list({}): GET /v1/kv/{}?recurse&dc={}{} (streamed)",
        params_.label,
        prefix,
        q.dc,
        q.mode == transport::consistency::stale ? "&stale" : ""
    );
    auto op = source_.list_stream(prefix, q, sink, 1000);
    auto r = co_await std::move(op);
    if (!delivered && !reread && r)
        reread = transport::stale_reread(reads, q, r->last_contact);
    if (reread) {
        log_.debug("view", "{}: stale read is behind the leader, re-reading consistently", params_.label);
        q = *std::exchange(reread, std::nullopt);
        auto again = source_.list_stream(prefix, q, sink, 1000);
        r = co_await std::move(again);
    }
    if (filtered || (r && r->results_filtered)) {
        s->read_failure.emplace(
            "acl_denied",
            transport::filtered_listing_text(prefix, q.dc, "source")
        );
    } else if (!r) {
        s->read_failure.emplace(std::string(error_kind(r.error(), "source_read")), r.error().what());
    } else {
        s->meta.index = r->index;
        s->meta.known_leader = r->known_leader;
        s->meta.last_contact = r->last_contact;
        s->end_index = r->index;
        metrics_.observe(metric::full_read_duration, labels(), seconds_since(read_started));
    }
}

// Waits for the stream's next wake-up (a chunk, the end, a finished txn).
awaitable<void> pair_replicator::wait_stream(stream_state& s)
{
    s.wake.expires_at(clock::time_point::max());
    co_await s.wake.async_wait(nothrow_awaitable);
}

awaitable<void> pair_replicator::close_stream()
{
    auto s = std::exchange(stream_, nullptr);
    if (!s)
        co_return;
    s->closing = true;
    s->reader_wake.cancel();
    if (!s->reader_done)
        s->reader_cancel.emit(asio::cancellation_type::terminal);
    // In-flight txns finish (abort() cancels them); nothing more is sent.
    // The reader and the txns point at this object: wait until every one has ended. Txns are
    // atomic; what committed is counted (and kept in the known destination).
    s->writer->stop();
    for (;;) {
        s->writer->pump();
        if (s->reader_done && s->writer->in_flight() == 0)
            break;
        co_await wait_stream(*s);
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
        co_await wait_stream(*s);
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
        if (!s->chunks.empty()) {
            auto entries = std::move(s->chunks.front());
            s->chunks.pop_front();
            s->reader_wake.cancel();
            co_return engine::event::source_chunk{std::move(entries)};
        }
        if (s->reader_done && s->read_failure) {
            auto const f = *s->read_failure;
            co_await close_stream();
            co_return fail(f.first, f.second);
        }
        if (s->reader_done && s->writer->idle()) {
            // The whole listing arrived and every put written so far has committed: the machine
            // may now decide deletes and the checkpoint.
            auto const meta = s->meta;
            co_await close_stream();
            if (auto const& f = s->writer->failure())
                co_return fail(f->first, f->second);
            std::uint64_t const got = std::max<std::uint64_t>(meta.index, 1);
            log_.trace("view", "kv.list({}): streamed, index {}", params_.label, got);
            note_source_read(meta.known_leader, meta.last_contact, got);
            co_return engine::event::source_end{meta.index};
        }
        co_await wait_stream(*s);
    }
}

}  // namespace kvship::replicate
