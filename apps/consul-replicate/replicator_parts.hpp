// The pieces the pair driver's files (replicator*.cpp) share: its state while watching, streaming
// and writing, and small helpers. Private to the driver, not an interface.
//   replicator.cpp              the loop (run), failures, sleeps, the round's report and the lag
//   replicator_source.cpp       source and destination reads (whole, with -wait quiescence, ranges)
//   replicator_watch.cpp        when to watch in groups, what the watches' reports mean for the round
//   source_watcher.cpp          (a class of its own) the grouped watches (DRIVER.md "Grouped watching")
//   replicator_stream.cpp       streamed full rounds (DRIVER.md "Streamed full rounds")
//   source_stream.cpp           (a class of its own) the streamed source read
//   replicator_write.cpp        a stage of batches through destination_writer, what committed, -dry-run
//   destination_writer.cpp      (a class of its own) the txns: a window of them, their answers
#pragma once

#include "checkpoint_codec.hpp"
#include "guarded.hpp"
#include "kv_convert.hpp"
#include "lost_found.hpp"
#include "read_fresh.hpp"
#include "source_stream.hpp"
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

[[nodiscard]] inline double seconds_since(clock::time_point t)
{
    return std::chrono::duration<double>(clock::now() - t).count();
}

}  // namespace kvship::replicate::driver_detail

namespace kvship::replicate {

}  // namespace kvship::replicate
