// consul-kvsim's state machine: the KV table, tombstones, sessions, lock-delays, ACLs and the
// one Raft-like index, with Consul's rules (shared/docs/consul-api.md §2-§8, §11, §13).
// Pure: no I/O, no clock (every call that depends on time takes `now`), no JSON, no logging.
// Single-threaded: the sim owns one store on one io_context.
#pragma once

#include "store/catalog.hpp"

#include <gotext/go_string.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <set>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace kvship::kvsim {

using index_t = std::uint64_t;
using sim_clock = std::chrono::steady_clock;
using time_point = sim_clock::time_point;
using nanos = std::chrono::nanoseconds;

// One KV entry. `value` is nullopt for a nil value (an empty PUT body), shown as "Value": null.
struct kv_entry
{
    std::string key;
    std::optional<std::string> value;
    std::uint64_t flags = 0;
    index_t lock_index = 0;
    index_t create_index = 0;
    index_t modify_index = 0;
    std::string session;  // empty: not locked

    bool operator==(kv_entry const&) const = default;
};

enum class session_behavior { release, del };

struct session
{
    std::string id;
    std::string name;
    std::string node;
    nanos lock_delay{std::chrono::seconds(15)};
    session_behavior behavior = session_behavior::release;
    std::string ttl;  // as given, e.g. "15s"; empty: no TTL
    nanos ttl_duration{0};
    std::vector<std::string> node_checks{"serfHealth"};
    std::vector<std::string> service_checks;
    index_t create_index = 0;
    index_t modify_index = 0;
    std::optional<time_point> expires_at;  // now + 2*TTL after create/renew; nullopt without TTL

    bool operator==(session const&) const = default;
};

// What a session create request asks for (already decoded from JSON by the API layer).
struct session_request
{
    std::optional<std::string> name;
    std::optional<std::string> node;
    std::optional<nanos> lock_delay;  // already normalised: values < 1000ns were multiplied by 1s
    std::optional<std::string> behavior;
    std::optional<std::string> ttl;  // a Go duration string
    std::optional<std::vector<std::string>> node_checks;
    std::optional<std::vector<std::string>> service_checks;
};

// ---- ACLs (off unless enabled through acl_config) ----
enum class acl_access { deny, read, list, write };

// What a rule governs: KV keys (`key`, `key_prefix`) or service names (`service`, `service_prefix`).
enum class acl_resource { key, service };

struct acl_rule
{
    std::string key;  // exact key or service name (is_prefix=false), or a prefix
    bool is_prefix = true;
    acl_access access = acl_access::deny;
    acl_resource resource = acl_resource::key;
};

struct acl_policy
{
    std::string id;
    std::string name;
    std::string rules_text;  // as given (HCL or JSON), kept for GET
    std::vector<acl_rule> key_rules;  // key and service rules
};

struct acl_token
{
    std::string accessor_id;
    std::string secret_id;
    std::string description;
    std::vector<std::string> policy_ids;
    bool management = false;  // the master token
    bool local = false;
};

struct acl_config
{
    bool enabled = false;
    bool default_allow = true;  // acl.default_policy
    std::string master_token;
};

// The result of resolving a request's token: either an error ("ACL not found") or an authorizer.
struct authorizer
{
    bool enabled = false;
    bool management = false;
    bool default_allow = true;
    std::string accessor_id;
    std::vector<acl_rule> rules;

    [[nodiscard]] bool can_read(std::string_view key) const;
    [[nodiscard]] bool can_list(std::string_view key) const;
    [[nodiscard]] bool can_write(std::string_view key) const;
    // delete-tree and DELETE ?recurse: write on every key under the prefix (Consul: key_prefix write)
    [[nodiscard]] bool can_write_prefix(std::string_view prefix) const;
    // service:read / service:write on a service name (service and service_prefix rules).
    [[nodiscard]] bool can_read_service(std::string_view name) const;
    [[nodiscard]] bool can_write_service(std::string_view name) const;
    static authorizer allow_all() { return {}; }
};

// ---- Transactions ----
struct txn_kv_op
{
    std::string verb;
    std::string key;
    std::optional<std::string> value;  // decoded bytes; nullopt: absent or null
    std::uint64_t flags = 0;
    index_t index = 0;
    std::string session;
};

struct txn_error
{
    std::size_t op_index = 0;
    std::string what;
};

struct txn_result
{
    bool ok = false;
    bool had_writes = false;       // false: the read-only path (no X-Consul-Index)
    std::vector<kv_entry> results;  // ok only; Value already nulled where Consul nulls it, filtered by ACL
    std::vector<txn_error> errors;  // !ok only
    index_t index = 0;              // the txn's index when it wrote
};

