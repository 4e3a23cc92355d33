#include <replicate/config.hpp>

#include <algorithm>

namespace kvship::replicate {

namespace {

bool is_go_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

std::string_view trim(std::string_view s)
{
    while (!s.empty() && is_go_space(s.front())) s.remove_prefix(1);
    while (!s.empty() && is_go_space(s.back())) s.remove_suffix(1);
    return s;
}

template <class T>
void over(opt<T>& into, const opt<T>& from)
{
    if (from)
        into = from;
}

template <class T>
void append(std::vector<T>& into, const std::vector<T>& from)
{
    into.insert(into.end(), from.begin(), from.end());
}

template <class T>
void take(T& into, const opt<T>& from)
{
    if (from)
        into = *from;
}

// The first non-empty, trimmed value among the variables, as consul-template's stringFromEnv.
std::optional<std::string> from_env(const env_map& env, std::initializer_list<std::string_view> names)
{
    for (auto name : names) {
        auto const it = env.find(name);
        if (it != env.end() && !it->second.empty())
            return std::string(trim(it->second));
    }
    return std::nullopt;
}

}  // namespace

std::string_view to_string(gate_mode m)
{
    switch (m) {
        case gate_mode::none:
            return "";
        case gate_mode::vault:
            return "vault";
        case gate_mode::key:
            return "key";
        case gate_mode::designated:
            return "designated";
    }
    return "";
}

std::optional<gate_mode> parse_gate_mode(std::string_view s)
{
    if (s == "vault")
        return gate_mode::vault;
    if (s == "key")
        return gate_mode::key;
    return std::nullopt;
}

prefixes::result<wait_config, std::string> parse_wait(std::string_view text)
{
    std::string_view const s = trim(text);
    if (s.empty())
        return std::string("wait: cannot be empty");
    if (std::count(s.begin(), s.end(), ':') > 1)
        return std::string("wait: invalid format");
    auto const colon = s.find(':');
    auto min = parse_go_duration(trim(s.substr(0, colon)));
    if (!min)
        return min.error();
    wait_config w;
    w.min = *min;
    if (colon == std::string_view::npos) {
        w.max = 4 * w.min;
    } else {
        auto max = parse_go_duration(trim(s.substr(colon + 1)));
        if (!max)
            return max.error();
        w.max = *max;
    }
    if (w.min.count() < 0 || w.max.count() < 0)
        return std::string("wait: cannot be negative");
    if (w.max < w.min)
        return std::string("wait: min must be less than max");
    return w;
}

void merge_into(config_layer& into, const config_layer& from)
{
    auto& c = into.consul;
    auto const& o = from.consul;
    over(c.address, o.address);
    over(c.token, o.token);
    over(c.auth.enabled, o.auth.enabled);
    over(c.auth.username, o.auth.username);
    over(c.auth.password, o.auth.password);
    over(c.retry.enabled, o.retry.enabled);
    over(c.retry.attempts, o.retry.attempts);
    over(c.retry.backoff, o.retry.backoff);
    over(c.retry.max_backoff, o.retry.max_backoff);
    over(c.ssl.enabled, o.ssl.enabled);
    over(c.ssl.verify, o.ssl.verify);
    over(c.ssl.cert, o.ssl.cert);
    over(c.ssl.key, o.ssl.key);
    over(c.ssl.ca_cert, o.ssl.ca_cert);
    over(c.ssl.ca_path, o.ssl.ca_path);
    over(c.ssl.server_name, o.ssl.server_name);
    over(c.transport.dial_keep_alive, o.transport.dial_keep_alive);
    over(c.transport.dial_timeout, o.transport.dial_timeout);
    over(c.transport.disable_keep_alives, o.transport.disable_keep_alives);
    over(c.transport.idle_conn_timeout, o.transport.idle_conn_timeout);
    over(c.transport.max_idle_conns, o.transport.max_idle_conns);
    over(c.transport.max_idle_conns_per_host, o.transport.max_idle_conns_per_host);
    over(c.transport.tls_handshake_timeout, o.transport.tls_handshake_timeout);

    append(into.prefixes, from.prefixes);
    append(into.excludes, from.excludes);
    over(into.kill_signal, from.kill_signal);
    over(into.reload_signal, from.reload_signal);
    over(into.log_level, from.log_level);
    over(into.max_stale, from.max_stale);
    over(into.pid_file, from.pid_file);
    over(into.status_dir, from.status_dir);
    over(into.syslog.enabled, from.syslog.enabled);
    over(into.syslog.facility, from.syslog.facility);
    over(into.wait.min, from.wait.min);
    over(into.wait.max, from.wait.max);

    over(into.source_addr, from.source_addr);
    over(into.source_token, from.source_token);
    over(into.metrics_addr, from.metrics_addr);
    over(into.dry_run, from.dry_run);
    over(into.lost_found_prefix, from.lost_found_prefix);
    over(into.delete_guard.max_delete_percent, from.delete_guard.max_delete_percent);
    over(into.delete_guard.min_keys, from.delete_guard.min_keys);
    over(into.delete_guard.allow_empty_source, from.delete_guard.allow_empty_source);
    over(into.delete_guard.allow_mass_delete, from.delete_guard.allow_mass_delete);
    over(into.txn_max_ops, from.txn_max_ops);
    over(into.log_format, from.log_format);

    over(into.gate.mode, from.gate.mode);
    over(into.gate.vault_service, from.gate.vault_service);
    over(into.gate.vault_tag, from.gate.vault_tag);
    over(into.gate.vault_addrs, from.gate.vault_addrs);
    over(into.gate.vault_dc_map, from.gate.vault_dc_map);
    over(into.gate.key, from.gate.key);
    over(into.gate.settle, from.gate.settle);
    over(into.gate.interval, from.gate.interval);
    append(into.prefixes_needing_gate, from.prefixes_needing_gate);
    over(into.lock.prefix, from.lock.prefix);
    over(into.lock.ttl, from.lock.ttl);
    over(into.lock.delay, from.lock.delay);
    over(into.lock.name, from.lock.name);
    over(into.vault.path, from.vault.path);
    over(into.vault.datacenters, from.vault.datacenters);
    over(into.vault.record_key, from.vault.record_key);
    over(into.vault.failover_after, from.vault.failover_after);
    over(into.vault.proxy_ttl, from.vault.proxy_ttl);
}

std::string lock_key(std::string_view prefix)
{
    // consul lock: strings.TrimPrefix(prefix, "/"), then path.Join(prefix, ".lock"), which also
    // drops empty elements (doubled and trailing slashes).
    while (!prefix.empty() && prefix.front() == '/') prefix.remove_prefix(1);
    std::string out;
    for (char c : prefix) {
        if (c == '/' && (out.empty() || out.back() == '/'))
            continue;
        out += c;
    }
    if (!out.empty() && out.back() != '/')
        out += '/';
    return out + ".lock";
}

std::string default_lock_name(std::string_view prefix)
{
    // consul lock's default is "Consul lock for '<child command>' at '<prefix>'".
    while (!prefix.empty() && prefix.front() == '/') prefix.remove_prefix(1);
    return "Consul lock for 'consul-replicate' at '" + std::string(prefix) + "'";
}

result<config> build_config(const command_line& cli, const config_layer& files, const env_map& env)
{
    config_layer l = files;
    merge_into(l, cli.flags);

    config cfg;
    cfg.once = cli.once;
    cfg.diff = cli.diff;
    cfg.config_paths = cli.config_paths;

    // consul block (consul-template ConsulConfig.Finalize)
    auto& c = cfg.consul;
    auto const& lc = l.consul;
    if (lc.address)
        c.address = *lc.address;
    else if (auto v = from_env(env, {"CONSUL_HTTP_ADDR"}))
        c.address = *v;
    if (c.address.empty())  // `-consul-addr=""` means the client's default, as in the Go API
        c.address = std::string(default_consul_address);
    if (lc.token)
        c.token = *lc.token;
    else if (auto v = from_env(env, {"CONSUL_TOKEN", "CONSUL_HTTP_TOKEN"}))
        c.token = *v;

    take(c.auth.username, lc.auth.username);
    take(c.auth.password, lc.auth.password);
    c.auth.enabled = lc.auth.enabled.value_or(!c.auth.username.empty() || !c.auth.password.empty());

    take(c.retry.enabled, lc.retry.enabled);
    take(c.retry.attempts, lc.retry.attempts);
    take(c.retry.backoff, lc.retry.backoff);
    take(c.retry.max_backoff, lc.retry.max_backoff);

    take(c.ssl.verify, lc.ssl.verify);
    take(c.ssl.cert, lc.ssl.cert);
    take(c.ssl.key, lc.ssl.key);
    take(c.ssl.ca_cert, lc.ssl.ca_cert);
    take(c.ssl.ca_path, lc.ssl.ca_path);
    take(c.ssl.server_name, lc.ssl.server_name);
    // Any ssl setting turns ssl on, an explicit verify (even false) included.
    c.ssl.enabled = lc.ssl.enabled.value_or(
        !c.ssl.cert.empty() || !c.ssl.key.empty() || !c.ssl.ca_cert.empty() || !c.ssl.ca_path.empty() ||
        !c.ssl.server_name.empty() || lc.ssl.verify.has_value()
    );

    take(c.transport.dial_keep_alive, lc.transport.dial_keep_alive);
    take(c.transport.dial_timeout, lc.transport.dial_timeout);
    take(c.transport.disable_keep_alives, lc.transport.disable_keep_alives);
    take(c.transport.idle_conn_timeout, lc.transport.idle_conn_timeout);
    take(c.transport.max_idle_conns, lc.transport.max_idle_conns);
    take(c.transport.max_idle_conns_per_host, lc.transport.max_idle_conns_per_host);
    take(c.transport.tls_handshake_timeout, lc.transport.tls_handshake_timeout);

    cfg.prefixes = l.prefixes;
    cfg.excludes = l.excludes;
    take(cfg.kill_signal, l.kill_signal);
    take(cfg.reload_signal, l.reload_signal);

    std::optional<std::string> level_name = l.log_level;
    if (!level_name)
        level_name = from_env(env, {"CR_LOG", "CONSUL_REPLICATE_LOG"});
    if (level_name) {
        auto level = parse_log_level(*level_name);
        if (!level) {
            std::string upper = *level_name;
            for (auto& ch : upper) {
                if (ch >= 'a' && ch <= 'z')
                    ch = static_cast<char>(ch - 'a' + 'A');
            }
            return file_error(
                "invalid log level \"" + upper + "\", valid log levels are TRACE, DEBUG, INFO, WARN, ERR"
            );
        }
        cfg.level = *level;
    }
    if (l.log_format) {
        auto format = parse_log_format(*l.log_format);
        if (!format)
            return file_error(
                "invalid log format \"" + *l.log_format + "\", valid log formats are text, json"
            );
        cfg.format = *format;
    }

    take(cfg.max_stale, l.max_stale);
    take(cfg.pid_file, l.pid_file);
    take(cfg.status_dir, l.status_dir);  // a file's status_dir is honoured unless a flag sets it (#85)
    take(cfg.syslog.facility, l.syslog.facility);
    cfg.syslog.enabled =
        l.syslog.enabled.value_or(l.syslog.facility.has_value() && !l.syslog.facility->empty());

    take(cfg.wait.min, l.wait.min);
    cfg.wait.max = l.wait.max.value_or(4 * cfg.wait.min);

    take(cfg.source_addr, l.source_addr);
    take(cfg.source_token, l.source_token);
    take(cfg.metrics_addr, l.metrics_addr);
    take(cfg.dry_run, l.dry_run);
    take(cfg.lost_found_prefix, l.lost_found_prefix);
    if (!cfg.lost_found_prefix.empty() && !cfg.lost_found_prefix.ends_with('/'))
        cfg.lost_found_prefix += '/';
    take(cfg.delete_guard.max_delete_percent, l.delete_guard.max_delete_percent);
    take(cfg.delete_guard.min_keys, l.delete_guard.min_keys);
    take(cfg.delete_guard.allow_empty_source, l.delete_guard.allow_empty_source);
    take(cfg.delete_guard.allow_mass_delete, l.delete_guard.allow_mass_delete);
    take(cfg.txn_max_ops, l.txn_max_ops);
    if (l.lock.prefix)
        cfg.lock.prefix = *l.lock.prefix;
    else if (l.lock.ttl || l.lock.delay || l.lock.name)
        return file_error(
            "lock ttl, delay or name given without a lock prefix (-lock or lock { prefix = ... })"
        );
    take(cfg.lock.ttl, l.lock.ttl);
    cfg.lock.delay = l.lock.delay;
    take(cfg.lock.name, l.lock.name);

    if (l.gate.mode && !l.gate.mode->empty()) {
        auto mode = parse_gate_mode(*l.gate.mode);
        if (!mode)
            return file_error("invalid gate mode \"" + *l.gate.mode + "\", valid gate modes are vault, key");
        cfg.gate.mode = *mode;
    }
    take(cfg.gate.vault_service, l.gate.vault_service);
    take(cfg.gate.vault_tag, l.gate.vault_tag);
    take(cfg.gate.vault_addrs, l.gate.vault_addrs);
    take(cfg.gate.vault_dc_map, l.gate.vault_dc_map);
    take(cfg.gate.key, l.gate.key);
    take(cfg.gate.settle, l.gate.settle);
    take(cfg.gate.interval, l.gate.interval);
    cfg.promote = cli.promote;
    cfg.promote_force = cli.promote_force;
    if (l.vault.path && !l.vault.path->empty()) {
        // The vault preset: one gated pair of Vault's storage path, what is DC-local left out, the
        // designation as the gate, one active replicator per DC.
        take(cfg.vault.path, l.vault.path);
        take(cfg.vault.datacenters, l.vault.datacenters);
        take(cfg.vault.record_key, l.vault.record_key);
        take(cfg.vault.failover_after, l.vault.failover_after);
        take(cfg.vault.proxy_ttl, l.vault.proxy_ttl);
        if (cfg.gate.enabled())
            return file_error(fmt::format(
                "vault {{ }} decides the primary datacenter itself: remove the gate mode {:?} (-gate)",
                to_string(cfg.gate.mode)
            ));
        cfg.gate.mode = gate_mode::designated;
        if (!l.gate.settle)
            cfg.gate.settle = std::chrono::seconds{2};  // the designation is explicit: no flicker to sit out
        auto const& path = cfg.vault.path;
        if (cfg.prefixes.empty())
            cfg.prefixes.push_back(prefixes::prefix_spec{path, std::nullopt, path});
        for (auto const* rel : {"core/lock", "core/migration", "sys/expire/"}) {
            std::string ex = path + rel;
            if (std::find(cfg.excludes.begin(), cfg.excludes.end(), ex) == cfg.excludes.end())
                cfg.excludes.push_back(std::move(ex));
        }
        if (cfg.lock.prefix.empty())
            cfg.lock.prefix = "locks/consul-replicate";
    } else if (l.vault.datacenters || l.vault.record_key || l.vault.failover_after || l.vault.proxy_ttl) {
        return file_error("vault datacenters, record_key, failover_after or proxy_ttl given without vault path");
    }
    if (!cfg.promote.empty() && !cfg.vault.enabled())
        return file_error("-promote needs the vault configuration (vault { path = ... datacenters = [...] })");
    // A prefix without `@dc` is consul-replicate's "missing datacenter" unless there is a gate.
    if (!cfg.gate.enabled() && !l.prefixes_needing_gate.empty())
        return l.prefixes_needing_gate.front();

    if (auto err = validate(cfg))
        return *err;
    return cfg;
}

}  // namespace kvship::replicate
