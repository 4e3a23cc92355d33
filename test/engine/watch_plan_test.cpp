// When a pair groups its source, how much of the budget the first layout takes, the groups' first
// indexes, and what a names watch's listing means (engine/watch_plan.hpp).
#include "builders.hpp"

#include <engine/watch_plan.hpp>

#include <catch2/catch.hpp>

using namespace kvship::engine;
using namespace kvship::engine::test;

namespace {

compact_snapshot source_of(std::size_t keys, std::size_t value_bytes)
{
    std::vector<kv_entry> entries;
    for (std::size_t i = 0; i < keys; ++i)
        entries.push_back(kv(fmt::format("s/d{:03}/k{:05}", i % 256, i), std::string(value_bytes, 'v'), 10 + i));
    sort_entries(entries);
    return compact_snapshot{100, compact(entries)};
}

}  // namespace

TEST_CASE("grouping_wanted: budget, mode, size", "[engine][watch_plan]")
{
    watch_policy p;
    p.source_watches = 64;
    auto const big = source_of(2000, 1);
    auto const small = source_of(100, 1);
    auto const heavy = source_of(100, 11 * 1024);  // 100 keys, over 1 MiB of values
    CHECK(grouping_wanted(p, &big, true, false));
    CHECK_FALSE(grouping_wanted(p, &small, true, false));
    CHECK(grouping_wanted(p, &heavy, true, false));
    CHECK_FALSE(grouping_wanted(p, &big, false, false));  // the machine takes no deltas
    CHECK_FALSE(grouping_wanted(p, &big, true, true));    // blocked after a failed watch
    CHECK_FALSE(grouping_wanted(p, nullptr, true, false));
    auto q = p;
    q.source_watches = 2;
    CHECK_FALSE(grouping_wanted(q, &big, true, false));
    q = p;
    q.dry_run = true;
    CHECK_FALSE(grouping_wanted(q, &big, true, false));
    q = p;
    q.quiescence = true;
    CHECK_FALSE(grouping_wanted(q, &big, true, false));
    q = p;
    q.min_keys = 101;
    CHECK_FALSE(grouping_wanted(q, &small, true, false));
    q.min_keys = 100;
    CHECK(grouping_wanted(q, &small, true, false));
}

TEST_CASE("layout_watches leaves room for new names", "[engine][watch_plan]")
{
    CHECK(layout_watches(3) == 3);
    CHECK(layout_watches(4) == 3);
    CHECK(layout_watches(9) == 8);
    CHECK(layout_watches(10) == 9);
    CHECK(layout_watches(64) == 57);
    CHECK(layout_watches(0) == 3);
}

TEST_CASE("plan_watches: groups within the budget, each from its newest ModifyIndex", "[engine][watch_plan]")
{
    auto const src = source_of(2560, 10);
    auto const plan = plan_watches(src.entries, "s/", 64, {});
    REQUIRE_FALSE(plan.layout.empty());
    CHECK(plan.layout.watches() <= layout_watches(64));
    REQUIRE(plan.group_index.size() == plan.layout.groups.size());
    for (std::size_t g = 0; g < plan.layout.groups.size(); ++g) {
        auto const [lo, hi] = prefix_range(src.entries, plan.layout.groups[g]);
        std::uint64_t newest = 1;
        for (std::size_t i = lo; i < hi; ++i) newest = std::max(newest, src.entries[i].modify_index);
        CAPTURE(plan.layout.groups[g]);
        CHECK(plan.group_index[g] == newest);
        CHECK(newest > 1);
    }
    // A source too small to split: read whole.
    auto const one = source_of(1, 10);
    CHECK(plan_watches(one.entries, "s/", 64, {}).layout.empty());
}

TEST_CASE("judge_names: covered, fresh, overlapping, over the budget", "[engine][watch_plan]")
{
    source_layout layout;
    layout.groups = {"s/a", "s/b/", "s/c"};
    layout.dirs = {"s/"};
    // Listed names of "s/": covered by groups, or new.
    auto v = judge_names(layout, {}, "s/", {"s/a1", "s/b/", "s/c"}, 10);
    CHECK_FALSE(v.regroup);
    CHECK(v.fresh.empty());
    v = judge_names(layout, {}, "s/", {"s/a1", "s/d", "s/e/"}, 10);
    CHECK_FALSE(v.regroup);
    CHECK(v.fresh == std::vector<std::string>{"s/d", "s/e/"});
    // A name that is a prefix of a group: regroup.
    v = judge_names(layout, {}, "s/", {"s/d", "s/"}, 10);
    CHECK(v.regroup);
    CHECK(v.overlapping == "s/");
    CHECK(v.fresh.empty());
    // Not under the dir: regroup.
    v = judge_names(layout, {}, "s/", {"t/x"}, 10);
    CHECK(v.regroup);
    // New names beyond the budget (4 watches running, 2 new, budget 5): regroup.
    v = judge_names(layout, {}, "s/", {"s/d", "s/e"}, 5);
    CHECK(v.regroup);
    CHECK(v.overlapping.empty());
    CHECK(judge_names(layout, {}, "s/", {"s/d", "s/e"}, 6).fresh.size() == 2);
}

