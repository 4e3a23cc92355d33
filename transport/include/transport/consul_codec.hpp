// JSON of Consul's HTTP API, encoded and decoded in one TU (src/kv_codec.cpp, the only RapidJSON
// user in transport). Decoders are strict: the whole body must be the expected shape, every
// number an exact uint64, or the answer is errc::malformed_response with what and where, never a
// partial result. They take the body by value and parse it in place, so pass it with std::move.
#pragma once

#include <transport/consul_error.hpp>
#include <transport/consul_types.hpp>

#include <string>
#include <string_view>
#include <vector>

namespace kvship::transport {

// A KV listing (GET /v1/kv/<p>?recurse, or a single key): a JSON array of entries. Values are
// base64-decoded; `"Value": null` stays nullopt; `Session` may be absent.
[[nodiscard]] consul_result<std::vector<kv_entry>> decode_kv_entries(std::string body);
// A JSON array of strings (?keys listings, /v1/catalog/datacenters).
[[nodiscard]] consul_result<std::vector<std::string>> decode_string_array(std::string body);
// A /v1/txn answer: `committed` for a 200 (Results, Errors null), false for a 409 (Errors).
[[nodiscard]] consul_result<txn_outcome> decode_txn_response(std::string body, bool committed);
// GET /v1/agent/self: Config.Datacenter and Config.NodeName.
[[nodiscard]] consul_result<agent_info> decode_agent_self(std::string body);
// A bare JSON `true` or `false` (KV PUT/DELETE, session destroy).
[[nodiscard]] consul_result<bool> decode_bool(std::string body);
// PUT /v1/session/create: {"ID": "..."} → the ID.
[[nodiscard]] consul_result<std::string> decode_session_id(std::string body);
// PUT /v1/session/renew/<id>: [session] → its TTL string ("" when it has none).
[[nodiscard]] consul_result<std::string> decode_session_renew(std::string body);

// GET /v1/health/service/<name>: [{"Node": {...}, "Service": {...}, "Checks": [...]}, ...].
// Every instance needs a string Node.Node and Service.Service, a Service.Port in 0..65535 and an
// address (Service.Address, else Node.Address); Tags may be null.
[[nodiscard]] consul_result<std::vector<service_instance>> decode_health_service(std::string body);
// GET /v1/catalog/service/<name>: [{"Node", "Address", "Datacenter", "ServiceAddress", "ServicePort",
// "ServiceTags", ...}, ...], checked the same way.
[[nodiscard]] consul_result<std::vector<service_instance>> decode_catalog_service(std::string body);
// Vault's GET /v1/sys/leader: an object with a string "leader_address" (an http(s)://host:port URL
// or ""), booleans "ha_enabled" and "is_self" when present.
[[nodiscard]] consul_result<vault_leader> decode_vault_leader(std::string body);

// The /v1/txn request body: [{"KV": {"Verb": ..., "Key": ..., ...}}, ...].
[[nodiscard]] std::string encode_txn(std::vector<txn_op> const& ops);
// The /v1/session/create body; empty fields are left out.
[[nodiscard]] std::string encode_session_create(session_params const& p);
// Consul's name of a verb ("set", "delete-cas", ...).
[[nodiscard]] std::string_view txn_verb_name(txn_verb v);

}  // namespace kvship::transport
