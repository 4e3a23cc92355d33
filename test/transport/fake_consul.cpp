#include "fake_consul.hpp"

#include <boost/asio/ssl/context.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>

namespace kvship::test {

using transport::http_reply;
using transport::http_request;
using transport::http_response;

scripted_reply kv_reply(unsigned status, std::string body, std::string index, std::string known_leader,
                        std::string last_contact)
{
    scripted_reply r{status, std::move(body), {}, {}, 0};
    if (!index.empty()) {
        r.headers.emplace_back("X-Consul-Index", std::move(index));
    }
    if (!known_leader.empty()) {
        r.headers.emplace_back("X-Consul-KnownLeader", std::move(known_leader));
    }
    if (!last_contact.empty()) {
        r.headers.emplace_back("X-Consul-LastContact", std::move(last_contact));
    }
    return r;
}

scripted_reply reply(unsigned status, std::string body)
{
    return scripted_reply{status, std::move(body), {}, {}, 0};
}

struct fake_consul::impl
{
    asio::io_context& ioc;
    std::unique_ptr<transport::http_server> server;
    std::shared_ptr<asio::ssl::context> tls;
    std::optional<tcp::acceptor> tls_acceptor;
    std::deque<scripted_reply> script;
    std::function<scripted_reply(recorded_request const&)> fallback = [](recorded_request const&) {
        return reply(500, "no script");
    };
    std::vector<recorded_request> requests;
    std::size_t tls_connections = 0;
    std::size_t tls_failures = 0;
    bool stopped = false;

    explicit impl(asio::io_context& c) : ioc(c) {}

    static awaitable<http_reply> handle(std::shared_ptr<impl> self, http_request req)
    {
        if (!self) {  // the fake is gone but a connection lingers
            http_reply gone;
            gone.res = http_response{http::status::service_unavailable, req.version()};
            gone.close = true;
            co_return gone;
        }
        recorded_request rec{req.method(), std::string(req.target()), req.body(), std::nullopt, {}};
        if (auto it = req.find("X-Consul-Token"); it != req.end()) {
            rec.token = std::string(it->value());
        }
        if (auto it = req.find(http::field::authorization); it != req.end()) {
            rec.authorization = std::string(it->value());
        }
        self->requests.push_back(rec);
        scripted_reply s;
        if (!self->script.empty()) {
            s = std::move(self->script.front());
            self->script.pop_front();
        } else {
            s = self->fallback(rec);
        }
        if (s.delay.count() > 0) {
            asio::steady_timer t(self->ioc, s.delay);
            co_await t.async_wait(nothrow_awaitable);
        }
        http_reply rep;
        rep.res = http_response{static_cast<http::status>(s.status), req.version()};
        rep.res.set(http::field::content_type,
                    s.status == 200 || s.status == 409 ? "application/json" : "text/plain; charset=utf-8");
        for (auto const& [name, value] : s.headers) {
            rep.res.set(name, value);
        }
        rep.res.body() = std::move(s.body);
        rep.res.prepare_payload();
        rep.cut_after = s.cut_after;
        co_return rep;
    }

    static awaitable<void> tls_session(std::shared_ptr<impl> self, tcp::socket sock)
    {
        beast::ssl_stream<beast::tcp_stream> stream(beast::tcp_stream(std::move(sock)), *self->tls);
        beast::get_lowest_layer(stream).expires_after(std::chrono::seconds(5));
        auto [hec] = co_await stream.async_handshake(asio::ssl::stream_base::server, nothrow_awaitable);
        if (hec) {
            ++self->tls_failures;
            co_return;
        }
        beast::flat_buffer buffer;
        for (;;) {
            beast::get_lowest_layer(stream).expires_after(std::chrono::seconds(30));
            http_request req;
            auto [rec, rn] = co_await http::async_read(stream, buffer, req, nothrow_awaitable);
            (void)rn;
            if (rec) {
                if (rec != http::error::end_of_stream) {
                    ++self->tls_failures;  // e.g. the client's certificate was refused after the handshake
                }
                co_return;
            }
            bool const keep = req.keep_alive();
            auto rep = co_await handle(self, std::move(req));
            rep.res.keep_alive(keep);
            auto [wec, wn] = co_await http::async_write(stream, rep.res, nothrow_awaitable);
            (void)wn;
            if (wec || !keep) {
                co_return;
            }
        }
    }

    static awaitable<void> tls_accept_loop(std::shared_ptr<impl> self)
    {
        while (!self->stopped) {
            auto [ec, sock] = co_await self->tls_acceptor->async_accept(nothrow_awaitable);
            if (ec) {
                co_return;
            }
            ++self->tls_connections;
            asio::co_spawn(self->ioc, tls_session(self, std::move(sock)), asio::detached);
        }
    }
};

fake_consul::fake_consul(asio::io_context& ioc) : impl_(std::make_shared<impl>(ioc))
{
    std::weak_ptr<impl> weak = impl_;
    auto handler = [weak](http_request req, transport::request_context) {
        return impl::handle(weak.lock(), std::move(req));
    };
    auto too_large = [](http::request_header<> const&, std::optional<std::uint64_t>) {
        http_reply rep;
        rep.res.result(http::status::payload_too_large);
        return rep;
    };
    impl_->server = std::make_unique<transport::http_server>(
        ioc.get_executor(), transport::server_params{.body_limit = 64 * 1024 * 1024}, handler, too_large);
    impl_->server->listen(transport::parse_endpoint("127.0.0.1:0"));
    impl_->server->start();
}

fake_consul::fake_consul(asio::io_context& ioc, std::shared_ptr<asio::ssl::context> tls)
    : impl_(std::make_shared<impl>(ioc))
{
    impl_->tls = std::move(tls);
    impl_->tls_acceptor.emplace(ioc, transport::parse_endpoint("127.0.0.1:0"));
    asio::co_spawn(ioc, impl::tls_accept_loop(impl_), asio::detached);
}

fake_consul::~fake_consul()
{
    impl_->stopped = true;
    if (impl_->server) {
        impl_->server->stop();
    }
    if (impl_->tls_acceptor) {
        boost::system::error_code ec;
        impl_->tls_acceptor->close(ec);
    }
}

std::string fake_consul::address() const
{
    return "127.0.0.1:" + std::to_string(port());
}

std::uint16_t fake_consul::port() const
{
    return impl_->server ? impl_->server->local_endpoint().port() : impl_->tls_acceptor->local_endpoint().port();
}

void fake_consul::push(scripted_reply r)
{
    impl_->script.push_back(std::move(r));
}

void fake_consul::fallback(std::function<scripted_reply(recorded_request const&)> f)
{
    impl_->fallback = std::move(f);
}

std::vector<recorded_request> const& fake_consul::requests() const
{
    return impl_->requests;
}

std::size_t fake_consul::connections() const
{
    return impl_->server ? impl_->server->connection_count() : impl_->tls_connections;
}

std::size_t fake_consul::tls_handshake_failures() const
{
    return impl_->tls_failures;
}

}  // namespace kvship::test
