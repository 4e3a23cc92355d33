#include <gotext/go_string.hpp>
#include <prefixes/rule.hpp>
#include <replicate/config.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <array>

namespace kvship::replicate {

namespace {

using gotext::go_quote;

std::string describe(const prefixes::prefix_spec& p)
{
    return go_quote(prefixes::to_string(p));
}

std::optional<config_error> negative_duration(std::string_view key, nanos d)
{
    if (d.count() < 0)
        return file_error(fmt::format("{} must not be negative, got {}", key, format_go_duration(d)));
    return std::nullopt;
}

std::optional<config_error> negative_int(std::string_view key, int v)
{
    if (v < 0)
        return file_error(fmt::format("{} must not be negative, got {}", key, v));
    return std::nullopt;
}

// The address forms the Consul API client understands: host:port, http://, https://, unix://.
std::optional<config_error> check_address(std::string_view key, std::string_view address)
{
    auto const scheme_end = address.find("://");
    if (scheme_end == std::string_view::npos)
        return std::nullopt;
    std::string_view const scheme = address.substr(0, scheme_end);
    if (scheme == "http" || scheme == "https" || scheme == "unix")
        return std::nullopt;
    return file_error(fmt::format(
        "{} {}: unsupported scheme {} (use host:port, http://, https:// or unix://)",
        key,
        go_quote(address),
        go_quote(scheme)
    ));
}

bool is_port(std::string_view s)
{
    if (s.empty() || s.size() > 5)
        return false;
    int v = 0;
    for (char c : s) {
        if (c < '0' || c > '9')
            return false;
        v = v * 10 + (c - '0');
    }
    return v <= 65535;
}

// host:port with an optional host (":9100"), a name, an IPv4 address or a bracketed IPv6 address.
bool is_listen_address(std::string_view s)
{
    auto const colon = s.rfind(':');
    if (colon == std::string_view::npos || !is_port(s.substr(colon + 1)))
        return false;
    std::string_view const host = s.substr(0, colon);
    if (!host.empty() && host.front() == '[')
        return host.size() > 2 && host.back() == ']';
    return host.find(':') == std::string_view::npos && host.find_first_of(" /") == std::string_view::npos;
}

constexpr std::array<std::string_view, 20> syslog_facilities{
    "KERN",     "USER", "MAIL",   "DAEMON", "AUTH",   "SYSLOG", "LPR",    "NEWS",   "UUCP",   "CRON",
    "AUTHPRIV", "FTP",  "LOCAL0", "LOCAL1", "LOCAL2", "LOCAL3", "LOCAL4", "LOCAL5", "LOCAL6", "LOCAL7",
};

bool is_syslog_facility(std::string_view name)
{
    std::string upper(name);
    for (auto& c : upper) {
        if (c >= 'a' && c <= 'z')
            c = static_cast<char>(c - 'a' + 'A');
    }
    return std::find(syslog_facilities.begin(), syslog_facilities.end(), upper) != syslog_facilities.end();
}

// True when pair p never touches destination keys under `inner` (which starts with p's
// destination): the source keys that would map there all start with an exclude, and excluded keys
// are neither written nor deleted.
bool excluded_from(const config& cfg, const prefixes::prefix_spec& p, std::string_view inner)
{
    std::string const mapped = p.source + std::string(inner.substr(p.destination.size()));
    return std::any_of(cfg.excludes.begin(), cfg.excludes.end(), [&](const std::string& e) {
        return std::string_view(mapped).starts_with(e);
    });
}

std::optional<config_error> check_prefixes(const config& cfg)
{
    auto const& ps = cfg.prefixes;
    for (auto const& p : ps) {
        if (p.destination.starts_with('/')) {
            return file_error(fmt::format(
                "prefix {}: destination {} must not begin with \"/\" (Consul refuses such keys)",
                describe(p),
                go_quote(p.destination)
            ));
        }
    }
    for (std::size_t i = 0; i < ps.size(); ++i) {
        for (std::size_t j = i + 1; j < ps.size(); ++j) {
            if (ps[i].source == ps[j].source && ps[i].destination == ps[j].destination) {
                return file_error(fmt::format(
                    "prefixes {} and {} copy the same source into the same destination (they would share one "
                    "checkpoint)",
                    describe(ps[i]),
                    describe(ps[j])
                ));
            }
        }
    }
    if (auto problems = prefixes::check_pairs(ps); !problems.empty())
        return file_error(problems.front());
    for (std::size_t i = 0; i < ps.size(); ++i) {
        for (std::size_t j = 0; j < ps.size(); ++j) {
            auto const& outer = ps[i].destination;
            auto const& inner = ps[j].destination;
            if (i != j && inner.size() > outer.size() && inner.starts_with(outer) &&
                !excluded_from(cfg, ps[i], inner)) {
                return file_error(fmt::format(
                    "prefixes {} and {} overlap: destination {} is a prefix of {}, so each pass of the first "
                    "would delete the second's keys",
                    describe(ps[i]),
                    describe(ps[j]),
                    go_quote(outer),
                    go_quote(inner)
                ));
            }
        }
    }
    std::string_view const dir = prefixes::trim_status_dir(cfg.status_dir);
    std::string const dir_slash = std::string(dir) + "/";
    for (auto const& p : ps) {
        if (dir_slash.starts_with(p.destination) && !excluded_from(cfg, p, dir_slash)) {
            return file_error(fmt::format(
                "status_dir {} lies under destination {} of prefix {}: each pass would delete the "
                "checkpoints",
                go_quote(cfg.status_dir),
                go_quote(p.destination),
                describe(p)
            ));
        }
        if (p.destination.starts_with(dir_slash)) {
            return file_error(fmt::format(
                "destination {} of prefix {} lies under status_dir {}: replicated keys would mix with the "
                "checkpoints",
                go_quote(p.destination),
                describe(p),
                go_quote(cfg.status_dir)
            ));
        }
    }
    return std::nullopt;
}

bool is_dc_name(std::string_view s)
{
    return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
               c == '.' || c == '-';
    });
}

