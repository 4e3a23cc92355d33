#include <engine/gate.hpp>

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include <string>
#include <vector>

using namespace kvship::engine;
using namespace std::chrono_literals;

namespace {

// One poll of a table: at `t` ms, the claimants (or an error when `error` is set), and what the
// gate must say afterwards: describe(state()) without a pause's detail, and the event (or "").
struct step
{
    int t;
    std::vector<std::string> claimants;
    std::string expect_state;
    std::string expect_event = "";
    bool error = false;
};

std::string short_state(const gate_state& s)
{
    if (s.state == gate_state::kind::paused)
        return fmt::format("paused {}", to_string(s.reason));
    if (s.state == gate_state::kind::starting)
        return "starting";
    return describe(s);
}

// Runs a table against a gate in dc2 with settle 1000 ms and confirm 200 ms.
void run_table(const std::vector<step>& steps, gate_params params = {"dc2", 1000ms, 200ms})
{
    gate g(params);
    for (auto const& s : steps) {
        CAPTURE(s.t, s.claimants, s.error);
        gate_observation obs;
        obs.claimants = s.claimants;
        if (s.error)
            obs.error = "GET /v1/catalog/datacenters: connection refused";
        auto const e = g.observe(std::chrono::milliseconds(s.t), obs);
        CHECK(short_state(g.state()) == s.expect_state);
        CHECK((e ? std::string(to_string(e->what)) : std::string()) == s.expect_event);
        if (e)
            CHECK(e->to == g.state());
    }
}

}  // namespace

TEST_CASE("gate: the first decision needs the answer to hold for confirm, not settle", "[gate]")
{
    run_table({
        {0, {"dc1"}, "starting"},
        {100, {"dc1"}, "starting"},
        {200, {"dc1"}, "following dc1", "decided"},
        {300, {"dc1"}, "following dc1"},
    });
}

TEST_CASE("gate: one answer alone never decides", "[gate]")
{
    gate g({"dc2", 1000ms, 200ms});
    CHECK_FALSE(g.observe(0ms, {{"dc1"}, {}}));
    CHECK(g.state().state == gate_state::kind::starting);
    CHECK(g.direction() == std::nullopt);
}

TEST_CASE("gate: the local DC as the only claimant makes this DC the primary", "[gate]")
{
    run_table({
        {0, {"dc2"}, "starting"},
        {250, {"dc2"}, "primary dc2", "decided"},
    });
}

TEST_CASE("gate: a changing answer at start restarts the confirm clock", "[gate]")
{
    run_table({
        {0, {"dc1"}, "starting"},
        {150, {"dc3"}, "starting"},
        {250, {"dc3"}, "starting"},  // dc3 seen since 150
        {350, {"dc3"}, "following dc3", "decided"},
    });
}

TEST_CASE("gate: no primary, two primaries and errors pause at once, at start too", "[gate]")
{
    run_table({
        {0, {}, "paused no_primary", "paused"},
        {100, {}, "paused no_primary"},
        {200, {"dc1", "dc3"}, "paused two_primaries", "paused"},
        {300, {}, "paused error", "paused", true},
        {400, {"dc1"}, "paused settling", "paused"},
        {600, {"dc1"}, "following dc1", "decided"},
    });
}

TEST_CASE("gate: a claimant listed twice is one claimant", "[gate]")
{
    run_table({
        {0, {"dc1", "dc1"}, "starting"},
        {200, {"dc1", "dc1"}, "following dc1", "decided"},
    });
}

TEST_CASE("gate: a new primary turns the direction only after settle, pausing meanwhile", "[gate]")
{
    run_table({
        {0, {"dc1"}, "starting"},
        {200, {"dc1"}, "following dc1", "decided"},
        {1000, {"dc3"}, "paused settling", "paused"},  // stop copying from dc1 at once
        {1500, {"dc3"}, "paused settling"},
        {1999, {"dc3"}, "paused settling"},
        {2000, {"dc3"}, "following dc3", "direction_changed"},
        {2100, {"dc3"}, "following dc3"},
    });
}

TEST_CASE("gate: a flicker shorter than settle causes no turn", "[gate]")
{
    run_table({
        {0, {"dc1"}, "starting"},
        {200, {"dc1"}, "following dc1", "decided"},
        {1000, {"dc2"}, "paused settling", "paused"},
        {1500, {"dc2"}, "paused settling"},
        {1800, {"dc1"}, "paused settling"},  // back to the old direction: confirm, not settle
        {1900, {"dc1"}, "paused settling"},
        {2000, {"dc1"}, "following dc1", "resumed"},
        {2500, {"dc2"}, "paused settling", "paused"},
        {3400, {"dc2"}, "paused settling"},
        {3600, {"dc1"}, "paused settling"},
        {3800, {"dc1"}, "following dc1", "resumed"},
    });
}

