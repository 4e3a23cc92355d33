#include "gate.hpp"
#include "guarded.hpp"

#include <algorithm>
#include <map>
#include <set>
#include <utility>

namespace kvship::replicate {

namespace {

using clock = std::chrono::steady_clock;
using engine::gate_observation;

constexpr std::string_view gate_primary = "kvship_gate_primary";
constexpr std::string_view gate_state_metric = "kvship_gate_state";
constexpr std::string_view gate_direction_changes = "kvship_gate_direction_changes_total";
constexpr std::string_view gate_pauses = "kvship_gate_pauses_total";

gate_observation failed(std::string why)
{
    gate_observation o;
    o.error = std::move(why);
    return o;
}

bool is_dc_name(std::string_view s)
{
    return !s.empty() && s.size() <= 256 && std::all_of(s.begin(), s.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
               c == '.' || c == '-';
    });
}

// A DC list from an untrusted answer: every name must look like one.
std::optional<std::string> check_dcs(const std::vector<std::string>& dcs)
{
    if (dcs.empty())
        return std::string("catalog/datacenters: empty list (the agent knows no datacenter)");
    for (auto const& dc : dcs) {
        if (!is_dc_name(dc))
            return fmt::format("catalog/datacenters: {:?} is not a datacenter name", dc.substr(0, 100));
    }
    return std::nullopt;
}

// "http(s)://host:port[/]" -> "host:port" (leader addresses are checked by the codec).
std::string host_port(std::string_view url)
{
    if (auto const p = url.find("://"); p != std::string_view::npos)
        url.remove_prefix(p + 3);
    while (!url.empty() && url.back() == '/') url.remove_suffix(1);
    return std::string(url);
}

// A failed GET /v1/sys/leader, named as Vault's: transport's texts speak of Consul (its agent, its
// ACLs), which would send the operator to the wrong system.
std::string vault_error_text(const transport::consul_error& e)
{
    using transport::errc;
    if (e.code.category() != transport::consul_category())
        return e.what();
    std::string_view what;
    switch (static_cast<errc>(e.code.value())) {
    case errc::forbidden: what = "permission denied by Vault"; break;
    case errc::connect_failed: what = "could not connect to Vault"; break;
    case errc::connection_lost: what = "connection to Vault lost mid-request"; break;
    case errc::timed_out: what = "Vault request timed out"; break;
    case errc::tls_failed: what = "TLS handshake with Vault failed"; break;
    case errc::malformed_response: what = "malformed Vault answer"; break;
    case errc::server_error: what = "Vault server error"; break;
    case errc::not_found: what = "not found on Vault"; break;
    case errc::bad_request: what = "Vault rejected the request"; break;
    case errc::rate_limited: what = "rate limited by Vault"; break;
    default: what = "unexpected answer from Vault"; break;
    }
    return e.message.empty() ? std::string(what) : fmt::format("{}: {}", what, e.message);
}

std::string trim_slashes(std::string s)
{
    while (!s.empty() && s.back() == '/') s.pop_back();
    return s;
}

class catalog_detector final : public primary_detector
{
public:
    catalog_detector(const gate_config& cfg, transport::consul_client& c) : cfg_(cfg), client_(c) {}

    awaitable<gate_observation> detect() override
    {
        auto dcs = co_await client_.datacenters();
        if (!dcs)
            co_return failed(fmt::format("catalog/datacenters: {}", dcs.error().what()));
        if (auto bad = check_dcs(*dcs))
            co_return failed(*bad);
        gate_observation out;
        for (auto const& dc : *dcs) {
            transport::health_query q{cfg_.vault_tag, true, dc};
            auto r = co_await client_.health_service(cfg_.vault_service, q);
            if (!r)
                co_return failed(fmt::format("{}: {}", dc, r.error().what()));
            // Trust but check: an instance must carry the tag and, when the answer says, the DC asked.
            for (auto const& s : *r) {
                bool const tagged = cfg_.vault_tag.empty() ||
                                    std::find(s.tags.begin(), s.tags.end(), cfg_.vault_tag) != s.tags.end();
                if (!tagged || (!s.datacenter.empty() && s.datacenter != dc)) {
                    co_return failed(fmt::format(
                        "{}: health/service/{} answered instance {:?} (dc {:?}) that does not match tag {:?}",
                        dc,
                        cfg_.vault_service,
                        s.node,
                        s.datacenter,
                        cfg_.vault_tag
                    ));
                }
            }
            if (!r->empty())
                out.claimants.push_back(dc);
        }
        co_return out;
    }

private:
    const gate_config& cfg_;
    transport::consul_client& client_;
};

class vault_detector final : public primary_detector
{
public:
    vault_detector(const gate_config& cfg, transport::consul_client& c) : cfg_(cfg), client_(c)
    {
        for (auto const& [addr, dc] : cfg_.vault_dc_map) map_[trim_slashes(addr)] = dc;
    }