bool is_http_url(std::string_view s)
{
    return (s.starts_with("http://") && s.size() > 7) || (s.starts_with("https://") && s.size() > 8);
}

// vault { }: the preset's own settings.
std::optional<config_error> check_vault(const config& cfg)
{
    auto const& v = cfg.vault;
    if (v.path.starts_with('/') || !v.path.ends_with('/'))
        return file_error(fmt::format(
            "vault path {} must be Vault's storage path as a KV prefix: no leading \"/\", ending in \"/\" "
            "(e.g. \"vault/\")",
            go_quote(v.path)
        ));
    if (v.datacenters.empty())
        return file_error(
            "vault datacenters is empty: list every datacenter in priority order (-vault-datacenters=dc1,dc2); "
            "the first is the primary until a promotion"
        );
    for (std::size_t i = 0; i < v.datacenters.size(); ++i) {
        auto const& dc = v.datacenters[i];
        if (dc.empty() || dc.find_first_of(" /?&#") != std::string::npos)
            return file_error(fmt::format("vault datacenters: {} is not a datacenter name", go_quote(dc)));
        for (std::size_t j = 0; j < i; ++j) {
            if (v.datacenters[j] == dc)
                return file_error(fmt::format("vault datacenters: {} is listed twice", go_quote(dc)));
        }
    }
    if (v.datacenters.size() < 2)
        return file_error("vault datacenters: list at least two datacenters");
    if (v.record_key.empty() || v.record_key.starts_with('/') || v.record_key.ends_with('/'))
        return file_error(fmt::format("vault record_key {} must be a KV key", go_quote(v.record_key)));
    for (auto const& p : cfg.prefixes) {
        if (v.record_key.starts_with(p.destination) || v.record_key.starts_with(p.source))
            return file_error(fmt::format(
                "vault record_key {} lies under the replicated prefix {}: each DC keeps its own record",
                go_quote(v.record_key),
                describe(p)
            ));
    }
    if (v.proxy_ttl < std::chrono::seconds{10} || v.proxy_ttl > std::chrono::hours{24})
        return file_error(fmt::format(
            "vault proxy_ttl must be between 10s and 24h (Consul's session TTL range), got {}",
            format_go_duration(v.proxy_ttl)
        ));
    if (v.failover_after.count() < 0)
        return file_error(fmt::format(
            "vault failover_after must not be negative, got {}", format_go_duration(v.failover_after)
        ));
    if (v.failover_after.count() > 0 && v.failover_after < 3 * cfg.gate.interval)
        return file_error(fmt::format(
            "vault failover_after {} is shorter than three gate intervals ({}): one slow answer would fail over",
            format_go_duration(v.failover_after),
            format_go_duration(3 * cfg.gate.interval)
        ));
    if (!cfg.promote.empty() &&
        std::find(v.datacenters.begin(), v.datacenters.end(), cfg.promote) == v.datacenters.end())
        return file_error(fmt::format(
            "-promote={} is not one of the vault datacenters ({})", cfg.promote, fmt::join(v.datacenters, ", ")
        ));
    return std::nullopt;
}

