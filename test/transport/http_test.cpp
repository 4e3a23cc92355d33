// The HTTP server and client over loopback: keep-alive, body limits, dropped responses, deadlines, shutdown.
#include "../support/run.hpp"

#include <transport/http_client.hpp>
#include <transport/http_server.hpp>

#include <catch2/catch.hpp>

#include <optional>
#include <thread>
#include <stdexcept>

using namespace kvship;
using namespace kvship::transport;
using namespace std::chrono_literals;

namespace {

using kvship::test::run;

awaitable<http_reply> echo(http_request req, request_context ctx)
{
    http_reply rep;
    rep.res.result(http::status::ok);
    if (req.target() == "/port") {  // which client connection the request came on
        rep.res.body() = std::to_string(ctx.remote.port());
        co_return rep;
    }
    if (req.target() == "/sleep") {
        asio::steady_timer t(co_await asio::this_coro::executor, 2s);
        co_await t.async_wait(use_awaitable);
    }
    if (req.target() == "/cut") {
        rep.cut_after = 20;
    }
    if (req.target() == "/throw") {
        throw std::runtime_error("handler broke");
    }
    rep.res.body() = std::string(req.method_string()) + " " + std::string(req.target()) + " " + req.body();
    co_return rep;
}

http_reply too_large(http::request_header<> const&, std::optional<std::uint64_t> len)
{
    http_reply rep;
    rep.res.result(http::status::payload_too_large);
    rep.res.body() = len ? "too large " + std::to_string(*len) : "too large chunked";
    return rep;
}

struct fixture
{
    asio::io_context ioc{1};
    http_server server{ioc.get_executor(), server_params{.body_limit = 1024}, echo, too_large};
    http_client client{ioc.get_executor()};
    std::string address;

    fixture()
    {
        server.listen(parse_endpoint("127.0.0.1:0"));
        server.start();
        address = "127.0.0.1:" + std::to_string(server.local_endpoint().port());
    }

    boost::system::result<http_response> send(http::verb verb, std::string target, std::string body = {},
                                              std::chrono::milliseconds timeout = 5s)
    {
        http_request req{verb, target, 11};
        req.body() = std::move(body);
        return run(ioc, client.send(address, std::move(req), timeout));
    }
};

}  // namespace

TEST_CASE("a request round-trips and the connection is reused", "[transport]")
{
    fixture f;
    auto r1 = f.send(http::verb::put, "/v1/kv/a", "hello");
    REQUIRE(r1);
    CHECK(r1->result() == http::status::ok);
    CHECK(r1->body() == "PUT /v1/kv/a hello");
    auto r2 = f.send(http::verb::get, "/v1/kv/b");
    REQUIRE(r2);
    CHECK(r2->body() == "GET /v1/kv/b ");
    CHECK(f.server.connection_count() == 1);
}

TEST_CASE("a body over the limit is refused from its Content-Length", "[transport]")
{
    fixture f;
    auto ok = f.send(http::verb::put, "/x", std::string(1024, 'a'));
    REQUIRE(ok);
    CHECK(ok->result() == http::status::ok);
    auto big = f.send(http::verb::put, "/x", std::string(1025, 'a'));
    REQUIRE(big);
    CHECK(big->result() == http::status::payload_too_large);
    CHECK(big->body() == "too large 1025");
}

TEST_CASE("a response cut mid-way is an error for the client, not a short body", "[transport]")
{
    fixture f;
    auto r = f.send(http::verb::get, "/cut");
    CHECK_FALSE(r);
}

TEST_CASE("a handler that throws answers 500 and keeps serving", "[transport]")
{
    fixture f;
    auto r = f.send(http::verb::get, "/throw");
    REQUIRE(r);
    CHECK(r->result() == http::status::internal_server_error);
    CHECK(r->body() == "handler broke");
    auto again = f.send(http::verb::get, "/after");
    REQUIRE(again);
    CHECK(again->result() == http::status::ok);
}

TEST_CASE("the client's deadline ends a slow exchange with timed_out", "[transport]")
{
    fixture f;
    auto r = f.send(http::verb::get, "/sleep", {}, 200ms);
    REQUIRE_FALSE(r);
    CHECK(r.error() == asio::error::timed_out);
}

TEST_CASE("a refused connection is an error", "[transport]")
{
    asio::io_context ioc{1};
    http_client client{ioc.get_executor()};
    tcp::acceptor probe(ioc, parse_endpoint("127.0.0.1:0"));
    auto const port = probe.local_endpoint().port();
    probe.close();
    http_request req{http::verb::get, "/", 11};
    auto r = run(ioc, client.send("127.0.0.1:" + std::to_string(port), std::move(req), 2s));
    CHECK_FALSE(r);
}

TEST_CASE("the client reconnects when a pooled connection was closed by the server", "[transport]")
{
    fixture f;
    REQUIRE(f.send(http::verb::get, "/one"));
    f.server.stop();  // closes the idle pooled connection
    http_server second{f.ioc.get_executor(), server_params{}, echo, too_large};
    second.listen(parse_endpoint(f.address));
    second.start();
    auto r = f.send(http::verb::get, "/two");
    REQUIRE(r);
    CHECK(r->body() == "GET /two ");
}

