// consul-kvsim's command line: Go `flag` syntax (-f v, -f=v, --f=v), one aggregate of settings.
#pragma once

#include "store/store.hpp"

#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

namespace kvship::kvsim::api {

struct wan_peer
{
    std::string datacenter;
    std::string address;  // host:port of that DC's sim
};

struct sim_options
{
    std::string datacenter = "dc1";
    std::string http_addr = "127.0.0.1:8500";
    std::vector<wan_peer> wan;
    std::string data_dir;   // empty: memory only
    std::string node_name;  // empty: "kvsim-<dc>"
    nanos tombstone_ttl{std::chrono::minutes(15)};
    std::size_t txn_max_ops = 128;
    nanos commit_latency{0};
    nanos wan_latency{0};
    std::optional<bool> acl_default_allow;  // set: ACLs on
    std::string acl_master_token;
    std::string log_level = "info";
    std::size_t http_body_limit = 256ull * 1024 * 1024;  // largest request body (snapshot restores)
    std::size_t journal_compact_bytes = 64ull * 1024 * 1024;
};

// What the command line asks for: run with options, print usage and exit 0, or fail (exit 2) with a
// message naming the flag.
struct usage_request
{
};

struct option_error
{
    std::string message;
};

using parse_outcome = std::variant<sim_options, usage_request, option_error>;

[[nodiscard]] parse_outcome parse_command_line(std::vector<std::string> const& args);
[[nodiscard]] std::string usage_text();

}  // namespace kvship::kvsim::api
