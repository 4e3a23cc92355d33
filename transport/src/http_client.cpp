#include <transport/http_client.hpp>
#include <transport/tls.hpp>

#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>

#include <openssl/x509_vfy.h>

#include <boost/asio/local/stream_protocol.hpp>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <algorithm>
#include <cstdint>
#include <map>
#include <optional>
#include <utility>
#include <vector>

namespace kvship::transport {

namespace {

namespace ssl = asio::ssl;
using tls_stream = beast::ssl_stream<beast::tcp_stream>;

using local_stream = beast::basic_stream<asio::local::stream_protocol>;

constexpr std::string_view unix_scheme = "unix:";

// One connection: plain TCP, TLS over TCP, or a Unix domain socket.
struct pooled_connection
{
    std::optional<beast::tcp_stream> plain;
    std::optional<tls_stream> tls;
    std::optional<local_stream> local;
    beast::flat_buffer buffer;
    std::chrono::steady_clock::time_point idle_since{};

    void expires_at(std::chrono::steady_clock::time_point t)
    {
        if (local)
            local->expires_at(t);
        else
            (tls ? beast::get_lowest_layer(*tls) : *plain).expires_at(t);
    }

    void expires_never()
    {
        if (local)
            local->expires_never();
        else
            (tls ? beast::get_lowest_layer(*tls) : *plain).expires_never();
    }
};

bool is_stale_connection_error(boost::system::error_code const& ec)
{
    return ec == http::error::end_of_stream || ec == asio::error::connection_reset ||
           ec == asio::error::eof || ec == asio::error::broken_pipe || ec == http::error::partial_message ||
           ec == ssl::error::stream_truncated;
}

boost::system::error_code map_timeout(boost::system::error_code const& ec)
{
    return ec == beast::error::timeout ? boost::system::error_code(asio::error::timed_out) : ec;
}

std::pair<std::string, std::string> split_address(std::string const& address)
{
    auto const colon = address.rfind(':');
    if (colon == std::string::npos) {
        return {address, "80"};
    }
    std::string host = address.substr(0, colon);
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
        host = host.substr(1, host.size() - 2);
    }
    return {host, address.substr(colon + 1)};
}

// SO_KEEPALIVE with the first probe after `period` of silence and then one every `period`, as Go's
// net.Dialer.KeepAlive sets them.
void set_tcp_keep_alive(tcp::socket& sock, std::chrono::milliseconds period)
{
    boost::system::error_code ignored;
    sock.set_option(asio::socket_base::keep_alive(true), ignored);
    int const secs = static_cast<int>(std::max<std::int64_t>(1, std::chrono::ceil<std::chrono::seconds>(period).count()));
    ::setsockopt(sock.native_handle(), IPPROTO_TCP, TCP_KEEPIDLE, &secs, sizeof secs);
    ::setsockopt(sock.native_handle(), IPPROTO_TCP, TCP_KEEPINTVL, &secs, sizeof secs);
}

bool is_ip_address(std::string const& host)
{
    boost::system::error_code ec;
    (void)asio::ip::make_address(host, ec);
    return !ec;
}

constexpr std::size_t read_chunk_bytes = 64 * 1024;

struct exchange_result
{
    boost::system::error_code ec;
    bool wrote = false;          // the request went out (a failure after it is a read failure)
    std::size_t read_bytes = 0;  // bytes of the response consumed before a read failure
    bool aborted = false;        // a streamed exchange ended by its body callback
    http_response res;
};

// Writes `req` and reads the whole response on `stream`. The caller owns everything referenced.
template <class Stream>
awaitable<exchange_result> exchange(Stream& stream, beast::flat_buffer& buffer, http_request& req,
                                    std::size_t body_limit)
{
    exchange_result out;
    auto [wec, wn] = co_await http::async_write(stream, req, nothrow_awaitable);
    (void)wn;
    if (wec) {
        out.ec = wec;
        co_return out;
    }
    out.wrote = true;
    // Beast reads at most max(512, free capacity of the buffer) bytes per read_some (and at most
    // 64 KiB): a fresh flat_buffer holds only what the header needed, so a large body would arrive
    // in ~1 KiB reads, each one a syscall plus the stream's timer re-arm. Room for 64 KiB makes
    // a 24 MB listing ~400 reads instead of ~20,000.
    buffer.reserve(read_chunk_bytes);
    http::response_parser<http::string_body> parser;
    parser.body_limit(body_limit);
    parser.header_limit(64 * 1024);
    auto [rec, rn] = co_await http::async_read(stream, buffer, parser, nothrow_awaitable);
    if (rec) {
        out.ec = rec;
        out.read_bytes = rn;
        co_return out;
    }
    out.res = parser.release();
    co_return out;
}

// The head and body callbacks of a streamed exchange.
struct stream_handlers
{
    http_client::head_callback const& on_head;
    http_client::body_callback const& on_body;
};

// Writes `req` and reads the response incrementally: the head, then the body 64 KiB at a time,
// handed to `h.on_body` (or collected into the response when `h.on_head` declines). The time
// spent in on_body moves `deadline` (and the connection's timer) forward.
template <class Stream>
awaitable<exchange_result> exchange_streaming(Stream& stream, pooled_connection& conn, http_request& req,
                                              std::size_t body_limit,
                                              std::chrono::steady_clock::time_point deadline, stream_handlers h)
{
    exchange_result out;
    auto [wec, wn] = co_await http::async_write(stream, req, nothrow_awaitable);
    (void)wn;
    if (wec) {
        out.ec = wec;
        co_return out;
    }
    out.wrote = true;
    auto& buffer = conn.buffer;
    buffer.reserve(read_chunk_bytes);
    http::response_parser<http::buffer_body> parser;
    parser.body_limit(body_limit);
    parser.header_limit(64 * 1024);
    auto [hec, hn] = co_await http::async_read_header(stream, buffer, parser, nothrow_awaitable);
    out.read_bytes = hn;
    if (hec) {
        out.ec = hec;
        co_return out;
    }
    bool const streaming = h.on_head(parser.get().base());
    std::string whole;
    std::vector<char> piece(read_chunk_bytes);
    while (!parser.is_done()) {
        parser.get().body().data = piece.data();
        parser.get().body().size = piece.size();
        auto [rec, rn] = co_await http::async_read(stream, buffer, parser, nothrow_awaitable);
        out.read_bytes += rn;
        if (rec == http::error::need_buffer) {
            rec = {};
        }
        if (rec) {
            out.ec = rec;
            co_return out;
        }
        std::size_t const got = piece.size() - parser.get().body().size;
        if (got == 0) {
            continue;
        }
        if (!streaming) {
            whole.append(piece.data(), got);
            continue;
        }
        auto const started = std::chrono::steady_clock::now();
        auto sink = h.on_body(std::string_view(piece.data(), got));
        auto const sec = co_await std::move(sink);
        if (sec) {
            out.ec = sec;
            out.aborted = true;
            co_return out;
        }
        deadline += std::chrono::steady_clock::now() - started;
        conn.expires_at(deadline);
    }
    out.res = http_response(std::move(parser.get().base()));
    out.res.body() = std::move(whole);
    co_return out;
}

}  // namespace

