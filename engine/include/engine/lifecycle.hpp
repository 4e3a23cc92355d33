// The process lifecycle of one generation (apps/consul-replicate/app.cpp run_generation, from the
// start of the pairs to the end), as a sans-I/O machine: fed one look at the process each time its
// loop wakes, it says what to do (stop the pairs gracefully, abort them, start them from a DC, end)
// and when to look again. Then `generation_outcome` says how the generation ended.
//
// Rules:
//  * A stop begins on a signal (SIGINT/SIGTERM), a reload (SIGHUP), a pair that failed, the lock
//    lost, the gate or the Vault runner ended, or a two-way refusal. It stops the pairs gracefully
//    (the in-flight txn may finish) and the gate and Vault runners, once.
//  * The pairs are aborted (in-flight txns too) when the lock is lost (their txns are fenced anyway),
//    on a second signal, or when the stop grace has passed since the stop began.
//  * The generation ends once a stop is under way and every pair, the gate and the Vault runner
//    have ended; without a stop, once every pair has ended (-once, or a daemon whose pairs all
//    finished).
//  * Gated: the pairs run from the DC the gate names. When it names another, or none, the running
//    pairs are stopped gracefully (a *turn*); a turn once begun runs to its end even if the answer
//    comes back meanwhile; its pairs are aborted after the stop grace. Once they have all ended, the
//    pairs start from the DC the gate names then, if any (a full read).
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace kvship::engine {

// Monotonic time since any fixed origin (the driver passes steady_clock time, tests small numbers).
using life_time = std::chrono::nanoseconds;

inline constexpr life_time life_never = life_time::max();

// One look at the process.
struct life_view
{
    unsigned signals = 0;  // SIGINT/SIGTERM received
    bool reload = false;   // SIGHUP received
    bool pair_failed = false;
    bool pairs_done = true;  // every running pair has ended (true when there are none)
    bool have_pairs = false;
    bool lock_lost = false;  // -lock: the holding period this generation started in is over
    bool gate_done = true;   // the gate runner ended (true without a gate)
    bool vault_done = true;  // the Vault runner ended (true without one)
    bool refused = false;    // the registry refused two-way replication
    bool gated = false;      // a gate runs
    bool vault = false;      // a Vault runner runs
    std::optional<std::string> gate_source;  // gated: the DC to replicate from now, if any
    bool once = false;
};

// What to do now, in this order: stop (gracefully) then abort the pairs, stop the gate and Vault
// runners, forget the ended pairs, start the pairs from `start_from`, end the loop. Then wait until
// `wake_at` or until something changes.
struct life_step
{
    bool stop_pairs = false;
    bool abort_pairs = false;
    bool stop_runners = false;
    bool clear_pairs = false;
    std::optional<std::string> start_from;
    bool finished = false;
    life_time wake_at = life_never;
    bool turn_began = false;  // the pairs reading from pairs_source() are being stopped for a turn

    bool operator==(const life_step&) const = default;
};

class lifecycle
{
public:
    explicit lifecycle(life_time stop_grace) : stop_grace_(stop_grace) {}

    // Ungated pairs were started with the generation; gated ones start by step()'s start_from.
    [[nodiscard]] life_step step(const life_view& v, life_time now);

    // A stop is under way (readiness says "stopping").
    [[nodiscard]] bool stopping() const { return stopping_; }

    // Gated: the DC the running pairs read from.
    [[nodiscard]] const std::optional<std::string>& pairs_source() const { return pairs_source_; }

private:
    life_time stop_grace_;
    bool stopping_ = false;
    bool aborted_ = false;
    life_time deadline_ = life_never;
    std::optional<std::string> pairs_source_;
    bool turning_ = false;
    life_time turn_deadline_ = life_never;
};

// How a generation ended.
enum class generation_end
{
    finished,   // -once: every pair done
    killed,     // a signal
    lock_lost,  // -lock: contend again
    failed,     // a pair's error, a two-way refusal, or a daemon whose pairs all stopped
    reload,     // SIGHUP: start the next generation with the new configuration
};

[[nodiscard]] std::string_view to_string(generation_end e);

// In order: a signal, the lock lost, a two-way refusal, a pair's error, a reload, -once's end;
// anything else is a daemon that stopped replicating ("replication stopped"): a failure.
[[nodiscard]] generation_end generation_outcome(
    bool killed, bool lock_lost, bool refused, bool pair_failed, bool reload, bool once
);

}  // namespace kvship::engine
