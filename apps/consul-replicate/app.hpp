// The consul-replicate process: builds the Consul clients and one pair_replicator per -prefix, runs
// them on one io_context, handles the kill and reload signals, the pid file, the metrics endpoint,
// and turns the outcome into consul-replicate's exit code.
#pragma once

#include "gate.hpp"
#include "lock.hpp"
#include "logger.hpp"
#include "metrics.hpp"
#include "registry.hpp"
#include "replicator.hpp"
#include "signal_inbox.hpp"
#include "vault_ha.hpp"

#include <replicate/config.hpp>

#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace kvship::replicate {

// Knobs that are not consul-replicate settings; main() fills them from the environment.
struct app_tuning
{
    std::chrono::milliseconds blocking_wait{std::chrono::seconds(60)};   // KVSHIP_BLOCKING_WAIT
    std::chrono::milliseconds stop_grace{std::chrono::seconds(10)};      // KVSHIP_STOP_GRACE
    std::chrono::seconds destination_refresh{std::chrono::minutes(10)};  // KVSHIP_DESTINATION_REFRESH
    // Concurrent source blocking queries of the whole process, shared evenly by the pairs (grouped
    // watching; Consul's http_max_conns_per_client is 200 per client IP).
    std::size_t source_watches = 64;    // KVSHIP_SOURCE_WATCHES
    std::size_t group_min_keys = 2000;  // KVSHIP_GROUP_MIN_KEYS
    // Full reads of the source are streamed: puts go out while the listing arrives (0: off).
    std::size_t stream_full_reads = 1;  // KVSHIP_STREAM_FULL_READS
    // What a pair may keep of its destination between full reads (keys and values); past it, grouped
    // rounds read their ranges from the destination instead.
    std::size_t known_destination_bytes = std::size_t{32} << 20;  // KVSHIP_KNOWN_DESTINATION_BYTES
};

class app
{
public:
    app(asio::io_context& ioc, command_line cli, config cfg, app_tuning tuning);
    ~app();

    // Runs to the end; returns the process exit code (0, 12, 14 or 15).
    int run();

private:
    enum class outcome
    {
        finished,  // -once: every pair complete
        failed,
        killed,
        reload,
        lock_lost,  // -lock: the lock was lost; pairs stopped, back to standby
    };

    struct pair_slot
    {
        std::unique_ptr<pair_replicator> replicator;
        bool done = false;
        std::optional<std::string> error;
    };

    awaitable<void> main_loop();
    awaitable<outcome> run_generation();
    awaitable<void> watch_signals();
    void arm_signals();
    void notify();
    void stop_pairs(bool hard);
    // One pair_replicator per rule, spawned; `gate_source`: the primary DC every pair reads from;
    // `hold`: the lock holding period whose fence the pairs' transactions carry.
    void start_pairs(
        const std::vector<prefixes::rule>& rules,
        const std::optional<std::string>& gate_source,
        std::uint64_t hold
    );
    // The replicator registry of a generation (registry.hpp): refusal of two-way replication.
    awaitable<std::optional<std::string>> open_registry(
        const std::string& local_dc, const std::vector<prefixes::rule>& rules
    );
    awaitable<void> close_registry();
    [[nodiscard]] readiness ready() const;
    // The pairs' applied source index while all of them read from `dc` and finished a round.
    [[nodiscard]] std::optional<std::uint64_t> applied_from(const std::string& dc) const;
    int run_promote();
    bool write_pid_file();
    void remove_pid_file();
    transport::consul_params client_params(const std::string& address, const std::string& token) const;

    asio::io_context& ioc_;
    command_line cli_;
    config cfg_;
    app_tuning tuning_;
    logger log_;
    metrics_registry metrics_;
    std::unique_ptr<metrics_endpoint> endpoint_;
    signal_inbox signals_;
    asio::steady_timer wake_;

    unsigned kill_requests_ = 0;
    bool reload_requested_ = false;
    bool alive_ = false;
    bool running_ = false;
    bool stopping_ = false;
    std::string fatal_;
    std::string local_dc_;  // the local agent's DC, once known (lost+found names it)
    int exit_code_ = 0;
    std::string pid_written_;

    std::unique_ptr<transport::consul_client> destination_client_;
    std::unique_ptr<transport::consul_client> source_client_;
    txn_limit txn_limit_;
    std::vector<pair_slot> pairs_;

    // The leader-DC gate (-gate): its own client (short deadlines), detector and runner.
    std::unique_ptr<transport::consul_client> gate_client_;
    std::unique_ptr<primary_detector> detector_;
    std::unique_ptr<gate_runner> gate_;
    bool gate_done_ = true;
    // The DC the running gated pairs read from.
    std::optional<std::string> pairs_source_;

    // vault { }: the designation and the proxy of Vault's lock (on the gate's client).
    std::unique_ptr<vault_ha_runner> vault_;
    bool vault_done_ = true;

    // -lock (consul lock on the local DC); created once, kept across reloads.
    std::unique_ptr<transport::consul_client> lock_client_;
    std::unique_ptr<lock_manager> lock_;
    bool lock_done_ = false;

    std::unique_ptr<replicator_registry> registry_;
};

}  // namespace kvship::replicate
