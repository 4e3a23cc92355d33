// The async Consul client the replicator drives: KV reads (blocking queries included), /v1/txn,
// small KV writes, agent/self, the datacenter list and sessions, over a keep-alive connection
// pool, plain or TLS. Every operation returns awaitable<consul_result<T>>.
//
// Safety: a 403, a 5xx, a timeout, a truncated or malformed response, a missing X-Consul-Index or
// X-Consul-KnownLeader other than "true" is an error, never an empty listing. A 404 on a listing
// is an empty listing carrying its X-Consul-Index.
#pragma once

#include <logging/logger.hpp>
#include <transport/asio.hpp>
#include <transport/consul_error.hpp>
#include <transport/consul_retry.hpp>
#include <transport/consul_types.hpp>
#include <transport/tls.hpp>

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace kvship::transport {

// The client logs through the programs' one logger type.
using logging::log_level;

struct consul_params
{
    // "host:port" of the agent. "http://" is accepted; "https://" also turns TLS on; "unix:///path"
    // speaks plain HTTP over a Unix domain socket.
    std::string address = "127.0.0.1:8500";
    // Sent as X-Consul-Token; never in a URL, a log line or an error message.
    std::string token{};
    // "user:password" for HTTP basic auth (consul-replicate's -consul-auth); empty: none. Sent as
    // `Authorization: Basic ...`, and kept out of logs and errors like the token.
    std::string basic_auth{};
    tls_params tls{};
    // Deadline of a whole non-blocking request (connect, write, read).
    std::chrono::milliseconds request_timeout{std::chrono::seconds(30)};
    // A blocking read's deadline is wait + wait/16 + blocking_margin.
    std::chrono::milliseconds blocking_margin{std::chrono::seconds(5)};
    std::chrono::milliseconds connect_timeout{std::chrono::seconds(5)};
    // The largest response body accepted: a 100,000-key listing is ~24 MB of JSON, Beast's
    // default of 8 MB is far too small.
    std::size_t body_limit = std::size_t{1} << 30;
    std::size_t max_idle_connections = 16;  // per address
    // The rest of consul-replicate's `transport` block (see client_params): 0 / false = off.
    std::size_t max_idle_total = 0;
    std::chrono::milliseconds idle_timeout{0};
    std::chrono::milliseconds tcp_keep_alive{0};
    bool disable_keep_alives = false;
    std::chrono::milliseconds tls_handshake_timeout{0};
    // Reads (list, keys, get, agent_self, datacenters) retry on is_retryable() errors; writes never.
    // Each call starts its own backoff from retry 0, so a success resets the count (as
    // consul-replicate does); the last error comes back when the attempts run out.
    retry_params retry{};
    // Retries at warn, each response at debug; lines carry no component (default: logs nothing).
    logging::logger log{};
};

// Thread safety: none; use from the executor it was created with. The client must outlive every
// operation it started. Cancellation: a terminal signal on the calling coroutine aborts the
// request (errc::cancelled); to let a *total* signal reach a blocking read, the caller resets its
// cancellation state with enable_total_cancellation() before the call.
class consul_client
{
public:
    virtual ~consul_client() = default;

    // GET /v1/kv/<prefix>?recurse: every entry whose key starts with `prefix` (raw prefix, not
    // path-aware). 404 → empty entries with the index.
    virtual awaitable<consul_result<kv_listing>> list(std::string prefix, query_options q) = 0;
    // Receives a streamed listing's entries as they are decoded, in listing order, with the read's
    // meta headers. An error it returns ends the read (list_stream returns that error).
    using entry_sink =
        std::function<awaitable<std::optional<consul_error>>(query_meta const&, std::vector<kv_entry>)>;
    // GET /v1/kv/<prefix>?recurse like list(), but the body is decoded as it arrives (see
    // kv_listing_decoder) and handed to `sink` about `batch` entries at a time; it is never held
    // whole. The result carries the meta and no entries; only a result without error means the
    // entries delivered were the complete listing. Checked before any entry is delivered: the
    // status (403, 5xx ...: an error), the meta headers (no index, X-Consul-KnownLeader not true),
    // the Content-Encoding. A body that turns out truncated or malformed is an error after some
    // entries were delivered. Retried like list() while nothing has been delivered.
    virtual awaitable<consul_result<kv_listing>> list_stream(
        std::string prefix, query_options q, entry_sink sink, std::size_t batch
    ) = 0;
    // GET /v1/kv/<prefix>?keys[&separator=s]. 404 → empty.
    virtual awaitable<consul_result<key_listing>> keys(std::string prefix, std::optional<std::string> separator,
                                                       query_options q) = 0;
    // GET /v1/kv/<key>: the entry, or nullopt on 404 (the index is set either way).
    virtual awaitable<consul_result<kv_get_result>> get(std::string key, query_options q) = 0;

    // PUT /v1/txn[?dc=]: 200 → committed results, 409 → rolled back with Consul's Errors (data, not
    // an error). 413 → errc::too_many_operations (limit = the server's op limit) or
    // errc::request_too_large (limit = its byte limit). Never retried.
    virtual awaitable<consul_result<txn_outcome>> txn(std::vector<txn_op> ops, std::string dc) = 0;
    // PUT /v1/kv/<key> with the value as body: Consul's true/false (false: cas/acquire/release lost).
    virtual awaitable<consul_result<bool>> put(std::string key, std::string value, put_options opts) = 0;
    // DELETE /v1/kv/<key>[?cas=]: Consul's true/false.
    virtual awaitable<consul_result<bool>> remove(std::string key, std::optional<std::uint64_t> cas,
                                                  std::string dc) = 0;

    // GET /v1/agent/self: the agent's datacenter and node name.
    virtual awaitable<consul_result<agent_info>> agent_self() = 0;
    // GET /v1/catalog/datacenters, closest first.
    virtual awaitable<consul_result<std::vector<std::string>>> datacenters() = 0;

    // GET /v1/health/service/<name>[?tag=][&passing][&dc=]: the instances (an unknown service is an
    // empty list). Health and catalog reads carry no X-Consul-Index requirement. Retried like reads.
    virtual awaitable<consul_result<std::vector<service_instance>>> health_service(
        std::string name, health_query q
    ) = 0;
    // GET /v1/catalog/service/<name>[?dc=]: the registered instances, healthy or not.
    virtual awaitable<consul_result<std::vector<service_instance>>> catalog_service(
        std::string name, std::string dc
    ) = 0;
    // Vault's GET <base_url>/v1/sys/leader (base_url "http(s)://host:port"; https uses the client's
    // TLS settings for trust). Sends no Consul token and no basic auth. Not retried: the gate polls.
    virtual awaitable<consul_result<vault_leader>> vault_sys_leader(std::string base_url) = 0;

    // PUT /v1/session/create → the session ID.
    virtual awaitable<consul_result<std::string>> session_create(session_params p, std::string dc) = 0;
    // PUT /v1/session/renew/<id> → the TTL the server returned. Unknown id → errc::not_found.
    virtual awaitable<consul_result<std::string>> session_renew(std::string id, std::string dc) = 0;
    // PUT /v1/session/destroy/<id> → true (also for an unknown id).
    virtual awaitable<consul_result<bool>> session_destroy(std::string id, std::string dc) = 0;

    // Closes the idle pooled connections.
    virtual void close_idle() = 0;
};

// Throws std::runtime_error (naming the file, never the token) when TLS files cannot be used,
// and std::invalid_argument for an address with an unknown scheme or a token that could not be
// sent as a header (spaces, control or non-ASCII bytes).
std::unique_ptr<consul_client> create_consul_client(asio::any_io_executor ex, consul_params params);

}  // namespace kvship::transport
