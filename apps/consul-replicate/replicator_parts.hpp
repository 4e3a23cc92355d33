// The pieces the pair driver's files (replicator*.cpp) share: its state while watching, streaming
// and writing, and small helpers. Private to the driver, not an interface.
//   replicator.cpp              the loop (run), failures, sleeps, the round's report and the lag
//   replicator_source.cpp       source and destination reads (whole, with -wait quiescence, ranges)
//   replicator_watch.cpp        grouped watching (DRIVER.md "Grouped watching")
//   replicator_stream.cpp       streamed full rounds (DRIVER.md "Streamed full rounds")
//   replicator_write.cpp        the txns: a stage of batches or the stream's puts through one window
#pragma once

#include "checkpoint_codec.hpp"
#include "guarded.hpp"
#include "kv_convert.hpp"
#include "lost_found.hpp"
#include "replicator.hpp"

#include <engine/quiescence.hpp>
#include <engine/watch_plan.hpp>
#include <replicate/duration.hpp>

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/detached.hpp>

#include <algorithm>
#include <deque>
#include <map>
#include <stdexcept>
#include <utility>

namespace kvship::replicate::driver_detail {

using clock = std::chrono::steady_clock;

[[nodiscard]] transport::txn_op to_transport(const engine::txn_op& op);
// The error kind label for a transport error, or `fallback` (the phase).
[[nodiscard]] std::string_view error_kind(const transport::consul_error& e, std::string_view fallback);
[[nodiscard]] std::string_view warning_text(engine::warning_kind k);
[[nodiscard]] double seconds_since(clock::time_point t);
[[nodiscard]] double unix_now();

// One source read with the stale re-read (DRIVER.md): `start(q)` begins the read, run under `cancel`; a
// `?stale` answer from a server further behind the leader than -max-stale (transport::stale_reread) is
// dropped and the same query sent again without `?stale`, unless `reread(answer)` says no (it may log).
// `q` ends as the query of the answer returned.
template <class Start, class Reread>
auto read_fresh(
    asio::cancellation_signal* cancel,
    const transport::read_settings& reads,
    transport::query_options& q,
    Start start,
    Reread reread
) -> decltype(start(q))
{
    auto first = start(q);
    auto r = co_await guarded(cancel, std::move(first));
    if (!r)
        co_return r;
    if (auto again = transport::stale_reread(reads, q, r->last_contact); again && reread(*r)) {
        q = std::move(*again);
        auto second = start(q);
        r = co_await guarded(cancel, std::move(second));
    }
    co_return r;
}

}  // namespace kvship::replicate::driver_detail

namespace kvship::replicate {

struct pair_replicator::watch_state
{
    explicit watch_state(asio::any_io_executor ex) : wake(std::move(ex)) {}

    engine::source_layout layout;  // the groups and the directories with a names watch
    std::map<std::string, engine::event::group_listing> pending;  // the newest listing per group
    std::optional<std::pair<std::string, std::string>> failure;   // (error kind, what)
    std::optional<engine::full_read_reason> reset;  // a watch ended: index_reset or regroup
    std::deque<asio::cancellation_signal> cancels;  // one per watch (slot); a deque keeps addresses
    std::deque<asio::steady_timer> pauses;          // one per watch, for the fast no-change pause
    std::size_t running = 0;
    std::size_t budget = 0;
    bool closing = false;
    asio::steady_timer wake;  // the pair's loop waits on it; watches cancel it to wake the loop
};

// One window of destination txns (apply_batch's stage, or the stream's puts as they come):
// engine::txn_window decides what goes next; this holds the batches being written, one
// cancellation slot per txn in flight, and the outcomes not taken yet.
struct pair_replicator::txn_writer
{
    txn_writer(std::size_t width, std::function<void()> wake_fn)
        : window({}, 0, false, width), cancel(width), busy(width, false), wake(std::move(wake_fn))
    {
    }

    struct held
    {
        const engine::batch* b = nullptr;
        std::shared_ptr<const engine::batch> owner;  // the stream's batches; a stage's belong to the machine
        std::size_t number = 0;                      // in the round (a stage's), for the trace
        std::size_t left = 0;                        // ops not committed yet
    };

    engine::txn_window window;
    std::map<std::size_t, held> batches;  // by the window position of their first op
    std::size_t count = 0;                // batches in the round (0: the stream's)
    std::deque<asio::cancellation_signal> cancel;
    std::vector<bool> busy;
    std::vector<std::pair<chunk, chunk_outcome>> finished;       // (the piece in the window, its outcome)
    std::optional<std::pair<std::string, std::string>> failure;  // (kind, what)
    bool fenced = false;  // the lock is gone: stop at once, not a failure to retry
    std::function<void()> wake;

    // The batch holding window position `pos`.
    std::map<std::size_t, held>::iterator batch_at(std::size_t pos) { return std::prev(batches.upper_bound(pos)); }

    // Adds `b` at the end of the window's ops; returns its piece.
    chunk add(const engine::batch* b, std::shared_ptr<const engine::batch> owner, std::size_t number)
    {
        std::size_t const from = window_end;
        window_end += b->ops.size();
        batches[from] = held{b, std::move(owner), number, b->ops.size()};
        return chunk{from, window_end, b->plain_put};
    }

    std::size_t window_end = 0;
};

struct pair_replicator::stream_state
{
    explicit stream_state(asio::any_io_executor ex) : wake(ex), reader_wake(ex) {}

    // Reader -> loop: decoded chunks, then the end (or an error), at most `max_chunks` waiting.
    std::deque<std::vector<engine::kv_entry>> chunks;
    std::size_t max_chunks = 4;
    std::optional<std::uint64_t> end_index;
    std::optional<std::pair<std::string, std::string>> read_failure;  // (error kind, what)
    transport::query_meta meta;
    bool reader_done = false;
    bool closing = false;
    asio::cancellation_signal reader_cancel;

    // The puts being written: the machine's batches, one txn each, as they come.
    std::shared_ptr<txn_writer> writer;

    asio::steady_timer wake;         // the loop waits on it; the reader and the txns wake it
    asio::steady_timer reader_wake;  // the reader waits on it while the queue is full
};

}  // namespace kvship::replicate