struct http_client::impl
{
    asio::any_io_executor ex;
    client_params params;
    std::map<std::string, std::vector<std::unique_ptr<pooled_connection>>> idle;

    impl(asio::any_io_executor e, client_params p) : ex(std::move(e)), params(std::move(p)) {}

    // An idle connection to `address` that is not past the idle timeout, or null. Expired ones
    // (of every address) are closed on the way.
    std::unique_ptr<pooled_connection> take_idle(std::string const& address)
    {
        if (params.idle_timeout.count() > 0) {
            auto const oldest = std::chrono::steady_clock::now() - params.idle_timeout;
            for (auto it = idle.begin(); it != idle.end();) {
                auto& v = it->second;
                std::erase_if(v, [&](auto const& c) { return c->idle_since < oldest; });
                it = v.empty() ? idle.erase(it) : std::next(it);
            }
        }
        auto it = idle.find(address);
        if (it == idle.end() || it->second.empty()) {
            return nullptr;
        }
        auto conn = std::move(it->second.back());
        it->second.pop_back();
        return conn;
    }

    void put_idle(std::string const& address, std::unique_ptr<pooled_connection> conn)
    {
        if (params.disable_keep_alives) {
            return;
        }
        auto& back = idle[address];
        if (back.size() >= params.max_idle_per_host) {
            return;
        }
        if (params.max_idle_total > 0) {
            std::size_t total = 0;
            for (auto const& [a, v] : idle) total += v.size();
            if (total >= params.max_idle_total) {
                return;
            }
        }
        conn->expires_never();
        conn->idle_since = std::chrono::steady_clock::now();
        back.push_back(std::move(conn));
    }

