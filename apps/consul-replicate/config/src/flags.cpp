#include <prefixes/filter.hpp>
#include <gotext/go_string.hpp>
#include <replicate/flags.hpp>

#include <fmt/format.h>

#include <cstdint>
#include <optional>
#include <variant>

namespace kvship::replicate {

namespace {

// Setters return an error text (Go's Value.Set error) or nothing.
using string_fn = std::optional<std::string> (*)(command_line&, std::string_view);
using bool_fn = void (*)(command_line&, bool);
using duration_fn = void (*)(command_line&, nanos);
using int_fn = std::optional<std::string> (*)(command_line&, int);

struct flag_def
{
    flag_info info{};
    std::variant<string_fn, bool_fn, duration_fn, int_fn> set;
    bool builtin_bool = false;   // declared with flags.BoolVar: Go's own error text
    std::string_view warning{};  // deprecation text logged when used
};

std::optional<std::string> in_range(int v, int lo, int hi)
{
    if (v < lo || v > hi)
        return fmt::format("must be between {} and {}", lo, hi);
    return std::nullopt;
}

std::optional<std::string> not_negative(int v)
{
    if (v < 0)
        return std::string("must not be negative");
    return std::nullopt;
}

// consul-template's ParseAuthConfig: `user[:pass]`, split at the first `:`.
std::optional<std::string> set_auth(command_line& c, std::string_view s)
{
    if (s.empty())
        return std::string("auth: cannot be empty");
    auth_layer a;
    auto const colon = s.find(':');
    a.username = std::string(s.substr(0, colon));
    if (colon != std::string_view::npos)
        a.password = std::string(s.substr(colon + 1));
    c.flags.consul.auth = std::move(a);
    return std::nullopt;
}

std::optional<std::string> set_signal(opt<signal_spec>& slot, std::string_view s)
{
    auto sig = parse_signal(s);
    if (!sig)
        return sig.error();
    slot = std::move(sig).value();
    return std::nullopt;
}

const std::vector<flag_def>& definitions()
{
    using k = flag_kind;
    // Captureless lambdas, one per flag, in the order of the usage text.
    static const std::vector<flag_def> defs = {
        {{"config", k::string},
         string_fn([](command_line& c, std::string_view s) -> std::optional<std::string> {
             c.config_paths.emplace_back(s);
             return std::nullopt;
         })},
        {{"consul-addr", k::string},
         string_fn([](command_line& c, std::string_view s) -> std::optional<std::string> {
             c.flags.consul.address = std::string(s);
             return std::nullopt;
         })},
        {{"consul-auth", k::string}, string_fn(&set_auth)},
        {{"consul-retry", k::boolean},
         bool_fn([](command_line& c, bool b) { c.flags.consul.retry.enabled = b; })},
        {{"consul-retry-attempts", k::integer},
         int_fn([](command_line& c, int v) -> std::optional<std::string> {
             c.flags.consul.retry.attempts = v;
             return std::nullopt;
         })},
        {{"consul-retry-backoff", k::duration},
         duration_fn([](command_line& c, nanos d) { c.flags.consul.retry.backoff = d; })},
        {{"consul-retry-max-backoff", k::duration},
         duration_fn([](command_line& c, nanos d) { c.flags.consul.retry.max_backoff = d; })},
        {{"consul-ssl", k::boolean},
         bool_fn([](command_line& c, bool b) { c.flags.consul.ssl.enabled = b; })},
        {{"consul-ssl-ca-cert", k::string},
         string_fn([](command_line& c, std::string_view s) -> std::optional<std::string> {
             c.flags.consul.ssl.ca_cert = std::string(s);
             return std::nullopt;
         })},
        {{"consul-ssl-ca-path", k::string},
         string_fn([](command_line& c, std::string_view s) -> std::optional<std::string> {
             c.flags.consul.ssl.ca_path = std::string(s);
             return std::nullopt;
         })},
        {{"consul-ssl-cert", k::string},
         string_fn([](command_line& c, std::string_view s) -> std::optional<std::string> {
             c.flags.consul.ssl.cert = std::string(s);
             return std::nullopt;
         })},
        {{"consul-ssl-key", k::string},
         string_fn([](command_line& c, std::string_view s) -> std::optional<std::string> {
             c.flags.consul.ssl.key = std::string(s);
             return std::nullopt;
         })},
        {{"consul-ssl-server-name", k::string},
         string_fn([](command_line& c, std::string_view s) -> std::optional<std::string> {
             c.flags.consul.ssl.server_name = std::string(s);
             return std::nullopt;
         })},
        {{"consul-ssl-verify", k::boolean},
         bool_fn([](command_line& c, bool b) { c.flags.consul.ssl.verify = b; })},
        {{"consul-token", k::string},
         string_fn([](command_line& c, std::string_view s) -> std::optional<std::string> {
             c.flags.consul.token = std::string(s);
             return std::nullopt;
         })},
        {{"consul-transport-dial-keep-alive", k::duration},
         duration_fn([](command_line& c, nanos d) { c.flags.consul.transport.dial_keep_alive = d; })},
        {{"consul-transport-dial-timeout", k::duration},
         duration_fn([](command_line& c, nanos d) { c.flags.consul.transport.dial_timeout = d; })},
        {{"consul-transport-disable-keep-alives", k::boolean},
         bool_fn([](command_line& c, bool b) { c.flags.consul.transport.disable_keep_alives = b; })},
        {{"consul-transport-max-idle-conns-per-host", k::integer},
         int_fn([](command_line& c, int v) -> std::optional<std::string> {
             c.flags.consul.transport.max_idle_conns_per_host = v;
             return std::nullopt;
         })},
        {{"consul-transport-tls-handshake-timeout", k::duration},
         duration_fn([](command_line& c, nanos d) { c.flags.consul.transport.tls_handshake_timeout = d; })},
        {{"exclude", k::string},
         string_fn([](command_line& c, std::string_view s) -> std::optional<std::string> {
             auto e = prefixes::parse_exclude(s);
             if (!e)
                 return e.error().message;
             c.flags.excludes.push_back(std::move(e).value());
             return std::nullopt;
         })},
        {{"kill-signal", k::string},
         string_fn([](command_line& c, std::string_view s) { return set_signal(c.flags.kill_signal, s); })},
        {{"log-level", k::string},
         string_fn([](command_line& c, std::string_view s) -> std::optional<std::string> {
             c.flags.log_level = std::string(s);
             return std::nullopt;
         })},
        {{"max-stale", k::duration}, duration_fn([](command_line& c, nanos d) { c.flags.max_stale = d; })},
        {{"once", k::boolean}, bool_fn([](command_line& c, bool b) { c.once = b; }), true},
        {{"pid-file", k::string},
         string_fn([](command_line& c, std::string_view s) -> std::optional<std::string> {
             c.flags.pid_file = std::string(s);
             return std::nullopt;
         })},
        {{"prefix", k::string},
         string_fn([](command_line& c, std::string_view s) -> std::optional<std::string> {
             // `@dc` may be left out with a gate, which may come later or from a file: such a
             // prefix is kept with the error it is without one (build_config decides).
             auto p = prefixes::parse_prefix_spec(s, {.require_datacenter = false});
             if (!p)
                 return p.error().message;
             if (!p->datacenter) {
                 c.flags.prefixes_needing_gate.push_back(flag_error(fmt::format(
                     "invalid value {} for flag -prefix: missing datacenter", gotext::go_quote(s)
                 )));
             }
             c.flags.prefixes.push_back(std::move(p).value());
             return std::nullopt;
         })},
        {{"reload-signal", k::string},
         string_fn([](command_line& c, std::string_view s) { return set_signal(c.flags.reload_signal, s); })},
        {{"status-dir", k::string},
         string_fn([](command_line& c, std::string_view s) -> std::optional<std::string> {
             c.flags.status_dir = std::string(s);
             return std::nullopt;
         })},
        {{"syslog", k::boolean}, bool_fn([](command_line& c, bool b) { c.flags.syslog.enabled = b; })},
        {{"syslog-facility", k::string},
         string_fn([](command_line& c, std::string_view s) -> std::optional<std::string> {
             c.flags.syslog.facility = std::string(s);
             return std::nullopt;
         })},
        {{"wait", k::string},
         string_fn([](command_line& c, std::string_view s) -> std::optional<std::string> {
             auto w = parse_wait(s);
             if (!w)
                 return w.error();
             c.flags.wait.min = w->min;
             c.flags.wait.max = w->max;
             return std::nullopt;
         })},
        {{"v", k::boolean}, bool_fn([](command_line& c, bool b) { c.version = b; }), true},
        {{"version", k::boolean}, bool_fn([](command_line& c, bool b) { c.version = b; }), true},

        // kvship additions
        {{"source-addr", k::string, {}, true},
         string_fn([](command_line& c, std::string_view s) -> std::optional<std::string> {
             c.flags.source_addr = std::string(s);
             return std::nullopt;
         })},
        {{"source-token", k::string, {}, true},
         string_fn([](command_line& c, std::string_view s) -> std::optional<std::string> {
             c.flags.source_token = std::string(s);
             return std::nullopt;
         })},
        {{"metrics-addr", k::string, {}, true},
         string_fn([](command_line& c, std::string_view s) -> std::optional<std::string> {
             c.flags.metrics_addr = std::string(s);
             return std::nullopt;
         })},
        {{"dry-run", k::boolean, {}, true}, bool_fn([](command_line& c, bool b) { c.flags.dry_run = b; })},
        {{"diff", k::boolean, {}, true}, bool_fn([](command_line& c, bool b) { c.diff = b; })},
        {{"lost-found-prefix", k::string, {}, true},
         string_fn([](command_line& c, std::string_view s) -> std::optional<std::string> {
             c.flags.lost_found_prefix = std::string(s);
             return std::nullopt;
         })},
        {{"lost-found-list", k::boolean, {}, true},
         bool_fn([](command_line& c, bool b) { c.lost_found_list = b; })},
        {{"lost-found-restore", k::string, {}, true},
         string_fn([](command_line& c, std::string_view s) -> std::optional<std::string> {
             if (s.empty())
                 return std::string("want <turn> or <turn>/<key>");
             c.lost_found_restore = std::string(s);
             return std::nullopt;
         })},
        {{"force", k::boolean, {}, true}, bool_fn([](command_line& c, bool b) { c.force = b; })},
        {{"max-delete-percent", k::integer, {}, true},
         int_fn([](command_line& c, int v) -> std::optional<std::string> {
             if (auto e = in_range(v, 0, 100))
                 return e;
             c.flags.delete_guard.max_delete_percent = v;
             return std::nullopt;
         })},
        {{"max-delete-min-keys", k::integer, {}, true},
         int_fn([](command_line& c, int v) -> std::optional<std::string> {
             if (auto e = not_negative(v))
                 return e;
             c.flags.delete_guard.min_keys = v;
             return std::nullopt;
         })},
        {{"allow-empty-source", k::boolean, {}, true},
         bool_fn([](command_line& c, bool b) { c.flags.delete_guard.allow_empty_source = b; })},
        {{"allow-mass-delete", k::boolean, {}, true},
         bool_fn([](command_line& c, bool b) { c.flags.delete_guard.allow_mass_delete = b; })},
        {{"txn-max-ops", k::integer, {}, true},
         int_fn([](command_line& c, int v) -> std::optional<std::string> {
             if (auto e = not_negative(v))
                 return e;
             c.flags.txn_max_ops = v;
             return std::nullopt;
         })},
        {{"log-format", k::string, {}, true},
         string_fn([](command_line& c, std::string_view s) -> std::optional<std::string> {
             c.flags.log_format = std::string(s);
             return std::nullopt;
         })},
        {{"gate", k::string, {}, true},
         string_fn([](command_line& c, std::string_view s) -> std::optional<std::string> {
             if (!parse_gate_mode(s))
                 return std::string("must be \"vault\" or \"key\"");
             c.flags.gate.mode = std::string(s);
             return std::nullopt;
         })},
        {{"gate-vault-service", k::string, {}, true},
         string_fn([](command_line& c, std::string_view s) -> std::optional<std::string> {
             c.flags.gate.vault_service = std::string(s);
             return std::nullopt;
         })},
        {{"gate-vault-tag", k::string, {}, true},
         string_fn([](command_line& c, std::string_view s) -> std::optional<std::string> {
             c.flags.gate.vault_tag = std::string(s);
             return std::nullopt;
         })},
        {{"gate-vault-addr", k::string, {}, true},
         string_fn([](command_line& c, std::string_view s) -> std::optional<std::string> {
             if (!c.flags.gate.vault_addrs)
                 c.flags.gate.vault_addrs.emplace();
             c.flags.gate.vault_addrs->emplace_back(s);
             return std::nullopt;
         })},
        {{"gate-vault-dc", k::string, {}, true},
         string_fn([](command_line& c, std::string_view s) -> std::optional<std::string> {
             auto const eq = s.rfind('=');
             if (eq == std::string_view::npos || eq == 0 || eq + 1 == s.size())
                 return std::string("want URL=DC");
             if (!c.flags.gate.vault_dc_map)
                 c.flags.gate.vault_dc_map.emplace();
             (*c.flags.gate.vault_dc_map)[std::string(s.substr(0, eq))] = std::string(s.substr(eq + 1));
             return std::nullopt;
         })},
        {{"gate-key", k::string, {}, true},
         string_fn([](command_line& c, std::string_view s) -> std::optional<std::string> {
             c.flags.gate.key = std::string(s);
             return std::nullopt;
         })},
        {{"gate-settle", k::duration, {}, true},
         duration_fn([](command_line& c, nanos d) { c.flags.gate.settle = d; })},
        {{"gate-interval", k::duration, {}, true},
         duration_fn([](command_line& c, nanos d) { c.flags.gate.interval = d; })},

        {{"vault-path", k::string, {}, true},
         string_fn([](command_line& c, std::string_view s) -> std::optional<std::string> {
             c.flags.vault.path = std::string(s);
             return std::nullopt;
         })},
        {{"vault-datacenters", k::string, {}, true},
         string_fn([](command_line& c, std::string_view s) -> std::optional<std::string> {
             std::vector<std::string> dcs;
             std::size_t start = 0;
             for (;;) {
                 auto const comma = s.find(',', start);
                 auto part = s.substr(start, comma == std::string_view::npos ? s.npos : comma - start);
                 while (!part.empty() && part.front() == ' ') part.remove_prefix(1);
                 while (!part.empty() && part.back() == ' ') part.remove_suffix(1);
                 if (part.empty())
                     return std::string("want a comma-separated list of datacenters, e.g. dc1,dc2");
                 dcs.emplace_back(part);
                 if (comma == std::string_view::npos)
                     break;
                 start = comma + 1;
             }
             c.flags.vault.datacenters = std::move(dcs);
             return std::nullopt;
         })},
        {{"vault-record-key", k::string, {}, true},
         string_fn([](command_line& c, std::string_view s) -> std::optional<std::string> {
             c.flags.vault.record_key = std::string(s);
             return std::nullopt;
         })},
        {{"vault-failover-after", k::duration, {}, true},
         duration_fn([](command_line& c, nanos d) { c.flags.vault.failover_after = d; })},
        {{"vault-proxy-ttl", k::duration, {}, true},
         duration_fn([](command_line& c, nanos d) { c.flags.vault.proxy_ttl = d; })},
        {{"promote", k::string, {}, true},
         string_fn([](command_line& c, std::string_view s) -> std::optional<std::string> {
             c.promote = std::string(s);
             return std::nullopt;
         })},
        {{"promote-force", k::boolean, {}, true}, bool_fn([](command_line& c, bool b) { c.promote_force = b; })},

        {{"lock", k::string, {}, true},
         string_fn([](command_line& c, std::string_view s) -> std::optional<std::string> {
             c.flags.lock.prefix = std::string(s);
             return std::nullopt;
         })},
        {{"lock-ttl", k::duration, {}, true},
         duration_fn([](command_line& c, nanos d) { c.flags.lock.ttl = d; })},
        {{"lock-delay", k::duration, {}, true},
         duration_fn([](command_line& c, nanos d) { c.flags.lock.delay = d; })},
        {{"lock-name", k::string, {}, true},
         string_fn([](command_line& c, std::string_view s) -> std::optional<std::string> {
             c.flags.lock.name = std::string(s);
             return std::nullopt;
         })},

        // Deprecated aliases kept by v0.4.0 (-ssl-key was dropped and stays undefined).
        {{"auth", k::string, "consul-auth"}, string_fn(&set_auth), false, "-auth is now -consul-auth"},
        {{"consul", k::string, "consul-addr"},
         string_fn([](command_line& c, std::string_view s) -> std::optional<std::string> {
             c.flags.consul.address = std::string(s);
             return std::nullopt;
         }),
         false,
         "-consul is now -consul-addr"},
        {{"retry", k::duration, "consul-retry-backoff"},
         duration_fn(
             [](command_line& c, nanos d) {
                 c.flags.consul.retry.backoff = d;
                 c.flags.consul.retry.max_backoff = d;
             }
         ),
         false,
         "-retry is now -consul-retry-*"},
        {{"ssl", k::boolean, "consul-ssl"},
         bool_fn([](command_line& c, bool b) { c.flags.consul.ssl.enabled = b; }),
         false,
         "-ssl is now -consul-ssl-*"},
        {{"ssl-verify", k::boolean, "consul-ssl-verify"},
         bool_fn([](command_line& c, bool b) { c.flags.consul.ssl.verify = b; }),
         false,
         "-ssl-verify is now -consul-ssl-verify"},
        {{"ssl-ca-cert", k::string, "consul-ssl-ca-cert"},
         string_fn([](command_line& c, std::string_view s) -> std::optional<std::string> {
             c.flags.consul.ssl.ca_cert = std::string(s);
             return std::nullopt;
         }),
         false,
         "-ssl-ca-cert is now -consul-ssl-ca-cert"},
        {{"ssl-ca-path", k::string, "consul-ssl-ca-path"},
         string_fn([](command_line& c, std::string_view s) -> std::optional<std::string> {
             c.flags.consul.ssl.ca_path = std::string(s);
             return std::nullopt;
         }),
         false,
         "-ssl-ca-path is now -consul-ssl-ca-path"},
        {{"ssl-cert", k::string, "consul-ssl-cert"},
         string_fn([](command_line& c, std::string_view s) -> std::optional<std::string> {
             c.flags.consul.ssl.cert = std::string(s);
             return std::nullopt;
         }),
         false,
         "-ssl-cert is now -consul-ssl-cert"},
        {{"ssl-server-name", k::string, "consul-ssl-server-name"},
         string_fn([](command_line& c, std::string_view s) -> std::optional<std::string> {
             c.flags.consul.ssl.server_name = std::string(s);
             return std::nullopt;
         }),
         false,
         "-ssl-server-name is now -consul-ssl-server-name"},
        {{"token", k::string, "consul-token"},
         string_fn([](command_line& c, std::string_view s) -> std::optional<std::string> {
             c.flags.consul.token = std::string(s);
             return std::nullopt;
         }),
         false,
         "-token is now -consul-token"},
    };
    return defs;
}

const flag_def* find_flag(std::string_view name)
{
    for (auto const& d : definitions()) {
        if (d.info.name == name)
            return &d;
    }
    return nullptr;
}

// strconv.ParseBool.
std::optional<bool> parse_go_bool(std::string_view s)
{
    if (s == "1" || s == "t" || s == "T" || s == "TRUE" || s == "true" || s == "True")
        return true;
    if (s == "0" || s == "f" || s == "F" || s == "FALSE" || s == "false" || s == "False")
        return false;
    return std::nullopt;
}

// strconv.ParseInt(s, 10, 32), with its error text.
prefixes::result<int, std::string> parse_go_int32(std::string_view s0)
{
    auto syntax = [&] { return "strconv.ParseInt: parsing " + gotext::go_quote(s0) + ": invalid syntax"; };
    auto range = [&] {
        return "strconv.ParseInt: parsing " + gotext::go_quote(s0) + ": value out of range";
    };
    std::string_view s = s0;
    if (s.empty())
        return syntax();
    bool neg = false;
    if (s.front() == '+' || s.front() == '-') {
        neg = s.front() == '-';
        s.remove_prefix(1);
    }
    if (s.empty())
        return syntax();
    constexpr std::uint64_t max_unsigned = (std::uint64_t{1} << 32) - 1;
    std::uint64_t n = 0;
    for (char ch : s) {
        if (ch < '0' || ch > '9')
            return syntax();
        n = n * 10 + static_cast<std::uint64_t>(ch - '0');
        if (n > max_unsigned)
            return range();  // Go stops at the first overflow, before looking at later characters
    }
    constexpr std::uint64_t cutoff = std::uint64_t{1} << 31;
    if (!neg && n >= cutoff)
        return range();
    if (neg && n > cutoff)
        return range();
    auto const v = static_cast<std::int64_t>(n);
    return static_cast<int>(neg ? -v : v);
}

std::string quote_list(std::span<const std::string> items)
{
    std::string out = "[";
    for (std::size_t i = 0; i < items.size(); ++i) {
        if (i != 0)
            out += ' ';
        out += gotext::go_quote(items[i]);
    }
    out += ']';
    return out;
}

// Value.Set for a non-boolean flag.
std::optional<std::string> set_value(const flag_def& def, command_line& c, std::string_view value)
{
    if (auto const* f = std::get_if<string_fn>(&def.set))
        return (*f)(c, value);
    if (auto const* f = std::get_if<duration_fn>(&def.set)) {
        auto d = parse_go_duration(value);
        if (!d)
            return d.error();
        (*f)(c, *d);
        return std::nullopt;
    }
    if (auto const* f = std::get_if<int_fn>(&def.set)) {
        auto v = parse_go_int32(value);
        if (!v)
            return v.error();
        return (*f)(c, *v);
    }
    return std::string("internal: not a value flag");
}

}  // namespace

std::span<const flag_info> flag_table()
{
    static const std::vector<flag_info> table = [] {
        std::vector<flag_info> v;
        for (auto const& d : definitions()) v.push_back(d.info);
        return v;
    }();
    return table;
}

result<command_line> parse_command_line(std::span<const std::string> args)
{
    command_line c;
    std::size_t i = 0;
    while (i < args.size()) {
        std::string_view const s = args[i];
        if (s.size() < 2 || s[0] != '-')
            break;  // first argument: flags end here
        std::size_t minuses = 1;
        if (s[1] == '-') {
            minuses = 2;
            if (s.size() == 2) {  // "--" ends the flags and is consumed
                ++i;
                break;
            }
        }
        std::string_view name = s.substr(minuses);
        if (name.empty() || name[0] == '-' || name[0] == '=')
            return flag_error("bad flag syntax: " + std::string(s));
        ++i;

        bool has_value = false;
        std::string_view value;
        if (auto const eq = name.find('='); eq != std::string_view::npos) {
            value = name.substr(eq + 1);
            name = name.substr(0, eq);
            has_value = true;
        }

        flag_def const* def = find_flag(name);
        if (def == nullptr) {
            if (name == "help" || name == "h") {
                c.help = true;
                return c;
            }
            return flag_error("flag provided but not defined: -" + std::string(name));
        }

        if (auto const* set_bool = std::get_if<bool_fn>(&def->set)) {
            bool b = true;
            if (has_value) {
                auto parsed = parse_go_bool(value);
                if (!parsed) {
                    std::string const why =
                        def->builtin_bool
                            ? std::string("parse error")
                            : "strconv.ParseBool: parsing " + gotext::go_quote(value) + ": invalid syntax";
                    return flag_error(fmt::format(
                        "invalid boolean value {} for -{}: {}", gotext::go_quote(value), name, why
                    ));
                }
                b = *parsed;
            }
            if (!def->warning.empty())
                c.warnings.emplace_back(def->warning);
            (*set_bool)(c, b);
            continue;
        }

        if (!has_value && i < args.size()) {
            value = args[i];
            has_value = true;
            ++i;
        }
        if (!has_value)
            return flag_error("flag needs an argument: -" + std::string(name));
        if (!def->warning.empty())
            c.warnings.emplace_back(def->warning);
        if (auto err = set_value(*def, c, value)) {
            return flag_error(
                fmt::format("invalid value {} for flag -{}: {}", gotext::go_quote(value), name, *err)
            );
        }
    }
    if (i < args.size())
        return flag_error("cli: extra argument(s): " + quote_list(args.subspan(i)));
    return c;
}

std::string usage_text()
{
    return R"(Usage: consul-replicate [options]

  Copies Consul KV prefixes from a source datacenter into the datacenter of the
  Consul agent at -consul-addr (kvship drop-in for consul-replicate v0.4.0).

Options:

  -config=<path>           Config file or directory (every file, recursively, in
                           lexical order). Repeatable; merged left to right, flags win.
  -consul-addr=<address>   Agent address: host:port, http://, https:// or unix://
                           (default $CONSUL_HTTP_ADDR, else 127.0.0.1:8500).
  -consul-auth=<user[:pass]>  HTTP basic authentication.
  -consul-retry            Retry failed source reads (default true).
  -consul-retry-attempts=<int>        Attempts before giving up; 0 = forever (12).
  -consul-retry-backoff=<duration>    First retry delay, doubled each time (250ms).
  -consul-retry-max-backoff=<duration> Cap on the delay; 0 = no cap (1m).
  -consul-ssl              Use HTTPS (also on when any -consul-ssl-* is given).
  -consul-ssl-ca-cert=<file>   CA bundle to verify the server with.
  -consul-ssl-ca-path=<dir>    Directory of CA certificates.
  -consul-ssl-cert=<file>      Client certificate (and key, without -consul-ssl-key).
  -consul-ssl-key=<file>       Client private key.
  -consul-ssl-server-name=<name>  Name to send (SNI) and verify.
  -consul-ssl-verify       Verify the server certificate (default true).
  -consul-token=<token>    ACL token (default $CONSUL_TOKEN, then $CONSUL_HTTP_TOKEN).
  -consul-transport-dial-keep-alive=<duration>   TCP keep-alive (30s).
  -consul-transport-dial-timeout=<duration>      Connect timeout (30s).
  -consul-transport-disable-keep-alives          One connection per request.
  -consul-transport-max-idle-conns-per-host=<int> Idle connections kept (100).
  -consul-transport-tls-handshake-timeout=<duration> TLS handshake timeout (10s).
  -exclude=<prefix>        Source key prefix never copied nor deleted. Repeatable.
  -kill-signal=<signal>    Signal that stops the process (SIGINT).
  -log-level=<level>       trace, debug, info, warn or err (default warn, or $CR_LOG,
                           then $CONSUL_REPLICATE_LOG).
  -max-stale=<duration>    Allow stale source reads up to this old; 0 = consistent (2s).
  -once                    Replicate once and exit.
  -pid-file=<path>         Write the process id here.
  -prefix=<src@dc[:dest]>  Source prefix and datacenter, optional destination prefix.
                           Repeatable.
  -reload-signal=<signal>  Signal that reloads the configuration (SIGHUP).
  -status-dir=<path>       KV path of the checkpoints in the destination
                           (service/consul-replicate/statuses).
  -syslog                  Also log to syslog.
  -syslog-facility=<name>  Syslog facility (LOCAL0); setting it turns syslog on.
  -wait=<min[:max]>        Quiescence: wait for changes to settle (max = 4 x min).
  -v, -version             Print the version and exit.

kvship options:

  -source-addr=<address>   Read the source datacenter from this agent directly
                           instead of through -consul-addr over the WAN.
  -source-token=<token>    ACL token for source reads (default: -consul-token).
  -metrics-addr=<host:port> Serve /metrics (Prometheus), /healthz and /readyz.
  -dry-run                 Plan and log every change, write and delete nothing.
  -diff                    Drift report: read source and destination once, print
                           what differs per pair (text, or JSON lines with
                           -log-format=json), write nothing. Exit 0 equal,
                           1 different, 14 error.
  -lost-found-prefix=<path> Gated runs: where keys a turn would destroy are saved
                           first (service/kvship/lost+found/).
  -lost-found-list         List the saved turns and keys of the local DC, exit.
  -lost-found-restore=<turn>[/<key>] Put saved values back at their keys in the
                           local DC (only where the gate says primary, or -force).
  -max-delete-percent=<int> Refuse a pass deleting more than this share of the
                           destination (50).
  -max-delete-min-keys=<int> The share rule applies above this many keys (10).
  -allow-empty-source      Let an empty source listing empty the destination.
  -allow-mass-delete       Turn the -max-delete-percent rule off.
  -txn-max-ops=<int>       Operations per transaction; 0 = learn from the server (0).
  -log-format=<text|json>  Log line layout (text).
  -lock=<prefix>           Replicate only while holding the consul lock on
                           <prefix>/.lock in the local DC (one active replicator).
  -lock-ttl=<duration>     Lock session TTL, 10s..24h (15s).
  -lock-delay=<duration>   Lock session LockDelay, 0..60s (unset: server default 15s).
  -lock-name=<name>        Lock session name.

Leader-DC gate (kvship):

  -gate=<vault|key>        Replicate from the primary datacenter only; -prefix then
                           leaves out @dc. Unset: the source DC comes from -prefix.
  -gate-vault-service=<name> Vault's service in the catalog (vault).
  -gate-vault-tag=<tag>    Tag of the active Vault instance (active).
  -gate-vault-addr=<url>   Ask this Vault's /v1/sys/leader instead of the catalog.
                           Repeatable.
  -gate-vault-dc=<url=dc>  The datacenter of a leader address (else: the catalog).
                           Repeatable.
  -gate-key=<key>          Key mode: the local KV key naming the primary DC
                           (service/kvship/primary).
  -gate-settle=<duration>  A new primary must hold this long before a turn (10s).
  -gate-interval=<duration> How often the gate looks (1s).

Georedundant Vault (kvship; README "Georedundant Vault"):

  -vault-path=<prefix>     Vault's storage path (vault/): replicate it from the
                           designated primary DC, hold Vault's HA lock in the others.
  -vault-datacenters=<dc1,dc2,...> Every DC in priority order; the first is the
                           primary until a promotion.
  -vault-record-key=<key>  The designation record in each DC
                           (service/kvship/vault/primary).
  -vault-failover-after=<duration> Promote the next DC when the primary DC has been
                           unreachable or without an active Vault this long (0: off).
  -vault-proxy-ttl=<duration> TTL of the proxy lock's session, 10s..24h (1h).
  -promote=<dc>            Ask for DC to become the primary (drained: the old primary
                           fences its Vault, the new one applies its last writes) and exit.
  -promote-force           With -promote: finish without the old primary (it is lost).
)";
}

std::string version_text(std::string_view revision)
{
    return fmt::format("consul-replicate v0.4.0 ({})", revision);
}

}  // namespace kvship::replicate