TEST_CASE("gate: any other answer during settle restarts the settle clock", "[gate]")
{
    run_table({
        {0, {"dc1"}, "starting"},
        {200, {"dc1"}, "following dc1", "decided"},
        {1000, {"dc2"}, "paused settling", "paused"},
        {1900, {}, "paused no_primary", "paused"},
        {2000, {"dc2"}, "paused settling", "paused"},
        {2900, {"dc2"}, "paused settling"},  // would have settled without the gap
        {2950, {"dc2"}, "paused error", "paused", true},
        {3000, {"dc2"}, "paused settling", "paused"},
        {4000, {"dc2"}, "primary dc2", "direction_changed"},
    });
}

TEST_CASE("gate: primary to following is a turn and waits for settle", "[gate]")
{
    run_table({
        {0, {"dc2"}, "starting"},
        {200, {"dc2"}, "primary dc2", "decided"},
        {500, {"dc1"}, "paused settling", "paused"},
        {1400, {"dc1"}, "paused settling"},
        {1500, {"dc1"}, "following dc1", "direction_changed"},
    });
}

TEST_CASE("gate: after a pause, the old direction resumes after confirm, a new one after settle", "[gate]")
{
    run_table({
        {0, {"dc1"}, "starting"},
        {200, {"dc1"}, "following dc1", "decided"},
        {300, {}, "paused no_primary", "paused"},  // the leader election
        {5000, {}, "paused no_primary"},
        {5100, {"dc1"}, "paused settling", "paused"},
        {5300, {"dc1"}, "following dc1", "resumed"},
        {5400, {"dc1", "dc3"}, "paused two_primaries", "paused"},
        {5500, {"dc3"}, "paused settling", "paused"},
        {5700, {"dc3"}, "paused settling"},  // confirm is not enough for a turn
        {6500, {"dc3"}, "following dc3", "direction_changed"},
    });
}

TEST_CASE("gate: the direction survives pauses and changes only on a turn", "[gate]")
{
    gate g({"dc2", 1000ms, 200ms});
    g.observe(0ms, {{"dc1"}, {}});
    g.observe(200ms, {{"dc1"}, {}});
    REQUIRE(g.direction());
    CHECK(describe(*g.direction()) == "following dc1");
    g.observe(300ms, {{}, std::string("timeout")});
    CHECK(g.state().state == gate_state::kind::paused);
    CHECK(g.state().detail == "timeout");
    CHECK(describe(*g.direction()) == "following dc1");
    g.observe(400ms, {{}, std::string("timeout again")});
    CHECK(g.state().detail == "timeout again");  // same reason: no event, fresh detail
    auto e = g.observe(500ms, {{"dc2"}, {}});
    REQUIRE(e);
    CHECK(e->what == gate_event::kind::paused);
    CHECK(g.state().reason == pause_reason::settling);
    CHECK(g.state().detail == "waiting for \"primary dc2\" to hold for 1s");
    e = g.observe(1500ms, {{"dc2"}, {}});
    REQUIRE(e);
    CHECK(e->what == gate_event::kind::direction_changed);
    CHECK(e->from.state == gate_state::kind::paused);
    CHECK(describe(*g.direction()) == "primary dc2");
}

TEST_CASE("gate: settle 0 decides and turns on every poll", "[gate]")
{
    run_table(
        {
            {0, {"dc1"}, "following dc1", "decided"},
            {1, {"dc3"}, "following dc3", "direction_changed"},
            {2, {}, "paused no_primary", "paused"},
            {3, {"dc3"}, "following dc3", "resumed"},
        },
        {"dc2", 0ms, 200ms}
    );
}

TEST_CASE("gate: confirm is clamped to settle", "[gate]")
{
    run_table(
        {
            {0, {"dc1"}, "starting"},
            {100, {"dc1"}, "following dc1", "decided"},
        },
        {"dc2", 100ms, 5000ms}
    );
}

TEST_CASE("gate: describe and the reason names", "[gate]")
{
    CHECK(to_string(pause_reason::no_primary) == "no_primary");
    CHECK(to_string(pause_reason::two_primaries) == "two_primaries");
    CHECK(to_string(pause_reason::error) == "error");
    CHECK(to_string(pause_reason::settling) == "settling");
    gate g({"dc2", 1000ms, 200ms});
    g.observe(0ms, {{"dc3", "dc1"}, {}});
    CHECK(describe(g.state()) == "paused (two_primaries: dc1, dc3 all claim the primary)");
}