    awaitable<gate_observation> detect() override
    {
        std::set<std::string> leaders;
        std::vector<std::string> errors;
        bool answered = false;
        for (auto const& addr : cfg_.vault_addrs) {
            auto r = co_await client_.vault_sys_leader(addr);
            if (!r) {
                errors.emplace_back(vault_error_text(r.error()));
                continue;
            }
            answered = true;
            if (!r->leader_address.empty())
                leaders.insert(r->leader_address);
        }
        if (!answered)
            co_return failed(fmt::format("no Vault answered: {}", fmt::join(errors, "; ")));
        gate_observation out;
        for (auto const& leader : leaders) {
            auto dc = co_await dc_of(leader);
            if (dc.error)
                co_return dc;
            out.claimants.push_back(std::move(dc.claimants.front()));
        }
        co_return out;
    }

private:
    // The static map first, then the catalog: the DC whose vault_service lists host:port.
    // One claimant (the DC), or the error.
    awaitable<gate_observation> dc_of(const std::string& leader)
    {
        if (auto it = map_.find(leader); it != map_.end())
            co_return gate_observation{{it->second}, std::nullopt};
        auto dcs = co_await client_.datacenters();
        if (!dcs)
            co_return failed(fmt::format("catalog/datacenters: {}", dcs.error().what()));
        if (auto bad = check_dcs(*dcs))
            co_return failed(*bad);
        auto const want = host_port(leader);
        std::vector<std::string> found;
        for (auto const& dc : *dcs) {
            auto r = co_await client_.catalog_service(cfg_.vault_service, dc);
            if (!r)
                co_return failed(fmt::format("{}: {}", dc, r.error().what()));
            for (auto const& s : *r) {
                if (fmt::format("{}:{}", s.address, s.port) == want) {
                    found.push_back(dc);
                    break;
                }
            }
        }
        if (found.size() != 1) {
            co_return failed(fmt::format(
                "Vault leader {} is registered as {:?} in {} datacenters (want exactly one; or map it with "
                "-gate-vault-dc)",
                leader,
                cfg_.vault_service,
                found.size()
            ));
        }
        co_return gate_observation{{found.front()}, std::nullopt};
    }

    const gate_config& cfg_;
    transport::consul_client& client_;
    std::map<std::string, std::string> map_;
};

class key_detector final : public primary_detector
{
public:
    key_detector(const gate_config& cfg, transport::consul_client& c) : cfg_(cfg), client_(c) {}

    awaitable<gate_observation> detect() override
    {
        // Named, not `{}`: g++ 12 mis-destroys a braced temporary argument of a coroutine call.
        transport::query_options const q;
        auto op = client_.get(cfg_.key, q);
        auto r = co_await std::move(op);
        if (!r)
            co_return failed(fmt::format("gate key {:?}: {}", cfg_.key, r.error().what()));
        gate_observation out;
        if (!r->entry || !r->entry->value)
            co_return out;
        std::string_view v = *r->entry->value;
        auto const space = [](char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; };
        while (!v.empty() && space(v.front())) v.remove_prefix(1);
        while (!v.empty() && space(v.back())) v.remove_suffix(1);
        if (v.empty())
            co_return out;
        if (!is_dc_name(v))
            co_return failed(
                fmt::format("gate key {:?} holds {:?}, not a datacenter name", cfg_.key, v.substr(0, 100))
            );
        out.claimants.emplace_back(v);
        co_return out;
    }

private:
    const gate_config& cfg_;
    transport::consul_client& client_;
};

}  // namespace

std::unique_ptr<primary_detector> make_primary_detector(
    const gate_config& cfg, transport::consul_client& local
)
{
    if (cfg.mode == gate_mode::key)
        return std::make_unique<key_detector>(cfg, local);
    if (!cfg.vault_addrs.empty())
        return std::make_unique<vault_detector>(cfg, local);
    return std::make_unique<catalog_detector>(cfg, local);
}

void declare_gate_metrics(metrics_registry& reg)
{
    using t = metric_type;
    reg.describe(
        std::string(gate_primary),
        t::gauge,
        "1 for the primary datacenter the gate follows (none while paused)."
    );
    reg.describe(
        std::string(gate_state_metric),
        t::gauge,
        "1 for the gate's current state (following, primary, paused)."
    );
    reg.describe(
        std::string(gate_direction_changes), t::counter, "Turns: the replication direction changed."
    );
    reg.describe(
        std::string(gate_pauses),
        t::counter,
        "Entries into a gate pause, by reason (no_primary, two_primaries, error, settling)."
    );
    for (auto s : {"following", "primary", "paused"}) reg.set(gate_state_metric, {{"state", s}}, 0);
    reg.add(gate_direction_changes, {}, 0);
    for (auto r :
         {engine::pause_reason::no_primary,
          engine::pause_reason::two_primaries,
          engine::pause_reason::error,
          engine::pause_reason::settling})
        reg.add(gate_pauses, {{"reason", std::string(engine::to_string(r))}}, 0);
}