// ---- Single-call results ----
struct write_result
{
    bool ok = false;  // the JSON `true`/`false`
    std::optional<std::string> error;  // a 500-class error text (e.g. `invalid session "x"`); ok is false
};

// Every change the store makes, in order, for the persistence journal and for waking watchers.
// Replaying the events of a store into an empty store rebuilds it exactly (apply_event).
struct ev_entry_put { kv_entry entry; };
struct ev_entry_erase { std::string key; };
// `created`: when the tombstone was made (nullopt: not yet known; the next tick() stamps it).
struct ev_tombstone { std::string key; index_t index; std::optional<time_point> created{}; };
struct ev_tombstones_reaped { index_t up_to; };
struct ev_session_put { session s; };
struct ev_session_erase { std::string id; };
struct ev_index { index_t raft_index; index_t kvs_table; index_t tombstone_table; index_t sessions_table = 0; };
struct ev_acl_policy_put { acl_policy p; };
struct ev_acl_token_put { acl_token t; };
// Catalog changes (catalog.cpp): records, then one ev_catalog_index, then ev_index.
struct ev_service_put { catalog_service s; };
struct ev_service_erase { std::string id; };
struct ev_check_put { catalog_check c; };
struct ev_check_erase { std::string id; };
// The catalog's table indexes after a change, and the per-service indexes it set (0: erased, the
// service's last instance is gone). A catalog write never touches the KV table indexes.
struct ev_catalog_index
{
    index_t services_table = 0;
    index_t checks_table = 0;
    index_t extinction = 0;
    std::vector<std::pair<std::string, index_t>> services;
};
using store_event = std::variant<ev_entry_put, ev_entry_erase, ev_tombstone, ev_tombstones_reaped,
                                 ev_session_put, ev_session_erase, ev_index, ev_acl_policy_put,
                                 ev_acl_token_put, ev_service_put, ev_service_erase, ev_check_put,
                                 ev_check_erase, ev_catalog_index>;

struct store_params
{
    index_t initial_index = 10;  // user data never has index 1
    std::size_t txn_max_ops = 128;
    std::size_t kv_max_value_size = 512 * 1024;
    nanos tombstone_ttl{std::chrono::minutes(15)};
    nanos tombstone_granularity{std::chrono::seconds(30)};
    nanos session_ttl_min{std::chrono::seconds(10)};
    nanos max_lock_delay{std::chrono::seconds(60)};
    std::string node_name = "kvsim";
    acl_config acl;
};

class store
{
public:
    explicit store(store_params params = {});

    // Called after every change, with the event (see store_event). The API layer uses it to wake
    // watchers and to append to the journal. Set once, before use.
    void set_observer(std::function<void(store_event const&)> observer);

    store_params const& params() const { return params_; }

    // ---- indexes (§5) ----
    index_t raft_index() const { return raft_index_; }
    index_t kvs_max_index() const;
    // X-Consul-Index of a listing (recurse/keys) of `prefix`; empty prefix -> kvs_max_index(). Never < 1.
    index_t list_index(std::string_view prefix) const;

    // ---- KV reads (ACL filtering is the caller's: see authorizer) ----
    kv_entry const* get(std::string_view key) const;
    // Entries whose key starts with `prefix` (raw string prefix), in byte order.
    std::vector<kv_entry const*> list(std::string_view prefix) const;
    // ?keys[&separator=]: keys cut after the first separator past the prefix, de-duplicated (§2).
    std::vector<std::string> keys(std::string_view prefix, std::string_view separator,
                                  authorizer const& acl) const;

    // ---- KV writes (§3, §4). Each accepted write advances raft_index. ----
    // An empty key is refused with error "Must provide key" and uses no index (the API answers 400 first).
    // acquire refused by a lock-delay: ok=false, no error, no index used. Unknown/empty session on
    // acquire, empty session on release: `error` set (500), an index is used (the error comes from Raft).
    write_result set(std::string_view key, std::optional<std::string> value, std::uint64_t flags);
    write_result cas(std::string_view key, std::optional<std::string> value, std::uint64_t flags,
                     index_t cas_index);
    write_result acquire(std::string_view key, std::optional<std::string> value, std::uint64_t flags,
                         std::string_view session_id, time_point now);
    write_result release(std::string_view key, std::optional<std::string> value, std::uint64_t flags,
                         std::string_view session_id);
    write_result erase(std::string_view key);
    write_result erase_cas(std::string_view key, index_t cas_index);
    write_result erase_tree(std::string_view prefix);
    // The same with the time, which dates the tombstones for reaping. Without it a tombstone is dated by
    // the next tick() (so it is reaped at worst a little late, never early).
    write_result erase(std::string_view key, time_point now);
    write_result erase_cas(std::string_view key, index_t cas_index, time_point now);
    write_result erase_tree(std::string_view prefix, time_point now);

