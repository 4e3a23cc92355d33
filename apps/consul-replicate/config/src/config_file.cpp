#include "value.hpp"

#include <prefixes/filter.hpp>
#include <gotext/go_string.hpp>
#include <replicate/config_file.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <climits>
#include <cmath>
#include <initializer_list>

namespace kvship::replicate {

namespace {

using detail::node;
using kind = node::kind;
using gotext::go_quote;

std::string_view kind_name(kind k)
{
    switch (k) {
        case kind::null:
            return "null";
        case kind::boolean:
            return "bool";
        case kind::integer:
            return "int";
        case kind::floating:
            return "float64";
        case kind::string:
            return "string";
        case kind::list:
            return "list";
        case kind::object:
            return "object";
    }
    return "unknown";
}

std::string join(std::string_view path, std::string_view key)
{
    if (path.empty())
        return std::string(key);
    return std::string(path) + "." + std::string(key);
}

// What consul-replicate logged for its deprecated top-level keys (config.go) and consul-template
// for `consul = "..."`.
constexpr std::string_view warn_consul_string =
    "consul now accepts a stanza instead of a string. Update your configuration files and change consul = "
    "\"\" "
    "to consul { } instead.";
constexpr std::string_view warn_auth =
    "auth is now a child stanza inside consul instead of a top-level stanza. Update your configuration files "
    "and change auth {} to consul { auth { ... } } instead.";
constexpr std::string_view warn_path =
    "path is no longer a key in the configuration. Please remove it and use the CLI option instead.";
constexpr std::string_view warn_retry =
    "retry is now a child stanza for consul instead of a top-level stanza. Update your configuration files "
    "and "
    "change retry {} to consul { retry { ... } } instead.";
constexpr std::string_view warn_ssl =
    "ssl is now a child stanza for consul instead of a top-level stanza. Update your configuration files and "
    "change ssl {} to consul { ssl { ... } } instead.";
constexpr std::string_view warn_token =
    "token is now a child stanza inside consul instead of a top-level key. Update your configuration files "
    "and "
    "change token = \"...\" to consul { token = \"...\" } instead.";

class decoder
{
public:
    result<parsed_config> run(const node& root)
    {
        parsed_config out;
        if (!decode_top(root, out.layer))
            return file_error(std::move(error_));
        out.warnings = std::move(warnings_);
        out.layer.prefixes_needing_gate = std::move(needs_gate_);
        return out;
    }

private:
    std::string error_;
    std::vector<std::string> warnings_;
    std::vector<config_error> needs_gate_;

    bool fail(std::string message)
    {
        error_ = std::move(message);
        return false;
    }

    bool type_error(std::string_view path, std::string_view want, const node& got)
    {
        return fail(fmt::format(
            "'{}' expected type '{}', got unconvertible type '{}'", path, want, kind_name(got.type)
        ));
    }

    // mapstructure's ErrorUnused: every key the struct does not know, sorted.
    bool check_keys(const node& obj, std::string_view path, std::initializer_list<std::string_view> allowed)
    {
        std::vector<std::string> unknown;
        for (auto const& m : obj.members) {
            if (std::find(allowed.begin(), allowed.end(), m.key) == allowed.end())
                unknown.push_back(m.key);
        }
        if (unknown.empty())
            return true;
        std::sort(unknown.begin(), unknown.end());
        unknown.erase(std::unique(unknown.begin(), unknown.end()), unknown.end());
        std::string list;
        for (auto const& k : unknown) {
            if (!list.empty())
                list += ", ";
            list += k;
        }
        return fail(fmt::format("'{}' has invalid keys: {}", path, list));
    }

    // The value of the last `key` member (a repeated key or block: the last one wins), or null.
    static const node* last(const node& obj, std::string_view key)
    {
        const node* found = nullptr;
        for (auto const& m : obj.members) {
            if (m.key == key)
                found = &m.value;
        }
        if (found != nullptr && found->type == kind::null)
            return nullptr;
        return found;
    }

    // A single-instance block: an object, or a list of objects of which the last counts (HCL
    // turns every block into a list; consul-replicate keeps the last, flattenKeys).
    bool as_block(const node& v, std::string_view path, const node*& out)
    {
        out = nullptr;
        if (v.type == kind::object) {
            out = &v;
            return true;
        }
        if (v.type == kind::list) {
            for (auto const& item : v.items) {
                if (item.type != kind::object)
                    return type_error(path, "object", item);
            }
            if (!v.items.empty())
                out = &v.items.back();
            return true;
        }
        return type_error(path, "object", v);
    }

