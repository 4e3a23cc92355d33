#include <engine/vault_ha.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <utility>

namespace kvship::engine {

namespace {

std::size_t rank(const std::vector<std::string>& dcs, std::string_view dc)
{
    auto const it = std::find(dcs.begin(), dcs.end(), dc);
    return static_cast<std::size_t>(it - dcs.begin());  // unknown DCs rank last
}

}  // namespace

std::string_view to_string(ha_record::phase p)
{
    switch (p) {
        case ha_record::phase::primary:
            return "primary";
        case ha_record::phase::promoting:
            return "promoting";
    }
    return "unknown";
}

std::string describe(const ha_record& r)
{
    if (r.stage == ha_record::phase::primary)
        return fmt::format("epoch {}: primary {}", r.epoch, r.primary);
    std::string extra;
    if (r.force)
        extra += ", forced";
    if (r.fence_index > 0)
        extra += fmt::format(", fenced at {}", r.fence_index);
    return fmt::format("epoch {}: promoting {} (from {}{})", r.epoch, r.primary, r.from, extra);
}

std::string_view to_string(ha_role r)
{
    switch (r) {
        case ha_role::primary:
            return "primary";
        case ha_role::taking_over:
            return "taking_over";
        case ha_role::handing_over:
            return "handing_over";
        case ha_role::follower:
            return "follower";
    }
    return "unknown";
}

bool ha_record_wins(const ha_record& a, const ha_record& b, const std::vector<std::string>& dcs)
{
    if (a.epoch != b.epoch)
        return a.epoch > b.epoch;
    if (a.stage != b.stage)
        return a.stage == ha_record::phase::primary;
    if ((a.fence_index > 0) != (b.fence_index > 0))
        return a.fence_index > 0;
    auto const ra = rank(dcs, a.primary);
    auto const rb = rank(dcs, b.primary);
    if (ra != rb)
        return ra < rb;
    if (a.force != b.force)
        return a.force;
    return a.primary < b.primary || (a.primary == b.primary && a.from < b.from);
}

ha_record effective_record(const std::vector<std::string>& dcs, const std::map<std::string, ha_dc_view>& views)
{
    std::optional<ha_record> best;
    for (auto const& [dc, v] : views) {
        if (!v.reachable || !v.record)
            continue;
        if (!best || ha_record_wins(*v.record, *best, dcs))
            best = *v.record;
    }
    if (best)
        return *best;
    ha_record boot;
    boot.epoch = 0;
    boot.primary = dcs.empty() ? std::string{} : dcs.front();
    boot.stage = ha_record::phase::primary;
    boot.reason = "bootstrap";
    return boot;
}

std::vector<std::string> self_claimed_primaries(
    const std::vector<std::string>& dcs, const std::map<std::string, ha_dc_view>& views
)
{
    std::vector<std::string> out;
    for (auto const& dc : dcs) {
        auto const it = views.find(dc);
        if (it == views.end() || !it->second.reachable)
            continue;
        if (!it->second.record) {
            // No record yet: the DC goes by the bootstrap, which names the first DC.
            if (dc == dcs.front())
                out.push_back(dc);
            continue;
        }
        auto const& r = *it->second.record;
        if (r.stage == ha_record::phase::primary && r.primary == dc)
            out.push_back(dc);
    }
    return out;
}

ha_decision decide_ha(
    const std::vector<std::string>& dcs,
    const std::map<std::string, ha_dc_view>& views,
    const ha_local& local
)
{
    ha_decision d;
    d.effective = effective_record(dcs, views);
    auto const& e = d.effective;
    std::optional<ha_record> mine;
    if (auto it = views.find(local.dc); it != views.end() && it->second.reachable)
        mine = it->second.record;
    // The record the local DC should hold; bootstrap records are not written (nothing was decided).
    auto want = [&](ha_record r) {
        if (r.epoch == 0 && !mine)
            return;
        if (!mine || *mine != r)
            d.write_local = std::move(r);
    };

    if (e.stage == ha_record::phase::primary) {
        d.claimant = e.primary;
        if (e.primary == local.dc) {
            d.role = ha_role::primary;
            d.hold_proxy = false;
            d.release_proxy = local.proxy_held;
        } else {
            d.role = ha_role::follower;
        }
        want(e);
        return d;
    }

    // A promotion: the old primary's data stays the truth until the new one finishes.
    d.claimant = e.from;
    if (e.primary == local.dc) {
        d.role = ha_role::taking_over;
        bool ready = false;
        if (e.force) {
            ready = true;
        } else if (e.fence_index == 0) {
            auto const it = views.find(e.from);
            bool const reachable = it != views.end() && it->second.reachable;
            d.waiting = reachable
                            ? fmt::format("promotion: waiting for {} to fence its Vault", e.from)
                            : fmt::format(
                                  "promotion: {} cannot be reached to fence its Vault and drain; promote with "
                                  "-promote-force to finish without its last writes",
                                  e.from
                              );
        } else if (!local.applied || *local.applied < e.fence_index) {
            d.waiting = fmt::format(
                "promotion: draining {}: applied index {} of {}", e.from, local.applied.value_or(0), e.fence_index
            );
        } else {
            ready = true;
        }
        if (ready) {
            ha_record done = e;
            done.stage = ha_record::phase::primary;
            done.force = false;
            done.fence_index = 0;
            d.waiting = fmt::format("promotion: finishing (epoch {})", e.epoch);
            want(std::move(done));
        } else {
            want(e);
        }
        return d;
    }
    if (e.from == local.dc) {
        d.role = ha_role::handing_over;
        if (local.proxy_held) {
            ha_record ack = e;
            if (ack.fence_index == 0)
                ack.fence_index = local.proxy_index;
            want(std::move(ack));
        } else {
            d.waiting = fmt::format("promotion of {}: fencing the local Vault", e.primary);
            want(e);
        }
        return d;
    }
    d.role = ha_role::follower;
    want(e);
    return d;
}

ha_promotion plan_promotion(
    const std::vector<std::string>& dcs, const ha_record& current, std::string_view target, bool force,
    std::string reason
)
{
    ha_promotion p;
    if (std::find(dcs.begin(), dcs.end(), target) == dcs.end()) {
        p.error = fmt::format("{:?} is not one of the configured datacenters ({})", target, fmt::join(dcs, ", "));
        return p;
    }
    if (current.primary == target && current.stage == ha_record::phase::primary) {
        p.already = true;
        return p;
    }
    ha_record r;
    if (current.primary == target) {
        // The same promotion again: only `force` can add something.
        if (!force || current.force) {
            p.already = true;
            return p;
        }
        r = current;
        r.force = true;
        p.record = std::move(r);
        return p;
    }
    r.epoch = current.epoch + 1;
    r.primary = std::string(target);
    r.stage = ha_record::phase::promoting;
    // While a promotion is under way, the data's truth is still its `from`.
    r.from = current.stage == ha_record::phase::promoting ? current.from : current.primary;
    if (r.from == target) {
        // Back to the old primary before the promotion finished: it never stopped being the truth.
        r.stage = ha_record::phase::primary;
        r.from.clear();
    }
    r.force = force && r.stage == ha_record::phase::promoting;
    r.reason = std::move(reason);
    p.record = std::move(r);
    return p;
}

bool failover_timer::observe(
    time now,
    const std::vector<std::string>& dcs,
    const ha_record& effective,
    std::string_view local_dc,
    const std::map<std::string, ha_dc_view>& views,
    bool primary_ok
)
{
    if (after_.count() <= 0 || rank(dcs, local_dc) == dcs.size())
        return false;
    if (effective.epoch != epoch_ || effective.primary != primary_) {
        epoch_ = effective.epoch;
        primary_ = effective.primary;
        down_since_.reset();
    }
    if (effective.stage != ha_record::phase::primary || effective.primary == local_dc || primary_ok) {
        down_since_.reset();
        return false;
    }
    if (!down_since_)
        down_since_ = now;
    if (now - *down_since_ < after_)
        return false;
    // Only the first live DC of the priority order (after the primary) takes over.
    for (auto const& dc : dcs) {
        if (dc == effective.primary)
            continue;
        if (dc == local_dc)
            break;
        auto const it = views.find(dc);
        if (it != views.end() && it->second.reachable)
            return false;
    }
    down_since_.reset();
    return true;
}

}  // namespace kvship::engine