// The gate's settings, and what a gate rules out (compat-table: kvship additions).
std::optional<config_error> check_gate(const config& cfg)
{
    auto const& g = cfg.gate;
    if (!g.enabled()) {
        for (auto const& p : cfg.prefixes) {
            if (!p.datacenter)
                return file_error(fmt::format("prefix {}: missing datacenter", describe(p)));
        }
        return std::nullopt;
    }
    for (auto const& p : cfg.prefixes) {
        if (p.datacenter) {
            return file_error(fmt::format(
                "prefix {} names the source datacenter {:?}, but with a gate the source is the primary "
                "datacenter: leave \"@{}\" out",
                describe(p),
                *p.datacenter,
                *p.datacenter
            ));
        }
    }
    if (!cfg.source_addr.empty()) {
        return file_error(
            "source_addr does not apply with a gate: sources are read through the local agent with "
            "?dc=<primary>"
        );
    }
    if (cfg.once)
        return file_error("-once cannot be combined with a gate (the gate runs until stopped)");
    if (g.settle.count() < 0)
        return file_error(
            fmt::format("gate settle must not be negative, got {}", format_go_duration(g.settle))
        );
    if (g.interval.count() <= 0)
        return file_error(
            fmt::format("gate interval must be positive, got {}", format_go_duration(g.interval))
        );
    if (g.mode == gate_mode::designated)
        return check_vault(cfg);
    if (g.mode == gate_mode::key) {
        if (g.key.empty() || g.key.starts_with('/'))
            return file_error(
                fmt::format("gate key {} must be a KV key not starting with \"/\"", go_quote(g.key))
            );
        if (!g.vault_addrs.empty() || !g.vault_dc_map.empty())
            return file_error("gate vault_addrs and vault_dc_map apply only to the vault mode");
        return std::nullopt;
    }
    if (g.vault_service.empty())
        return file_error("gate vault_service is empty");
    for (auto const& a : g.vault_addrs) {
        if (!is_http_url(a))
            return file_error(
                fmt::format("gate vault address {}: want http://host:port or https://host:port", go_quote(a))
            );
    }
    if (!g.vault_dc_map.empty() && g.vault_addrs.empty())
        return file_error("gate vault_dc_map needs vault_addrs (the map belongs to the Vault way)");
    for (auto const& [addr, dc] : g.vault_dc_map) {
        if (!is_http_url(addr))
            return file_error(
                fmt::format("gate vault_dc_map key {}: want an http(s):// leader address", go_quote(addr))
            );
        if (!is_dc_name(dc))
            return file_error(
                fmt::format("gate vault_dc_map {}: {} is not a datacenter name", go_quote(addr), go_quote(dc))
            );
    }
    return std::nullopt;
}

