// Every JSON the sim reads or writes, in Consul's shapes (shared/docs/consul-api.md): RapidJSON stays in
// codec.cpp. Output is compact, or indented by 4 spaces plus a newline with `pretty` (?pretty), and strings
// are escaped as Go's encoding/json does. Parsers mimic Go's decoder closely enough for its error texts.
#pragma once

#include "api/faults.hpp"
#include "store/store.hpp"

#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace kvship::kvsim::api {

// ---- output ----
[[nodiscard]] std::string json_entries(std::span<kv_entry const* const> entries, bool pretty);
[[nodiscard]] std::string json_strings(std::vector<std::string> const& values, bool pretty);
[[nodiscard]] std::string json_bool(bool value, bool pretty);
[[nodiscard]] std::string json_string(std::string_view value, bool pretty);
// {"Results":[{"KV":{...}}],"Errors":null} or {"Results":null,"Errors":[{"OpIndex":i,"What":"..."}]}
[[nodiscard]] std::string json_txn(txn_result const& result, bool pretty);
[[nodiscard]] std::string json_sessions(std::span<session const* const> sessions, bool pretty);
[[nodiscard]] std::string json_session_id(std::string_view id, bool pretty);

struct agent_info
{
    std::string datacenter;
    std::string node_name;
    std::string node_id;
    std::string address;  // the HTTP address's host
    unsigned short port = 0;
    std::string version;
    std::string revision;
    std::string build_date;
    std::string acl_default_policy;
};

[[nodiscard]] std::string json_agent_self(agent_info const& info, bool pretty);

[[nodiscard]] std::string json_policy(acl_policy const& policy, bool pretty);
// `policies`: (ID, Name) of each linked policy.
[[nodiscard]] std::string json_token(
    acl_token const& token, std::vector<std::pair<std::string, std::string>> const& policies, bool pretty
);

// Numbers shown by /_sim/stats besides the traffic counters.
struct sim_gauges
{
    std::string datacenter;
    index_t raft_index = 0;
    index_t kvs_max_index = 0;
    std::size_t kv_count = 0;
    std::size_t tombstone_count = 0;
    std::size_t session_count = 0;
    std::size_t blocking_queries = 0;
    std::size_t connections = 0;
    std::size_t faults = 0;
    std::uint64_t commits = 0;
    std::uint64_t committed_writes = 0;
};

[[nodiscard]] std::string json_stats(traffic_stats const& stats, sim_gauges const& gauges, bool pretty);

// ---- input ----
// A /v1/txn body. `ops` keeps Go's numbering: elements with none of KV/Node/Service/Check are dropped;
// a Node/Service/Check element is nullopt (the catalog is not reachable through txn in the sim).
struct txn_body
{
    std::size_t element_count = 0;  // len(ops) as Consul counts it for the operation limit
    std::vector<std::optional<txn_kv_op>> ops;
};

// The error is Go's decoder text, e.g. `EOF`, `json: unknown field "Bogus"`.
[[nodiscard]] std::variant<txn_body, std::string> parse_txn_body(std::string_view body);

// A /v1/session/create body (LockDelay: Go duration string or nanoseconds, values < 1000 taken as seconds).
[[nodiscard]] std::variant<session_request, std::string> parse_session_body(std::string_view body);

struct policy_body
{
    std::string name;
    std::string description;
    std::string rules;
};

[[nodiscard]] std::variant<policy_body, std::string> parse_policy_body(std::string_view body);

struct token_body
{
    std::string accessor_id;
    std::string secret_id;
    std::string description;
    bool local = false;
    std::vector<std::string> policy_refs;  // each an ID or a Name
};

[[nodiscard]] std::variant<token_body, std::string> parse_token_body(std::string_view body);

// ---- service catalog (catalog_codec.cpp) ----
// The sim's one node as the catalog shows it.
struct node_info
{
    std::string id;
    std::string name;
    std::string address;
    std::string datacenter;
    index_t index = 0;  // CreateIndex = ModifyIndex
};

// A uuid-shaped id derived from a name (the node's ID).
[[nodiscard]] std::string node_uuid(std::string_view name);

// GET /v1/agent/services: {"<id>": AgentService}; GET /v1/agent/checks: {"<id>": HealthCheck}.
[[nodiscard]] std::string json_agent_services(
    std::span<catalog_service const* const> services, std::string_view datacenter, bool pretty
);
[[nodiscard]] std::string json_agent_checks(
    std::span<catalog_check const* const> checks, std::string_view node, bool pretty
);
// GET /v1/health/service/<name>: [{"Node":..., "Service":..., "Checks":[...]}].
[[nodiscard]] std::string json_health_rows(
    std::span<health_row const> rows, node_info const& node, bool pretty
);
// GET /v1/catalog/service/<name>: [ServiceNode].
[[nodiscard]] std::string json_catalog_service(
    std::span<catalog_service const* const> services, node_info const& node, bool pretty
);
// GET /v1/catalog/services: {"<name>": [tags]}.
[[nodiscard]] std::string json_service_tags(
    std::map<std::string, std::vector<std::string>> const& services, bool pretty
);

// PUT /v1/agent/service/register. The error is the text after "Request decode failed: " (a Go decoder or
// duration error), or, starting with "Invalid check: ", a check that fails Consul's CheckType.Validate.
struct service_body
{
    service_registration reg;
    std::optional<std::string> check_error;  // "TTL must be > 0 for TTL checks", ...
};

[[nodiscard]] std::variant<service_body, std::string> parse_service_body(std::string_view body);

// PUT /v1/agent/check/register (CheckDefinition: ID or CheckID, Name, ServiceID, Status, Notes, TTL, ...).
struct check_body
{
    check_definition def;
    std::optional<std::string> check_error;
};

[[nodiscard]] std::variant<check_body, std::string> parse_check_body(std::string_view body);

// PUT /v1/agent/check/update/<id>: {"Status": ..., "Output": ...}.
struct check_update_body
{
    std::string status;
    std::string output;
};

[[nodiscard]] std::variant<check_update_body, std::string> parse_check_update_body(std::string_view body);

// {"path_prefix":..., "method":..., "count":N, "status":S, "body":..., "delay_ms":D, "drop_after_bytes":B}
[[nodiscard]] std::variant<fault_rule, std::string> parse_fault_body(std::string_view body);

}  // namespace kvship::kvsim::api
