#include "vault_ha.hpp"
#include "ha_record_codec.hpp"
#include "guarded.hpp"

#include <engine/types.hpp>
#include <gotext/go_string.hpp>

#include <fmt/chrono.h>
#include <fmt/format.h>

#include <algorithm>
#include <ctime>
#include <utility>

namespace kvship::replicate {

namespace {

using clock = std::chrono::steady_clock;
using engine::ha_record;

constexpr std::string_view m_proxy_held = "kvship_vault_proxy_lock_held";
constexpr std::string_view m_role = "kvship_vault_role";
constexpr std::string_view m_epoch = "kvship_vault_epoch";
constexpr std::string_view m_promotions = "kvship_vault_promotions_total";
constexpr std::string_view m_fences = "kvship_vault_fences_total";
constexpr std::string_view m_drain = "kvship_vault_drain_seconds";
constexpr std::string_view m_failovers = "kvship_vault_failovers_total";
constexpr std::string_view m_dc_reachable = "kvship_vault_datacenter_reachable";
constexpr std::string_view m_drain_keys = "kvship_vault_drain_keys";
constexpr std::string_view m_split = "kvship_vault_split_brain";
constexpr std::string_view m_splits = "kvship_vault_split_brains_total";

// Keys this process wrote or deleted so far, over every pair (the drain's count is a difference).
double keys_applied(const metrics_registry& m)
{
    return m.sum(metric::keys_put) + m.sum(metric::keys_deleted);
}

std::string short_id(std::string_view id) { return std::string(id.substr(0, 8)); }

transport::query_options in_dc(const std::string& dc, const std::string& local)
{
    transport::query_options q;
    if (dc != local)
        q.dc = dc;
    return q;
}

}  // namespace

std::string proxy_session_key(const vault_ha_config& cfg)
{
    auto const slash = cfg.record_key.rfind('/');
    if (slash == std::string::npos)
        return cfg.record_key + "-proxy-session";
    return cfg.record_key.substr(0, slash) + "/proxy-session";
}

void declare_vault_metrics(metrics_registry& reg)
{
    using t = metric_type;
    reg.describe(std::string(m_proxy_held), t::gauge, "1 while this kvship holds Vault's HA lock for the primary.");
    reg.describe(
        std::string(m_role),
        t::gauge,
        "1 for this DC's georedundant-Vault role (primary, taking_over, handing_over, follower)."
    );
    reg.describe(std::string(m_epoch), t::gauge, "Epoch of the designation record in force.");
    reg.describe(std::string(m_promotions), t::counter, "Promotions this DC finished (it became the primary).");
    reg.describe(
        std::string(m_fences),
        t::counter,
        "Times Vault's lock was taken from another session here (a local Vault fenced: handover or split brain)."
    );
    reg.describe(std::string(m_drain), t::gauge, "Duration of the last drain before a promotion finished.");
    reg.describe(
        std::string(m_drain_keys),
        t::gauge,
        "Keys written or deleted here during the last drain (the old primary's last changes, applied before the "
        "promotion finished)."
    );
    reg.describe(std::string(m_failovers), t::counter, "Automatic failovers started by this DC.");
    reg.describe(
        std::string(m_split),
        t::gauge,
        "1 while two or more reachable DCs' records each name their own DC the primary (a split brain being ended)."
    );
    reg.describe(std::string(m_splits), t::counter, "Split brains seen (two DCs' records naming themselves primary).");
    reg.describe(std::string(m_dc_reachable), t::gauge, "1 when the DC's designation record could be read.");
}

vault_ha_runner::vault_ha_runner(
    const vault_ha_config& cfg,
    std::chrono::nanoseconds interval,
    std::string local_dc,
    transport::consul_client& client,
    const logger& log,
    metrics_registry& metrics,
    std::function<std::optional<std::uint64_t>(const std::string&)> applied,
    std::function<void()> on_change,
    std::function<bool()> pairs_stopped
)
    : cfg_(cfg),
      interval_(interval),
      local_dc_(std::move(local_dc)),
      client_(client),
      log_(log),
      metrics_(metrics),
      applied_(std::move(applied)),
      on_change_(std::move(on_change)),
      pairs_stopped_(std::move(pairs_stopped)),
      failover_(cfg.failover_after)
{
    declare_vault_metrics(metrics_);
    metrics_.set(m_proxy_held, {}, 0);
    metrics_.add(m_promotions, {}, 0);
    metrics_.add(m_fences, {}, 0);
    metrics_.add(m_failovers, {}, 0);
    metrics_.add(m_splits, {}, 0);
    metrics_.set(m_split, {}, 0);
}

void vault_ha_runner::stop()
{
    stopping_ = true;
    if (timer_)
        timer_->cancel();
    cancel_.emit(asio::cancellation_type::terminal);
}

std::optional<std::string> vault_ha_runner::not_ready_reason() const
{
    if (!last_)
        return std::string("vault: no designation decided yet");
    if (!last_->waiting.empty())
        return "vault: " + last_->waiting;
    if (last_->hold_proxy && !proxy_held_)
        return fmt::format("vault: Vault's lock {:?} is not held for the primary yet", cfg_.lock_key());
    return std::nullopt;
}

awaitable<void> vault_ha_runner::run()
{
    auto ex = co_await asio::this_coro::executor;
    timer_.emplace(ex);
    log_.info(
        "vault",
        "georedundant Vault: storage {:?}, datacenters [{}], record {:?}, failover {}",
        cfg_.path,
        fmt::join(cfg_.datacenters, ", "),
        cfg_.record_key,
        cfg_.failover_after.count() > 0 ? "after " + format_go_duration(cfg_.failover_after) : std::string("off")
    );
    auto const interval = std::chrono::duration_cast<clock::duration>(interval_);
    while (!stopping_) {
        auto const started = clock::now();
        co_await tick();
        if (stopping_)
            break;
        timer_->expires_at(started + interval);
        co_await timer_->async_wait(nothrow_awaitable);
    }
    // The proxy lock stays: its session outlives this process (long TTL) and is adopted by the
    // next kvship of this DC. Releasing it here would hand the lock to the local Vault.
    if (session_ && proxy_held_)
        log_.info("vault", "stopping: Vault's lock stays held by session {} (ttl {})", short_id(*session_),
                  format_go_duration(cfg_.proxy_ttl));
}

awaitable<void> vault_ha_runner::write_record(const ha_record& r, const std::string& dc)
{
    transport::put_options o;
    if (dc != local_dc_)
        o.dc = dc;
    auto op = client_.put(cfg_.record_key, encode_ha_record(r), o);
    auto w = co_await guarded(&cancel_, std::move(op));
    if (!w)
        log_.warn("vault", "writing the designation record in {}: {}", dc, w.error().what());
    else
        log_.info("vault", "designation record in {}: {}", dc, engine::describe(r));
}

awaitable<void> vault_ha_runner::tick()
{
    // Every DC's record.
    std::map<std::string, engine::ha_dc_view> views;
    for (auto const& dc : cfg_.datacenters) {
        auto op = client_.get(cfg_.record_key, in_dc(dc, local_dc_));
        auto r = co_await guarded(&cancel_, std::move(op));
        if (stopping_)
            co_return;
        engine::ha_dc_view v;
        if (r) {
            v.reachable = true;
            if (r->entry) {
                auto rec = decode_ha_record(r->entry->value.value_or(std::string{}));
                if (rec) {
                    v.record = std::move(*rec);
                } else {
                    // An unreadable record decides nothing: the DC counts as unreachable.
                    v.reachable = false;
                    log_.err("vault", "designation record {:?} in {}: {}", cfg_.record_key, dc, rec.error());
                }
            }
        } else {
            log_.debug("vault", "designation record in {}: {}", dc, r.error().what());
        }
        auto const was = reachable_.find(dc);
        if (was == reachable_.end() || was->second != v.reachable) {
            if (was != reachable_.end())
                log_.info("vault", "datacenter {} is {}", dc, v.reachable ? "reachable again" : "unreachable");
            reachable_[dc] = v.reachable;
        }
        metrics_.set(m_dc_reachable, {{"dc", dc}}, v.reachable ? 1 : 0);
        views.emplace(dc, std::move(v));
    }

    // A split brain: two DCs' records each naming themselves the primary. The effective record
    // decides at once (decide_ha below); this only makes it visible.
    auto const claims = engine::self_claimed_primaries(cfg_.datacenters, views);
    bool const split = claims.size() > 1;
    if (split && !split_brain_) {
        metrics_.add(m_splits, {});
        auto const winner = engine::effective_record(cfg_.datacenters, views);
        log_.warn(
            "vault",
            "split brain: datacenters {} each name themselves the primary; {} stays the primary ({}), the others "
            "fence their Vaults and their divergent writes go to lost+found",
            fmt::join(claims, " and "),
            winner.primary,
            engine::describe(winner)
        );
    }
    split_brain_ = split;
    metrics_.set(m_split, {}, split ? 1 : 0);

    // The local Vault lock.
    transport::query_options lq;
    lq.mode = transport::consistency::consistent;
    auto lock_op = client_.get(cfg_.lock_key(), lq);
    auto lock_r = co_await guarded(&cancel_, std::move(lock_op));
    if (stopping_)
        co_return;
    if (!lock_r) {
        log_.warn("vault", "reading Vault's lock {:?}: {}", cfg_.lock_key(), lock_r.error().what());
        co_return;
    }
    auto const& lock = lock_r->entry;
    if (session_ && (!lock || lock->session != *session_) && proxy_held_) {
        log_.err(
            "vault",
            "Vault's lock {:?} is no longer held by the proxy session {} (now: {}): re-taking it",
            cfg_.lock_key(),
            short_id(*session_),
            lock && !lock->session.empty() ? "session " + short_id(lock->session) : std::string("free")
        );
    }
    proxy_held_ = session_ && lock && lock->session == *session_;

    engine::ha_local local;
    local.dc = local_dc_;
    local.proxy_held = proxy_held_;
    local.proxy_index = proxy_held_ ? lock->modify_index : 0;
    auto const pre = engine::effective_record(cfg_.datacenters, views);
    auto const truth = pre.stage == ha_record::phase::promoting ? pre.from : pre.primary;
    local.applied = applied_ ? applied_(truth) : std::nullopt;
    auto d = engine::decide_ha(cfg_.datacenters, views, local);

    // Automatic failover: the primary unreachable or without an active Vault (its lock free).
    if (cfg_.failover_after.count() > 0 && d.role == engine::ha_role::follower &&
        d.effective.stage == ha_record::phase::primary) {
        bool primary_ok = false;
        auto const& pv = views[d.effective.primary];
        if (pv.reachable) {
            auto op = client_.get(cfg_.lock_key(), in_dc(d.effective.primary, local_dc_));
            auto pl = co_await guarded(&cancel_, std::move(op));
            primary_ok = pl && pl->entry && !pl->entry->session.empty();
        }
        auto const now = std::chrono::duration_cast<std::chrono::nanoseconds>(clock::now().time_since_epoch());
        if (failover_.observe(now, cfg_.datacenters, d.effective, local_dc_, views, primary_ok)) {
            auto p = engine::plan_promotion(cfg_.datacenters, d.effective, local_dc_, true, "failover");
            if (p.record) {
                log_.warn(
                    "vault",
                    "automatic failover: primary {} unreachable or without an active Vault for {}; promoting {}",
                    d.effective.primary,
                    format_go_duration(cfg_.failover_after),
                    local_dc_
                );
                metrics_.add(m_failovers, {});
                co_await write_record(*p.record, local_dc_);
                co_return;  // the next tick decides with the new record
            }
        }
    }

    if (d.write_local) {
        bool const finishing = d.role == engine::ha_role::taking_over &&
                               d.write_local->stage == ha_record::phase::primary;
        co_await write_record(*d.write_local, local_dc_);
        if (finishing) {
            metrics_.add(m_promotions, {});
            if (drain_started_) {
                metrics_.set(
                    m_drain,
                    {},
                    std::chrono::duration<double>(clock::now() - *drain_started_).count()
                );
                auto const keys = keys_applied(metrics_) - drain_keys_start_;
                metrics_.set(m_drain_keys, {}, keys);
                log_.info("vault", "drain finished: {} keys applied from {}", keys, d.effective.from);
            }
            drain_started_.reset();
        }
    }
    if (d.role == engine::ha_role::taking_over && !drain_started_) {
        drain_started_ = clock::now();
        drain_keys_start_ = keys_applied(metrics_);
    }

    if (d.release_proxy && pairs_stopped_ && !pairs_stopped_()) {
        // The pairs still replicate from the old primary (the gate turns at its next poll): keep the
        // proxy lock, so the local Vault stays a standby until nothing writes into this DC any more.
        if (!release_waits_)
            log_.info("vault", "releasing Vault's lock once the pairs replicating into this DC have stopped");
        release_waits_ = true;
    } else if (d.release_proxy) {
        release_waits_ = false;
        co_await release(lock);
    } else if (d.hold_proxy)
        co_await hold(lock, d);

    publish(d);
    bool const changed = !last_ || last_->claimant != d.claimant || last_->waiting != d.waiting ||
                         last_->role != d.role;
    if (!last_ || last_->role != d.role || last_->effective != d.effective)
        log_.info("vault", "{} ({}): replicating from {}", engine::to_string(d.role), engine::describe(d.effective),
                  d.claimant == local_dc_ ? std::string("nowhere") : d.claimant);
    if (!d.waiting.empty() && (!last_ || last_->waiting != d.waiting))
        log_.info("vault", "{}", d.waiting);
    claimant_ = d.claimant;
    last_ = std::move(d);
    if (changed)
        on_change_();
}

awaitable<bool> vault_ha_runner::ensure_session(const std::optional<transport::kv_entry>& lock)
{
    auto const now = clock::now();
    if (session_) {
        if (now - renewed_ < std::chrono::seconds(5))
            co_return true;
        auto op = client_.session_renew(*session_, {});
        auto r = co_await guarded(&cancel_, std::move(op));
        if (r) {
            renewed_ = now;
            co_return true;
        }
        if (r.error().code == transport::errc::not_found) {
            log_.err("vault", "the proxy lock's session {} is gone (expired or destroyed)", short_id(*session_));
            session_.reset();
            proxy_held_ = false;
        } else {
            log_.warn("vault", "renewing the proxy lock's session: {}", r.error().what());
            co_return true;  // try again next tick; the TTL is long
        }
    }
    // Adopt the session of an earlier kvship of this DC that still holds the lock.
    if (lock && !lock->session.empty()) {
        auto op = client_.get(proxy_session_key(cfg_), {});
        auto k = co_await guarded(&cancel_, std::move(op));
        if (k && k->entry && k->entry->value.value_or(std::string{}) == lock->session) {
            auto rop = client_.session_renew(lock->session, {});
            auto rr = co_await guarded(&cancel_, std::move(rop));
            if (rr) {
                session_ = lock->session;
                renewed_ = now;
                proxy_held_ = true;
                log_.info("vault", "adopted the proxy lock's session {} (holding {:?})", short_id(*session_),
                          cfg_.lock_key());
                co_return true;
            }
        }
    }
    transport::session_params p;
    p.name = fmt::format("kvship proxy of Vault's lock ({})", local_dc_);
    p.ttl = format_go_duration(cfg_.proxy_ttl);
    p.behavior = "release";
    p.node_checks.emplace();  // no serfHealth: only the TTL or a destroy ends it
    auto op = client_.session_create(p, {});
    auto r = co_await guarded(&cancel_, std::move(op));
    if (!r) {
        log_.warn("vault", "creating the proxy lock's session: {}", r.error().what());
        co_return false;
    }
    session_ = *r;
    renewed_ = now;
    auto put = client_.put(proxy_session_key(cfg_), *session_, {});
    auto w = co_await guarded(&cancel_, std::move(put));
    if (!w)
        log_.warn("vault", "recording the proxy session in {:?}: {}", proxy_session_key(cfg_), w.error().what());
    log_.debug("vault", "created the proxy lock's session {} (ttl {})", short_id(*session_), p.ttl);
    co_return true;
}

awaitable<std::string> vault_ha_runner::wanted_value(
    const engine::ha_decision& d, const std::optional<transport::kv_entry>& lock
)
{
    std::string current = proxy_held_ && lock ? lock->value.value_or(std::string{}) : std::string{};
    if (d.role == engine::ha_role::handing_over || d.claimant == local_dc_)
        co_return std::string{};  // no leader until the new primary has one
    auto op = client_.get(cfg_.lock_key(), in_dc(d.claimant, local_dc_));
    auto r = co_await guarded(&cancel_, std::move(op));
    if (!r)
        co_return current;  // cannot tell: keep what the standbys follow now
    if (!r->entry || r->entry->session.empty())
        co_return std::string{};  // no active Vault in the primary
    std::string const uuid = r->entry->value.value_or(std::string{});
    if (uuid == current)
        co_return current;
    // Point the standbys at the new leader only once its advertisement has arrived here.
    auto adv_op = client_.get(cfg_.path + "core/leader/" + uuid, {});
    auto adv = co_await guarded(&cancel_, std::move(adv_op));
    if (adv && adv->entry)
        co_return uuid;
    co_return current;
}

awaitable<void> vault_ha_runner::hold(const std::optional<transport::kv_entry>& lock, const engine::ha_decision& d)
{
    if (!co_await ensure_session(lock) || stopping_)
        co_return;
    std::string const value = co_await wanted_value(d, lock);
    if (stopping_)
        co_return;
    if (proxy_held_) {
        if (lock && lock->value.value_or(std::string{}) == value && lock->flags == engine::lock_flag_value)
            co_return;
        transport::put_options o;
        o.flags = engine::lock_flag_value;
        o.acquire = *session_;
        auto op = client_.put(cfg_.lock_key(), value, o);
        auto r = co_await guarded(&cancel_, std::move(op));
        if (!r || !*r)
            log_.warn("vault", "updating Vault's lock value: {}", r ? std::string("refused") : r.error().what());
        else
            log_.info("vault", "Vault's lock now points the standbys at {:?}", value);
        co_return;
    }
    if (lock && !lock->session.empty()) {
        // Held by someone else: a local Vault that must not be active here. Take the key over in
        // one transaction; that Vault sees another session on its lock and steps down at once.
        std::vector<transport::txn_op> ops(2);
        ops[0].verb = transport::txn_verb::delete_key;
        ops[0].key = cfg_.lock_key();
        ops[1].verb = transport::txn_verb::lock;
        ops[1].key = cfg_.lock_key();
        ops[1].value = value;
        ops[1].flags = engine::lock_flag_value;
        ops[1].session = *session_;
        auto op = client_.txn(std::move(ops), {});
        auto r = co_await guarded(&cancel_, std::move(op));
        if (r && r->committed) {
            proxy_held_ = true;
            metrics_.add(m_fences, {});
            log_.warn(
                "vault",
                "fenced the local Vault: took Vault's lock {:?} from session {} ({} is the truth: {})",
                cfg_.lock_key(),
                short_id(lock->session),
                d.claimant,
                engine::describe(d.effective)
            );
        } else {
            log_.warn(
                "vault",
                "taking Vault's lock from session {}: {}",
                short_id(lock->session),
                r ? std::string("refused") : r.error().what()
            );
        }
        co_return;
    }
    transport::put_options o;
    o.flags = engine::lock_flag_value;
    o.acquire = *session_;
    auto op = client_.put(cfg_.lock_key(), value, o);
    auto r = co_await guarded(&cancel_, std::move(op));
    if (r && *r) {
        proxy_held_ = true;
        log_.info("vault", "holding Vault's lock {:?} for the primary {} (session {})", cfg_.lock_key(),
                  d.claimant, short_id(*session_));
    } else if (r) {
        log_.info("vault", "Vault's lock {:?} is in its lock-delay; retrying", cfg_.lock_key());
    } else {
        log_.warn("vault", "taking Vault's lock {:?}: {}", cfg_.lock_key(), r.error().what());
    }
}

awaitable<void> vault_ha_runner::release(const std::optional<transport::kv_entry>& lock)
{
    if (!session_)
        co_return;
    if (proxy_held_) {
        transport::put_options o;
        o.flags = engine::lock_flag_value;
        o.release = *session_;
        auto op = client_.put(cfg_.lock_key(), lock ? lock->value.value_or(std::string{}) : std::string{}, o);
        auto r = co_await guarded(&cancel_, std::move(op));
        if (!r) {
            log_.warn("vault", "releasing Vault's lock: {}", r.error().what());
            co_return;
        }
        log_.info("vault", "released Vault's lock {:?}: the local Vault takes it (this DC is the primary)",
                  cfg_.lock_key());
    }
    auto dop = client_.session_destroy(*session_, {});
    co_await guarded(&cancel_, std::move(dop));
    auto kop = client_.remove(proxy_session_key(cfg_), std::nullopt, {});
    co_await guarded(&cancel_, std::move(kop));
    session_.reset();
    proxy_held_ = false;
}

void vault_ha_runner::publish(const engine::ha_decision& d)
{
    metrics_.set(m_proxy_held, {}, proxy_held_ ? 1 : 0);
    metrics_.set(m_epoch, {}, static_cast<double>(d.effective.epoch));
    for (auto r : {engine::ha_role::primary, engine::ha_role::taking_over, engine::ha_role::handing_over,
                   engine::ha_role::follower})
        metrics_.set(m_role, {{"role", std::string(engine::to_string(r))}}, d.role == r ? 1 : 0);
}

namespace {

class designation_detector final : public primary_detector
{
public:
    explicit designation_detector(const vault_ha_runner& r) : runner_(r) {}

