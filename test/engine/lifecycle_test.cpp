// The generation's lifecycle machine (engine/lifecycle.hpp) as step scripts: what each look at the
// process makes it do, with times in seconds from 0.
#include <engine/lifecycle.hpp>

#include <catch2/catch.hpp>

using namespace kvship::engine;
using namespace std::chrono_literals;

namespace {

constexpr life_time grace = 5s;

life_view running(bool gated = false)
{
    life_view v;
    v.have_pairs = true;
    v.pairs_done = false;
    v.gated = gated;
    v.gate_done = !gated;
    return v;
}

}  // namespace

TEST_CASE("lifecycle: -once ends when every pair is done", "[engine][lifecycle]")
{
    lifecycle life(grace);
    auto v = running();
    v.once = true;
    auto s = life.step(v, 0s);
    CHECK(s == life_step{});  // nothing to do, no timer
    v.pairs_done = true;
    s = life.step(v, 1s);
    CHECK(s.finished);
    CHECK_FALSE(s.stop_pairs);
    CHECK_FALSE(life.stopping());
    CHECK(generation_outcome(false, false, false, false, false, true) == generation_end::finished);
}

TEST_CASE("lifecycle: a signal stops gracefully; a second one aborts; done ends", "[engine][lifecycle]")
{
    lifecycle life(grace);
    auto v = running();
    CHECK(life.step(v, 0s) == life_step{});
    v.signals = 1;
    auto s = life.step(v, 10s);
    CHECK(s.stop_pairs);
    CHECK(s.stop_runners);
    CHECK_FALSE(s.abort_pairs);
    CHECK(s.wake_at == 15s);  // the stop grace
    CHECK(life.stopping());
    // Woken by something else: nothing new, the same deadline.
    s = life.step(v, 11s);
    CHECK_FALSE(s.stop_pairs);
    CHECK(s.wake_at == 15s);
    v.signals = 2;
    s = life.step(v, 12s);
    CHECK(s.abort_pairs);
    CHECK(s.wake_at == life_never);
    CHECK_FALSE(s.finished);
    v.pairs_done = true;
    CHECK(life.step(v, 12s).finished);
    CHECK(generation_outcome(true, false, false, false, false, false) == generation_end::killed);
}

TEST_CASE("lifecycle: the stop grace passes: the pairs are aborted", "[engine][lifecycle]")
{
    lifecycle life(grace);
    auto v = running();
    v.reload = true;
    CHECK(life.step(v, 0s).stop_pairs);
    CHECK_FALSE(life.step(v, 4s).abort_pairs);
    auto s = life.step(v, 5s);
    CHECK(s.abort_pairs);
    CHECK_FALSE(life.step(v, 6s).abort_pairs);  // once
    v.pairs_done = true;
    CHECK(life.step(v, 6s).finished);
    CHECK(generation_outcome(false, false, false, false, true, false) == generation_end::reload);
}

TEST_CASE("lifecycle: the lock lost aborts at once", "[engine][lifecycle]")
{
    lifecycle life(grace);
    auto v = running();
    v.lock_lost = true;
    auto s = life.step(v, 0s);
    CHECK(s.stop_pairs);
    CHECK(s.abort_pairs);
    CHECK(s.wake_at == life_never);
    v.pairs_done = true;
    CHECK(life.step(v, 1s).finished);
    CHECK(generation_outcome(false, true, false, true, true, false) == generation_end::lock_lost);
}

TEST_CASE("lifecycle: a failed pair, a two-way refusal, the gate or Vault runner ended: a stop", "[engine][lifecycle]")
{
    for (int which = 0; which < 4; ++which) {
        CAPTURE(which);
        lifecycle life(grace);
        auto v = running(which == 2);
        v.vault = which == 3;
        v.vault_done = which != 3;
        CHECK_FALSE(life.step(v, 0s).stop_pairs);
        if (which == 0)
            v.pair_failed = true;
        else if (which == 1)
            v.refused = true;
        else if (which == 2)
            v.gate_done = true;
        else
            v.vault_done = true;
        CHECK(life.step(v, 1s).stop_pairs);
        CHECK(life.stopping());
    }
    CHECK(generation_outcome(false, false, true, false, true, false) == generation_end::failed);
    CHECK(generation_outcome(false, false, false, true, false, true) == generation_end::failed);
    // A daemon whose pairs all stopped without an error: "replication stopped".
    CHECK(generation_outcome(false, false, false, false, false, false) == generation_end::failed);
}

TEST_CASE("lifecycle: a daemon ends only after its stop and its runners", "[engine][lifecycle]")
{
    lifecycle life(grace);
    auto v = running(true);
    v.have_pairs = false;
    v.pairs_done = true;
    // Gated, no primary yet: nothing runs, nothing ends.
    CHECK(life.step(v, 0s) == life_step{});
    v.signals = 1;
    auto s = life.step(v, 1s);
    CHECK(s.stop_runners);
    CHECK_FALSE(s.finished);  // the gate runner has not ended yet
    v.gate_done = true;
    CHECK(life.step(v, 2s).finished);
}

TEST_CASE("lifecycle: gated: start, turn, a flicker during the turn, abort after the grace, start again", "[engine][lifecycle]")
{
    lifecycle life(grace);
    life_view v;
    v.gated = true;
    v.gate_done = false;
    // The gate names dc1: start from it.
    v.gate_source = "dc1";
    auto s = life.step(v, 0s);
    CHECK(s.start_from == "dc1");
    CHECK(life.pairs_source() == "dc1");
    v.have_pairs = true;
    v.pairs_done = false;
    CHECK(life.step(v, 1s) == life_step{});
    // dc2 now: a turn; the pairs reading from dc1 stop gracefully.
    v.gate_source = "dc2";
    s = life.step(v, 10s);
    CHECK(s.turn_began);
    CHECK(s.stop_pairs);
    CHECK_FALSE(s.start_from);
    CHECK(s.wake_at == 15s);
    CHECK(life.pairs_source() == "dc1");
    // dc1 again while the turn runs: it still runs to its end.
    v.gate_source = "dc1";
    s = life.step(v, 11s);
    CHECK_FALSE(s.turn_began);
    CHECK_FALSE(s.stop_pairs);
    CHECK_FALSE(s.start_from);
    // The grace passes: the turn's pairs are aborted.
    v.gate_source = "dc2";
    s = life.step(v, 15s);
    CHECK(s.abort_pairs);
    CHECK(s.wake_at == life_never);
    // They ended: forgotten, and the pairs start from what the gate names now.
    v.pairs_done = true;
    s = life.step(v, 16s);
    CHECK(s.clear_pairs);
    CHECK(s.start_from == "dc2");
    CHECK(life.pairs_source() == "dc2");
    CHECK_FALSE(life.stopping());
}

TEST_CASE("lifecycle: gated: no primary: the pairs stop and nothing starts", "[engine][lifecycle]")
{
    lifecycle life(grace);
    life_view v;
    v.gated = true;
    v.gate_done = false;
    v.gate_source = "dc1";
    CHECK(life.step(v, 0s).start_from == "dc1");
    v.have_pairs = true;
    v.pairs_done = false;
    v.gate_source.reset();
    auto s = life.step(v, 1s);
    CHECK(s.turn_began);
    CHECK(s.stop_pairs);
    v.pairs_done = true;
    s = life.step(v, 2s);
    CHECK(s.clear_pairs);
    CHECK_FALSE(s.start_from);
    CHECK_FALSE(life.pairs_source());
    v.have_pairs = false;
    CHECK(life.step(v, 3s) == life_step{});
}