    awaitable<boost::system::result<std::unique_ptr<pooled_connection>>> connect(
        std::string address, std::chrono::steady_clock::time_point deadline
    )
    {
        auto const connect_deadline = std::min(deadline, std::chrono::steady_clock::now() + params.connect_timeout);
        if (address.starts_with(unix_scheme)) {
            auto conn = std::make_unique<pooled_connection>();
            conn->local.emplace(ex);
            conn->local->expires_at(connect_deadline);
            asio::local::stream_protocol::endpoint const ep(address.substr(unix_scheme.size()));
            auto [uec] = co_await conn->local->async_connect(ep, nothrow_awaitable);
            if (uec) {
                co_return map_timeout(uec);
            }
            co_return conn;
        }
        auto [host, port] = split_address(address);
        tcp::resolver resolver(ex);
        auto [rec, results] = co_await resolver.async_resolve(host, port, nothrow_awaitable);
        if (rec) {
            co_return rec;
        }
        auto conn = std::make_unique<pooled_connection>();
        conn->plain.emplace(ex);
        conn->plain->expires_at(connect_deadline);
        auto [cec, ep] = co_await conn->plain->async_connect(results, nothrow_awaitable);
        (void)ep;
        if (cec) {
            co_return map_timeout(cec);
        }
        conn->plain->socket().set_option(tcp::no_delay(true));
        if (params.tcp_keep_alive.count() > 0) {
            set_tcp_keep_alive(conn->plain->socket(), params.tcp_keep_alive);
        }
        if (!params.tls) {
            co_return conn;
        }

        conn->tls.emplace(std::move(*conn->plain), *params.tls);
        conn->plain.reset();
        auto const& name = params.tls_server_name.empty() ? host : params.tls_server_name;
        if (!is_ip_address(name)) {
            // SNI takes host names only (RFC 6066 §3).
            if (SSL_set_tlsext_host_name(conn->tls->native_handle(), name.c_str()) != 1) {
                co_return boost::system::error_code(static_cast<int>(::ERR_get_error()),
                                                    asio::error::get_ssl_category());
            }
        }
        if (params.tls_verify) {
            conn->tls->set_verify_mode(ssl::verify_peer);
            conn->tls->set_verify_callback(
                [check = ssl::host_name_verification(name)](bool preverified, ssl::verify_context& vctx) mutable {
                    bool const ok = check(preverified, vctx);
                    if (!ok && preverified) {  // the chain was fine: the name is what failed
                        X509_STORE_CTX_set_error(vctx.native_handle(), X509_V_ERR_HOSTNAME_MISMATCH);
                    }
                    return ok;
                });
        } else {
            conn->tls->set_verify_mode(ssl::verify_none);
        }
        auto handshake_deadline = deadline;
        if (params.tls_handshake_timeout.count() > 0) {
            handshake_deadline =
                std::min(deadline, std::chrono::steady_clock::now() + params.tls_handshake_timeout);
        }
        conn->expires_at(handshake_deadline);
        auto [hec] = co_await conn->tls->async_handshake(ssl::stream_base::client, nothrow_awaitable);
        if (hec) {
            // A refused certificate says why ("certificate has expired", "Hostname mismatch").
            long const verdict = SSL_get_verify_result(conn->tls->native_handle());
            if (params.tls_verify && verdict != X509_V_OK) {
                co_return boost::system::error_code(static_cast<int>(verdict), tls_verify_category());
            }
            co_return map_timeout(hec);
        }
        co_return conn;
    }
};