    awaitable<engine::gate_observation> detect() override
    {
        engine::gate_observation o;
        if (auto const& c = runner_.claimant())
            o.claimants.push_back(*c);
        else
            o.error = "no designation decided yet";
        co_return o;
    }

private:
    const vault_ha_runner& runner_;
};

}  // namespace

std::unique_ptr<primary_detector> make_designation_detector(const vault_ha_runner& runner)
{
    return std::make_unique<designation_detector>(runner);
}

awaitable<prefixes::result<designation, std::string>> read_designation(
    const vault_ha_config& vault, transport::consul_client& client, const std::string& local, const logger* log
)
{
    designation d;
    for (auto const& dc : vault.datacenters) {
        auto r = co_await client.get(vault.record_key, in_dc(dc, local));
        engine::ha_dc_view v;
        if (r) {
            v.reachable = true;
            if (r->entry) {
                auto rec = decode_ha_record(r->entry->value.value_or(std::string{}));
                if (!rec)
                    co_return fmt::format("designation record {:?} in {}: {}", vault.record_key, dc, rec.error());
                v.record = std::move(*rec);
            }
        } else {
            if (log != nullptr)
                log->warn("vault", "{}: cannot read its designation record: {}", dc, r.error().what());
            d.unreachable.push_back(dc);
        }
        d.views.emplace(dc, std::move(v));
    }
    d.effective = engine::effective_record(vault.datacenters, d.views);
    co_return d;
}

awaitable<int> run_promotion(const config& cfg, transport::consul_client& client, const logger& log, std::FILE* out)
{
    auto self = co_await client.agent_self();
    if (!self) {
        log.err("promote", "agent/self: {}", self.error().what());
        co_return 14;
    }
    std::string const local = self->datacenter;
    auto read = co_await read_designation(cfg.vault, client, local, &log);
    if (!read) {
        log.err("promote", "{}", read.error());
        co_return 14;
    }
    auto& views = read->views;
    auto const current = read->effective;
    fmt::print(out, "current: {}\n", engine::describe(current));
    auto p = engine::plan_promotion(cfg.vault.datacenters, current, cfg.promote, cfg.promote_force, "promote");
    if (p.already) {
        fmt::print(out, "{} already is (or is becoming) the primary: nothing to do\n", cfg.promote);
        co_return 0;
    }
    if (!p.record) {
        log.err("promote", "{}", p.error);
        co_return 15;
    }
    if (!views[cfg.promote].reachable) {
        log.err("promote", "{} cannot be reached: a promotion is written into the DC it promotes", cfg.promote);
        co_return 14;
    }
    int written = 0;
    for (auto const& dc : cfg.vault.datacenters) {
        if (!views[dc].reachable)
            continue;
        transport::put_options o;
        if (dc != local)
            o.dc = dc;
        auto w = co_await client.put(cfg.vault.record_key, encode_ha_record(*p.record), o);
        if (!w) {
            log.warn("promote", "writing the request into {}: {}", dc, w.error().what());
            if (dc == cfg.promote)
                co_return 14;
            continue;
        }
        ++written;
        fmt::print(out, "{}: {}\n", dc, engine::describe(*p.record));
    }
    if (p.record->stage == ha_record::phase::primary) {
        fmt::print(out, "{} is the primary again; the others follow it\n", cfg.promote);
    } else if (p.record->force) {
        fmt::print(
            out,
            "requested (forced): {}'s kvship applies what it has from {}, then releases Vault's lock there; "
            "writes {} acknowledged after its last replication go to lost+found when it comes back\n",
            cfg.promote,
            p.record->from,
            p.record->from
        );
    } else {
        fmt::print(
            out,
            "requested: {}'s kvship fences its Vault (takes Vault's lock there), {} drains it, then releases "
            "Vault's lock to its own Vault; watch kvship_vault_role and /readyz\n",
            p.record->from,
            cfg.promote
        );
    }
    co_return written > 0 ? 0 : 14;
}

}  // namespace kvship::replicate
