#include <engine/gate.hpp>

#include <fmt/chrono.h>
#include <fmt/format.h>

#include <algorithm>
#include <utility>

namespace kvship::engine {

namespace {

gate_state running_state(gate_state::kind k, std::string primary)
{
    gate_state s;
    s.state = k;
    s.primary = std::move(primary);
    return s;
}

gate_state paused_state(pause_reason r, std::string detail)
{
    gate_state s;
    s.state = gate_state::kind::paused;
    s.reason = r;
    s.detail = std::move(detail);
    return s;
}

std::string seconds_text(gate_time d)
{
    return fmt::format("{:.3g}s", std::chrono::duration<double>(d).count());
}

}  // namespace

std::string_view to_string(pause_reason r)
{
    switch (r) {
        case pause_reason::no_primary:
            return "no_primary";
        case pause_reason::two_primaries:
            return "two_primaries";
        case pause_reason::error:
            return "error";
        case pause_reason::settling:
            return "settling";
    }
    return "unknown";
}

std::string_view to_string(gate_state::kind k)
{
    switch (k) {
        case gate_state::kind::starting:
            return "starting";
        case gate_state::kind::following:
            return "following";
        case gate_state::kind::primary:
            return "primary";
        case gate_state::kind::paused:
            return "paused";
    }
    return "unknown";
}

std::string_view to_string(gate_event::kind k)
{
    switch (k) {
        case gate_event::kind::decided:
            return "decided";
        case gate_event::kind::paused:
            return "paused";
        case gate_event::kind::resumed:
            return "resumed";
        case gate_event::kind::direction_changed:
            return "direction_changed";
    }
    return "unknown";
}

bool gate_state::same_as(const gate_state& o) const
{
    if (state != o.state)
        return false;
    if (state == kind::paused)
        return reason == o.reason;
    return primary == o.primary;
}

std::string describe(const gate_state& s)
{
    switch (s.state) {
        case gate_state::kind::starting:
            return s.detail.empty() ? "starting" : fmt::format("starting ({})", s.detail);
        case gate_state::kind::following:
            return fmt::format("following {}", s.primary);
        case gate_state::kind::primary:
            return fmt::format("primary {}", s.primary);
        case gate_state::kind::paused:
            return fmt::format("paused ({}: {})", to_string(s.reason), s.detail);
    }
    return "unknown";
}

gate::gate(gate_params params) : params_(std::move(params))
{
    if (params_.settle < gate_time::zero())
        params_.settle = gate_time::zero();
    params_.confirm = std::clamp(params_.confirm, gate_time::zero(), params_.settle);
}

gate_state gate::verdict(const gate_observation& obs) const
{
    if (obs.error)
        return paused_state(pause_reason::error, *obs.error);
    std::vector<std::string> dcs = obs.claimants;
    std::sort(dcs.begin(), dcs.end());
    dcs.erase(std::unique(dcs.begin(), dcs.end()), dcs.end());
    if (dcs.empty())
        return paused_state(pause_reason::no_primary, "no datacenter claims the primary");
    if (dcs.size() > 1)
        return paused_state(
            pause_reason::two_primaries, fmt::format("{} all claim the primary", fmt::join(dcs, ", "))
        );
    if (dcs.front() == params_.local_dc)
        return running_state(gate_state::kind::primary, dcs.front());
    return running_state(gate_state::kind::following, dcs.front());
}

gate_event gate::move_to(gate_event::kind what, gate_state next)
{
    gate_event e{what, state_, next};
    state_ = std::move(next);
    return e;
}

std::optional<gate_event> gate::observe(gate_time now, const gate_observation& obs)
{
    gate_state v = verdict(obs);

    if (!v.running()) {
        // Never guess: no primary, two of them or no answer stop the pairs at once.
        candidate_.reset();
        if (state_.state == gate_state::kind::paused && state_.reason == v.reason) {
            state_.detail = std::move(v.detail);
            return std::nullopt;
        }
        return move_to(gate_event::kind::paused, std::move(v));
    }

    if (state_.running() && v.same_as(state_)) {
        candidate_.reset();
        return std::nullopt;
    }

    if (!candidate_ || !candidate_->same_as(v)) {
        candidate_ = v;
        candidate_since_ = now;
    }
    bool const turn = direction_ && !v.same_as(*direction_);
    gate_time const window = turn ? params_.settle : params_.confirm;
    if (now - candidate_since_ >= window) {
        candidate_.reset();
        auto const what = !direction_ ? gate_event::kind::decided
                          : turn      ? gate_event::kind::direction_changed
                                      : gate_event::kind::resumed;
        direction_ = v;
        return move_to(what, std::move(v));
    }

    std::string detail = fmt::format("waiting for \"{}\" to hold for {}", describe(v), seconds_text(window));
    if (state_.state == gate_state::kind::starting) {
        state_.detail = std::move(detail);
        return std::nullopt;
    }
    if (state_.state == gate_state::kind::paused && state_.reason == pause_reason::settling) {
        state_.detail = std::move(detail);
        return std::nullopt;
    }
    return move_to(gate_event::kind::paused, paused_state(pause_reason::settling, std::move(detail)));
}

}  // namespace kvship::engine
