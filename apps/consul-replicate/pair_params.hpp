// One pair's parameters (from the configuration, app.cpp) and what each part of the pair driver is
// configured with from them: pure mappings, no I/O.
#pragma once

#include "destination_reader.hpp"
#include "destination_writer.hpp"
#include "source_reader.hpp"
#include "source_stream.hpp"
#include "source_watcher.hpp"

#include <engine/replicator_fsm.hpp>
#include <engine/watch_plan.hpp>
#include <transport/consul_request.hpp>

#include <chrono>
#include <cstdio>
#include <functional>
#include <optional>
#include <string>

namespace kvship::replicate {

struct pair_params
{
    engine::replicator_config fsm;
    std::string label;                      // "src@dc:dest": the `pair` metrics label and log context
    std::string source_dc;                  // ?dc= on source reads (empty: the agent's own DC)
    std::chrono::nanoseconds max_stale{0};  // 0: consistent reads; else ?stale, re-read if older
    std::chrono::milliseconds blocking_wait{std::chrono::seconds(60)};
    // -wait min:max quiescence; both 0 = off (every change starts a round at once).
    std::chrono::nanoseconds wait_min{0};
    std::chrono::nanoseconds wait_max{0};
    bool retry_enabled = true;  // -consul-retry=false: the first failure ends the pair
    bool dry_run = false;       // print the batches, send nothing
    // The destination listing is re-read at least this often (else the known state is reused),
    // so keys edited or added by hand at the destination are repaired.
    std::chrono::seconds destination_refresh{std::chrono::minutes(10)};
    // The known destination's entries (engine::known_destination) are kept while they take at most
    // this many bytes; past it only the checkpoint is kept and grouped rounds read their ranges.
    std::size_t known_destination_bytes = std::size_t{32} << 20;
    // Destination txns in flight at once within a round.
    std::size_t write_window = 4;
    // Grouped watching (DRIVER.md "Grouped watching"): at most this many concurrent blocking
    // queries on the source for this pair (groups + names watches); below 3, every change is a
    // full read. Used only by a daemon (not -once, -dry-run or -wait) whose source holds at least
    // group_min_keys keys or group_min_bytes bytes.
    std::size_t source_watches = 0;
    std::size_t group_min_keys = 2000;
    std::size_t group_min_bytes = std::size_t{1} << 20;
    // -lock fencing (empty: none). `fence` gives the `check-session` op every destination txn starts
    // with; nullopt means the lock is not held and nothing is sent (the pair stops). A txn refused
    // by that op counts in kvship_fenced_batches_total, calls `on_fenced` (the lock is lost) and stops
    // the pair at once.
    std::function<std::optional<transport::txn_op>()> fence;
    std::function<void()> on_fenced;
};

// Every source read's options: ?dc, ?stale with -max-stale (re-read when too stale), the blocking wait.
[[nodiscard]] transport::read_settings source_reads(const pair_params& p);
// The writer's: its window, the fence, -dry-run's printing to `plan_out`.
[[nodiscard]] destination_writer::settings writer_settings(const pair_params& p, std::FILE* plan_out);
// The destination reader's: what is kept between whole reads (nothing under -dry-run or -once).
[[nodiscard]] destination_reader::settings destination_settings(const pair_params& p);
[[nodiscard]] source_reader::settings source_settings(const pair_params& p, std::function<bool()> stopping);
[[nodiscard]] source_stream::settings stream_settings(const pair_params& p);
[[nodiscard]] source_watcher::settings watcher_settings(const pair_params& p, std::function<void(std::uint64_t)> index_seen);
// When grouped watching is worth it (engine::grouping_wanted's policy).
[[nodiscard]] engine::watch_policy watch_policy(const pair_params& p);

}  // namespace kvship::replicate
