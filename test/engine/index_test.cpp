#include <engine/index.hpp>

#include <catch2/catch.hpp>

#include <cstdint>
#include <string>
#include <vector>

using namespace kvship::engine;

TEST_CASE("next_wait_index follows Consul's blocking-query rules", "[engine]")
{
    struct index_case
    {
        std::string name;
        std::uint64_t prev;
        std::uint64_t returned;
        index_step step;
    };

    auto const c = GENERATE(
        index_case{"first read", 0, 57, {57, index_change::first}},
        index_case{"first read of an empty store is raised to 1", 0, 0, {1, index_change::first}},
        index_case{"timeout without change", 57, 57, {57, index_change::unchanged}},
        index_case{"new data", 57, 60, {60, index_change::advanced}},
        index_case{"went backwards: tombstone reap or restore", 60, 40, {0, index_change::reset}},
        index_case{"a 0 answer while blocking counts as 1", 1, 0, {1, index_change::unchanged}},
        index_case{"a 0 answer above 1 is a reset", 5, 0, {0, index_change::reset}},
        index_case{"one below", 2, 1, {0, index_change::reset}},
        index_case{"max index", 1, UINT64_MAX, {UINT64_MAX, index_change::advanced}}
    );
    CAPTURE(c.name);
    auto const step = next_wait_index(c.prev, c.returned);
    CHECK(step == c.step);
    CHECK(
        is_new_data(step) == (c.step.change == index_change::first || c.step.change == index_change::advanced)
    );
}

TEST_CASE("a watch loop over a sequence of answers", "[engine]")
{
    struct step_case
    {
        std::uint64_t returned;
        std::uint64_t sent_next;
        index_change change;
    };

    std::vector<step_case> const script = {
        {0, 1, index_change::first},      // empty store: raised to 1, then block on 1
        {0, 1, index_change::unchanged},  // still nothing
        {5, 5, index_change::advanced},
        {5, 5, index_change::unchanged},  // wait timed out
        {3, 0, index_change::reset},      // went backwards: full non-blocking read next
        {4, 4, index_change::first},      // the re-read is data again
        {9, 9, index_change::advanced},
    };
    std::uint64_t index = 0;
    for (auto const& s : script) {
        CAPTURE(index, s.returned);
        auto const step = next_wait_index(index, s.returned);
        CHECK(step.next_index == s.sent_next);
        CHECK(step.change == s.change);
        index = step.next_index;
    }
}

TEST_CASE("index_change names", "[engine]")
{
    CHECK(to_string(index_change::first) == "first");
    CHECK(to_string(index_change::unchanged) == "unchanged");
    CHECK(to_string(index_change::advanced) == "advanced");
    CHECK(to_string(index_change::reset) == "reset");
}
