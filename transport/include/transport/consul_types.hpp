// Data the Consul client sends and receives: KV entries and listings, query options, txn
// operations and outcomes, agent and session records. Plain aggregates, no I/O.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace kvship::transport {

// One KV entry as Consul lists it. `value` holds the base64-decoded bytes; nullopt is Consul's
// `"Value": null` (an empty PUT body), distinct from a present empty value. `session` is empty
// when the entry is not locked (Consul omits the field).
struct kv_entry
{
    std::string key{};
    std::optional<std::string> value{};
    std::uint64_t flags = 0;
    std::uint64_t create_index = 0;
    std::uint64_t modify_index = 0;
    std::uint64_t lock_index = 0;
    std::string session{};

    bool operator==(kv_entry const&) const = default;
};

// Read meta headers (consul-api.md §1): X-Consul-Index (always present and ≥ 1 on a successful
// read), X-Consul-KnownLeader and X-Consul-LastContact.
struct query_meta
{
    std::uint64_t index = 0;
    bool known_leader = true;
    std::chrono::milliseconds last_contact{0};
    // X-Consul-Results-Filtered-By-ACLs: true: the token could not read some matching entries.
    bool results_filtered = false;

    bool operator==(query_meta const&) const = default;
};

// A recursive listing. A 404 (nothing under the prefix) is an empty `entries` with the index.
struct kv_listing
{
    std::uint64_t index = 0;
    bool known_leader = true;
    std::chrono::milliseconds last_contact{0};
    std::vector<kv_entry> entries{};
    // ACLs hid some entries (X-Consul-Results-Filtered-By-ACLs): the listing is partial.
    bool results_filtered = false;
};

struct key_listing
{
    std::uint64_t index = 0;
    bool known_leader = true;
    std::chrono::milliseconds last_contact{0};
    std::vector<std::string> keys{};
};

// A single-key read: `entry` is nullopt on 404, with the index still set.
struct kv_get_result
{
    std::uint64_t index = 0;
    bool known_leader = true;
    std::chrono::milliseconds last_contact{0};
    std::optional<kv_entry> entry{};
};

enum class consistency
{
    default_mode,
    stale,
    consistent,
};

// Options of a read. `index` > 0 makes it a blocking query that waits up to `wait` (0: the
// server's default of 5 min) for the index to move past `index`.
struct query_options
{
    std::string dc{};
    std::uint64_t index = 0;
    std::chrono::milliseconds wait{0};
    consistency mode = consistency::default_mode;

    bool operator==(query_options const&) const = default;
};

// Every KV verb of /v1/txn (consul-api.md §7).
enum class txn_verb
{
    set,
    cas,
    lock,
    unlock,
    get,
    get_or_empty,
    get_tree,
    check_index,
    check_session,
    check_not_exists,
    delete_key,
    delete_cas,
    delete_tree,
};

// One KV operation. `value` is raw bytes (base64-encoded on the wire; nullopt sends no Value).
// `index` is the CAS/check index (sent for cas, check-index and delete-cas), `session` the lock
// session (lock, unlock, check-session).
struct txn_op
{
    txn_verb verb = txn_verb::set;
    std::string key{};
    std::optional<std::string> value{};
    std::uint64_t flags = 0;
    std::uint64_t index = 0;
    std::string session{};

    bool operator==(txn_op const&) const = default;
};

struct txn_error_item
{
    std::size_t op_index = 0;
    std::string what{};

    bool operator==(txn_error_item const&) const = default;
};

// 200: committed, `results` as Consul returns them (writes carry the txn's ModifyIndex).
// 409: rolled back, `errors` says which ops failed and why; nothing was written.
struct txn_outcome
{
    bool committed = false;
    std::vector<kv_entry> results{};
    std::vector<txn_error_item> errors{};
};

struct agent_info
{
    std::string datacenter{};
    std::string node_name{};
};

// One instance of a service, as /v1/health/service/<name> (Node + Service) or
// /v1/catalog/service/<name> (flat) lists it. `address` is the service's address, else the node's.
struct service_instance
{
    std::string node{};
    std::string datacenter{};  // empty when the answer does not say
    std::string address{};
    std::uint16_t port = 0;
    std::vector<std::string> tags{};

    bool operator==(service_instance const&) const = default;
};

// GET /v1/health/service/<name>: `tag` (empty: any), `passing` (only instances whose checks all
// pass), `dc` (empty: the agent's).
struct health_query
{
    std::string tag{};
    bool passing = false;
    std::string dc{};
};

// Vault's GET /v1/sys/leader: the active node's API address ("" when this node knows none: sealed,
// standby without a leader, or HA off).
struct vault_leader
{
    bool ha_enabled = false;
    bool is_self = false;
    std::string leader_address{};
};

// Options of a plain KV PUT. At most one of cas, acquire, release.
struct put_options
{
    std::uint64_t flags = 0;
    std::optional<std::uint64_t> cas{};
    std::string acquire{};  // session id
    std::string release{};  // session id
    std::string dc{};
};

// Body of /v1/session/create; empty strings are left out (server defaults apply).
struct session_params
{
    std::string name{};
    std::string ttl{};         // Go duration, e.g. "15s"
    std::string behavior{};    // "release" or "delete"
    std::string lock_delay{};  // Go duration, e.g. "15s"
    std::string node{};
    // NodeChecks: nullopt = not sent (the server's serfHealth default); an empty list = a session
    // tied to no health check, ended only by its TTL or a destroy.
    std::optional<std::vector<std::string>> node_checks{};
};

}  // namespace kvship::transport
