// Step scripts for engine::lock_fsm: each test plays the driver, feeding one lane at a time the
// answer to its last action and checking the next action, the log lines and state changes, and
// which lanes the step interrupts or starts.
#include <engine/lock_fsm.hpp>
#include <engine/types.hpp>

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include <string>
#include <vector>

using namespace kvship::engine;
using namespace std::chrono_literals;

namespace act = kvship::engine::lock_actions;
namespace ev = kvship::engine::lock_events;

namespace {

constexpr auto main_lane = lock_lane::main;
constexpr auto renew_lane = lock_lane::renew;
constexpr auto monitor_lane = lock_lane::monitor;

std::string_view level_name(lock_log_level l)
{
    switch (l) {
        case lock_log_level::debug:
            return "debug";
        case lock_log_level::info:
            return "info";
        case lock_log_level::warn:
            return "warn";
        case lock_log_level::err:
            return "err";
    }
    return "?";
}

lock_params test_params()
{
    lock_params p;
    p.key = "app/.lock";
    p.session_name = "replicator-a";
    return p;  // consul lock's defaults: TTL 15s, wait 15s, retry 5s, monitor 5m and 3 retries
}

// Plays the driver: every call records the step's notes; `last` is the last step.
struct harness
{
    explicit harness(lock_params p = test_params()) : fsm(std::move(p)) {}

    lock_fsm fsm;
    lock_time now{0};
    lock_step last;
    std::vector<std::string> logs;   // "level: text", all so far
    std::vector<lock_state> states;  // every state change so far
    int losses = 0;

    void at(std::chrono::milliseconds t) { now = t; }

    const lock_action& record(lock_step s)
    {
        for (auto const& n : s.notes) {
            if (auto const* l = std::get_if<lock_notes::log>(&n))
                logs.push_back(fmt::format("{}: {}", level_name(l->level), l->text));
            else if (std::holds_alternative<lock_notes::loss>(n))
                ++losses;
            else
                states.push_back(std::get<lock_notes::state>(n).to);
        }
        last = std::move(s);
        return last.action;
    }

    const lock_action& resume(lock_lane lane, lock_event e)
    {
        return record(fsm.resume(lane, now, std::move(e)));
    }

    const lock_action& main(lock_event e) { return resume(main_lane, std::move(e)); }

    const lock_action& renew(lock_event e) { return resume(renew_lane, std::move(e)); }

    const lock_action& monitor(lock_event e) { return resume(monitor_lane, std::move(e)); }

    void stop() { record(fsm.stop()); }

    void lose(std::string why) { record(fsm.lose(std::move(why))); }

    void ended(lock_lane lane) { record(fsm.ended(lane)); }

    // The log lines since the last call, then forgets them.
    std::vector<std::string> take_logs()
    {
        auto out = std::move(logs);
        logs.clear();
        return out;
    }
};

template <class A>
A expect(const lock_action& a)
{
    INFO("action index " << a.index());
    REQUIRE(std::holds_alternative<A>(a));
    return std::get<A>(a);
}

lock_lanes lanes(bool main, bool renew, bool monitor)
{
    return lock_lanes{main, renew, monitor};
}

ev::key_read free_key(std::uint64_t index)
{
    return {index, lock_key_entry{lock_flag_value, "", index}};
}

ev::key_read held_by(std::string session, std::uint64_t index)
{
    return {index, lock_key_entry{lock_flag_value, std::move(session), index}};
}

ev::key_read missing_key(std::uint64_t index)
{
    return {index, std::nullopt};
}

ev::failed refused()
{
    return {"connect_failed: connection refused", false, true};
}

ev::failed aborted()
{
    return {"cancelled: operation aborted", false, false};
}

ev::timer_fired fired()
{
    return {false};
}

ev::timer_fired interrupted()
{
    return {true};
}

act::read_key standby_read(std::uint64_t index)
{
    return {index, 15s, false};
}

act::read_key monitor_read(std::uint64_t index)
{
    return {index, 5min, true};
}

// start -> session s1 -> a free key -> acquired; renew and monitor started (not yet resumed).
void acquire_first_try(harness& h)
{
    CHECK(
        expect<act::create_session>(h.main(ev::start{})) ==
        act::create_session{"replicator-a", "15s", "release", ""}
    );
    CHECK(expect<act::read_key>(h.main(ev::session_created{"s1"})) == standby_read(0));
    CHECK(h.last.start == lanes(false, true, false));
    CHECK(h.fsm.running(renew_lane));
    CHECK(expect<act::acquire>(h.main(free_key(5))) == act::acquire{"s1"});
    (void)expect<act::wait>(h.main(ev::answered{true}));
    CHECK(h.last.start == lanes(false, false, true));
    CHECK(h.fsm.held());
    CHECK(h.fsm.holds() == 1);
}

// Held as by acquire_first_try, with renew sleeping and monitor blocking on the key.
void held_with_lanes(harness& h)
{
    acquire_first_try(h);
    CHECK(expect<act::sleep>(h.renew(ev::start{})).delay == 7500ms);
    CHECK(expect<act::read_key>(h.monitor(ev::start{})) == monitor_read(0));
    CHECK(expect<act::read_key>(h.monitor(held_by("s1", 20))) == monitor_read(20));
    h.take_logs();
}

// After a loss or a stop began: main joins; the renew lane is interrupted in its sleep and the
// monitor in its read; both end.
void join_lanes(harness& h, bool monitor_running = true)
{
    CHECK(h.last.interrupt == lanes(false, true, monitor_running));
    (void)expect<act::wait>(h.last.action);
    (void)expect<act::done>(h.renew(interrupted()));
    h.ended(renew_lane);
    if (monitor_running) {
        CHECK(h.last.interrupt == lanes(true, false, false));
        CHECK(expect<act::wait>(h.main(interrupted())) == act::wait{});  // the monitor still runs
        (void)expect<act::done>(h.monitor(aborted()));
        h.ended(monitor_lane);
    }
    CHECK(h.last.interrupt == lanes(true, false, false));
}

}  // namespace