http_client::http_client(asio::any_io_executor ex, client_params params)
    : impl_(std::make_shared<impl>(std::move(ex), std::move(params)))
{
}

http_client::~http_client() = default;

awaitable<boost::system::result<http_response>> http_client::send(
    std::string address, http_request req, std::chrono::milliseconds timeout
)
{
    auto r = co_await send_impl(std::move(address), std::move(req), timeout, nullptr, nullptr);
    co_return r;
}

awaitable<boost::system::result<http_response>> http_client::send_streaming(
    std::string address, http_request req, std::chrono::milliseconds timeout, head_callback on_head,
    body_callback on_body
)
{
    auto r = co_await send_impl(std::move(address), std::move(req), timeout, &on_head, &on_body);
    co_return r;
}

awaitable<boost::system::result<http_response>> http_client::send_impl(
    std::string address, http_request req, std::chrono::milliseconds timeout, head_callback const* on_head,
    body_callback const* on_body
)
{
    auto self = impl_;
    auto const deadline = std::chrono::steady_clock::now() + timeout;
    if (req.find(http::field::host) == req.end()) {
        // A Unix socket has no host name; HTTP/1.1 still needs a Host header.
        req.set(http::field::host, address.starts_with(unix_scheme) ? std::string("localhost") : address);
    }
    req.keep_alive(!self->params.disable_keep_alives);
    req.prepare_payload();

    for (int attempt = 0;; ++attempt) {
        std::unique_ptr<pooled_connection> conn;
        bool reused = false;
        if (attempt == 0) {
            conn = self->take_idle(address);
            reused = conn != nullptr;
        }
        if (!conn) {
            auto c = co_await self->connect(address, deadline);
            if (!c) {
                co_return c.error();
            }
            conn = std::move(*c);
        }
        conn->expires_at(deadline);
        exchange_result x;
        if (on_head != nullptr) {
            stream_handlers const h{*on_head, *on_body};
            auto const limit = self->params.body_limit;
            if (conn->tls) {
                x = co_await exchange_streaming(*conn->tls, *conn, req, limit, deadline, h);
            } else if (conn->local) {
                x = co_await exchange_streaming(*conn->local, *conn, req, limit, deadline, h);
            } else {
                x = co_await exchange_streaming(*conn->plain, *conn, req, limit, deadline, h);
            }
        } else if (conn->tls) {
            x = co_await exchange(*conn->tls, conn->buffer, req, self->params.body_limit);
        } else if (conn->local) {
            x = co_await exchange(*conn->local, conn->buffer, req, self->params.body_limit);
        } else {
            x = co_await exchange(*conn->plain, conn->buffer, req, self->params.body_limit);
        }
        if (x.ec) {
            // A pooled connection the server closed while idle fails on write or before the first
            // response byte: try once more on a fresh one.
            if (!x.aborted && reused && x.read_bytes == 0 && is_stale_connection_error(x.ec)) {
                continue;
            }
            co_return x.aborted ? x.ec : map_timeout(x.ec);
        }
        if (x.res.keep_alive()) {
            self->put_idle(address, std::move(conn));
        }
        co_return std::move(x.res);
    }
}

void http_client::close_idle()
{
    impl_->idle.clear();
}

}  // namespace kvship::transport
