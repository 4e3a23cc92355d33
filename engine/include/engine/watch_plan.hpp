// When and how a pair watches its source in groups (apps/consul-replicate/DRIVER.md, "Grouped
// watching"): whether to group, how much of the watch budget the first layout takes, each group's
// first blocking index, and what a names watch's listing means. Pure; the driver runs the watches.
#pragma once

#include <engine/compact.hpp>
#include <engine/groups.hpp>
#include <prefixes/filter.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace kvship::engine {

struct watch_policy
{
    std::size_t source_watches = 0;  // the budget: concurrent blocking queries for the pair
    std::size_t min_keys = 2000;     // group a source with at least this many keys
    std::size_t min_bytes = std::size_t{1} << 20;  // or this many bytes of keys and values
    bool dry_run = false;
    bool quiescence = false;  // -wait min:max: its quiescence works on whole-prefix reads
};

// Whether to watch groups now: a budget of at least 3 watches, not a dry run nor -wait, not
// `blocked` (one full-read wake after a failed watch), a machine that takes deltas with a source,
// and a source of at least min_keys keys or min_bytes bytes.
[[nodiscard]] bool grouping_wanted(
    const watch_policy& policy, const compact_snapshot* source, bool takes_deltas, bool blocked
);

// The watches the first layout may take of the budget, leaving room for names that appear later
// (each becomes a group of its own): budget - max(1, (budget - 1) / 8), at least 3.
[[nodiscard]] std::size_t layout_watches(std::size_t budget);

// The layout to watch (split_layout with layout_watches(budget)) and each group's first blocking
// index: at least its newest entry's ModifyIndex, 1 for an empty group (higher with tombstones:
// then its first blocking read returns at once and finds nothing new). Empty when the source is
// better read whole.
struct watch_plan
{
    source_layout layout;
    std::vector<std::uint64_t> group_index;  // one per layout.groups entry
};

[[nodiscard]] watch_plan plan_watches(
    const compact_entries& entries,
    std::string_view source_prefix,
    std::size_t budget,
    const prefixes::key_filter& filter
);

// What the names that a names watch of `dir` listed mean for the layout:
//  * every one covered: nothing to do;
//  * one that overlaps a group or dir, or is not under `dir`: regroup after a full read
//    (`overlapping` names it);
//  * new ones beyond the budget (`watches` are running): regroup;
//  * else `fresh`: read each once and watch it as a group of its own.
struct names_verdict
{
    bool regroup = false;
    std::string overlapping;
    std::vector<std::string> fresh;
};

[[nodiscard]] names_verdict judge_names(
    const source_layout& layout,
    const prefixes::key_filter& filter,
    std::string_view dir,
    std::vector<std::string> names,
    std::size_t budget
);

// Why a full read of the source happens (kvship_full_syncs_total{reason}).
enum class full_read_reason
{
    startup,      // the pair's first read
    retry,        // after a failure (a failed round, or a failed watch)
    index_reset,  // an index went backwards
    regroup,      // new names do not fit the watched groups, or the machine could not take deltas
    refresh,      // the periodic full round that repairs keys edited at the destination by hand
};

[[nodiscard]] std::string_view to_string(full_read_reason r);

// The reason of a full read: the first one is startup; else the one a watch asked for; else retry
// while failing; else the index went backwards (a blocking read answered a lower index).
[[nodiscard]] full_read_reason reason_for_full_read(
    bool first_read, std::optional<full_read_reason> asked, bool failing
);

// Monotonic time since any fixed origin (the driver passes steady_clock time, tests small numbers).
using watch_time = std::chrono::nanoseconds;

// What the watches reported since the pair's loop last looked.
struct watches_view
{
    bool failed = false;                            // a watch's read failed
    std::optional<full_read_reason> reset;          // index_reset or regroup: a watch ended for it
    bool pending = false;                           // group listings are waiting
    std::optional<watch_time> refresh_at;           // the known destination's next refresh, if known
};

// What the loop does with it, in this order: a failed watch starts over with a full read (retry) and
// blocks grouping for one full-read wake; a watch that ended for a reset starts over for that reason;
// pending listings go to the machine as one delta; at the refresh deadline, a full round (refresh);
// else wait until the deadline or a watch wakes the loop.
struct watches_verdict
{
    enum class kind
    {
        deliver,    // hand the pending listings over (source_delta)
        full_read,  // stop the watches, answer source_reset; `reason`
        wait,       // until `wake_at` (nullopt: a watch wakes the loop)
    };

    kind what = kind::wait;
    full_read_reason reason = full_read_reason::retry;
    bool block_grouping = false;
    std::optional<watch_time> wake_at;

    bool operator==(const watches_verdict&) const = default;
};

[[nodiscard]] watches_verdict judge_watches(const watches_view& v, watch_time now);

// What one blocking read's answer means (the whole source's read past `index` > 0, a group's or a
// names watch's): at index `got`, after `took`. The index it stands for is max(got, 1) (Consul's
// rule: an index of 0 is treated as 1). Below `index`: the index went backwards (a restore, a reap,
// another server), start over with a full read. Equal: nothing changed; when it came back faster
// than fast_answer, the next read waits fast_answer first, so a server that answers early is not
// spun on (consul-template does the same). Above: changed.
inline constexpr watch_time fast_answer = std::chrono::milliseconds(100);

struct wake_verdict
{
    enum class kind
    {
        changed,
        no_change,
        index_reset,
    };

    kind what = kind::changed;
    std::uint64_t index = 1;  // max(got, 1)
    bool pause = false;       // wait fast_answer before the next read

    bool operator==(const wake_verdict&) const = default;
};

[[nodiscard]] wake_verdict judge_wake(std::uint64_t index, std::uint64_t got, watch_time took);

// How the pair reads its source for the machine's read_source past `index` (0: a full read):
//  * whole:         one read of the whole prefix (a full read, or a blocking one; no watches);
//  * delta:         the watches' next delta (they are running and wanted);
//  * start_watches: start grouped watching, then its delta (whole if the source cannot be split);
//  * regroup:       the watches run but are no longer wanted (the machine cannot take deltas after
//                   a refused or failed round): they may hold changes it has not seen, so stop them
//                   and start over with a full read (full_read_reason::regroup).
// `wanted` is grouping_wanted's answer.
enum class source_read_way
{
    whole,
    delta,
    start_watches,
    regroup,
};

[[nodiscard]] source_read_way choose_source_read(std::uint64_t index, bool watching, bool wanted);

// kvship_source_wakeups_total's `result`: "changed", "no_change", "index_reset".
[[nodiscard]] std::string_view to_string(wake_verdict::kind k);

}  // namespace kvship::engine