TEST_CASE("lock_fsm: acquire at the first try; renew and monitor start", "[lock]")
{
    harness h;
    acquire_first_try(h);
    CHECK(
        h.take_logs() ==
        std::vector<std::string>{
            "debug: created lock session s1 (ttl 15s)",
            "info: acquired lock \"app/.lock\" (session s1)",
        }
    );
    CHECK(h.states == std::vector<lock_state>{lock_state::held});
    CHECK(h.fsm.session() == "s1");
    CHECK(expect<act::sleep>(h.renew(ev::start{})).delay == 7500ms);
    CHECK(expect<act::read_key>(h.monitor(ev::start{})) == monitor_read(0));
    // the monitor follows the key's index while the session holds it
    CHECK(expect<act::read_key>(h.monitor(held_by("s1", 31))) == monitor_read(31));
    CHECK(h.logs.empty());
    CHECK(h.losses == 0);
}

TEST_CASE("lock_fsm: the key already carries our session: held without a PUT", "[lock]")
{
    harness h;
    (void)h.main(ev::start{});
    (void)h.main(ev::session_created{"s1"});
    (void)expect<act::wait>(h.main(held_by("s1", 8)));
    CHECK(h.fsm.held());
}

TEST_CASE("lock_fsm: a holder is announced once and blocked on with its index", "[lock]")
{
    harness h;
    (void)h.main(ev::start{});
    (void)h.main(ev::session_created{"s1"});
    h.take_logs();
    CHECK(expect<act::read_key>(h.main(held_by("s2", 7))) == standby_read(7));
    CHECK(
        h.take_logs() ==
        std::vector<std::string>{"info: lock \"app/.lock\" is held by session s2; standing by"}
    );
    CHECK(expect<act::read_key>(h.main(held_by("s2", 9))) == standby_read(9));
    CHECK(h.logs.empty());
    CHECK(expect<act::read_key>(h.main(held_by("s3", 10))) == standby_read(10));
    CHECK(
        h.take_logs() ==
        std::vector<std::string>{"info: lock \"app/.lock\" is held by session s3; standing by"}
    );
    CHECK(expect<act::acquire>(h.main(missing_key(12))) == act::acquire{"s1"});
    (void)expect<act::wait>(h.main(ev::answered{true}));
    CHECK(h.fsm.held());
}

TEST_CASE("lock_fsm: acquire=false with a holder blocks on it, no retry pause", "[lock]")
{
    harness h;
    (void)h.main(ev::start{});
    (void)h.main(ev::session_created{"s1"});
    (void)expect<act::acquire>(h.main(free_key(5)));
    // someone took it between our read and our PUT: read again at once (index 0) ...
    CHECK(expect<act::read_key>(h.main(ev::answered{false})) == standby_read(0));
    // ... and block on the holder
    CHECK(expect<act::read_key>(h.main(held_by("s2", 6))) == standby_read(6));
    CHECK(h.fsm.state() == lock_state::standby);
}

