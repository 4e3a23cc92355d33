// The leader-DC gate's I/O half: detectors that look up which DC claims the primary (through the
// catalog, through Vault's /v1/sys/leader, or from a KV key), and the runner that polls one every
// -gate-interval and feeds engine::gate, logging every change and keeping the gate metrics.
#pragma once

#include "logger.hpp"
#include "metrics.hpp"

#include <engine/gate.hpp>
#include <replicate/config.hpp>
#include <transport/consul_client.hpp>

#include <functional>
#include <memory>
#include <optional>
#include <string>

namespace kvship::replicate {

// One look at who the primary is. Every failure is an observation with `error` set (never an
// empty claimant list): an answer that cannot be had is not "no primary".
class primary_detector
{
public:
    virtual ~primary_detector() = default;
    virtual awaitable<engine::gate_observation> detect() = 0;
};

// The detector for cfg.mode, asking through `local` (the local agent; other DCs with ?dc=):
//  * vault, no vault_addrs: the catalog way. For each DC of /v1/catalog/datacenters,
//    /v1/health/service/<vault_service>?tag=<vault_tag>&passing&dc=<dc>; a DC with one or more
//    such instances claims the primary. A DC that cannot be asked makes the answer an error.
//  * vault with vault_addrs: the Vault way. GET <addr>/v1/sys/leader on each; every leader_address
//    reported is mapped to its DC by vault_dc_map, else by finding host:port among the
//    /v1/catalog/service/<vault_service> instances of each DC. Addresses that fail are skipped
//    while another one answers; none answering is an error; answers without a leader mean no
//    primary; a leader address found in no DC is an error.
//  * key: the local KV key `key` names the primary DC (surrounding white space trimmed); a missing
//    or empty key means no primary; a value that is not a DC name is an error.
std::unique_ptr<primary_detector> make_primary_detector(
    const gate_config& cfg, transport::consul_client& local
);

// Declares the gate's metric families (kvship_gate_*).
void declare_gate_metrics(metrics_registry& reg);

class gate_runner
{
public:
    // `on_change` is called after every change of the decided state. Everything passed by
    // reference must outlive run().
    gate_runner(
        const gate_config& cfg,
        std::string local_dc,
        primary_detector& detector,
        const logger& log,
        metrics_registry& metrics,
        std::function<void()> on_change
    );

    // Polls until stop(); never throws for I/O failures.
    awaitable<void> run();
    void stop();

    [[nodiscard]] const engine::gate_state& state() const { return gate_.state(); }

    // The DC to replicate from: set only while following.
    [[nodiscard]] std::optional<std::string> source_dc() const;
    // Why nothing is replicated right now, or nullopt while following ("gate: paused (...)").
    [[nodiscard]] std::optional<std::string> not_ready_reason() const;

private:
    void publish();

    const gate_config& cfg_;
    primary_detector& detector_;
    const logger& log_;
    metrics_registry& metrics_;
    std::function<void()> on_change_;
    engine::gate gate_;
    std::optional<asio::steady_timer> timer_;
    asio::cancellation_signal cancel_;
    bool stopping_ = false;
};

}  // namespace kvship::replicate