    bool read_string(const node& obj, std::string_view path, std::string_view key, opt<std::string>& out)
    {
        const node* v = last(obj, key);
        if (v == nullptr)
            return true;
        if (v->type != kind::string)
            return type_error(join(path, key), "string", *v);
        out = v->text;
        return true;
    }

    bool read_bool(const node& obj, std::string_view path, std::string_view key, opt<bool>& out)
    {
        const node* v = last(obj, key);
        if (v == nullptr)
            return true;
        if (v->type != kind::boolean)
            return type_error(join(path, key), "bool", *v);
        out = v->boolean;
        return true;
    }

    bool read_int(const node& obj, std::string_view path, std::string_view key, opt<int>& out)
    {
        const node* v = last(obj, key);
        if (v == nullptr)
            return true;
        std::int64_t i = 0;
        if (v->type == kind::integer) {
            i = v->integer;
        } else if (v->type == kind::floating && std::trunc(v->floating) == v->floating && std::fabs(v->floating) < 1e15) {
            i = static_cast<std::int64_t>(v->floating);
        } else {
            return type_error(join(path, key), "int", *v);
        }
        if (i < INT_MIN || i > INT_MAX)
            return fail(fmt::format("'{}' value {} out of range", join(path, key), i));
        out = static_cast<int>(i);
        return true;
    }

    // A duration: a Go duration string, or an integer number of nanoseconds.
    bool to_duration(const node& v, std::string_view path, nanos& out)
    {
        if (v.type == kind::string) {
            auto d = parse_go_duration(v.text);
            if (!d)
                return fail(fmt::format("'{}': {}", path, d.error()));
            out = *d;
            return true;
        }
        if (v.type == kind::integer) {
            out = nanos{v.integer};
            return true;
        }
        if (v.type == kind::floating && std::trunc(v.floating) == v.floating &&
            std::fabs(v.floating) < 9e18) {
            out = nanos{static_cast<std::int64_t>(v.floating)};
            return true;
        }
        return type_error(path, "duration", v);
    }

    bool read_duration(const node& obj, std::string_view path, std::string_view key, opt<nanos>& out)
    {
        const node* v = last(obj, key);
        if (v == nullptr)
            return true;
        nanos d{};
        if (!to_duration(*v, join(path, key), d))
            return false;
        out = d;
        return true;
    }

    // "" (or null) is SIGNULL in a file: the action is disabled.
    bool read_signal(const node& obj, std::string_view key, opt<signal_spec>& out)
    {
        auto const* v = [&]() -> const node* {
            const node* found = nullptr;
            for (auto const& m : obj.members) {
                if (m.key == key)
                    found = &m.value;
            }
            return found;
        }();
        if (v == nullptr)
            return true;
        if (v->type == kind::null || (v->type == kind::string && v->text.empty())) {
            out = signull();
            return true;
        }
        if (v->type != kind::string)
            return type_error(key, "string", *v);
        auto sig = parse_signal(v->text);
        if (!sig)
            return fail(fmt::format("'{}': {}", key, sig.error()));
        out = std::move(sig).value();
        return true;
    }

    void ignored(const node& obj, std::string_view path, std::string_view key)
    {
        if (last(obj, key) != nullptr)
            warnings_.push_back(fmt::format("{} is accepted for compatibility and ignored", join(path, key)));
    }

    bool decode_auth(const node& v, std::string_view path, auth_layer& out)
    {
        const node* obj = nullptr;
        if (!as_block(v, path, obj))
            return false;
        out = {};
        if (obj == nullptr)
            return true;
        return check_keys(*obj, path, {"enabled", "username", "password"}) &&
               read_bool(*obj, path, "enabled", out.enabled) &&
               read_string(*obj, path, "username", out.username) &&
               read_string(*obj, path, "password", out.password);
    }

