// The leader-DC gate as a sans-I/O state machine: fed one observation per poll (which DCs claim
// the primary, or why detection failed), it decides which way replication runs.
//
// States: `starting` (no decision yet), `following{P}` (replicate from P into the local DC),
// `primary` (the local DC is the primary: write nothing), `paused{reason}` (write nothing, say why).
//
// Rules:
//  * The pairs run only while the state is `following`. Any observation that disagrees with the
//    current direction stops them at once (`paused`): no primary, two or more claimants, a detection
//    error, or a different primary (reason `settling`). Continuing to copy from the old primary
//    while a new one is being confirmed would overwrite what the new primary writes, so the gate
//    never keeps a direction it no longer sees.
//  * A *turn* (a running state other than the last one: following another DC, or primary instead
//    of following, or the other way round) happens only after the new answer was seen on every
//    poll for `settle`. A flicker shorter than that causes no turn.
//  * Going back to the last direction after a pause is not a turn: the answer only needs to hold
//    for `confirm`.
//  * The first decision (no direction yet) also needs the answer to hold for `confirm`, not for
//    `settle`: there is no direction yet that a flicker could turn, so waiting the full settle time
//    would only delay every restart. `confirm` still needs two polls that agree, so a single odd
//    answer never decides; and an answer that later changes goes through the settle rule above.
//  * Every poll that disagrees with the answer being confirmed restarts its clock ("consistently").
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace kvship::engine {

// Monotonic time since any fixed origin (the driver passes steady_clock time, tests small numbers).
using gate_time = std::chrono::nanoseconds;

enum class pause_reason
{
    no_primary,     // no DC claims the primary
    two_primaries,  // more than one DC claims it
    error,          // the detector could not tell
    settling,       // a different primary was seen and is not confirmed yet
};

[[nodiscard]] std::string_view to_string(pause_reason r);

struct gate_state
{
    enum class kind
    {
        starting,
        following,
        primary,
        paused,
    };

    kind state = kind::starting;
    std::string primary;                             // following: the source DC; primary: the local DC
    pause_reason reason = pause_reason::no_primary;  // paused only
    std::string detail;  // paused: the claimants or the error, for logs and /readyz

    [[nodiscard]] bool running() const { return state == kind::following || state == kind::primary; }

    // Same direction (state and primary); the detail of a pause is ignored.
    [[nodiscard]] bool same_as(const gate_state& o) const;

    bool operator==(const gate_state&) const = default;
};

[[nodiscard]] std::string_view to_string(gate_state::kind k);
// "following dc1", "primary dc2", "paused (no_primary: ...)", "starting".
[[nodiscard]] std::string describe(const gate_state& s);

// One poll's answer: the DCs claiming the primary (duplicates count once), or an error.
struct gate_observation
{
    std::vector<std::string> claimants;
    std::optional<std::string> error;
};

struct gate_event
{
    enum class kind
    {
        decided,            // the first running state
        paused,             // entered `paused` (or its reason changed)
        resumed,            // back to the last direction after a pause
        direction_changed,  // a turn: a running state other than the last one
    };

    kind what = kind::decided;
    gate_state from;
    gate_state to;
};

[[nodiscard]] std::string_view to_string(gate_event::kind k);

struct gate_params
{
    std::string local_dc;
    gate_time settle = std::chrono::seconds(10);
    gate_time confirm = std::chrono::seconds(2);  // clamped to settle
};

class gate
{
public:
    explicit gate(gate_params params);

    // Feeds the observation made at `now` (never earlier than the previous one). Returns the event
    // when the decided state changed.
    std::optional<gate_event> observe(gate_time now, const gate_observation& obs);

    [[nodiscard]] const gate_state& state() const { return state_; }

    // The last running state (following or primary), kept across pauses; nullopt before the first.
    [[nodiscard]] const std::optional<gate_state>& direction() const { return direction_; }

    // The answer being confirmed and since when (nullopt when the last poll agreed with the state).
    [[nodiscard]] const std::optional<gate_state>& candidate() const { return candidate_; }

private:
    [[nodiscard]] gate_state verdict(const gate_observation& obs) const;
    gate_event move_to(gate_event::kind what, gate_state next);

    gate_params params_;
    gate_state state_;
    std::optional<gate_state> direction_;
    std::optional<gate_state> candidate_;
    gate_time candidate_since_{0};
};

}  // namespace kvship::engine
