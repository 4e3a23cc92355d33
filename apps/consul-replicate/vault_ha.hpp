// Georedundant Vault's I/O half (`vault { }`): every gate interval the runner reads the designation
// record of every DC and the local Vault HA lock, lets engine::decide_ha decide, and acts:
//  * spreads the winning record into the local DC (each DC keeps its own copy, so a DC that comes
//    back learns at once who the primary is);
//  * in every DC but the primary, holds Vault's HA lock `<path>core/lock` under its own session
//    (the *proxy lock*: Vault's flags, the primary's lock value once the primary's
//    `core/leader/<uuid>` advertisement has been replicated here), so the local Vaults stay
//    standbys that forward to the primary's active node. A lock held by another session (a local
//    Vault that is active where it must not be: an old primary coming back, a split brain) is
//    taken over in one transaction (delete + lock), which makes that Vault step down at once;
//  * the old primary of a promotion fences its Vault that way and acknowledges with the lock's
//    index; the new primary drains (its pairs apply the old primary's KV up to that index), writes
//    the record as `primary`, then releases its proxy lock so that its own Vault takes the lock;
//  * with failover_after, promotes the local DC when the primary has been unreachable or without
//    an active Vault that long and the local DC is next in the priority order.
// The session is tied to no health check (`NodeChecks: []`) and has a long TTL; it is renewed
// every tick, never released on shutdown (a stopped kvship must not hand the lock to the local
// Vault), and adopted by the next kvship of the DC (its ID is kept in a key next to the record).
#pragma once

#include "ha_record_codec.hpp"

#include "gate.hpp"
#include "logger.hpp"
#include "metrics.hpp"

#include <engine/vault_ha.hpp>
#include <prefixes/result.hpp>
#include <replicate/config.hpp>
#include <transport/consul_client.hpp>

#include <boost/asio/cancellation_signal.hpp>

#include <chrono>
#include <cstdio>
#include <vector>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>

namespace kvship::replicate {


// The key next to the record that names the local proxy lock's session.
[[nodiscard]] std::string proxy_session_key(const vault_ha_config& cfg);

void declare_vault_metrics(metrics_registry& reg);

class vault_ha_runner
{
public:
    // `applied(dc)`: the pairs' applied source index while every pair reads from `dc` and has
    // finished a round, else nullopt. `on_change` is called when the claimant or the readiness
    // changes. Everything passed by reference must outlive run().
    vault_ha_runner(
        const vault_ha_config& cfg,
        std::chrono::nanoseconds interval,
        std::string local_dc,
        transport::consul_client& client,
        const logger& log,
        metrics_registry& metrics,
        std::function<std::optional<std::uint64_t>(const std::string&)> applied,
        std::function<void()> on_change,
        std::function<bool()> pairs_stopped
    );

    awaitable<void> run();
    void stop();

    // The DC whose data is the truth (what the gate follows); nullopt before the first decision.
    [[nodiscard]] const std::optional<std::string>& claimant() const { return claimant_; }
    // Why this DC is not ready (a promotion under way, the proxy lock not held), or nullopt.
    [[nodiscard]] std::optional<std::string> not_ready_reason() const;

private:
    awaitable<void> tick();
    awaitable<bool> ensure_session(const std::optional<transport::kv_entry>& lock);
    awaitable<void> hold(const std::optional<transport::kv_entry>& lock, const engine::ha_decision& d);
    awaitable<void> release(const std::optional<transport::kv_entry>& lock);
    awaitable<std::string> wanted_value(const engine::ha_decision& d, const std::optional<transport::kv_entry>& lock);
    awaitable<void> write_record(const engine::ha_record& r, const std::string& dc);
    void publish(const engine::ha_decision& d);

    const vault_ha_config& cfg_;
    std::chrono::nanoseconds interval_;
    std::string local_dc_;
    transport::consul_client& client_;
    const logger& log_;
    metrics_registry& metrics_;
    std::function<std::optional<std::uint64_t>(const std::string&)> applied_;
    std::function<void()> on_change_;
    // True once no pair replicates into this DC: the proxy lock is released (the local Vault becomes
    // active and writes) only then, so that a pair still reading from the old primary never writes
    // over what the new active Vault wrote.
    std::function<bool()> pairs_stopped_;
    bool release_waits_ = false;  // for logging the wait once

    engine::failover_timer failover_;
    std::optional<std::string> claimant_;
    std::optional<engine::ha_decision> last_;
    std::optional<std::string> session_;
    std::chrono::steady_clock::time_point renewed_{};
    bool proxy_held_ = false;
    std::optional<std::chrono::steady_clock::time_point> drain_started_;
    double drain_keys_start_ = 0;  // keys_put + keys_deleted when the drain started
    bool split_brain_ = false;
    std::map<std::string, bool> reachable_;  // for logging changes only
    std::optional<asio::steady_timer> timer_;
    asio::cancellation_signal cancel_;
    bool stopping_ = false;
};

// The gate's detector under `vault { }`: the runner's claimant is the one primary (no decision yet
// is a detection error, which pauses the gate).
[[nodiscard]] std::unique_ptr<primary_detector> make_designation_detector(const vault_ha_runner& runner);

// Every DC's designation record read once through `client` (the local agent, ?dc= for the others) and
// the record in force. An undecodable record is an error; an unreadable DC is listed (and logged when `log` is set).
struct designation
{
    std::map<std::string, engine::ha_dc_view> views;
    engine::ha_record effective;
    std::vector<std::string> unreachable;
};

awaitable<prefixes::result<designation, std::string>> read_designation(
    const vault_ha_config& vault, transport::consul_client& client, const std::string& local, const logger* log
);

// -promote=DC: reads every DC's record, writes the promotion request into the target DC and every
// other DC it can reach, prints what happens next. Returns the exit code (0 done or nothing to do,
// 14 when no record could be written).
awaitable<int> run_promotion(
    const config& cfg, transport::consul_client& client, const logger& log, std::FILE* out
);

}  // namespace kvship::replicate