TEST_CASE(
    "lock_fsm: lock-delay: LockDelay is sent, acquire=false with no holder retries after retry", "[lock]"
)
{
    auto p = test_params();
    p.lock_delay = 15s;
    p.retry = 2s;
    harness h(p);
    CHECK(
        expect<act::create_session>(h.main(ev::start{})) ==
        act::create_session{"replicator-a", "15s", "release", "15s"}
    );
    (void)h.main(ev::session_created{"s1"});
    h.take_logs();
    (void)expect<act::acquire>(h.main(free_key(5)));
    CHECK(expect<act::read_key>(h.main(ev::answered{false})) == standby_read(0));
    CHECK(expect<act::sleep>(h.main(free_key(5))).delay == 2000ms);
    CHECK(
        h.take_logs() ==
        std::vector<std::string>{"debug: lock \"app/.lock\" is free but could not be acquired (lock-delay); "
                                 "retrying in 2000 ms"}
    );
    CHECK(expect<act::read_key>(h.main(fired())) == standby_read(0));
    (void)expect<act::acquire>(h.main(free_key(5)));
    CHECK(expect<act::read_key>(h.main(ev::answered{false})) == standby_read(0));
    // a failed re-read counts as "no holder" too
    CHECK(expect<act::sleep>(h.main(refused())).delay == 2000ms);
    CHECK(expect<act::read_key>(h.main(fired())) == standby_read(0));
    (void)expect<act::acquire>(h.main(free_key(5)));
    (void)expect<act::wait>(h.main(ev::answered{true}));
    CHECK(h.fsm.held());
}

TEST_CASE("lock_fsm: default lock-delay: LockDelay is not sent, retry is 5 s", "[lock]")
{
    harness h;
    CHECK(expect<act::create_session>(h.main(ev::start{})).lock_delay.empty());
    (void)h.main(ev::session_created{"s1"});
    (void)h.main(free_key(5));
    (void)h.main(ev::answered{false});
    CHECK(expect<act::sleep>(h.main(missing_key(5))).delay == 5000ms);
}

TEST_CASE("lock_fsm: session create failures back off 250 ms doubling up to retry", "[lock]")
{
    harness h;
    (void)expect<act::create_session>(h.main(ev::start{}));
    for (auto want : {250ms, 500ms, 1000ms, 2000ms, 4000ms, 5000ms, 5000ms}) {
        CHECK(expect<act::sleep>(h.main(refused())).delay == want);
        CHECK(
            h.take_logs() ==
            std::vector<std::string>{"warn: creating the lock session: connect_failed: connection refused"}
        );
        (void)expect<act::create_session>(h.main(fired()));
    }
    (void)expect<act::read_key>(h.main(ev::session_created{"s1"}));
    // a success resets the backoff: the next session's first failure waits 250 ms again
    CHECK(h.fsm.session() == "s1");
}

TEST_CASE("lock_fsm: read and acquire errors retry after 1 s from index 0", "[lock]")
{
    harness h;
    (void)h.main(ev::start{});
    (void)h.main(ev::session_created{"s1"});
    h.take_logs();
    (void)expect<act::read_key>(h.main(held_by("s2", 7)));
    h.take_logs();
    CHECK(expect<act::sleep>(h.main(refused())).delay == 1000ms);
    CHECK(
        h.take_logs() ==
        std::vector<std::string>{"warn: reading lock key \"app/.lock\": connect_failed: connection refused"}
    );
    CHECK(expect<act::read_key>(h.main(fired())) == standby_read(0));
    (void)expect<act::acquire>(h.main(free_key(9)));
    CHECK(expect<act::sleep>(h.main(refused())).delay == 1000ms);
    CHECK(
        h.take_logs() ==
        std::vector<std::string>{"warn: acquiring lock \"app/.lock\": connect_failed: connection refused"}
    );
    CHECK(expect<act::read_key>(h.main(fired())) == standby_read(0));
}