gate_runner::gate_runner(
    const gate_config& cfg,
    std::string local_dc,
    primary_detector& detector,
    const logger& log,
    metrics_registry& metrics,
    std::function<void()> on_change
)
    : cfg_(cfg),
      detector_(detector),
      log_(log),
      metrics_(metrics),
      on_change_(std::move(on_change)),
      gate_(engine::gate_params{
          std::move(local_dc),
          cfg.settle,
          // A restart decides once two polls agree over two intervals (not the full settle: there is
          // no direction yet that a flicker could turn; see engine/gate.hpp).
          std::min<engine::gate_time>(cfg.settle, 2 * cfg.interval)})
{}

std::optional<std::string> gate_runner::source_dc() const
{
    if (gate_.state().state == engine::gate_state::kind::following)
        return gate_.state().primary;
    return std::nullopt;
}

std::optional<std::string> gate_runner::not_ready_reason() const
{
    auto const& s = gate_.state();
    if (s.state == engine::gate_state::kind::following || s.state == engine::gate_state::kind::primary)
        return std::nullopt;
    return fmt::format("gate: {}", engine::describe(s));
}

void gate_runner::stop()
{
    stopping_ = true;
    if (timer_)
        timer_->cancel();
    cancel_.emit(asio::cancellation_type::terminal);
}

void gate_runner::publish()
{
    auto const& s = gate_.state();
    for (auto k :
         {engine::gate_state::kind::following,
          engine::gate_state::kind::primary,
          engine::gate_state::kind::paused}) {
        metrics_.set(gate_state_metric, {{"state", std::string(engine::to_string(k))}}, s.state == k ? 1 : 0);
    }
}

awaitable<void> gate_runner::run()
{
    auto ex = co_await asio::this_coro::executor;
    timer_.emplace(ex);
    auto const interval = std::chrono::duration_cast<clock::duration>(cfg_.interval);
    auto const origin = clock::now();
    std::optional<std::string> shown_primary;
    log_.info(
        "gate",
        "watching the primary datacenter (mode {}{}, settle {}, interval {})",
        to_string(cfg_.mode),
        cfg_.mode == gate_mode::key ? fmt::format(", key {:?}", cfg_.key)
        : cfg_.vault_addrs.empty()
            ? fmt::format(", service {:?} tag {:?}", cfg_.vault_service, cfg_.vault_tag)
            : fmt::format(", {} Vault addresses", cfg_.vault_addrs.size()),
        format_go_duration(cfg_.settle),
        format_go_duration(cfg_.interval)
    );
    publish();
    while (!stopping_) {
        auto const started = clock::now();
        auto obs = co_await guarded(&cancel_, detector_.detect());
        if (stopping_)
            break;
        if (obs.error)
            log_.debug("gate", "detection failed: {}", *obs.error);
        else
            log_.trace("gate", "claimants: [{}]", fmt::join(obs.claimants, ", "));
        auto const now = std::chrono::duration_cast<engine::gate_time>(clock::now() - origin);
        if (auto e = gate_.observe(now, obs)) {
            auto const what = engine::to_string(e->what);
            auto const& to = e->to;
            if (e->what == engine::gate_event::kind::paused) {
                metrics_.add(gate_pauses, {{"reason", std::string(engine::to_string(to.reason))}});
                log_.warn("gate", "{}: {} -> {}", what, engine::describe(e->from), engine::describe(to));
            } else {
                if (e->what == engine::gate_event::kind::direction_changed)
                    metrics_.add(gate_direction_changes, {});
                log_.info("gate", "{}: {} -> {}", what, engine::describe(e->from), engine::describe(to));
            }
            // kvship_gate_primary{dc} 1: one series, the primary being followed or this DC; none while
            // paused.
            if (shown_primary)
                metrics_.remove_labelled("dc", *shown_primary);
            shown_primary.reset();
            if (to.running()) {
                shown_primary = to.primary;
                metrics_.set(gate_primary, {{"dc", to.primary}}, 1);
            }
            publish();
            on_change_();
        }
        timer_->expires_at(started + interval);
        co_await timer_->async_wait(nothrow_awaitable);
    }
}

}  // namespace kvship::replicate