    // ---- transactions (§7). Pre-checks (empty key, ACL, lock-delay, too many ops, value size) included. ----
    // Too many ops / a value too large come back as one error at op 0 with nothing applied, but Consul
    // answers them with 413, so the API layer should check txn_too_many_ops/txn_value_too_large first.
    // Pre-check failures use no index; once the ops run, the txn uses one index even when it rolls back.
    txn_result txn(std::vector<txn_kv_op> const& ops, authorizer const& acl, time_point now);

    // ---- sessions (§8) ----
    // Error texts exactly as Consul's 500 bodies (e.g. "Invalid Behavior setting 'x'").
    std::variant<session, std::string> create_session(session_request const& req, time_point now);
    // nullopt: unknown id (the caller answers 404 "Session id '<id>' not found").
    std::optional<session> renew_session(std::string_view id, time_point now);
    void destroy_session(std::string_view id, time_point now);  // idempotent
    session const* get_session(std::string_view id) const;
    std::vector<session const*> sessions() const;  // by id
    index_t sessions_index() const;  // X-Consul-Index for session info/list

    // ---- service catalog (catalog.cpp) ----
    // The node has the serfHealth check (always passing) and, as on a Consul server, the `consul` service;
    // both date from params().initial_index. Registrations come from the local agent's API: the API layer
    // validates (name, statuses, check types) first. Every call below that reaches the catalog is one Raft
    // write (raft_index advances) that changes only the catalog's indexes, never the KV table's.
    // Registers or updates a service and its checks. Unchanged records keep their ModifyIndex (the write
    // still uses an index); existing checks keep their status and output (Consul's check-state snapshot);
    // TTL timers restart. Checks of the service missing from `reg` stay unless reg.replace_existing_checks.
    void register_service(service_registration reg, time_point now);
    // false: no such service (no index used; the API answers 404).
    bool deregister_service(std::string_view id);
    // /v1/agent/check/register: def.check_id defaults to def.name. Error text: the service does not exist
    // (404 `ServiceID "<id>" does not exist`).
    std::optional<std::string> register_check(check_definition def, time_point now);
    bool deregister_check(std::string_view id);
    // pass/warn/fail/update of a TTL check: resets its timer. A change of status is a Raft write; the same
    // status with a new output updates the output without one (Consul defers output-only changes); an
    // identical repeat changes nothing.
    check_update update_check(std::string_view id, std::string_view status, std::string output, time_point now);

    [[nodiscard]] catalog_service const* find_service(std::string_view id) const;
    [[nodiscard]] catalog_check const* find_check(std::string_view id) const;
    // The agent's registered services (not the built-in `consul`), by ID.
    [[nodiscard]] std::vector<catalog_service const*> agent_services() const;
    // Every check of the node (serfHealth included), by ID.
    [[nodiscard]] std::vector<catalog_check const*> all_checks() const;
    // Instances of service `name` whose tags hold every one of `tags` (case-insensitive), by ID.
    [[nodiscard]] std::vector<catalog_service const*> service_instances(
        std::string_view name, std::vector<std::string> const& tags
    ) const;
    // Node checks and the instance's own checks, by check ID.
    [[nodiscard]] std::vector<catalog_check const*> checks_of(catalog_service const& s) const;
    // health rows of service_instances(); `passing_only`: only rows whose every check passes.
    [[nodiscard]] std::vector<health_row> health_service(
        std::string_view name, std::vector<std::string> const& tags, bool passing_only
    ) const;
    // Service name -> its instances' tags (unique, sorted).
    [[nodiscard]] std::map<std::string, std::vector<std::string>> service_tags() const;
    // X-Consul-Index of /v1/health/service/<name> (`with_checks`) and /v1/catalog/service/<name>:
    // the service's own index; for a missing service the index of the last service extinction, else the
    // catalog's table indexes.
    [[nodiscard]] index_t service_index(std::string_view name, bool with_checks) const;
    // X-Consul-Index of /v1/catalog/services: the nodes and services tables.
    [[nodiscard]] index_t services_index() const;
    [[nodiscard]] std::size_t service_count() const { return services_.size(); }