TEST_CASE("lock_fsm: renewal every TTL/2, following a shorter TTL from the server", "[lock]")
{
    harness h;
    held_with_lanes(h);
    h.at(7500ms);
    CHECK(expect<act::renew>(h.renew(fired())) == act::renew{"s1"});
    CHECK(expect<act::sleep>(h.renew(ev::renewed{"10s"})).delay == 5000ms);
    h.at(12500ms);
    (void)expect<act::renew>(h.renew(fired()));
    // an answer that is not a positive duration keeps the TTL
    CHECK(expect<act::sleep>(h.renew(ev::renewed{"bogus"})).delay == 5000ms);
    h.at(17500ms);
    (void)expect<act::renew>(h.renew(fired()));
    CHECK(expect<act::sleep>(h.renew(ev::renewed{"0s"})).delay == 5000ms);
    h.at(22500ms);
    (void)expect<act::renew>(h.renew(fired()));
    CHECK(expect<act::sleep>(h.renew(ev::renewed{"1m"})).delay == 30000ms);
    CHECK(h.logs.empty());
    CHECK(h.fsm.held());
    CHECK(h.last.interrupt == lanes(false, false, false));
}

TEST_CASE("lock_fsm: renew errors for less than a TTL, then a renewal: still held", "[lock]")
{
    harness h;
    held_with_lanes(h);
    h.at(7500ms);
    (void)expect<act::renew>(h.renew(fired()));
    CHECK(expect<act::sleep>(h.renew(refused())).delay == 1000ms);
    CHECK(
        h.take_logs() ==
        std::vector<std::string>{
            "warn: renewing lock session s1: connect_failed: connection refused; retrying in 1s"}
    );
    h.at(8500ms);
    (void)expect<act::renew>(h.renew(fired()));
    h.at(15000ms);  // exactly one TTL since the session began: not more than a TTL
    CHECK(expect<act::sleep>(h.renew(refused())).delay == 1000ms);
    h.at(16000ms);
    (void)expect<act::renew>(h.renew(fired()));
    CHECK(expect<act::sleep>(h.renew(ev::renewed{"15s"})).delay == 7500ms);
    // the whole-TTL clock starts again from this renewal
    h.at(23500ms);
    (void)expect<act::renew>(h.renew(fired()));
    h.at(31000ms);
    CHECK(expect<act::sleep>(h.renew(refused())).delay == 1000ms);
    CHECK(h.fsm.held());
    CHECK(h.losses == 0);
}

TEST_CASE("lock_fsm: renew errors for a whole TTL: lost, no release, a new session", "[lock]")
{
    harness h;
    held_with_lanes(h);
    h.at(7500ms);
    (void)expect<act::renew>(h.renew(fired()));
    (void)expect<act::sleep>(h.renew(refused()));
    h.at(15001ms);
    (void)expect<act::renew>(h.renew(fired()));
    (void)expect<act::done>(h.renew(refused()));
    CHECK(h.last.interrupt == lanes(true, false, false));  // main waits while held: wake it
    CHECK(h.fsm.held());                                   // main decides
    h.take_logs();

    (void)h.main(interrupted());
    CHECK(h.losses == 1);
    CHECK(
        h.take_logs() ==
        std::vector<std::string>{
            "err: lost lock \"app/.lock\": lock session s1 could not be renewed for a whole "
            "TTL (15s); replication stops, back to standby"}
    );
    CHECK(h.fsm.state() == lock_state::lost);
    // the renew lane already returned done: only its end is awaited; the monitor is interrupted
    CHECK(h.last.interrupt == lanes(false, true, true));
    (void)expect<act::wait>(h.last.action);
    h.ended(renew_lane);
    (void)expect<act::wait>(h.main(interrupted()));
    (void)expect<act::done>(h.monitor(aborted()));
    h.ended(monitor_lane);
    // the session is gone: nothing to release or destroy; back to standby with a new session
    CHECK(expect<act::create_session>(h.main(interrupted())).name == "replicator-a");
    CHECK(h.states == std::vector<lock_state>{lock_state::held, lock_state::lost, lock_state::standby});
    CHECK(h.fsm.session().empty());
    (void)h.main(ev::session_created{"s2"});
    (void)h.main(free_key(40));
    (void)expect<act::wait>(h.main(ev::answered{true}));
    CHECK(h.fsm.holds() == 2);
    CHECK(h.fsm.session() == "s2");
}

