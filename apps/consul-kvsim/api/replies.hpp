// Building the sim's HTTP answers the way Consul's handlers write them (consul-api.md §0.3-§0.4, §1):
// plain-text errors, JSON bodies, and the query-meta headers of reads.
#pragma once

#include "store/store.hpp"

#include <transport/http_server.hpp>

#include <string>

namespace kvship::kvsim::api {

using reply = transport::http_reply;

// `body` as text/plain; charset=utf-8 (Go's detection for Fprint'ed errors); no Content-Type when empty.
[[nodiscard]] reply text_reply(http::status status, std::string body);
// `body` (already JSON) as application/json.
[[nodiscard]] reply json_reply(http::status status, std::string body);
[[nodiscard]] reply empty_reply(http::status status);

// X-Consul-Index (0 sent as 1), X-Consul-KnownLeader, X-Consul-LastContact, X-Consul-Query-Backend.
void set_read_meta(reply& r, index_t index);
// Only X-Consul-KnownLeader and X-Consul-LastContact (the read-only txn path).
void set_leader_meta(reply& r);

}  // namespace kvship::kvsim::api
