// consul-replicate's configuration file (compat.md §2): HCL v1 or its JSON form, decoded into a
// config_layer. Pure: the caller passes the text (loader.hpp reads files).
#pragma once

#include <replicate/config.hpp>

#include <string>
#include <string_view>
#include <vector>

namespace kvship::replicate {

struct parsed_config
{
    config_layer layer;
    std::vector<std::string> warnings;  // deprecation texts, e.g. the top-level `token` move
};

// Decodes one file's text. As HCL v1 does, text whose first non-blank character is `{` is JSON;
// anything else is read as HCL (a subset: `key = value`, `key { ... }` blocks, strings, heredocs,
// numbers, booleans, lists, comments; no interpolation, no keyed `key "label" {}` blocks).
//
// Keys (lowercase): consul {address token auth{enabled username password}
// retry{enabled attempts backoff max_backoff} ssl{enabled verify cert key ca_cert ca_path
// server_name} transport{dial_keep_alive dial_timeout disable_keep_alives idle_conn_timeout
// max_idle_conns max_idle_conns_per_host tls_handshake_timeout}}, prefix (block
// {source datacenter|dc destination}, "src@dc:dest" string, or a list of either), exclude (block
// {source}, string, or list), kill_signal, reload_signal, log_level, max_stale, pid_file,
// status_dir, syslog {enabled facility}, wait {min max} or "min:max"; kvship: source_addr,
// source_token, metrics_addr, dry_run, max_delete_percent, max_delete_min_keys,
// allow_empty_source, allow_mass_delete, txn_max_ops, log_format, gate {mode vault_service
// vault_tag vault_addrs (list) vault_dc_map (object: leader address = DC) key settle interval}.
// A prefix without `@dc` is kept, with its `prefix "x": missing datacenter` error in
// layer.prefixes_needing_gate (the error unless the resolved configuration has a gate).
// Durations are strings ("10s") or integers (nanoseconds). Repeated single blocks: the last wins.
// Deprecated forms work with a WARN: `consul = "addr"`, top-level auth {}, ssl {}, token, retry
// (sets backoff and max_backoff) and path (ignored).
// Errors (exit 15) name the key: `'' has invalid keys: foo`, `'consul.ssl' has invalid keys: x`,
// `'max_stale' ...: time: invalid duration "x"`, `prefix: missing datacenter`.
[[nodiscard]] result<parsed_config> parse_config_text(std::string_view text);

}  // namespace kvship::replicate