// Gated runs save what a turn would destroy under lost_found_prefix: it must lie outside every
// destination, or a round would delete (or replicate over) the saves.
std::optional<config_error> check_lost_found(const config& cfg)
{
    if (!cfg.gate.enabled())
        return std::nullopt;
    std::string const& lf = cfg.lost_found_prefix;
    if (lf.empty() || lf == "/")
        return file_error("lost_found_prefix is empty");
    if (lf.starts_with('/'))
        return file_error(fmt::format("lost_found_prefix {} must not begin with \"/\"", go_quote(lf)));
    for (auto const& p : cfg.prefixes) {
        if (lf.starts_with(p.destination) || p.destination.starts_with(lf)) {
            return file_error(fmt::format(
                "lost_found_prefix {} overlaps destination {} of prefix {}: a round would delete or "
                "overwrite the saved keys; choose a prefix outside every replicated one",
                go_quote(lf),
                go_quote(p.destination),
                describe(p)
            ));
        }
    }
    std::string const dir = std::string(prefixes::trim_status_dir(cfg.status_dir)) + "/";
    if (lf.starts_with(dir) || dir.starts_with(lf))
        return file_error(fmt::format(
            "lost_found_prefix {} overlaps status_dir {}", go_quote(lf), go_quote(cfg.status_dir)
        ));
    return std::nullopt;
}

std::optional<config_error> check_lock(const config& cfg)
{
    auto const& l = cfg.lock;
    if (!l.enabled())
        return std::nullopt;
    std::string const key = lock_key(l.prefix);
    if (key == ".lock")
        return file_error(
            fmt::format("lock prefix {} is empty once its leading \"/\" are stripped", go_quote(l.prefix))
        );
    // Consul refuses a session TTL outside [10s, 24h] with a 500 (consul-api.md §8): refuse it here.
    if (l.ttl < std::chrono::seconds{10} || l.ttl > std::chrono::hours{24}) {
        return file_error(fmt::format(
            "lock ttl {} is out of range: Consul accepts a session TTL between 10s and 24h",
            format_go_duration(l.ttl)
        ));
    }
    if (l.delay) {
        auto const d = *l.delay;
        if (d.count() < 0 || d > std::chrono::seconds{60})
            return file_error(fmt::format(
                "lock delay {} is out of range: Consul uses a lock-delay between 0 and 60s",
                format_go_duration(d)
            ));
        if (d.count() > 0 && d < std::chrono::microseconds{1})
            return file_error(fmt::format(
                "lock delay {} is below 1µs, which Consul would read as seconds", format_go_duration(d)
            ));
    }
    for (auto const& p : cfg.prefixes) {
        if (key.starts_with(p.destination) && !excluded_from(cfg, p, key)) {
            return file_error(fmt::format(
                "lock key {} lies under destination {} of prefix {}: each pass would delete it",
                go_quote(key),
                go_quote(p.destination),
                describe(p)
            ));
        }
    }
    return std::nullopt;
}

}  // namespace

