// The drop-in consul-replicate's settings: every v0.4.0 setting with its default, plus kvship's
// additions, and the partial "layer" that the command line and each config file produce.
#pragma once

#include <prefixes/prefix_spec.hpp>
#include <prefixes/status_key.hpp>
#include <replicate/duration.hpp>
#include <replicate/error.hpp>
#include <replicate/log_line.hpp>
#include <replicate/signals.hpp>

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace kvship::replicate {

// ---------------------------------------------------------------------------------------------
// The resolved configuration. Defaults are consul-replicate v0.4.0's (consul-template v0.19 for
// the `consul` block); compat.md §1.1 and §2.2 list them.

struct auth_config
{
    bool enabled = false;  // turned on when a username or password is set and `enabled` is not
    std::string username;
    std::string password;  // secret: never logged (see redacted_summary)

    bool operator==(const auth_config&) const = default;
};

struct retry_config
{
    bool enabled = true;
    int attempts = 12;  // 0 = retry forever
    nanos backoff = std::chrono::milliseconds{250};
    nanos max_backoff = std::chrono::minutes{1};  // 0 = no cap

    bool operator==(const retry_config&) const = default;
};

struct ssl_config
{
    bool enabled = false;  // turned on when any other ssl setting is given (verify=false included)
    bool verify = true;
    std::string cert;
    std::string key;
    std::string ca_cert;
    std::string ca_path;
    std::string server_name;

    bool operator==(const ssl_config&) const = default;
};

struct transport_config
{
    nanos dial_keep_alive = std::chrono::seconds{30};
    nanos dial_timeout = std::chrono::seconds{30};
    bool disable_keep_alives = false;
    nanos idle_conn_timeout = std::chrono::seconds{5};
    int max_idle_conns = 0;  // 0 = no limit
    int max_idle_conns_per_host = 100;
    nanos tls_handshake_timeout = std::chrono::seconds{10};

    bool operator==(const transport_config&) const = default;
};

inline constexpr std::string_view default_consul_address = "127.0.0.1:8500";

struct consul_config
{
    std::string address{default_consul_address};  // else $CONSUL_HTTP_ADDR
    std::string token;                            // else $CONSUL_TOKEN, then $CONSUL_HTTP_TOKEN; secret
    auth_config auth;
    retry_config retry;
    ssl_config ssl;
    transport_config transport;

    bool operator==(const consul_config&) const = default;
};

struct syslog_config
{
    bool enabled = false;  // turned on when a facility is set and `enabled` is not
    std::string facility = "LOCAL0";

    bool operator==(const syslog_config&) const = default;
};

// Quiescence timers (compat.md §3.5); active only when both min and max are non-zero.
struct wait_config
{
    nanos min{0};
    nanos max{0};  // when not given: 4 x min

    [[nodiscard]] bool enabled() const noexcept { return min.count() != 0 && max.count() != 0; }

    bool operator==(const wait_config&) const = default;
};

// kvship: the delete guard (engine::guard_params). Refuses a pass that would empty the destination
// because the source listing came back empty, or delete more than max_delete_percent of a
// destination holding more than min_keys keys; consul-replicate had none (#82, #110, #111).
struct delete_guard_config
{
    int max_delete_percent = 50;      // -max-delete-percent, 0..100
    int min_keys = 10;                // -max-delete-min-keys: the percentage applies above this many keys
    bool allow_empty_source = false;  // -allow-empty-source
    bool allow_mass_delete = false;   // -allow-mass-delete

    bool operator==(const delete_guard_config&) const = default;
};

// kvship: the leader-DC gate (-gate*, `gate { }`). With a gate, every pair replicates from the
// primary DC into the local DC, and nothing runs while this DC is the primary or the gate is paused.
enum class gate_mode
{
    none,   // consul-replicate's behaviour: the source DC comes from -prefix
    vault,  // the DC of the active Vault: through the catalog, or through Vault's /v1/sys/leader
    key,    // the DC named by a KV key in the local DC
    designated,  // set by `vault { }`: the designation records of every DC (engine/vault_ha.hpp)
};

[[nodiscard]] std::string_view to_string(gate_mode m);
[[nodiscard]] std::optional<gate_mode> parse_gate_mode(std::string_view s);  // "vault", "key"

inline constexpr std::string_view default_gate_key = "service/kvship/primary";

struct gate_config
{
    gate_mode mode = gate_mode::none;
    std::string vault_service = "vault";  // the catalog way: a passing instance with vault_tag
    std::string vault_tag = "active";
    std::vector<std::string> vault_addrs;             // the Vault way: GET <addr>/v1/sys/leader
    std::map<std::string, std::string> vault_dc_map;  // leader_address -> DC; else found in the catalog
    std::string key{default_gate_key};                // key mode
    nanos settle = std::chrono::seconds{10};
    nanos interval = std::chrono::seconds{1};

    [[nodiscard]] bool enabled() const noexcept { return mode != gate_mode::none; }

    bool operator==(const gate_config&) const = default;
};

// kvship: a `consul lock`-compatible session lock (consul-api.md §9) so that only one replicator per DC
// writes. Active when `prefix` is set; the lock key is lock_key(prefix).
struct lock_config
{
    std::string prefix;                    // -lock; empty: no lock
    nanos ttl = std::chrono::seconds{15};  // -lock-ttl: session TTL, Consul allows 10s..24h
    std::optional<nanos> delay;  // -lock-delay: session LockDelay; unset: not sent (server default 15s)
    std::string name;            // -lock-name: session name; empty: default_lock_name(prefix)

    [[nodiscard]] bool enabled() const noexcept { return !prefix.empty(); }

    bool operator==(const lock_config&) const = default;
};

// kvship: georedundant Vault (`vault { }`, -vault-*): a preset over the gate, the lock and the
// pairs, plus the proxy of Vault's HA lock in follower DCs (apps/consul-replicate/vault_ha.hpp).
// Active when `path` is set.
inline constexpr std::string_view default_vault_record_key = "service/kvship/vault/primary";

struct vault_ha_config
{
    std::string path;                      // Vault's storage path ("vault/"); empty: off
    std::vector<std::string> datacenters;  // every DC, in priority order; the first is the initial primary
    std::string record_key{default_vault_record_key};  // the designation record, in every DC
    nanos failover_after{0};                // automatic failover; 0 = off (promotion by the operator only)
    nanos proxy_ttl = std::chrono::hours{1};  // TTL of the proxy lock's session, Consul allows 10s..24h

    [[nodiscard]] bool enabled() const noexcept { return !path.empty(); }
    // Vault's HA lock key under `path`.
    [[nodiscard]] std::string lock_key() const { return path + "core/lock"; }

    bool operator==(const vault_ha_config&) const = default;
};

// `consul lock`'s key for a prefix: leading "/" stripped, path.Join(prefix, ".lock").
[[nodiscard]] std::string lock_key(std::string_view prefix);
// The session name used when -lock-name is not given.
[[nodiscard]] std::string default_lock_name(std::string_view prefix);

struct config
{
    // consul-replicate v0.4.0
    consul_config consul;
    std::vector<prefixes::prefix_spec> prefixes;  // files first (in load order), then -prefix flags
    std::vector<std::string> excludes;            // same order rule
    signal_spec kill_signal = sigint();
    signal_spec reload_signal = sighup();
    log_level level = default_log_level;        // else $CR_LOG, then $CONSUL_REPLICATE_LOG
    nanos max_stale = std::chrono::seconds{2};  // 0 = consistent source reads
    std::string pid_file;                       // empty = none
    std::string status_dir{prefixes::default_status_dir};
    syslog_config syslog;
    wait_config wait;

    // command line only
    bool once = false;
    bool diff = false;  // -diff: print the drift report, write nothing (drift_report.hpp)
    std::vector<std::string> config_paths;

    // kvship additions
    std::string source_addr;   // empty: read the source through consul.address with ?dc= (WAN)
    std::string source_token;  // empty: consul.token; secret
    std::string metrics_addr;  // empty: no HTTP endpoint; else host:port for /metrics, /healthz, /readyz
    bool dry_run = false;      // plan and log, never write or delete
    delete_guard_config delete_guard;
    int txn_max_ops = 0;  // ops per /v1/txn; 0 = start at 128 and learn from the server's 413
    log_format format = log_format::text;
    gate_config gate;
    lock_config lock;
    vault_ha_config vault;

    // command line only (kvship): -promote=DC [-promote-force] runs one promotion request and exits
    std::string promote;
    bool promote_force = false;
    // Gated runs: where keys a turn would destroy are saved first (ends in "/"; outside every
    // destination prefix).
    std::string lost_found_prefix = "service/kvship/lost+found/";

    bool operator==(const config&) const = default;
};

// ---------------------------------------------------------------------------------------------
// A partial configuration: what one source (the command line, one config file) actually set.
// Merging follows consul-replicate (compat.md §2.3): a later layer's value wins only where it is
// set; prefix and exclude lists concatenate.

template <class T>
using opt = std::optional<T>;

struct auth_layer
{
    opt<bool> enabled;
    opt<std::string> username;
    opt<std::string> password;

    bool operator==(const auth_layer&) const = default;
};

struct retry_layer
{
    opt<bool> enabled;
    opt<int> attempts;
    opt<nanos> backoff;
    opt<nanos> max_backoff;

    bool operator==(const retry_layer&) const = default;
};

struct ssl_layer
{
    opt<bool> enabled;
    opt<bool> verify;
    opt<std::string> cert;
    opt<std::string> key;
    opt<std::string> ca_cert;
    opt<std::string> ca_path;
    opt<std::string> server_name;

    bool operator==(const ssl_layer&) const = default;
};

struct transport_layer
{
    opt<nanos> dial_keep_alive;
    opt<nanos> dial_timeout;
    opt<bool> disable_keep_alives;
    opt<nanos> idle_conn_timeout;
    opt<int> max_idle_conns;
    opt<int> max_idle_conns_per_host;
    opt<nanos> tls_handshake_timeout;

    bool operator==(const transport_layer&) const = default;
};

struct consul_layer
{
    opt<std::string> address;
    opt<std::string> token;
    auth_layer auth;
    retry_layer retry;
    ssl_layer ssl;
    transport_layer transport;

    bool operator==(const consul_layer&) const = default;
};

struct syslog_layer
{
    opt<bool> enabled;
    opt<std::string> facility;

    bool operator==(const syslog_layer&) const = default;
};

struct wait_layer
{
    opt<nanos> min;
    opt<nanos> max;

    bool operator==(const wait_layer&) const = default;
};

struct delete_guard_layer
{
    opt<int> max_delete_percent;
    opt<int> min_keys;
    opt<bool> allow_empty_source;
    opt<bool> allow_mass_delete;

    bool operator==(const delete_guard_layer&) const = default;
};

struct gate_layer
{
    opt<std::string> mode;  // validated when the layers are resolved
    opt<std::string> vault_service;
    opt<std::string> vault_tag;
    opt<std::vector<std::string>> vault_addrs;             // a layer's list replaces the one below
    opt<std::map<std::string, std::string>> vault_dc_map;  // same
    opt<std::string> key;
    opt<nanos> settle;
    opt<nanos> interval;

    bool operator==(const gate_layer&) const = default;
};

struct lock_layer
{
    opt<std::string> prefix;
    opt<nanos> ttl;
    opt<nanos> delay;
    opt<std::string> name;

    bool operator==(const lock_layer&) const = default;
};

struct vault_ha_layer
{
    opt<std::string> path;
    opt<std::vector<std::string>> datacenters;  // a layer's list replaces the one below
    opt<std::string> record_key;
    opt<nanos> failover_after;
    opt<nanos> proxy_ttl;

    bool operator==(const vault_ha_layer&) const = default;
};

struct config_layer
{
    consul_layer consul;
    std::vector<prefixes::prefix_spec> prefixes;
    std::vector<std::string> excludes;
    opt<signal_spec> kill_signal;
    opt<signal_spec> reload_signal;
    opt<std::string> log_level;  // validated when the layers are resolved (exit 15, as Go)
    opt<nanos> max_stale;
    opt<std::string> pid_file;
    opt<std::string> status_dir;
    syslog_layer syslog;
    wait_layer wait;

    opt<std::string> source_addr;
    opt<std::string> source_token;
    opt<std::string> metrics_addr;
    opt<bool> dry_run;
    delete_guard_layer delete_guard;
    opt<int> txn_max_ops;
    opt<std::string> log_format;
    gate_layer gate;
    // Prefixes given without `@dc`: accepted only when the resolved configuration has a gate;
    // otherwise the first of these errors is the answer (consul-replicate's own text and exit code).
    std::vector<config_error> prefixes_needing_gate;
    lock_layer lock;
    vault_ha_layer vault;
    opt<std::string> lost_found_prefix;

    bool operator==(const config_layer&) const = default;
};

// consul-template's ParseWaitConfig: `min[:max]` (each part trimmed, max = 4 x min when absent).
// Errors: `wait: cannot be empty`, `wait: invalid format`, `wait: cannot be negative`,
// `wait: min must be less than max`, or the duration's own text.
[[nodiscard]] prefixes::result<wait_config, std::string> parse_wait(std::string_view text);

// `into` with everything `from` sets laid over it; lists appended.
void merge_into(config_layer& into, const config_layer& from);

// Environment variables, passed in so that resolving stays pure (loader.hpp reads the real ones).
using env_map = std::map<std::string, std::string, std::less<>>;

// The parsed command line (flags.hpp).
struct command_line
{
    config_layer flags;                     // only what the flags set (this is the #85 fix)
    std::vector<std::string> config_paths;  // -config, in order
    bool once = false;
    bool diff = false;                  // -diff
    bool version = false;               // -v / -version
    bool help = false;                  // -h / -help: print usage_text(), exit 0
    std::string promote;                // -promote=DC
    bool promote_force = false;         // -promote-force
    // Lost+found commands (kvship): list the saved entries, or put a saved entry (turn or
    // turn/key) back at its original key; -force restores in a DC the gate does not call primary.
    bool lost_found_list = false;
    std::optional<std::string> lost_found_restore;
    bool force = false;
    std::vector<std::string> warnings;  // deprecation texts, e.g. "-auth is now -consul-auth"
};

// Builds the final configuration: built-in defaults, then environment defaults (only where no
// layer sets a value: CONSUL_HTTP_ADDR; CONSUL_TOKEN then CONSUL_HTTP_TOKEN; CR_LOG then
// CONSUL_REPLICATE_LOG; values trimmed, empty ones ignored), then `files` (already merged in load
// order), then the command line. Applies consul-template's "enabled when data given" rules (auth,
// ssl, syslog) and max = 4 x min for wait, then validate(). Errors are exit 15.
[[nodiscard]] result<config> build_config(
    const command_line& cli, const config_layer& files, const env_map& env
);

// Checks a resolved configuration; the first problem found, as exit 15 (compat.md says where
// consul-replicate lost data or failed late; these are refused up front):
//  * wait: negative, or max < min;
//  * a destination that starts with `/` (every PUT would fail);
//  * two prefixes with the same source and destination (they share one checkpoint);
//  * two destinations where one is a string prefix of the other, or equal (each pass deletes the
//    other's keys, compat.md §3.6), and a status_dir that lies under a destination (the pass
//    deletes the checkpoints) or a destination under status_dir. A nesting is allowed when an
//    exclude covers every source key that would map into the inner part (the outer pair then
//    neither writes nor deletes there);
//  * -once with no prefix;
//  * kill and reload signal equal (and not SIGNULL);
//  * counts and durations out of range (attempts, transport sizes, max_stale, delete guard
//    percent 0..100, min keys, txn_max_ops >= 0);
//  * a syslog facility that is not one of syslog's names (when syslog is on);
//  * metrics_addr that is not host:port;
//  * the gate: a prefix without `@dc` when there is none; with one, a prefix that names a DC,
//    source_addr, -once, a negative settle, an interval <= 0, a key-mode key that is empty or
//    starts with `/`, vault addresses or map entries that are not http(s) URLs (or DC names);
//  * lock: a TTL outside Consul's [10s, 24h], a delay outside [0, 60s] (or under 1µs, which Consul
//    reads as seconds), lock settings without a lock prefix, a prefix that is empty once its "/"
//    are stripped, a lock key under a destination prefix (each pass would delete it).
[[nodiscard]] std::optional<config_error> validate(const config& cfg);

// Things worth a WARN that are not errors: no prefix outside -once, ssl verification off, an
// exclude that no prefix's source covers, source_token without a different source DC, ...
[[nodiscard]] std::vector<std::string> lint(const config& cfg);

// The whole configuration as indented text for the DEBUG "final config" dump. Tokens, passwords
// and credentials inside addresses are replaced by "<redacted>" (or "" when unset), so the text
// can be logged.
[[nodiscard]] std::string redacted_summary(const config& cfg);

}  // namespace kvship::replicate
