// lag_tracker: when the changes waiting to be applied were first seen (kvship_lag_seconds, the
// replication latency histogram).
#include <lag_tracker.hpp>

#include <catch2/catch.hpp>

using namespace kvship::replicate;
using namespace std::chrono_literals;

namespace {

lag_tracker::time_point at(int ms)
{
    return lag_tracker::time_point{} + std::chrono::milliseconds(ms);
}

}  // namespace

TEST_CASE("lag_tracker: caught up means no oldest change", "[replicate][lag]")
{
    lag_tracker t;
    CHECK_FALSE(t.oldest());
    t.seen(10, 10, at(0));  // already applied
    t.seen(5, 10, at(0));
    CHECK_FALSE(t.oldest());
    CHECK_FALSE(t.applied(10));
}

TEST_CASE("lag_tracker: a round that applies part of what was seen leaves the newer changes' time", "[replicate][lag]")
{
    lag_tracker t;
    t.seen(11, 10, at(100));
    t.seen(12, 10, at(200));
    t.seen(12, 10, at(250));  // the same index again: seen earlier
    t.seen(11, 10, at(300));  // an older index (another group's watch): nothing new
    t.seen(15, 10, at(400));
    REQUIRE(t.oldest() == at(100));
    CHECK(t.size() == 3);
    // The round applied through 12: its oldest change was seen at 100; 15 (seen at 400) still waits.
    CHECK(t.applied(12) == at(100));
    CHECK(t.oldest() == at(400));
    CHECK(t.applied(20) == at(400));
    CHECK_FALSE(t.oldest());
}

TEST_CASE("lag_tracker: a steady stream never caught up between rounds still reports recent times", "[replicate][lag]")
{
    // The bug this type fixes: with one "behind since" time reset only when fully caught up, the lag
    // grew for as long as changes kept arriving during rounds.
    lag_tracker t;
    std::uint64_t applied = 0;
    for (int round = 0; round < 100; ++round) {
        t.seen(applied + 1, applied, at(round * 100));
        t.seen(applied + 2, applied, at(round * 100 + 50));  // arrives while the round runs
        auto const oldest = t.applied(applied + 1);
        // index applied + 1 was first seen during the previous round (or now, in the first one)
        REQUIRE(oldest == (round == 0 ? at(0) : at((round - 1) * 100 + 50)));
        applied += 1;
        REQUIRE(t.oldest() == at(round * 100 + 50));  // only the change still waiting
    }
}

TEST_CASE("lag_tracker: past its capacity the newest entry keeps its older time", "[replicate][lag]")
{
    lag_tracker t(2);
    t.seen(1, 0, at(10));
    t.seen(2, 0, at(20));
    t.seen(3, 0, at(30));  // full: index 3 takes entry 2's time (overstates, never hides)
    CHECK(t.size() == 2);
    CHECK(t.applied(1) == at(10));
    CHECK(t.oldest() == at(20));
    CHECK_FALSE(t.applied(2));  // entry 2 now stands for index 3
    CHECK(t.applied(3) == at(20));
}

TEST_CASE("lag_tracker: clear forgets the old index line", "[replicate][lag]")
{
    lag_tracker t;
    t.seen(100, 50, at(0));
    t.clear();
    CHECK_FALSE(t.oldest());
    t.seen(3, 0, at(5));
    CHECK(t.oldest() == at(5));
}
