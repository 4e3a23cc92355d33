// The pieces the pair driver's files (replicator*.cpp) share: its state while watching, streaming
// and writing, and small helpers. Private to the driver, not an interface.
//   replicator.cpp              the loop (run), failures, sleeps, the round's report and the lag
//   replicator_source.cpp       source and destination reads (whole, with -wait quiescence, ranges)
//   replicator_watch.cpp        when to watch in groups, what the watches' reports mean for the round
//   source_watcher.cpp          (a class of its own) the grouped watches (DRIVER.md "Grouped watching")
//   replicator_stream.cpp       streamed full rounds (DRIVER.md "Streamed full rounds")
//   replicator_write.cpp        a stage of batches through destination_writer, what committed, -dry-run
//   destination_writer.cpp      (a class of its own) the txns: a window of them, their answers
#pragma once

#include "checkpoint_codec.hpp"
#include "guarded.hpp"
#include "kv_convert.hpp"
#include "lost_found.hpp"
#include "read_fresh.hpp"
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

}  // namespace kvship::replicate::driver_detail

namespace kvship::replicate {

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
