#include "api/options.hpp"

#include "api/url.hpp"
#include "store/duration.hpp"

#include <transport/http_server.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <functional>
#include <map>
#include <stdexcept>

namespace kvship::kvsim::api {

namespace {

using setter = std::function<std::optional<std::string>(sim_options&, std::string const&)>;

struct flag_def
{
    std::string_view name;
    std::string_view value_name;
    std::string_view help;
    setter set;
};

std::optional<std::string> check_address(std::string const& v)
{
    try {
        (void)transport::parse_endpoint(v);
    } catch (std::invalid_argument const& e) {
        return e.what();
    }
    return std::nullopt;
}

setter duration_flag(nanos sim_options::*field, bool positive)
{
    return [field, positive](sim_options& o, std::string const& v) -> std::optional<std::string> {
        auto d = parse_go_duration_or_error(v);
        if (auto const* e = std::get_if<std::string>(&d)) {
            return *e;
        }
        auto const value = std::get<nanos>(d);
        if (value.count() < 0 || (positive && value.count() == 0)) {
            return positive ? "must be positive" : "must not be negative";
        }
        o.*field = value;
        return std::nullopt;
    };
}

setter size_flag(std::size_t sim_options::*field)
{
    return [field](sim_options& o, std::string const& v) -> std::optional<std::string> {
        auto n = parse_uint_go(v);
        if (std::holds_alternative<std::string>(n)) {
            return "parse error";
        }
        if (std::get<std::uint64_t>(n) == 0) {
            return "must be positive";
        }
        o.*field = static_cast<std::size_t>(std::get<std::uint64_t>(n));
        return std::nullopt;
    };
}

std::vector<flag_def> const& flags()
{
    static std::vector<flag_def> const defs = {
        {"dc",
         "name",
         "datacenter name (default \"dc1\")",
         [](sim_options& o, std::string const& v) -> std::optional<std::string> {
             if (v.empty()) {
                 return "must not be empty";
             }
             o.datacenter = v;
             return std::nullopt;
         }},
        {"http-addr",
         "host:port",
         "HTTP listen address; port 0 picks a free port (default \"127.0.0.1:8500\")",
         [](sim_options& o, std::string const& v) -> std::optional<std::string> {
             if (auto e = check_address(v)) {
                 return e;
             }
             o.http_addr = v;
             return std::nullopt;
         }},
        {"wan",
         "dc=host:port",
         "a WAN-federated datacenter reachable with ?dc= (repeatable)",
         [](sim_options& o, std::string const& v) -> std::optional<std::string> {
             auto const eq = v.find('=');
             if (eq == std::string::npos || eq == 0) {
                 return "want dc=host:port";
             }
             wan_peer peer{v.substr(0, eq), v.substr(eq + 1)};
             if (auto e = check_address(peer.address)) {
                 return e;
             }
             if (peer.datacenter == o.datacenter) {
                 return "a WAN peer cannot have the local datacenter's name";
             }
             for (auto const& p : o.wan) {
                 if (p.datacenter == peer.datacenter) {
                     return fmt::format("datacenter {} given twice", peer.datacenter);
                 }
             }
             o.wan.push_back(std::move(peer));
             return std::nullopt;
         }},
        {"data-dir",
         "dir",
         "persist state here (snapshot + journal); memory only when empty",
         [](sim_options& o, std::string const& v) -> std::optional<std::string> {
             o.data_dir = v;
             return std::nullopt;
         }},
        {"node-name",
         "name",
         "the node name shown by /v1/agent/self (default \"kvsim-<dc>\")",
         [](sim_options& o, std::string const& v) -> std::optional<std::string> {
             if (v.empty()) {
                 return "must not be empty";
             }
             o.node_name = v;
             return std::nullopt;
         }},
        {"tombstone-ttl",
         "duration",
         "how long tombstones live before reaping (default 15m)",
         duration_flag(&sim_options::tombstone_ttl, true)},
        {"txn-max-ops",
         "n",
         "most operations in one /v1/txn (default 128)",
         size_flag(&sim_options::txn_max_ops)},
        {"commit-latency",
         "duration",
         "group-commit interval modelling Raft; writes wait for it (default 0)",
         duration_flag(&sim_options::commit_latency, false)},
        {"wan-latency",
         "duration",
         "delay added to every request forwarded to another DC (default 0)",
         duration_flag(&sim_options::wan_latency, false)},
        {"acl-default-policy",
         "allow|deny",
         "turn ACLs on with this default policy",
         [](sim_options& o, std::string const& v) -> std::optional<std::string> {
             if (v != "allow" && v != "deny") {
                 return "want allow or deny";
             }
             o.acl_default_allow = v == "allow";
             return std::nullopt;
         }},
        {"acl-master-token",
         "token",
         "the management token (with ACLs on)",
         [](sim_options& o, std::string const& v) -> std::optional<std::string> {
             o.acl_master_token = v;
             return std::nullopt;
         }},
        {"log-level",
         "level",
         "trace, debug, info, warn or err (default info)",
         [](sim_options& o, std::string const& v) -> std::optional<std::string> {
             std::string lower;
             for (char const c : v) {
                 lower.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
             }
             if (lower == "error") {
                 lower = "err";
             }
             if (lower != "trace" && lower != "debug" && lower != "info" && lower != "warn" &&
                 lower != "err") {
                 return "want trace, debug, info, warn or err";
             }
             o.log_level = lower;
             return std::nullopt;
         }},
        {"http-body-limit",
         "bytes",
         "largest request body read (snapshot restores; default 268435456)",
         size_flag(&sim_options::http_body_limit)},
        {"journal-compact-bytes",
         "bytes",
         "compact the journal into the snapshot past this size (default 67108864)",
         size_flag(&sim_options::journal_compact_bytes)},
    };
    return defs;
}

}  // namespace

parse_outcome parse_command_line(std::vector<std::string> const& args)
{
    sim_options o;
    auto const& defs = flags();
    std::vector<std::pair<flag_def const*, std::string>> given;
    std::size_t i = 0;
    for (; i < args.size(); ++i) {
        std::string const& s = args[i];
        if (s.size() < 2 || s[0] != '-') {
            break;
        }
        std::size_t minuses = 1;
        if (s[1] == '-') {
            minuses = 2;
            if (s.size() == 2) {
                ++i;
                break;
            }
        }
        std::string name = s.substr(minuses);
        if (name.empty() || name[0] == '-' || name[0] == '=') {
            return option_error{fmt::format("bad flag syntax: {}", s)};
        }
        std::optional<std::string> value;
        if (auto const eq = name.find('='); eq != std::string::npos) {
            value = name.substr(eq + 1);
            name.resize(eq);
        }
        if (name == "h" || name == "help") {
            return usage_request{};
        }
        auto const def =
            std::find_if(defs.begin(), defs.end(), [&](flag_def const& d) { return d.name == name; });
        if (def == defs.end()) {
            return option_error{fmt::format("flag provided but not defined: -{}", name)};
        }
        if (!value) {
            if (i + 1 >= args.size()) {
                return option_error{fmt::format("flag needs an argument: -{}", name)};
            }
            value = args[++i];
        }
        given.emplace_back(&*def, std::move(*value));
    }
    if (i < args.size()) {
        return option_error{fmt::format("unexpected argument {}", go_quote(args[i]))};
    }
    // -dc first, so -wan can refuse a peer named like the local DC whatever the order.
    std::stable_partition(given.begin(), given.end(), [](auto const& g) { return g.first->name == "dc"; });
    for (auto const& [def, value] : given) {
        if (auto e = def->set(o, value)) {
            return option_error{
                fmt::format("invalid value {} for flag -{}: {}", go_quote(value), def->name, *e)};
        }
    }
    if (o.node_name.empty()) {
        o.node_name = "kvsim-" + o.datacenter;
    }
    if (!o.acl_master_token.empty() && !o.acl_default_allow) {
        return option_error{"flag -acl-master-token needs -acl-default-policy (ACLs are off without it)"};
    }
    return o;
}

std::string usage_text()
{
    std::string out =
        "Usage: consul-kvsim [flags]\n\nOne simulated Consul datacenter (see "
        "apps/consul-kvsim/README.md).\n\n";
    for (auto const& d : flags()) {
        out += fmt::format("  -{} {}\n        {}\n", d.name, d.value_name, d.help);
    }
    return out;
}

}  // namespace kvship::kvsim::api
