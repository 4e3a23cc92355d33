// -wait min:max as step scripts (engine/quiescence.hpp), times in milliseconds from the first change.
#include <engine/quiescence.hpp>

#include <catch2/catch.hpp>

using namespace kvship::engine;
using namespace std::chrono_literals;
using q = quiescence;

TEST_CASE("quiescence: quiet for min after the change", "[engine][quiescence]")
{
    q const w(2s, 10s, 0ms);
    CHECK(w.start(0ms) == q::step{q::verdict::read, 2000ms});
    CHECK(w.answered(q::answer::same, 2000ms) == q::step{q::verdict::min_fired, 0ms});
}

TEST_CASE("quiescence: changes keep coming until max", "[engine][quiescence]")
{
    q const w(2s, 5s, 0ms);
    CHECK(w.start(0ms).wait == 2000ms);
    CHECK(w.answered(q::answer::advanced, 1500ms) == q::step{q::verdict::read, 2000ms});
    // Near the deadline the wait is cut to it.
    CHECK(w.answered(q::answer::advanced, 4200ms) == q::step{q::verdict::read, 800ms});
    CHECK(w.answered(q::answer::advanced, 4999800us) == q::step{q::verdict::read, 1ms});  // at least 1 ms
    CHECK(w.answered(q::answer::advanced, 5000ms) == q::step{q::verdict::max_fired, 0ms});
    CHECK(w.answered(q::answer::advanced, 6000ms).what == q::verdict::max_fired);
}

TEST_CASE("quiescence: a reset or a failure ends the reading", "[engine][quiescence]")
{
    q const w(2s, 5s, 0ms);
    CHECK(w.answered(q::answer::went_back, 100ms).what == q::verdict::done);
    CHECK(w.answered(q::answer::failed, 100ms).what == q::verdict::done);
    // max shorter than min: the first wait is max.
    q const short_max(2s, 500ms, 0ms);
    CHECK(short_max.start(0ms).wait == 500ms);
}