    bool decode_retry(const node& v, std::string_view path, retry_layer& out)
    {
        const node* obj = nullptr;
        if (!as_block(v, path, obj))
            return false;
        out = {};
        if (obj == nullptr)
            return true;
        return check_keys(*obj, path, {"enabled", "attempts", "backoff", "max_backoff"}) &&
               read_bool(*obj, path, "enabled", out.enabled) &&
               read_int(*obj, path, "attempts", out.attempts) &&
               read_duration(*obj, path, "backoff", out.backoff) &&
               read_duration(*obj, path, "max_backoff", out.max_backoff);
    }

    bool decode_ssl(const node& v, std::string_view path, ssl_layer& out)
    {
        const node* obj = nullptr;
        if (!as_block(v, path, obj))
            return false;
        out = {};
        if (obj == nullptr)
            return true;
        if (!check_keys(
                *obj,
                path,
                {"enabled", "verify", "cert", "key", "ca_cert", "ca_path", "server_name", "ca_cert_bytes"}
            ))
            return false;
        ignored(*obj, path, "ca_cert_bytes");
        return read_bool(*obj, path, "enabled", out.enabled) && read_bool(*obj, path, "verify", out.verify) &&
               read_string(*obj, path, "cert", out.cert) && read_string(*obj, path, "key", out.key) &&
               read_string(*obj, path, "ca_cert", out.ca_cert) &&
               read_string(*obj, path, "ca_path", out.ca_path) &&
               read_string(*obj, path, "server_name", out.server_name);
    }

    bool decode_transport(const node& v, std::string_view path, transport_layer& out)
    {
        const node* obj = nullptr;
        if (!as_block(v, path, obj))
            return false;
        out = {};
        if (obj == nullptr)
            return true;
        if (!check_keys(
                *obj,
                path,
                {"dial_keep_alive",
                 "dial_timeout",
                 "disable_keep_alives",
                 "idle_conn_timeout",
                 "max_idle_conns",
                 "max_idle_conns_per_host",
                 "tls_handshake_timeout",
                 "max_conns_per_host"}
            ))
            return false;
        ignored(*obj, path, "max_conns_per_host");
        return read_duration(*obj, path, "dial_keep_alive", out.dial_keep_alive) &&
               read_duration(*obj, path, "dial_timeout", out.dial_timeout) &&
               read_bool(*obj, path, "disable_keep_alives", out.disable_keep_alives) &&
               read_duration(*obj, path, "idle_conn_timeout", out.idle_conn_timeout) &&
               read_int(*obj, path, "max_idle_conns", out.max_idle_conns) &&
               read_int(*obj, path, "max_idle_conns_per_host", out.max_idle_conns_per_host) &&
               read_duration(*obj, path, "tls_handshake_timeout", out.tls_handshake_timeout);
    }

    bool decode_consul(const node& v, consul_layer& out)
    {
        if (v.type == kind::string) {
            warnings_.emplace_back(warn_consul_string);
            out = {};
            out.address = v.text;
            return true;
        }
        const node* obj = nullptr;
        if (!as_block(v, "consul", obj))
            return false;
        out = {};
        if (obj == nullptr)
            return true;
        if (!check_keys(
                *obj,
                "consul",
                {"address", "token", "auth", "retry", "ssl", "transport", "namespace", "token_file"}
            ))
            return false;
        ignored(*obj, "consul", "namespace");
        ignored(*obj, "consul", "token_file");
        if (!read_string(*obj, "consul", "address", out.address) ||
            !read_string(*obj, "consul", "token", out.token))
            return false;
        if (auto const* a = last(*obj, "auth"); a != nullptr && !decode_auth(*a, "consul.auth", out.auth))
            return false;
        if (auto const* r = last(*obj, "retry"); r != nullptr && !decode_retry(*r, "consul.retry", out.retry))
            return false;
        if (auto const* s = last(*obj, "ssl"); s != nullptr && !decode_ssl(*s, "consul.ssl", out.ssl))
            return false;
        if (auto const* t = last(*obj, "transport");
            t != nullptr && !decode_transport(*t, "consul.transport", out.transport))
            return false;
        return true;
    }