TEST_CASE("lock_fsm: renew 404 in standby: the session is gone, a new one is created", "[lock]")
{
    harness h;
    (void)h.main(ev::start{});
    (void)h.main(ev::session_created{"s1"});
    (void)expect<act::read_key>(h.main(held_by("s2", 7)));  // blocking on another holder
    (void)h.renew(ev::start{});
    h.at(7500ms);
    (void)h.renew(fired());
    h.take_logs();
    (void)expect<act::done>(h.renew(ev::failed{"not_found: session not found", true, false}));
    CHECK(h.last.interrupt == lanes(true, false, false));  // cut the standby read short
    // the interrupted read answers with an error: not logged, the session is replaced
    (void)expect<act::wait>(h.main(aborted()));
    CHECK(
        h.take_logs() ==
        std::vector<std::string>{"warn: lock session s1 expired or was destroyed (renew answered 404); "
                                 "creating a new session"}
    );
    CHECK(h.last.interrupt == lanes(false, true, false));
    h.ended(renew_lane);
    CHECK(h.last.interrupt == lanes(true, false, false));
    (void)expect<act::create_session>(h.main(interrupted()));
    CHECK(h.states.empty());  // standby throughout
    CHECK(h.losses == 0);
}

TEST_CASE("lock_fsm: renew 404 while held: lost, then a new session", "[lock]")
{
    harness h;
    held_with_lanes(h);
    h.at(7500ms);
    (void)h.renew(fired());
    (void)expect<act::done>(h.renew(ev::failed{"not_found: session not found", true, false}));
    (void)h.main(interrupted());
    CHECK(
        h.take_logs() ==
        std::vector<std::string>{
            "err: lost lock \"app/.lock\": lock session s1 expired or was destroyed (renew "
            "answered 404); replication stops, back to standby"}
    );
    h.ended(renew_lane);
    (void)h.main(interrupted());
    (void)h.monitor(aborted());
    h.ended(monitor_lane);
    (void)expect<act::create_session>(h.main(interrupted()));
    CHECK(h.losses == 1);
}

TEST_CASE(
    "lock_fsm: the monitor sees another session: lost, release, destroy, standby, new session", "[lock]"
)
{
    harness h;
    held_with_lanes(h);
    (void)expect<act::done>(h.monitor(held_by("s9", 21)));
    CHECK(h.last.interrupt == lanes(true, false, false));
    CHECK(h.fsm.held());  // main decides once woken

    (void)h.main(interrupted());
    CHECK(
        h.take_logs() ==
        std::vector<std::string>{"err: lost lock \"app/.lock\": the lock key is now held by session s9; "
                                 "replication stops, back to standby"}
    );
    CHECK(h.losses == 1);
    CHECK(h.fsm.state() == lock_state::lost);
    CHECK(h.last.interrupt == lanes(false, true, true));
    (void)expect<act::wait>(h.last.action);
    (void)expect<act::done>(h.renew(interrupted()));
    h.ended(renew_lane);
    (void)expect<act::wait>(h.main(interrupted()));
    h.ended(monitor_lane);
    // release at once (no lock-delay for the next holder); Consul says false: not ours any more
    CHECK(expect<act::release>(h.main(interrupted())) == act::release{"s1"});
    CHECK(expect<act::destroy_session>(h.main(ev::answered{false})) == act::destroy_session{"s1"});
    CHECK(h.logs.empty());  // no "released lock"
    CHECK(expect<act::create_session>(h.main(ev::answered{true})).name == "replicator-a");
    CHECK(h.states == std::vector<lock_state>{lock_state::held, lock_state::lost, lock_state::standby});
    CHECK(expect<act::read_key>(h.main(ev::session_created{"s2"})) == standby_read(0));
    CHECK(h.last.start == lanes(false, true, false));
    (void)expect<act::read_key>(h.main(held_by("s9", 22)));
    CHECK(h.fsm.state() == lock_state::standby);
}

TEST_CASE("lock_fsm: the monitor sees the key deleted or released", "[lock]")
{
    auto const [answer, why] = GENERATE(
        std::pair<ev::key_read, std::string>{missing_key(30), "the lock key was deleted"},
        std::pair<ev::key_read, std::string>{free_key(30), "the lock key was released (session invalidated?)"}
    );
    harness h;
    held_with_lanes(h);
    (void)expect<act::done>(h.monitor(answer));
    (void)h.main(interrupted());
    CHECK(
        h.take_logs() ==
        std::vector<std::string>{
            fmt::format("err: lost lock \"app/.lock\": {}; replication stops, back to standby", why)}
    );
}