    // ---- time-driven work ----
    // Destroys sessions whose expires_at <= now, turns TTL checks whose TTL passed critical ("TTL expired")
    // and reaps tombstones older than the TTL (rounded up to the granularity). Returns the earliest time anything will next be due, if any.
    // Call it after writes too (cheap): it dates tombstones made by the erase overloads without `now`.
    // A reap is a Raft write (raft_index advances; table indexes do not move).
    std::optional<time_point> tick(time_point now);
    // Test hooks (/_sim/): reap every tombstone now; expire one session now.
    void reap_all_tombstones();
    void lock_delay_until(std::string_view key, time_point until);
    // Introspection (tests, /_sim/, stats).
    [[nodiscard]] std::size_t kv_count() const { return kv_.size(); }
    [[nodiscard]] std::size_t tombstone_count() const { return tombstones_.size(); }
    // The tombstone's index for exactly `key`, if one exists.
    [[nodiscard]] std::optional<index_t> tombstone_index(std::string_view key) const;
    // The lock-delay deadline of `key`, if one is set and not yet past `now`.
    [[nodiscard]] std::optional<time_point> lock_delay(std::string_view key, time_point now) const;

    // ---- ACLs (§11) ----
    // Resolves a token (empty: anonymous). nullopt: "ACL not found".
    // With ACLs off: an allow-all authorizer for any token. Session endpoints need no ACL in this sim.
    std::optional<authorizer> resolve(std::string_view token) const;
    // Rules: HCL or JSON text with key / key_prefix rules; other rule kinds are accepted and ignored.
    // Error text on a parse failure.
    std::variant<acl_policy, std::string> put_policy(std::string_view name, std::string_view rules);
    std::variant<acl_token, std::string> put_token(acl_token token);  // ids generated when empty
    acl_policy const* find_policy(std::string_view id_or_name) const;
    acl_token const* find_token(std::string_view accessor_or_secret) const;

    // ---- snapshot / restore / replay ----
    // The whole state as bytes (for /_sim/snapshot and for persistence compaction).
    std::string encode_snapshot() const;
    // Replaces the whole state. Indexes are taken from the snapshot, so they can go backwards
    // (like `consul snapshot restore`). Error text on malformed input; the store is unchanged then.
    std::optional<std::string> restore_snapshot(std::string_view bytes);
    // Journal replay: applies one event (no observer call, no index advance of its own).
    void apply_event(store_event const& ev);
    // One event as one line of bytes, and back (the persistence journal format).
    static std::string encode_event(store_event const& ev);
    static std::optional<store_event> decode_event(std::string_view line);

    // Monotonic uuid-like ids; deterministic per seed so tests can reproduce.
    void seed_ids(std::uint64_t seed);

private:
    struct tomb_info
    {
        index_t index = 0;
        std::optional<time_point> created;
    };

    // Entries live in a set ordered by key (no second copy of the key); only non-key fields are mutated.
    struct key_less
    {
        using is_transparent = void;
        bool operator()(kv_entry const& a, kv_entry const& b) const { return a.key < b.key; }
        bool operator()(kv_entry const& a, std::string_view b) const { return a.key < b; }
        bool operator()(std::string_view a, kv_entry const& b) const { return a < b.key; }
    };
    using kv_set = std::set<kv_entry, key_less>;

    // One undo record of a write txn: the state of one key (entry or tombstone) before the change.
    struct undo_rec
    {
        bool tomb = false;
        std::string key;
        std::optional<kv_entry> kv_before;
        std::optional<tomb_info> tomb_before;
    };

    struct txn_journal
    {
        std::vector<undo_rec> undo;
        index_t kvs_table = 0;
        index_t tombstone_table = 0;
        std::size_t pending_tombs = 0;
    };

    struct lock_outcome
    {
        bool ok = false;
        std::optional<std::string> error;
    };