    bool decode_prefix_item(const node& v, std::vector<prefixes::prefix_spec>& out)
    {
        // `@dc` may be left out with a gate; without one that is the error remembered here.
        prefixes::parse_options const optional_dc{.require_datacenter = false};
        if (v.type == kind::string) {
            auto p = prefixes::parse_prefix_spec(v.text, optional_dc);
            if (!p)
                return fail(fmt::format("prefix {}: {}", go_quote(v.text), p.error().message));
            if (!p->datacenter)
                needs_gate_.push_back(
                    file_error(fmt::format("prefix {}: missing datacenter", go_quote(v.text)))
                );
            out.push_back(std::move(p).value());
            return true;
        }
        if (v.type != kind::object)
            return type_error("prefix", "object", v);
        if (!check_keys(v, "prefix", {"source", "datacenter", "dc", "destination"}))
            return false;
        opt<std::string> source;
        opt<std::string> dc;
        opt<std::string> datacenter;
        opt<std::string> destination;
        if (!read_string(v, "prefix", "source", source) || !read_string(v, "prefix", "dc", dc) ||
            !read_string(v, "prefix", "datacenter", datacenter) ||
            !read_string(v, "prefix", "destination", destination))
            return false;
        if (!source) {
            // consul-replicate kept such a block unparsed and crashed at start.
            return fail("prefix block has no source");
        }
        std::string const dc_text = dc ? *dc : datacenter.value_or("");  // `dc` wins, as in Go
        auto p = prefixes::parse_prefix_block(*source, dc_text, destination.value_or(""), optional_dc);
        if (!p) {
            return fail(fmt::format("prefix {{source = {}}}: {}", go_quote(*source), p.error().message));
        }
        if (!p->datacenter) {
            needs_gate_.push_back(
                file_error(fmt::format("prefix {{source = {}}}: missing datacenter", go_quote(*source)))
            );
        }
        out.push_back(std::move(p).value());
        return true;
    }

    bool decode_prefixes(const node& v, std::vector<prefixes::prefix_spec>& out)
    {
        if (v.type == kind::list) {
            for (auto const& item : v.items) {
                if (!decode_prefix_item(item, out))
                    return false;
            }
            return true;
        }
        return decode_prefix_item(v, out);
    }

    bool decode_exclude_item(const node& v, std::vector<std::string>& out)
    {
        std::string text;
        if (v.type == kind::string) {
            text = v.text;
        } else if (v.type == kind::object) {
            if (!check_keys(v, "exclude", {"source"}))
                return false;
            opt<std::string> source;
            if (!read_string(v, "exclude", "source", source))
                return false;
            text = source.value_or("");
        } else {
            return type_error("exclude", "object", v);
        }
        auto e = prefixes::parse_exclude(text);
        if (!e) {
            // consul-replicate accepted an empty exclude block, which then matched every key.
            return fail(fmt::format("exclude {}: {}", go_quote(text), e.error().message));
        }
        out.push_back(std::move(e).value());
        return true;
    }

    bool decode_excludes(const node& v, std::vector<std::string>& out)
    {
        if (v.type == kind::list) {
            for (auto const& item : v.items) {
                if (!decode_exclude_item(item, out))
                    return false;
            }
            return true;
        }
        return decode_exclude_item(v, out);
    }

    bool decode_syslog(const node& v, syslog_layer& out)
    {
        const node* obj = nullptr;
        if (!as_block(v, "syslog", obj))
            return false;
        out = {};
        if (obj == nullptr)
            return true;
        if (!check_keys(*obj, "syslog", {"enabled", "facility", "name"}))
            return false;
        ignored(*obj, "syslog", "name");
        return read_bool(*obj, "syslog", "enabled", out.enabled) &&
               read_string(*obj, "syslog", "facility", out.facility);
    }

    bool decode_wait(const node& v, wait_layer& out)
    {
        out = {};
        if (v.type == kind::string) {
            auto w = parse_wait(v.text);
            if (!w)
                return fail(fmt::format("'wait': {}", w.error()));
            out.min = w->min;
            out.max = w->max;
            return true;
        }
        const node* obj = nullptr;
        if (!as_block(v, "wait", obj))
            return false;
        if (obj == nullptr)
            return true;
        // `bool` is the key consul-template's struct tag really uses for "enabled"; it has no effect.
        opt<bool> enabled;
        return check_keys(*obj, "wait", {"min", "max", "bool"}) && read_bool(*obj, "wait", "bool", enabled) &&
               read_duration(*obj, "wait", "min", out.min) && read_duration(*obj, "wait", "max", out.max);
    }