TEST_CASE("lock_fsm: monitor errors: up to monitor_retries in a row are retried 1 s apart", "[lock]")
{
    harness h;
    held_with_lanes(h);
    for (int round = 0; round < 2; ++round) {
        for (int i = 0; i < 3; ++i) {
            CHECK(expect<act::sleep>(h.monitor(refused())).delay == 1000ms);
            CHECK(
                h.take_logs() ==
                std::vector<std::string>{
                    "warn: watching lock \"app/.lock\": connect_failed: connection refused; "
                    "retrying in 1s"}
            );
            CHECK(expect<act::read_key>(h.monitor(fired())) == monitor_read(0));
        }
        if (round == 0)  // a good read resets the count
            CHECK(expect<act::read_key>(h.monitor(held_by("s1", 25))) == monitor_read(25));
    }
    CHECK(h.fsm.held());
    // the fourth in a row: lost
    (void)expect<act::done>(h.monitor(refused()));
    CHECK(h.last.interrupt == lanes(true, false, false));
    (void)h.main(interrupted());
    CHECK(
        h.take_logs() ==
        std::vector<std::string>{
            "err: lost lock \"app/.lock\": watching the lock key failed: connect_failed: "
            "connection refused; replication stops, back to standby"}
    );
    CHECK(h.losses == 1);
}

TEST_CASE("lock_fsm: a monitor error that is not retryable is a loss at once", "[lock]")
{
    harness h;
    held_with_lanes(h);
    (void)expect<act::done>(h.monitor(ev::failed{"forbidden: ACL not found", false, false}));
    (void)h.main(interrupted());
    CHECK(h.losses == 1);
    CHECK(h.fsm.state() == lock_state::lost);
}

TEST_CASE("lock_fsm: monitor retries 0: the first error is a loss", "[lock]")
{
    auto p = test_params();
    p.monitor_retries = 0;
    harness h(p);
    held_with_lanes(h);
    (void)expect<act::done>(h.monitor(refused()));
    (void)h.main(interrupted());
    CHECK(h.losses == 1);
}

TEST_CASE("lock_fsm: renew and monitor run side by side while held", "[lock]")
{
    harness h;
    held_with_lanes(h);
    h.at(7500ms);
    (void)expect<act::renew>(h.renew(fired()));
    CHECK(expect<act::read_key>(h.monitor(held_by("s1", 26))) == monitor_read(26));
    CHECK(expect<act::sleep>(h.monitor(refused())).delay == 1000ms);
    CHECK(expect<act::sleep>(h.renew(ev::renewed{"15s"})).delay == 7500ms);
    CHECK(expect<act::read_key>(h.monitor(fired())) == monitor_read(0));
    h.at(15000ms);
    (void)expect<act::renew>(h.renew(fired()));
    CHECK(expect<act::read_key>(h.monitor(held_by("s1", 27))) == monitor_read(27));
    CHECK(expect<act::sleep>(h.renew(ev::renewed{"15s"})).delay == 7500ms);
    CHECK(h.fsm.held());
    CHECK(h.fsm.running(renew_lane));
    CHECK(h.fsm.running(monitor_lane));
    CHECK(h.losses == 0);
}

TEST_CASE("lock_fsm: lose() while held: lost at once, then release, destroy, standby", "[lock]")
{
    harness h;
    held_with_lanes(h);
    h.lose("a destination transaction was refused by its lock check");
    CHECK_FALSE(h.fsm.held());
    CHECK(h.fsm.state() == lock_state::lost);
    CHECK(h.losses == 1);
    CHECK(
        h.take_logs() ==
        std::vector<std::string>{
            "err: lost lock \"app/.lock\": a destination transaction was refused by its lock "
            "check; replication stops, back to standby"}
    );
    CHECK(h.last.interrupt == lanes(true, false, false));
    (void)h.main(interrupted());
    CHECK(h.losses == 1);  // counted once
    join_lanes(h);
    CHECK(expect<act::release>(h.main(interrupted())) == act::release{"s1"});
    CHECK(expect<act::destroy_session>(h.main(ev::answered{true})) == act::destroy_session{"s1"});
    CHECK(h.take_logs() == std::vector<std::string>{"info: released lock \"app/.lock\""});
    (void)expect<act::create_session>(h.main(ev::answered{true}));
    CHECK(h.fsm.state() == lock_state::standby);
    // a second lose() for the same loss (another fenced txn) is ignored
    h.lose("a destination transaction was refused by its lock check");
    CHECK(h.losses == 1);
    CHECK(h.logs.empty());
    CHECK(h.last.interrupt == lanes(false, false, false));
}