    // primitives (store.cpp)
    void emit(store_event const& ev) const;
    void emit_index() const;
    kv_entry const& put_entry(kv_entry e);
    void erase_entry(kv_set::iterator it);
    void put_tombstone(std::string const& key, index_t idx, std::optional<time_point> created);
    void raw_put(kv_entry e);
    void raw_erase(std::string_view key);
    void raw_tombstone(std::string const& key, tomb_info t);
    void add_bucket(index_t idx, time_point created);
    void rebuild_buckets();
    void reap_up_to(index_t up_to);
    void clear_state();
    // Consul's state-store operations at index idx.
    kv_entry const& kvs_set(kv_entry e, bool update_session, index_t idx);
    bool kvs_set_cas(kv_entry e, index_t cas_index, index_t idx);
    lock_outcome kvs_lock(kv_entry e, index_t idx);
    lock_outcome kvs_unlock(kv_entry e, index_t idx);
    bool kvs_delete(std::string_view key, index_t idx, std::optional<time_point> now);
    bool kvs_delete_cas(std::string_view key, index_t cas_index, index_t idx, std::optional<time_point> now);
    bool kvs_delete_tree(std::string_view prefix, index_t idx, std::optional<time_point> now);
    write_result do_erase(std::string_view key, std::optional<time_point> now);
    write_result do_erase_cas(std::string_view key, index_t cas_index, std::optional<time_point> now);
    write_result do_erase_tree(std::string_view prefix, std::optional<time_point> now);
    void delete_session(std::string const& id, index_t idx, time_point now);
    std::string next_id();
    // txn.cpp
    void run_txn_op(txn_kv_op const& op, std::size_t i, index_t idx, time_point now, txn_result& r);
    void rollback_txn();
    void commit_txn();
    // catalog.cpp
    struct ttl_timer
    {
        std::optional<time_point> deadline;  // nullopt while armed: not yet started (after a replay)
        bool armed = true;                   // false once expired, until the next update
        std::string last_output;
    };
    struct catalog_change
    {
        index_t idx = 0;
        std::set<std::string, std::less<>> names;  // services whose index moves
        bool node_checks = false;                  // a node check changed: every service's index moves
    };
    void put_service(catalog_service s, catalog_change& ch);
    void put_check(catalog_check c, catalog_change& ch);
    void erase_check(std::string const& id, catalog_change& ch);
    void finish_catalog_change(catalog_change& ch);
    void expire_ttl_checks(time_point now);
    void arm_ttl(catalog_check const& c, time_point now);
    [[nodiscard]] std::optional<time_point> next_ttl_deadline() const;

    store_params params_;
    index_t raft_index_;
    std::function<void(store_event const&)> observer_;
    kv_set kv_;
    std::map<std::string, tomb_info, std::less<>> tombstones_;
    std::vector<std::string> pending_tombs_;      // tombstones without a creation time yet
    std::map<time_point, index_t> reap_buckets_;  // bucket deadline -> highest tombstone index in it
    std::map<std::string, session, std::less<>> sessions_;
    std::map<std::string, std::set<std::string, std::less<>>, std::less<>> session_keys_;  // held locks
    std::map<std::string, time_point, std::less<>> lock_delays_;
    std::map<std::string, acl_policy, std::less<>> policies_;  // by id
    std::map<std::string, acl_token, std::less<>> tokens_;     // by secret
    index_t kvs_table_index_ = 0;
    index_t tombstone_table_index_ = 0;
    index_t sessions_table_index_ = 0;
    std::uint64_t id_seed_ = 0;
    std::uint64_t id_counter_ = 0;
    std::optional<txn_journal> txn_;  // set while a write txn runs
    // catalog
    std::map<std::string, catalog_service, std::less<>> services_;  // by ID (the agent's services)
    std::map<std::string, catalog_check, std::less<>> checks_;      // by ID (serfHealth not included)
    std::map<std::string, ttl_timer, std::less<>> ttl_timers_;      // TTL checks by ID
    std::map<std::string, index_t, std::less<>> service_indexes_;   // by service name
    index_t services_table_index_ = 0;
    index_t checks_table_index_ = 0;
    index_t extinction_index_ = 0;
    catalog_service consul_service_;  // built-in, like a Consul server's own registration
    catalog_check serf_check_;
};

// ---- Pure helpers for the API layer ----
// §7: "Transaction contains too many operations (N > max)" when n > max.
[[nodiscard]] std::optional<std::string> txn_too_many_ops(std::size_t n, std::size_t max_ops);
// §7: `Value for key "<k>" is too large (N > max bytes)` for the first op whose value exceeds max.
[[nodiscard]] std::optional<std::string> txn_value_too_large(std::vector<txn_kv_op> const& ops, std::size_t max_size);
// set, cas, lock, unlock, delete, delete-cas, delete-tree.
[[nodiscard]] bool is_txn_write_verb(std::string_view verb);
// `Permission denied: token with AccessorID '<id>' lacks permission '<permission>' on "<name>"`,
// permission like "key:read"; the API answers 403 with it.
[[nodiscard]] std::string permission_denied_text(authorizer const& acl, std::string_view permission,
                                                 std::string_view name);
// Go's strconv.Quote (fmt %q), as Consul's error texts quote keys and ids.
using gotext::go_quote;
// The key rules of an ACL policy, HCL or JSON (other rule kinds are accepted and ignored). Error text on failure.
[[nodiscard]] std::variant<std::vector<acl_rule>, std::string> parse_acl_rules(std::string_view text);
// The accessor id Consul gives the anonymous token.
inline constexpr std::string_view anonymous_accessor_id = "00000000-0000-0000-0000-000000000002";

}  // namespace kvship::kvsim