TEST_CASE("parse_endpoint names what is wrong", "[transport]")
{
    CHECK(parse_endpoint("127.0.0.1:8500").port() == 8500);
    CHECK(parse_endpoint("localhost:1").address().to_string() == "127.0.0.1");
    CHECK(parse_endpoint("[::1]:80").address().is_v6());
    CHECK_THROWS_WITH(parse_endpoint("nocolon"), Catch::Contains("host:port"));
    CHECK_THROWS_WITH(parse_endpoint("1.2.3.4:x"), Catch::Contains("bad port"));
    CHECK_THROWS_WITH(parse_endpoint("1.2.3.4:70000"), Catch::Contains("65535"));
    CHECK_THROWS_WITH(parse_endpoint("host.example:80"), Catch::Contains("not an IP"));
}

namespace {

std::string port_seen(asio::io_context& ioc, http_client& client, std::string const& address)
{
    auto r = run(ioc, client.send(address, http_request{http::verb::get, "/port", 11}, 5s));
    REQUIRE(r);
    return r->body();
}

}  // namespace

TEST_CASE("an idle connection past idle_timeout is not reused", "[transport]")
{
    fixture f;
    client_params p;
    p.idle_timeout = 30ms;
    http_client c{f.ioc.get_executor(), p};
    auto const first = port_seen(f.ioc, c, f.address);
    CHECK(port_seen(f.ioc, c, f.address) == first);  // well within the timeout
    std::this_thread::sleep_for(80ms);
    CHECK(port_seen(f.ioc, c, f.address) != first);
    CHECK(port_seen(f.ioc, f.client, f.address) == port_seen(f.ioc, f.client, f.address));  // default: no limit
}

TEST_CASE("disable_keep_alives opens one connection per request", "[transport]")
{
    fixture f;
    client_params p;
    p.disable_keep_alives = true;
    http_client c{f.ioc.get_executor(), p};
    auto const first = port_seen(f.ioc, c, f.address);
    CHECK(port_seen(f.ioc, c, f.address) != first);
}

TEST_CASE("max_idle_total bounds the idle connections over all addresses", "[transport]")
{
    fixture f;
    http_server other{f.ioc.get_executor(), server_params{}, echo, too_large};
    other.listen(parse_endpoint("127.0.0.1:0"));
    other.start();
    auto const other_address = "127.0.0.1:" + std::to_string(other.local_endpoint().port());
    client_params p;
    p.max_idle_total = 1;
    http_client c{f.ioc.get_executor(), p};
    auto const a1 = port_seen(f.ioc, c, f.address);
    auto const b1 = port_seen(f.ioc, c, other_address);  // the pool is full: not kept
    CHECK(port_seen(f.ioc, c, f.address) == a1);
    CHECK(port_seen(f.ioc, c, other_address) != b1);
}

TEST_CASE("tcp_keep_alive and tls_handshake_timeout leave plain exchanges working", "[transport]")
{
    fixture f;
    client_params p;
    p.tcp_keep_alive = 7s;
    p.tls_handshake_timeout = 1s;
    http_client c{f.ioc.get_executor(), p};
    auto const first = port_seen(f.ioc, c, f.address);
    CHECK(port_seen(f.ioc, c, f.address) == first);
}

TEST_CASE("request framing as Go's net/http: one Transfer-Encoding, chunked only", "[transport][http][framing]")
{
    using kvship::transport::scan_request_framing;
    using kvship::transport::without_content_length;
    auto const head = [](std::string fields) { return "PUT /v1/kv/a HTTP/1.1\r\nHost: x\r\n" + fields + "\r\n"; };
    CHECK_FALSE(scan_request_framing(head("")).unsupported_coding);
    CHECK_FALSE(scan_request_framing(head("Content-Length: 3\r\n")).unsupported_coding);
    CHECK_FALSE(scan_request_framing(head("Transfer-Encoding: chunked\r\n")).unsupported_coding);
    CHECK_FALSE(scan_request_framing(head("transfer-encoding:   ChUnKeD \r\n")).unsupported_coding);
    for (std::string te : {"gzip", "identity", "chunked, gzip", "gzip, chunked", "xchunked", ""}) {
        INFO(te);
        CHECK(scan_request_framing(head("Transfer-Encoding: " + te + "\r\n")).unsupported_coding);
    }
    CHECK(scan_request_framing(head("Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n")).unsupported_coding);
    auto const both = head("Transfer-Encoding: chunked\r\nContent-Length: 10\r\nX-A: b\r\n");
    auto const f = scan_request_framing(both);
    CHECK_FALSE(f.unsupported_coding);
    CHECK(f.drop_content_length);
    CHECK(without_content_length(both) == head("Transfer-Encoding: chunked\r\nX-A: b\r\n"));
    CHECK_FALSE(scan_request_framing(head("Content-Length: 10\r\n")).drop_content_length);
}

// Found by fuzz_http_framing: the rewrite dropped every line without a colon, so a malformed head (which
// Consul answers 400) became a well-formed one, and a head with a bare-LF line lost its blank line.
TEST_CASE("without_content_length keeps every other line byte for byte", "[transport][http][framing][fuzz]")
{
    using kvship::transport::without_content_length;
    std::string const head = "PUT / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\t\nContent-Length:\n0\r\n\r\n";
    CHECK(without_content_length(head) == "PUT / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\t\n0\r\n\r\n");
    CHECK(without_content_length("PUT / HTTP/1.1\r\nContent-Length : 4\r\nX: y\r\n\r\n") ==
          "PUT / HTTP/1.1\r\nX: y\r\n\r\n");
    CHECK(without_content_length("PUT / HTTP/1.1\r\n\r\n") == "PUT / HTTP/1.1\r\n\r\n");
}
