// A streamed full read of the source (source_stream.hpp, DRIVER.md "Streamed full rounds").
#include "source_stream.hpp"

#include "kv_convert.hpp"

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/this_coro.hpp>

namespace kvship::replicate {

using clock = std::chrono::steady_clock;

source_stream::source_stream(
    asio::any_io_executor ex, transport::consul_client& source, settings s, const logger& log, metrics_registry& metrics
)
    : ex_(std::move(ex)),
      source_(source),
      settings_(std::move(s)),
      log_(log),
      metrics_(metrics),
      s_(std::make_shared<state>(ex_))
{
}

void source_stream::start()
{
    asio::co_spawn(ex_, read(s_), asio::bind_cancellation_slot(s_->reader_cancel.slot(), asio::detached));
}

std::optional<std::vector<engine::kv_entry>> source_stream::take_chunk()
{
    if (s_->chunks.empty())
        return std::nullopt;
    auto entries = std::move(s_->chunks.front());
    s_->chunks.pop_front();
    s_->reader_wake.cancel();
    return entries;
}

awaitable<void> source_stream::wait()
{
    s_->wake.expires_at(clock::time_point::max());
    co_await s_->wake.async_wait(nothrow_awaitable);
}

void source_stream::abandon()
{
    s_->closing = true;
    s_->reader_wake.cancel();
    if (!s_->reader_done)
        s_->reader_cancel.emit(asio::cancellation_type::terminal);
}

awaitable<void> source_stream::read(std::shared_ptr<state> s)
{
    // Whatever happens, the loop must learn that the reader has ended.
    struct done_guard
    {
        state& s;

        ~done_guard()
        {
            if (!s.end && !s.read_failure)
                s.read_failure.emplace("source_read", "the streamed source read was abandoned");
            s.reader_done = true;
            s.wake.cancel();
        }
    } const guard{*s};
    // A cancelled read returns its error like any other failure (no exception at the next co_await).
    co_await asio::this_coro::throw_if_cancelled(false);
    auto const read_started = clock::now();
    auto const& prefix = settings_.prefix;
    auto const& reads = settings_.reads;
    auto q = transport::read_query(reads, 0);
    bool filtered = false;
    // The stale re-read (as read_fresh's): judged on the meta before the first entry is taken, else on
    // the answer when no entry came.
    std::optional<transport::query_options> reread;
    bool delivered = false;
    std::size_t const max_chunks = settings_.max_chunks;
    auto sink = [s, max_chunks, &filtered, &reread, &delivered, &q, &reads](
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
        while (!s->closing && s->chunks.size() >= max_chunks) {
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
        settings_.label,
        prefix,
        q.dc,
        q.mode == transport::consistency::stale ? "&stale" : ""
    );
    auto op = source_.list_stream(prefix, q, sink, 1000);
    auto r = co_await std::move(op);
    if (!delivered && !reread && r)
        reread = transport::stale_reread(reads, q, r->last_contact);
    if (reread) {
        log_.debug("view", "{}: stale read is behind the leader, re-reading consistently", settings_.label);
        q = *std::exchange(reread, std::nullopt);
        auto again = source_.list_stream(prefix, q, sink, 1000);
        r = co_await std::move(again);
    }
    if (filtered || (r && r->results_filtered)) {
        s->read_failure.emplace("acl_denied", transport::filtered_listing_text(prefix, q.dc, "source"));
    } else if (!r) {
        s->read_failure.emplace(std::string(error_kind(r.error(), "source_read")), r.error().what());
    } else {
        s->end = transport::query_meta{r->index, r->known_leader, r->last_contact, false};
        metrics_.observe(metric::full_read_duration, {{"pair", settings_.label}}, std::chrono::duration<double>(clock::now() - read_started).count());
    }
}

}  // namespace kvship::replicate
