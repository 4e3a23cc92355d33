// An HTTP/1.1 server over Beast for kvship's programs (consul-kvsim's API, the replicator's metrics):
// keep-alive, many concurrent idle long-poll connections, a request body limit enforced from the
// header before the body is read, one handler for routing, graceful shutdown.
#pragma once

#include <transport/beast.hpp>

#include <chrono>
#include <cstddef>
#include <functional>
#include <limits>
#include <memory>
#include <optional>
#include <string>

namespace kvship::transport {

using http_request = http::request<http::string_body>;
using http_response = http::response<http::string_body>;

// What the handler sees besides the request.
struct request_context
{
    tcp::endpoint remote;
};

// What the handler answers. `cut_after` > 0 drops the connection after that many bytes of the
// serialized response have been written (fault injection); `close` ends the connection after it.
struct http_reply
{
    http_response res;
    std::size_t cut_after = 0;
    bool close = false;
};

using http_handler = std::function<awaitable<http_reply>(http_request, request_context)>;

// Called when a request's body is over the limit, before the body is read (Content-Length known) or
// as soon as it exceeds it (chunked). The connection is closed after this answer.
using too_large_handler =
    std::function<http_reply(http::request_header<> const&, std::optional<std::uint64_t> content_length)>;

struct server_params
{
    std::size_t body_limit = 512 * 1024;
    std::size_t header_limit = 64 * 1024;
    std::chrono::seconds idle_timeout{std::chrono::minutes(15)};  // keep-alive connection with no request
    std::chrono::seconds read_timeout{std::chrono::seconds(60)};  // one request, header to end of body
    std::chrono::seconds write_timeout{std::chrono::seconds(60)};
    std::size_t max_connections = 20000;
    // At max_connections: false answers the new connection 429 (as Consul's per-client limit does);
    // true closes the longest-waiting idle connection (one sending no request, or one too slowly) to
    // make room, so idle or slow clients cannot lock out a health probe; 429 only when every
    // connection is busy in a handler.
    bool evict_idle_at_cap = false;
};

// What a request head (request line and fields, up to the blank line) says about its framing, read from
// the raw bytes before Beast parses them, so that we frame as Go's net/http (Consul) does: at most one
// Transfer-Encoding field, and only "chunked" (any case, blanks trimmed), else 501; with chunked a
// Content-Length field is ignored (dropped), where Beast would refuse the pair.
struct request_framing
{
    bool unsupported_coding = false;  // answer 501 "Unsupported transfer encoding" and close
    bool drop_content_length = false;  // chunked: remove the Content-Length fields before parsing
};
request_framing scan_request_framing(std::string_view head);

// The head with every Content-Length field removed (for request_framing::drop_content_length).
std::string without_content_length(std::string_view head);

// Accepts on one endpoint and runs each connection as a coroutine on the acceptor's executor.
class http_server
{
public:
    http_server(asio::any_io_executor ex, server_params params, http_handler handler,
                too_large_handler too_large);
    ~http_server();
    http_server(http_server const&) = delete;
    http_server& operator=(http_server const&) = delete;

    // Binds and listens; throws boost::system::system_error on failure (address in use, bad address).
    void listen(tcp::endpoint ep);
    // The bound endpoint (useful with port 0).
    tcp::endpoint local_endpoint() const;
    // Starts accepting. Runs until stop().
    void start();
    // Stops accepting, closes idle connections at once and every other one after its in-flight
    // response. Handlers still running (long polls) are the application's to end.
    void stop();

    std::size_t connection_count() const;

private:
    struct impl;
    std::shared_ptr<impl> impl_;
};

// "host:port" → endpoint; throws std::invalid_argument naming the problem.
tcp::endpoint parse_endpoint(std::string const& host_port);

}  // namespace kvship::transport
