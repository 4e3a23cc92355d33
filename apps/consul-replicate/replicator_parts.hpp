// The pieces the pair driver's files (replicator*.cpp) share: its state while watching, streaming
// and writing, and small helpers. Private to the driver, not an interface.
//   replicator.cpp              the loop (run), failures, sleeps, the round's report and the lag
//   replicator_source.cpp       source and destination reads (whole, with -wait quiescence, ranges)
//   replicator_watch.cpp        grouped watching (DRIVER.md "Grouped watching")
//   replicator_stream.cpp       streamed full rounds (DRIVER.md "Streamed full rounds")
//   replicator_write.cpp        a stage of batches through destination_writer, what committed, -dry-run
//   destination_writer.cpp      (a class of its own) the txns: a window of them, their answers
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
    std::shared_ptr<destination_writer::window> writer;

    asio::steady_timer wake;         // the loop waits on it; the reader and the txns wake it
    asio::steady_timer reader_wake;  // the reader waits on it while the queue is full
};

}  // namespace kvship::replicate
