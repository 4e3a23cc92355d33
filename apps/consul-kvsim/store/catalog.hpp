// The sim's service catalog: the services and health checks registered on its one node (the local agent's
// state and the catalog are the same thing here), as Consul's agent/local state and catalog state store keep
// them. Pure value types; the operations live in `store` (catalog.cpp).
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace kvship::kvsim {

inline constexpr std::string_view health_passing = "passing";
inline constexpr std::string_view health_warning = "warning";
inline constexpr std::string_view health_critical = "critical";

// structs.ValidStatus: passing, warning or critical.
[[nodiscard]] inline bool valid_check_status(std::string_view s)
{
    return s == health_passing || s == health_warning || s == health_critical;
}

// One check of a registration (a service's Check/Checks, or /v1/agent/check/register), already decoded.
struct check_definition
{
    std::string check_id;  // empty: Consul's default (`service:<id>`, `service:<id>:<n>` when several)
    std::string name;      // empty: "Service '<name>' check"
    std::string status;    // empty: critical
    std::string notes;
    std::string service_id;  // /v1/agent/check/register: the service it belongs to ("" = a node check)
    std::chrono::nanoseconds ttl{0};
    std::string type;      // CheckType.Type(): "ttl", "http", "tcp", "udp", "grpc", "h2ping", "script", ...
    std::string interval;  // as HealthCheck shows them: a Go duration string or ""
    std::string timeout;
};

struct service_registration
{
    std::string id;  // empty: the name
    std::string name;
    std::vector<std::string> tags;
    std::string address;
    int port = 0;
    std::map<std::string, std::string> meta;
    bool enable_tag_override = false;
    std::vector<check_definition> checks;  // Check first, then Checks, empty definitions dropped
    bool replace_existing_checks = false;  // ?replace-existing-checks
};

struct catalog_service
{
    std::string id;
    std::string name;
    std::vector<std::string> tags;
    std::string address;
    int port = 0;
    std::map<std::string, std::string> meta;
    bool enable_tag_override = false;
    std::uint64_t create_index = 0;
    std::uint64_t modify_index = 0;

    bool operator==(catalog_service const&) const = default;
};

struct catalog_check
{
    std::string check_id;
    std::string name;
    std::string status{health_critical};
    std::string notes;
    std::string output;
    std::string service_id;  // "" for a node check
    std::string service_name;
    std::vector<std::string> service_tags;
    std::string type;
    std::string interval;
    std::string timeout;
    std::chrono::nanoseconds ttl{0};  // > 0: a TTL check (the sim runs no other kind)
    std::uint64_t create_index = 0;
    std::uint64_t modify_index = 0;

    bool operator==(catalog_check const&) const = default;
};

// One row of /v1/health/service/<name>: the instance and its checks (node checks included), by check ID.
struct health_row
{
    catalog_service const* service = nullptr;
    std::vector<catalog_check const*> checks;
};

enum class check_update
{
    ok,       // applied (or an idempotent repeat)
    unknown,  // no such check: 404 "Unknown check ID ..."
    not_ttl,  // the check exists but is not a TTL check: 500 `CheckID "<id>" does not have associated TTL`
};

// Consul's CheckBufSize: longer outputs are cut and annotated.
inline constexpr std::size_t check_output_max = 4 * 1024;

}  // namespace kvship::kvsim
