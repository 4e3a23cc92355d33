#include <transport/http_client.hpp>

#include <boost/beast/core/flat_buffer.hpp>

#include <map>
#include <optional>
#include <utility>
#include <vector>

namespace kvship::transport {

namespace {

struct pooled_connection
{
    beast::tcp_stream stream;
    beast::flat_buffer buffer;
};

bool is_stale_connection_error(boost::system::error_code const& ec)
{
    return ec == http::error::end_of_stream || ec == asio::error::connection_reset ||
           ec == asio::error::eof || ec == asio::error::broken_pipe || ec == http::error::partial_message;
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

}  // namespace

struct http_client::impl
{
    asio::any_io_executor ex;
    client_params params;
    std::map<std::string, std::vector<std::unique_ptr<pooled_connection>>> idle;

    impl(asio::any_io_executor e, client_params p) : ex(std::move(e)), params(p) {}

    awaitable<boost::system::result<std::unique_ptr<pooled_connection>>> connect(
        std::string address, std::chrono::steady_clock::time_point deadline
    )
    {
        auto [host, port] = split_address(address);
        tcp::resolver resolver(ex);
        auto [rec, results] = co_await resolver.async_resolve(host, port, nothrow_awaitable);
        if (rec) {
            co_return rec;
        }
        auto conn = std::make_unique<pooled_connection>(pooled_connection{beast::tcp_stream(ex), {}});
        auto const connect_deadline = std::min(deadline, std::chrono::steady_clock::now() + params.connect_timeout);
        conn->stream.expires_at(connect_deadline);
        auto [cec, ep] = co_await conn->stream.async_connect(results, nothrow_awaitable);
        (void)ep;
        if (cec) {
            co_return cec == beast::error::timeout ? boost::system::error_code(asio::error::timed_out) : cec;
        }
        conn->stream.socket().set_option(tcp::no_delay(true));
        co_return conn;
    }
};

http_client::http_client(asio::any_io_executor ex, client_params params)
    : impl_(std::make_shared<impl>(std::move(ex), params))
{
}

http_client::~http_client() = default;

awaitable<boost::system::result<http_response>> http_client::send(
    std::string address, http_request req, std::chrono::milliseconds timeout
)
{
    auto self = impl_;
    auto const deadline = std::chrono::steady_clock::now() + timeout;
    if (req.find(http::field::host) == req.end()) {
        req.set(http::field::host, address);
    }
    req.keep_alive(true);
    req.prepare_payload();

    for (int attempt = 0;; ++attempt) {
        std::unique_ptr<pooled_connection> conn;
        bool reused = false;
        auto& pool = self->idle[address];
        if (!pool.empty() && attempt == 0) {
            conn = std::move(pool.back());
            pool.pop_back();
            reused = true;
        } else {
            auto c = co_await self->connect(address, deadline);
            if (!c) {
                co_return c.error();
            }
            conn = std::move(*c);
        }
        conn->stream.expires_at(deadline);
        auto [wec, wn] = co_await http::async_write(conn->stream, req, nothrow_awaitable);
        (void)wn;
        if (wec) {
            if (reused && is_stale_connection_error(wec)) {
                continue;
            }
            co_return wec == beast::error::timeout ? boost::system::error_code(asio::error::timed_out) : wec;
        }
        http::response_parser<http::string_body> parser;
        parser.body_limit(self->params.body_limit);
        parser.header_limit(64 * 1024);
        auto [rec, rn] = co_await http::async_read(conn->stream, conn->buffer, parser, nothrow_awaitable);
        if (rec) {
            if (reused && rn == 0 && is_stale_connection_error(rec)) {
                continue;
            }
            co_return rec == beast::error::timeout ? boost::system::error_code(asio::error::timed_out) : rec;
        }
        http_response res = parser.release();
        if (res.keep_alive()) {
            conn->stream.expires_never();
            auto& back = self->idle[address];
            if (back.size() < self->params.max_idle_per_host) {
                back.push_back(std::move(conn));
            }
        }
        co_return res;
    }
}

void http_client::close_idle()
{
    impl_->idle.clear();
}

}  // namespace kvship::transport