TEST_CASE("judge_watches: a failure, a reset, pending listings, the refresh deadline, in that order", "[engine][watch_plan]")
{
    using namespace std::chrono_literals;
    using k = watches_verdict::kind;
    watches_view v;
    // Nothing yet, no deadline known: wait for a watch.
    CHECK(judge_watches(v, 0s) == watches_verdict{k::wait, full_read_reason::retry, false, std::nullopt});
    v.refresh_at = 600s;
    CHECK(judge_watches(v, 10s).wake_at == 600s);
    v.pending = true;
    CHECK(judge_watches(v, 10s).what == k::deliver);
    CHECK(judge_watches(v, 700s).what == k::deliver);  // listings first, the refresh at the next look
    v.pending = false;
    auto r = judge_watches(v, 600s);
    CHECK(r.what == k::full_read);
    CHECK(r.reason == full_read_reason::refresh);
    CHECK_FALSE(r.block_grouping);
    v.pending = true;
    v.reset = full_read_reason::regroup;
    r = judge_watches(v, 10s);
    CHECK(r.what == k::full_read);
    CHECK(r.reason == full_read_reason::regroup);
    v.reset = full_read_reason::index_reset;
    CHECK(judge_watches(v, 10s).reason == full_read_reason::index_reset);
    v.failed = true;
    r = judge_watches(v, 10s);
    CHECK(r.what == k::full_read);
    CHECK(r.reason == full_read_reason::retry);
    CHECK(r.block_grouping);
}

TEST_CASE("reason_for_full_read", "[engine][watch_plan]")
{
    CHECK(reason_for_full_read(true, full_read_reason::refresh, true) == full_read_reason::startup);
    CHECK(reason_for_full_read(false, full_read_reason::refresh, true) == full_read_reason::refresh);
    CHECK(reason_for_full_read(false, std::nullopt, true) == full_read_reason::retry);
    CHECK(reason_for_full_read(false, std::nullopt, false) == full_read_reason::index_reset);
    CHECK(to_string(full_read_reason::index_reset) == "index_reset");
    CHECK(to_string(full_read_reason::regroup) == "regroup");
}

TEST_CASE("judge_wake: a blocking read's answer: went back, no change (pause when fast), changed", "[engine][watch_plan]")
{
    using k = wake_verdict::kind;
    using std::chrono::milliseconds;
    // Above the index waited past: changed, never a pause however fast.
    CHECK(judge_wake(10, 11, milliseconds(1)) == wake_verdict{k::changed, 11, false});
    // Equal: no change; a pause only when it came back faster than fast_answer.
    CHECK(judge_wake(10, 10, milliseconds(5)) == wake_verdict{k::no_change, 10, true});
    CHECK(judge_wake(10, 10, fast_answer - milliseconds(1)) == wake_verdict{k::no_change, 10, true});
    CHECK(judge_wake(10, 10, fast_answer) == wake_verdict{k::no_change, 10, false});
    CHECK(judge_wake(10, 10, std::chrono::seconds(60)) == wake_verdict{k::no_change, 10, false});
    // Below: the index went backwards (a restore or a reap).
    CHECK(judge_wake(10, 9, milliseconds(1)) == wake_verdict{k::index_reset, 9, false});
    // An index of 0 stands for 1 (Consul's rule): after waiting past 1 it is no change, past 2 a reset.
    CHECK(judge_wake(1, 0, std::chrono::seconds(1)) == wake_verdict{k::no_change, 1, false});
    CHECK(judge_wake(2, 0, std::chrono::seconds(1)) == wake_verdict{k::index_reset, 1, false});
    CHECK(to_string(k::changed) == "changed");
    CHECK(to_string(k::no_change) == "no_change");
    CHECK(to_string(k::index_reset) == "index_reset");
}

TEST_CASE("choose_source_read: a full read is whole; watches are used, started or dropped", "[engine][watch_plan]")
{
    using w = source_read_way;
    // Index 0 is a full read: whole, watching or not, wanted or not.
    CHECK(choose_source_read(0, false, false) == w::whole);
    CHECK(choose_source_read(0, false, true) == w::whole);
    CHECK(choose_source_read(0, true, true) == w::whole);
    CHECK(choose_source_read(0, true, false) == w::whole);
    // Past an index: running watches give the delta while wanted, else they are dropped (regroup).
    CHECK(choose_source_read(7, true, true) == w::delta);
    CHECK(choose_source_read(7, true, false) == w::regroup);
    // Not watching: start them when wanted, else one blocking read of the whole prefix.
    CHECK(choose_source_read(7, false, true) == w::start_watches);
    CHECK(choose_source_read(7, false, false) == w::whole);
}
