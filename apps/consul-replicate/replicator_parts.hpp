// What the pair driver's files (replicator*.cpp) share. Private to the driver, not an interface.
//   replicator.cpp              the loop (run): the machine's actions to the parts, failures, sleeps
//   replicator_source.cpp       source_reader's and destination_reader's outcomes as events
//   replicator_watch.cpp        when to watch in groups; source_watcher's outcomes as events
//   replicator_stream.cpp       stream_round's outcomes as events (DRIVER.md "Streamed full rounds")
//   replicator_write.cpp        a stage through destination_writer; its outcome as an event
#pragma once

#include "checkpoint_codec.hpp"
#include "guarded.hpp"
#include "kv_convert.hpp"
#include "lost_found.hpp"
#include "replicator.hpp"

#include <engine/watch_plan.hpp>
#include <replicate/duration.hpp>

#include <algorithm>
#include <utility>

namespace kvship::replicate::driver_detail {

using clock = std::chrono::steady_clock;

[[nodiscard]] inline double seconds_since(clock::time_point t)
{
    return std::chrono::duration<double>(clock::now() - t).count();
}

}  // namespace kvship::replicate::driver_detail
