// An HTTP/1.1 client over Beast with a keep-alive connection pool per address. Used by
// consul-kvsim to forward ?dc= requests and by the replicator's Consul client.
#pragma once

#include <transport/beast.hpp>
#include <transport/http_server.hpp>

#include <boost/system/result.hpp>

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

namespace boost::asio::ssl {
class context;
}

namespace kvship::transport {

struct client_params
{
    std::size_t body_limit = 512ull * 1024 * 1024;  // the largest prefix listing we accept
    std::chrono::milliseconds connect_timeout{5000};
    std::size_t max_idle_per_host = 16;
    // Idle connections kept over all addresses together; 0 = no limit (Go's MaxIdleConns).
    std::size_t max_idle_total = 0;
    // An idle pooled connection older than this is closed instead of reused; 0 = no limit (Go's
    // IdleConnTimeout).
    std::chrono::milliseconds idle_timeout{0};
    // TCP keep-alive probes on every TCP connection, first probe and interval both this period;
    // 0 = off (Go's Dialer.KeepAlive).
    std::chrono::milliseconds tcp_keep_alive{0};
    // One request per connection: `Connection: close` is sent and nothing is pooled (Go's
    // DisableKeepAlives).
    bool disable_keep_alives = false;
    // Bound on the TLS handshake, within the request's own deadline; 0 = the request deadline only.
    std::chrono::milliseconds tls_handshake_timeout{0};
    // Set: every connection speaks TLS with this context (see transport/tls.hpp). With tls_verify,
    // the chain is checked and so is the name (tls_server_name, else the host of the address);
    // tls_server_name is also sent as SNI (the host is when it is not an IP address).
    std::shared_ptr<boost::asio::ssl::context> tls;
    bool tls_verify = true;
    std::string tls_server_name;
};

class http_client
{
public:
    http_client(asio::any_io_executor ex, client_params params = {});
    ~http_client();
    http_client(http_client const&) = delete;
    http_client& operator=(http_client const&) = delete;

    // Sends `req` to `address` ("host:port", or "unix:/path/to/socket" for a Unix domain socket,
    // plain HTTP only) and reads the whole response; the exchange (connect,
    // write, read) must finish within `timeout`. Reuses an idle keep-alive connection when one is
    // there, and retries once on a fresh connection when a reused one turns out closed before any
    // response byte arrived. Errors: connection refused, timed out (asio::error::timed_out),
    // body over the limit, malformed response, TLS handshake or verification failure (the
    // asio::ssl error category). Cancellation: total/terminal abort the exchange.
    awaitable<boost::system::result<http_response>> send(std::string address, http_request req,
                                                         std::chrono::milliseconds timeout);

    // Called with the response head once it is in: true streams the body to the body callback,
    // false reads it whole into the returned response (e.g. an error status whose body is wanted).
    using head_callback = std::function<bool(http::response_header<> const&)>;
    // Called with each piece of the body in order (64 KiB at most); the exchange waits while it
    // runs (back-pressure). An error it returns ends the exchange with that error, and the
    // connection is closed rather than reused.
    using body_callback = std::function<awaitable<boost::system::error_code>(std::string_view)>;

    // Like send(), but the body is handed over as it arrives and never held whole: the returned
    // response has the head and, when `on_head` returned false, the body. `timeout` bounds the
    // exchange as in send() except for the time spent inside `on_body`. A body that ends early is
    // an error (http::error::partial_message or the connection's), never a short success.
    awaitable<boost::system::result<http_response>> send_streaming(
        std::string address,
        http_request req,
        std::chrono::milliseconds timeout,
        head_callback on_head,
        body_callback on_body
    );

    // Closes every idle connection.
    void close_idle();

private:
    awaitable<boost::system::result<http_response>> send_impl(
        std::string address,
        http_request req,
        std::chrono::milliseconds timeout,
        head_callback const* on_head,
        body_callback const* on_body
    );

    struct impl;
    std::shared_ptr<impl> impl_;
};

}  // namespace kvship::transport