std::optional<config_error> validate(const config& cfg)
{
    if (cfg.wait.min.count() < 0 || cfg.wait.max.count() < 0)
        return file_error("wait: cannot be negative");
    if (cfg.wait.max < cfg.wait.min)
        return file_error("wait: min must be less than max");

    auto const& c = cfg.consul;
    for (auto const& [key, d] : std::array<std::pair<std::string_view, nanos>, 7>{{
             {"max_stale", cfg.max_stale},
             {"consul.retry.backoff", c.retry.backoff},
             {"consul.retry.max_backoff", c.retry.max_backoff},
             {"consul.transport.dial_keep_alive", c.transport.dial_keep_alive},
             {"consul.transport.dial_timeout", c.transport.dial_timeout},
             {"consul.transport.idle_conn_timeout", c.transport.idle_conn_timeout},
             {"consul.transport.tls_handshake_timeout", c.transport.tls_handshake_timeout},
         }}) {
        if (auto err = negative_duration(key, d))
            return err;
    }
    for (auto const& [key, v] : std::array<std::pair<std::string_view, int>, 5>{{
             {"consul.retry.attempts", c.retry.attempts},
             {"consul.transport.max_idle_conns", c.transport.max_idle_conns},
             {"consul.transport.max_idle_conns_per_host", c.transport.max_idle_conns_per_host},
             {"max_delete_min_keys", cfg.delete_guard.min_keys},
             {"txn_max_ops", cfg.txn_max_ops},
         }}) {
        if (auto err = negative_int(key, v))
            return err;
    }
    if (cfg.delete_guard.max_delete_percent < 0 || cfg.delete_guard.max_delete_percent > 100) {
        return file_error(fmt::format(
            "max_delete_percent must be between 0 and 100, got {}", cfg.delete_guard.max_delete_percent
        ));
    }

    if (auto err = check_address("consul address", c.address))
        return err;
    if (auto err = check_address("source_addr", cfg.source_addr))
        return err;
    if (!cfg.metrics_addr.empty() && !is_listen_address(cfg.metrics_addr)) {
        return file_error(fmt::format(
            "metrics_addr {}: want host:port, e.g. 127.0.0.1:9100 or :9100", go_quote(cfg.metrics_addr)
        ));
    }

    std::string_view const dir = prefixes::trim_status_dir(cfg.status_dir);
    if (dir.empty())
        return file_error(fmt::format("status_dir {} is empty", go_quote(cfg.status_dir)));
    if (dir.starts_with('/'))
        return file_error(fmt::format("status_dir {} must not begin with \"/\"", go_quote(cfg.status_dir)));

    if (auto err = check_gate(cfg))
        return err;
    if (auto err = check_prefixes(cfg))
        return err;
    if (cfg.once && cfg.prefixes.empty())
        return file_error("-once needs at least one prefix (none given by -prefix or a config file)");
    if (cfg.diff && cfg.prefixes.empty())
        return file_error("-diff needs at least one prefix (none given by -prefix or a config file)");

    if (!cfg.kill_signal.disabled() && cfg.kill_signal == cfg.reload_signal) {
        return file_error(fmt::format(
            "kill_signal and reload_signal are both {}: one signal cannot both stop and reload",
            cfg.kill_signal.name
        ));
    }
    if (cfg.syslog.enabled && !is_syslog_facility(cfg.syslog.facility))
        return file_error(fmt::format("invalid syslog facility {}", go_quote(cfg.syslog.facility)));
    if (auto err = check_lock(cfg))
        return err;
    if (auto err = check_lost_found(cfg))
        return err;
    return std::nullopt;
}

std::vector<std::string> lint(const config& cfg)
{
    std::vector<std::string> out;
    if (cfg.prefixes.empty())
        out.emplace_back("no prefix configured: nothing will be replicated");
    for (auto const& e : cfg.excludes) {
        bool const relevant = std::any_of(cfg.prefixes.begin(), cfg.prefixes.end(), [&](auto const& p) {
            return e.starts_with(p.source) || p.source.starts_with(e);
        });
        if (!cfg.prefixes.empty() && !relevant) {
            out.push_back(fmt::format(
                "exclude {} matches no prefix's source (excludes are matched against the full source key)",
                go_quote(e)
            ));
        }
    }
    auto const& ssl = cfg.consul.ssl;
    if (ssl.enabled && !ssl.verify)
        out.emplace_back("disabling consul SSL verification");
    if (!ssl.key.empty() && ssl.cert.empty())
        out.emplace_back("consul ssl key is set without a certificate and is ignored");
    if ((cfg.wait.min.count() == 0) != (cfg.wait.max.count() == 0))
        out.emplace_back("wait: min and max must both be non-zero for quiescence; it is off");
    if (cfg.dry_run)
        out.emplace_back("dry run: nothing will be written or deleted");
    if (cfg.delete_guard.allow_empty_source)
        out.emplace_back("delete guard: an empty source may empty the destination (-allow-empty-source)");
    if (!cfg.gate.enabled() && cfg.gate != gate_config{})
        out.emplace_back("gate settings are given without -gate (gate mode): they have no effect");
    if (cfg.delete_guard.allow_mass_delete)
        out.emplace_back("delete guard: the share of deleted keys is not limited (-allow-mass-delete)");
    return out;
}

}  // namespace kvship::replicate