    // kvship: gate { mode vault_service vault_tag vault_addrs vault_dc_map key settle interval }.
    bool decode_gate(const node& v, gate_layer& out)
    {
        const node* obj = nullptr;
        if (!as_block(v, "gate", obj))
            return false;
        out = {};
        if (obj == nullptr)
            return true;
        if (!check_keys(
                *obj,
                "gate",
                {"mode",
                 "vault_service",
                 "vault_tag",
                 "vault_addrs",
                 "vault_dc_map",
                 "key",
                 "settle",
                 "interval"}
            ))
            return false;
        if (auto const* a = last(*obj, "vault_addrs"); a != nullptr) {
            out.vault_addrs.emplace();
            auto const* items = a->type == kind::list ? &a->items : nullptr;
            if (items == nullptr) {
                if (a->type != kind::string)
                    return type_error("gate.vault_addrs", "list", *a);
                out.vault_addrs->push_back(a->text);
            } else {
                for (auto const& item : *items) {
                    if (item.type != kind::string)
                        return type_error("gate.vault_addrs", "string", item);
                    out.vault_addrs->push_back(item.text);
                }
            }
        }
        if (auto const* m = last(*obj, "vault_dc_map"); m != nullptr) {
            const node* map = nullptr;
            if (!as_block(*m, "gate.vault_dc_map", map))
                return false;
            out.vault_dc_map.emplace();
            for (auto const& e : map != nullptr ? map->members : std::vector<detail::member>{}) {
                if (e.value.type != kind::string)
                    return type_error("gate.vault_dc_map." + e.key, "string", e.value);
                (*out.vault_dc_map)[e.key] = e.value.text;
            }
        }
        return read_string(*obj, "gate", "mode", out.mode) &&
               read_string(*obj, "gate", "vault_service", out.vault_service) &&
               read_string(*obj, "gate", "vault_tag", out.vault_tag) &&
               read_string(*obj, "gate", "key", out.key) &&
               read_duration(*obj, "gate", "settle", out.settle) &&
               read_duration(*obj, "gate", "interval", out.interval);
    }

    bool decode_lock(const node& v, lock_layer& out)
    {
        const node* obj = nullptr;
        if (!as_block(v, "lock", obj))
            return false;
        out = {};
        if (obj == nullptr)
            return true;
        return check_keys(*obj, "lock", {"prefix", "ttl", "delay", "name"}) &&
               read_string(*obj, "lock", "prefix", out.prefix) &&
               read_duration(*obj, "lock", "ttl", out.ttl) &&
               read_duration(*obj, "lock", "delay", out.delay) && read_string(*obj, "lock", "name", out.name);
    }

    // kvship: vault { path datacenters record_key failover_after proxy_ttl }.
    bool decode_vault(const node& v, vault_ha_layer& out)
    {
        const node* obj = nullptr;
        if (!as_block(v, "vault", obj))
            return false;
        out = {};
        if (obj == nullptr)
            return true;
        if (!check_keys(*obj, "vault", {"path", "datacenters", "record_key", "failover_after", "proxy_ttl"}))
            return false;
        if (auto const* a = last(*obj, "datacenters"); a != nullptr) {
            out.datacenters.emplace();
            if (a->type != kind::list)
                return type_error("vault.datacenters", "list", *a);
            for (auto const& item : a->items) {
                if (item.type != kind::string)
                    return type_error("vault.datacenters", "string", item);
                out.datacenters->push_back(item.text);
            }
        }
        return read_string(*obj, "vault", "path", out.path) &&
               read_string(*obj, "vault", "record_key", out.record_key) &&
               read_duration(*obj, "vault", "failover_after", out.failover_after) &&
               read_duration(*obj, "vault", "proxy_ttl", out.proxy_ttl);
    }

