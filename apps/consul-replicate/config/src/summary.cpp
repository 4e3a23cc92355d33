#include <gotext/go_string.hpp>
#include <replicate/config.hpp>

#include <fmt/format.h>

namespace kvship::replicate {

namespace {

using gotext::go_quote;

constexpr std::string_view redacted = "<redacted>";

std::string secret(std::string_view value)
{
    return go_quote(value.empty() ? std::string_view{} : redacted);
}

// scheme://user:pass@host -> scheme://<redacted>@host; anything else unchanged.
std::string redact_address(std::string_view address)
{
    auto const scheme_end = address.find("://");
    std::size_t const start = scheme_end == std::string_view::npos ? 0 : scheme_end + 3;
    auto const slash = address.find('/', start);
    std::string_view const authority =
        address.substr(start, slash == std::string_view::npos ? slash : slash - start);
    auto const at = authority.rfind('@');
    if (at == std::string_view::npos)
        return std::string(address);
    return std::string(address.substr(0, start)) + std::string(redacted) +
           std::string(address.substr(start + at));
}

std::string b(bool v)
{
    return v ? "true" : "false";
}

std::string d(nanos v)
{
    return go_quote(format_go_duration(v));
}

}  // namespace

std::string redacted_summary(const config& cfg)
{
    auto const& c = cfg.consul;
    std::string out;
    auto line = [&](int indent, std::string_view key, std::string_view value) {
        out.append(static_cast<std::size_t>(indent) * 2, ' ');
        out += key;
        out += " = ";
        out += value;
        out += '\n';
    };
    auto open = [&](int indent, std::string_view key) {
        out.append(static_cast<std::size_t>(indent) * 2, ' ');
        out += key;
        out += " {\n";
    };
    auto close = [&](int indent) {
        out.append(static_cast<std::size_t>(indent) * 2, ' ');
        out += "}\n";
    };

    open(0, "consul");
    line(1, "address", go_quote(redact_address(c.address)));
    line(1, "token", secret(c.token));
    open(1, "auth");
    line(2, "enabled", b(c.auth.enabled));
    line(2, "username", go_quote(c.auth.username));
    line(2, "password", secret(c.auth.password));
    close(1);
    open(1, "retry");
    line(2, "enabled", b(c.retry.enabled));
    line(2, "attempts", std::to_string(c.retry.attempts));
    line(2, "backoff", d(c.retry.backoff));
    line(2, "max_backoff", d(c.retry.max_backoff));
    close(1);
    open(1, "ssl");
    line(2, "enabled", b(c.ssl.enabled));
    line(2, "verify", b(c.ssl.verify));
    line(2, "cert", go_quote(c.ssl.cert));
    line(2, "key", go_quote(c.ssl.key));
    line(2, "ca_cert", go_quote(c.ssl.ca_cert));
    line(2, "ca_path", go_quote(c.ssl.ca_path));
    line(2, "server_name", go_quote(c.ssl.server_name));
    close(1);
    open(1, "transport");
    line(2, "dial_keep_alive", d(c.transport.dial_keep_alive));
    line(2, "dial_timeout", d(c.transport.dial_timeout));
    line(2, "disable_keep_alives", b(c.transport.disable_keep_alives));
    line(2, "idle_conn_timeout", d(c.transport.idle_conn_timeout));
    line(2, "max_idle_conns", std::to_string(c.transport.max_idle_conns));
    line(2, "max_idle_conns_per_host", std::to_string(c.transport.max_idle_conns_per_host));
    line(2, "tls_handshake_timeout", d(c.transport.tls_handshake_timeout));
    close(1);
    close(0);

    for (auto const& p : cfg.prefixes) {
        out += fmt::format(
            "prefix {{ source = {} datacenter = {} destination = {} }}\n",
            go_quote(p.source),
            go_quote(p.datacenter.value_or("")),
            go_quote(p.destination)
        );
    }
    for (auto const& e : cfg.excludes) out += fmt::format("exclude {{ source = {} }}\n", go_quote(e));
    line(0, "kill_signal", go_quote(cfg.kill_signal.name));
    line(0, "reload_signal", go_quote(cfg.reload_signal.name));
    line(0, "log_level", go_quote(to_string(cfg.level)));
    line(0, "max_stale", d(cfg.max_stale));
    line(0, "pid_file", go_quote(cfg.pid_file));
    line(0, "status_dir", go_quote(cfg.status_dir));
    open(0, "syslog");
    line(1, "enabled", b(cfg.syslog.enabled));
    line(1, "facility", go_quote(cfg.syslog.facility));
    close(0);
    open(0, "wait");
    line(1, "min", d(cfg.wait.min));
    line(1, "max", d(cfg.wait.max));
    close(0);
    line(0, "source_addr", go_quote(redact_address(cfg.source_addr)));
    line(0, "source_token", secret(cfg.source_token));
    line(0, "metrics_addr", go_quote(cfg.metrics_addr));
    line(0, "dry_run", b(cfg.dry_run));
    line(0, "lost_found_prefix", go_quote(cfg.lost_found_prefix));
    line(0, "max_delete_percent", std::to_string(cfg.delete_guard.max_delete_percent));
    line(0, "max_delete_min_keys", std::to_string(cfg.delete_guard.min_keys));
    line(0, "allow_empty_source", b(cfg.delete_guard.allow_empty_source));
    line(0, "allow_mass_delete", b(cfg.delete_guard.allow_mass_delete));
    line(0, "txn_max_ops", std::to_string(cfg.txn_max_ops));
    line(0, "log_format", go_quote(to_string(cfg.format)));
    if (cfg.gate.enabled()) {
        auto const& g = cfg.gate;
        open(0, "gate");
        line(1, "mode", go_quote(to_string(g.mode)));
        line(1, "vault_service", go_quote(g.vault_service));
        line(1, "vault_tag", go_quote(g.vault_tag));
        std::string addrs;
        for (auto const& a : g.vault_addrs)
            addrs += (addrs.empty() ? "" : ", ") + go_quote(redact_address(a));
        line(1, "vault_addrs", "[" + addrs + "]");
        for (auto const& [addr, dc] : g.vault_dc_map)
            line(1, "vault_dc_map " + go_quote(redact_address(addr)), go_quote(dc));
        line(1, "key", go_quote(g.key));
        line(1, "settle", d(g.settle));
        line(1, "interval", d(g.interval));
        close(0);
    }
    if (cfg.lock.enabled()) {
        open(0, "lock");
        line(1, "prefix", go_quote(cfg.lock.prefix));
        line(1, "ttl", d(cfg.lock.ttl));
        line(1, "delay", cfg.lock.delay ? d(*cfg.lock.delay) : std::string("(server default)"));
        line(1, "name", go_quote(cfg.lock.name.empty() ? default_lock_name(cfg.lock.prefix) : cfg.lock.name));
        close(0);
    }
    if (cfg.vault.enabled()) {
        auto const& v = cfg.vault;
        open(0, "vault");
        line(1, "path", go_quote(v.path));
        std::string dcs;
        for (auto const& dc : v.datacenters)
            dcs += (dcs.empty() ? "" : ", ") + go_quote(dc);
        line(1, "datacenters", "[" + dcs + "]");
        line(1, "record_key", go_quote(v.record_key));
        line(1, "failover_after", d(v.failover_after));
        line(1, "proxy_ttl", d(v.proxy_ttl));
        close(0);
    }
    out +=
        fmt::format("# command line: once = {}, config paths = {}\n", b(cfg.once), cfg.config_paths.size());
    return out;
}

}  // namespace kvship::replicate