TEST_CASE("lock_fsm: lose() in standby changes nothing and cuts nothing short", "[lock]")
{
    harness h;
    (void)h.main(ev::start{});
    (void)h.main(ev::session_created{"s1"});
    (void)expect<act::read_key>(h.main(held_by("s2", 7)));
    h.take_logs();
    h.lose("late fenced txn");
    CHECK(h.last.interrupt == lanes(false, false, false));
    CHECK(h.logs.empty());
    CHECK(h.losses == 0);
    (void)expect<act::acquire>(h.main(free_key(8)));
    (void)expect<act::wait>(h.main(ev::answered{true}));
    CHECK(h.fsm.held());  // the earlier lose() does not count against the new holding period
}

TEST_CASE("lock_fsm: stop while standby: no release, no cleanup, the session is destroyed", "[lock]")
{
    harness h;
    (void)h.main(ev::start{});
    (void)h.main(ev::session_created{"s1"});
    (void)h.renew(ev::start{});
    (void)expect<act::read_key>(h.main(held_by("s2", 7)));
    h.take_logs();
    h.stop();
    CHECK(h.last.interrupt == lanes(true, false, false));
    (void)h.main(aborted());
    CHECK(h.logs.empty());  // the aborted read is not logged
    join_lanes(h, false);
    CHECK(expect<act::destroy_session>(h.main(interrupted())) == act::destroy_session{"s1"});
    (void)expect<act::done>(h.main(ev::answered{true}));
    CHECK(h.fsm.state() == lock_state::stopped);
    CHECK(h.states == std::vector<lock_state>{lock_state::stopped});
    CHECK(h.fsm.session().empty());
    CHECK(h.logs.empty());
}

TEST_CASE("lock_fsm: stop during a pause or while creating the session", "[lock]")
{
    SECTION("creating: nothing to destroy")
    {
        harness h;
        (void)h.main(ev::start{});
        h.stop();
        CHECK(h.last.interrupt == lanes(true, false, false));
        (void)expect<act::done>(h.main(aborted()));
        CHECK(h.logs.empty());  // a failure while stopping is not logged
        CHECK(h.fsm.state() == lock_state::stopped);
    }
    SECTION("a lock-delay pause")
    {
        harness h;
        (void)h.main(ev::start{});
        (void)h.main(ev::session_created{"s1"});
        (void)h.renew(ev::start{});
        (void)h.main(free_key(5));
        (void)h.main(ev::answered{false});
        (void)expect<act::sleep>(h.main(free_key(5)));
        h.stop();
        CHECK(h.last.interrupt == lanes(true, false, false));
        (void)h.main(interrupted());  // the cut-short sleep: main goes straight to the shutdown
        join_lanes(h, false);
        (void)expect<act::destroy_session>(h.main(interrupted()));
        (void)expect<act::done>(h.main(ev::answered{true}));
        CHECK(h.fsm.state() == lock_state::stopped);
    }
    SECTION("stop before run")
    {
        harness h;
        h.stop();
        CHECK(h.last.interrupt == lanes(false, false, false));
        (void)expect<act::done>(h.main(ev::start{}));
        CHECK(h.fsm.state() == lock_state::stopped);
    }
}

TEST_CASE(
    "lock_fsm: stop while held: release, cleanup when flags match and nobody holds it, destroy", "[lock]"
)
{
    harness h;
    held_with_lanes(h);
    h.stop();
    CHECK(h.last.interrupt == lanes(true, false, false));
    (void)h.main(interrupted());
    join_lanes(h);
    CHECK(h.fsm.held());  // held until released
    CHECK(expect<act::release>(h.main(interrupted())) == act::release{"s1"});
    CHECK(expect<act::read_key>(h.main(ev::answered{true})) == act::read_key{0, 0ms, false});
    CHECK(h.take_logs() == std::vector<std::string>{"info: released lock \"app/.lock\""});
    CHECK(expect<act::remove>(h.main(free_key(42))) == act::remove{42});
    CHECK(expect<act::destroy_session>(h.main(ev::answered{true})) == act::destroy_session{"s1"});
    (void)expect<act::done>(h.main(ev::answered{true}));
    CHECK(h.fsm.state() == lock_state::stopped);
    CHECK(h.states == std::vector<lock_state>{lock_state::held, lock_state::stopped});
    CHECK(h.losses == 0);
    CHECK(h.logs.empty());
    // stop() again after the end: nothing
    h.stop();
    CHECK(h.last.interrupt == lanes(false, false, false));
}

