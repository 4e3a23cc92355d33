// Building the sim's HTTP answers the way Consul's handlers write them (consul-api.md §0.3-§0.4, §1):
// plain-text errors, JSON bodies, and the query-meta headers of reads.
#pragma once

#include "store/store.hpp"

#include <transport/http_server.hpp>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace kvship::kvsim::api {

using reply = transport::http_reply;

// `body` as text/plain; charset=utf-8 (Go's detection for Fprint'ed errors); no Content-Type when empty.
[[nodiscard]] reply text_reply(http::status status, std::string body);
// `body` (already JSON) as application/json.
[[nodiscard]] reply json_reply(http::status status, std::string body);
[[nodiscard]] reply empty_reply(http::status status);

// Consul's limits.kv_max_value_size and txn_max_req_len (both 512 KiB).
inline constexpr std::size_t kv_max_value_size = 512 * 1024;

// 413 for a body over 512 KiB, Consul's text for KV (`txn` false) or /v1/txn; `length` is the declared
// Content-Length when there was one.
[[nodiscard]] reply body_too_large(std::optional<std::uint64_t> length, bool txn);
// 403 "ACL not found" (unknown token) and 403 "Permission denied: ..." (missing right).
[[nodiscard]] reply acl_not_found();
// 500 "raft apply failed: <error>": a KV write the state store refused (e.g. `invalid session "x"`), as the
// KVS.Apply RPC of Consul 1.10 wraps it.
[[nodiscard]] reply raft_apply_failed(std::string const& error);
[[nodiscard]] reply permission_denied(
    authorizer const& acl, std::string_view permission, std::string_view name
);

// X-Consul-Index (0 sent as 1), X-Consul-KnownLeader, X-Consul-LastContact, X-Consul-Query-Backend.
void set_read_meta(reply& r, index_t index);
// Only X-Consul-KnownLeader and X-Consul-LastContact (the read-only txn path).
void set_leader_meta(reply& r);

}  // namespace kvship::kvsim::api
