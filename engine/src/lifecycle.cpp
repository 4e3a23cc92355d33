#include <engine/lifecycle.hpp>

#include <algorithm>

namespace kvship::engine {

life_step lifecycle::step(const life_view& v, life_time now)
{
    life_step out;
    auto const after = [](life_time t, life_time d) { return d >= life_never - t ? life_never : t + d; };
    if (!stopping_ && (v.signals > 0 || v.reload || v.pair_failed || v.lock_lost || (v.gated && v.gate_done) ||
                       (v.vault && v.vault_done) || v.refused)) {
        stopping_ = true;
        deadline_ = after(now, stop_grace_);
        out.stop_pairs = true;
        out.stop_runners = true;
    }
    if (!aborted_ && v.lock_lost) {
        aborted_ = true;  // the lock is gone: abort in-flight writes at once (they are fenced anyway)
        out.abort_pairs = true;
    }
    if (stopping_ && !aborted_ && (v.signals > 1 || now >= deadline_)) {
        aborted_ = true;
        out.abort_pairs = true;
    }
    bool have_pairs = v.have_pairs;
    if (stopping_) {
        if (v.pairs_done && v.gate_done && v.vault_done)
            out.finished = true;
    } else if (v.gated) {
        // A stop once begun runs to its end, even if the answer came back meanwhile.
        if (have_pairs && (turning_ || v.gate_source != pairs_source_)) {
            if (!turning_) {
                turning_ = true;
                turn_deadline_ = after(now, stop_grace_);
                out.turn_began = true;
                out.stop_pairs = true;
            } else if (now >= turn_deadline_ && turn_deadline_ != life_never) {
                turn_deadline_ = life_never;
                out.abort_pairs = true;
            }
            if (v.pairs_done) {
                out.clear_pairs = true;
                have_pairs = false;
                pairs_source_.reset();
                turning_ = false;
                turn_deadline_ = life_never;
            }
        }
        if (!have_pairs && v.gate_source) {
            out.start_from = v.gate_source;
            pairs_source_ = v.gate_source;
        }
    } else if (v.pairs_done && (v.once || have_pairs)) {
        out.finished = true;
    }
    out.wake_at = std::min(aborted_ || !stopping_ ? life_never : deadline_, turn_deadline_);
    return out;
}

std::string_view to_string(generation_end e)
{
    switch (e) {
        case generation_end::finished:
            return "finished";
        case generation_end::killed:
            return "killed";
        case generation_end::lock_lost:
            return "lock_lost";
        case generation_end::failed:
            return "failed";
        case generation_end::reload:
            return "reload";
    }
    return "unknown";
}

generation_end generation_outcome(bool killed, bool lock_lost, bool refused, bool pair_failed, bool reload, bool once)
{
    if (killed)
        return generation_end::killed;
    if (lock_lost)
        return generation_end::lock_lost;
    if (refused || pair_failed)
        return generation_end::failed;
    if (reload)
        return generation_end::reload;
    if (once)
        return generation_end::finished;
    return generation_end::failed;
}

}  // namespace kvship::engine