    bool decode_top(const node& root, config_layer& l)
    {
        if (root.type != kind::object)
            return fail("error converting config: the top level must be an object");
        if (!check_keys(
                root,
                "",
                {"consul",
                 "prefix",
                 "exclude",
                 "kill_signal",
                 "reload_signal",
                 "log_level",
                 "max_stale",
                 "pid_file",
                 "status_dir",
                 "syslog",
                 "wait",
                 // deprecated
                 "auth",
                 "ssl",
                 "token",
                 "retry",
                 "path",
                 // kvship
                 "source_addr",
                 "source_token",
                 "metrics_addr",
                 "dry_run",
                 "max_delete_percent",
                 "max_delete_min_keys",
                 "allow_empty_source",
                 "allow_mass_delete",
                 "txn_max_ops",
                 "log_format",
                 "gate",
                 "lock",
                 "vault",
                 "lost_found_prefix"}
            ))
            return false;

        if (auto const* c = last(root, "consul"); c != nullptr && !decode_consul(*c, l.consul))
            return false;

        // Deprecated top-level keys move under consul, over what the consul block said.
        if (auto const* a = last(root, "auth"); a != nullptr) {
            warnings_.emplace_back(warn_auth);
            if (!decode_auth(*a, "auth", l.consul.auth))
                return false;
        }
        if (last(root, "path") != nullptr)
            warnings_.emplace_back(warn_path);
        if (auto const* r = last(root, "retry"); r != nullptr) {
            warnings_.emplace_back(warn_retry);
            nanos d{};
            if (!to_duration(*r, "retry", d))
                return false;
            l.consul.retry = retry_layer{};
            l.consul.retry.backoff = d;
            l.consul.retry.max_backoff = d;
        }
        if (auto const* s = last(root, "ssl"); s != nullptr) {
            warnings_.emplace_back(warn_ssl);
            if (!decode_ssl(*s, "ssl", l.consul.ssl))
                return false;
        }
        if (auto const* t = last(root, "token"); t != nullptr) {
            warnings_.emplace_back(warn_token);
            if (t->type != kind::string)
                return type_error("token", "string", *t);
            l.consul.token = t->text;
        }

        for (auto const& m : root.members) {
            if (m.value.type == kind::null)
                continue;
            if (m.key == "prefix" && !decode_prefixes(m.value, l.prefixes))
                return false;
            if (m.key == "exclude" && !decode_excludes(m.value, l.excludes))
                return false;
        }

        if (!read_signal(root, "kill_signal", l.kill_signal) ||
            !read_signal(root, "reload_signal", l.reload_signal))
            return false;
        if (!read_string(root, "", "log_level", l.log_level) ||
            !read_duration(root, "", "max_stale", l.max_stale) ||
            !read_string(root, "", "pid_file", l.pid_file) ||
            !read_string(root, "", "status_dir", l.status_dir))
            return false;
        if (auto const* s = last(root, "syslog"); s != nullptr && !decode_syslog(*s, l.syslog))
            return false;
        if (auto const* w = last(root, "wait"); w != nullptr && !decode_wait(*w, l.wait))
            return false;
        if (auto const* g = last(root, "gate"); g != nullptr && !decode_gate(*g, l.gate))
            return false;
        if (auto const* k = last(root, "lock"); k != nullptr && !decode_lock(*k, l.lock))
            return false;
        if (auto const* vb = last(root, "vault"); vb != nullptr && !decode_vault(*vb, l.vault))
            return false;

        return read_string(root, "", "source_addr", l.source_addr) &&
               read_string(root, "", "source_token", l.source_token) &&
               read_string(root, "", "metrics_addr", l.metrics_addr) &&
               read_string(root, "", "lost_found_prefix", l.lost_found_prefix) &&
               read_bool(root, "", "dry_run", l.dry_run) &&
               read_int(root, "", "max_delete_percent", l.delete_guard.max_delete_percent) &&
               read_int(root, "", "max_delete_min_keys", l.delete_guard.min_keys) &&
               read_bool(root, "", "allow_empty_source", l.delete_guard.allow_empty_source) &&
               read_bool(root, "", "allow_mass_delete", l.delete_guard.allow_mass_delete) &&
               read_int(root, "", "txn_max_ops", l.txn_max_ops) &&
               read_string(root, "", "log_format", l.log_format);
    }
};

bool looks_like_json(std::string_view text)
{
    for (char c : text) {
        if (c == ' ' || c == '\t' || c == '\r' || c == '\n')
            continue;
        return c == '{';
    }
    return false;
}

}  // namespace

result<parsed_config> parse_config_text(std::string_view text)
{
    auto tree = looks_like_json(text) ? detail::parse_json(text) : detail::parse_hcl(text);
    if (!tree)
        return file_error("error decoding config: " + tree.error());
    return decoder().run(tree.value());
}

}  // namespace kvship::replicate