TEST_CASE("lock_fsm: stop while held: no cleanup when the key is held, has other flags or is gone", "[lock]")
{
    auto const found =
        GENERATE(held_by("s2", 43), ev::key_read{43, lock_key_entry{7, "", 43}}, missing_key(43));
    harness h;
    held_with_lanes(h);
    h.stop();
    (void)h.main(interrupted());
    join_lanes(h);
    (void)expect<act::release>(h.main(interrupted()));
    (void)expect<act::read_key>(h.main(ev::answered{true}));
    CHECK(expect<act::destroy_session>(h.main(found)) == act::destroy_session{"s1"});
    (void)expect<act::done>(h.main(ev::answered{true}));
}

TEST_CASE("lock_fsm: stop while held: failures while letting go are logged and skipped", "[lock]")
{
    harness h;
    held_with_lanes(h);
    h.stop();
    (void)h.main(interrupted());
    join_lanes(h);
    (void)expect<act::release>(h.main(interrupted()));
    // a failed release still tries the cleanup read; a failed read skips the delete
    (void)expect<act::read_key>(h.main(refused()));
    (void)expect<act::destroy_session>(h.main(refused()));
    (void)expect<act::done>(h.main(refused()));
    CHECK(
        h.take_logs() ==
        std::vector<std::string>{
            "warn: releasing lock \"app/.lock\": connect_failed: connection refused",
            "warn: destroying lock session s1: connect_failed: connection refused",
        }
    );
    CHECK(h.fsm.state() == lock_state::stopped);

    harness d;
    held_with_lanes(d);
    d.stop();
    (void)d.main(interrupted());
    join_lanes(d);
    (void)d.main(interrupted());
    (void)d.main(ev::answered{true});
    (void)expect<act::remove>(d.main(free_key(42)));
    (void)expect<act::destroy_session>(d.main(refused()));
    CHECK(
        d.take_logs() ==
        std::vector<std::string>{
            "info: released lock \"app/.lock\"",
            "warn: cleaning up lock key \"app/.lock\": connect_failed: connection refused",
        }
    );
}

TEST_CASE("lock_fsm: stop while letting a lost lock go: the release is not cut short, then stopped", "[lock]")
{
    harness h;
    held_with_lanes(h);
    h.lose("fenced");
    (void)h.main(interrupted());
    join_lanes(h);
    (void)expect<act::release>(h.main(interrupted()));
    h.stop();
    CHECK(h.last.interrupt == lanes(false, false, false));
    (void)expect<act::destroy_session>(h.main(ev::answered{true}));
    (void)expect<act::done>(h.main(ev::answered{true}));
    CHECK(h.fsm.state() == lock_state::stopped);
    CHECK(h.states == std::vector<lock_state>{lock_state::held, lock_state::lost, lock_state::stopped});
}

TEST_CASE("lock_fsm: lose() and stop() together while held: a loss, no cleanup", "[lock]")
{
    harness h;
    held_with_lanes(h);
    h.lose("fenced");
    h.stop();
    (void)h.main(interrupted());
    join_lanes(h);
    (void)expect<act::release>(h.main(interrupted()));
    (void)expect<act::destroy_session>(h.main(ev::answered{true}));
    (void)expect<act::done>(h.main(ev::answered{true}));
    CHECK(h.losses == 1);
    CHECK(h.fsm.state() == lock_state::stopped);
}

TEST_CASE("lock_fsm: a key with other flags is not a lock: failed, the session is destroyed", "[lock]")
{
    harness h;
    (void)h.main(ev::start{});
    (void)h.main(ev::session_created{"s1"});
    (void)h.renew(ev::start{});
    h.take_logs();
    (void)expect<act::wait>(h.main(ev::key_read{3, lock_key_entry{0, "", 3}}));
    CHECK(h.fsm.state() == lock_state::failed);
    CHECK(
        h.fsm.error() ==
        "existing key \"app/.lock\" (flags 0) does not match lock use: a consul lock key has flags "
        "3304740253564472344; choose another -lock prefix or remove the key"
    );
    join_lanes(h, false);
    CHECK(expect<act::destroy_session>(h.main(interrupted())) == act::destroy_session{"s1"});
    (void)expect<act::done>(h.main(ev::answered{true}));
    CHECK(h.fsm.state() == lock_state::failed);  // not stopped
    CHECK(h.states == std::vector<lock_state>{lock_state::failed});
    CHECK(h.logs.empty());
}

TEST_CASE("lock_fsm: an answer the lane cannot be waiting for is a driver bug", "[lock]")
{
    harness h;
    CHECK_THROWS_AS(h.main(ev::answered{true}), std::logic_error);
    harness g;
    (void)g.main(ev::start{});
    CHECK_THROWS_AS(g.main(free_key(1)), std::logic_error);
}
