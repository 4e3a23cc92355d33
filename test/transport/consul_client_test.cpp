// The Consul client against an in-process fake Consul: listings, the safety rules, blocking
// deadlines, cancellation, retries, txn outcomes, small writes, and the token never leaking.
#include "fake_consul.hpp"

#include <gotext/base64.hpp>
#include <transport/consul_client.hpp>

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>

#include <catch2/catch.hpp>

#include <fmt/format.h>

using namespace kvship;
using namespace kvship::transport;
using namespace std::chrono_literals;
using test::kv_reply;
using test::reply;

namespace {

constexpr char const* token = "b8b4a1f0-s3cr3t-t0ken";

std::string entry(std::string key, std::string value, std::uint64_t modify, std::uint64_t flags = 0)
{
    return fmt::format(R"({{"LockIndex":0,"Key":"{}","Flags":{},"Value":"{}","CreateIndex":{},"ModifyIndex":{}}})",
                       key, flags, gotext::base64_encode(value), modify, modify);
}

struct fixture
{
    asio::io_context ioc{1};
    test::fake_consul consul{ioc};
    std::vector<std::string> lines;
    std::unique_ptr<consul_client> client;

    explicit fixture(std::function<void(consul_params&)> tweak = {})
    {
        consul_params p;
        p.address = consul.address();
        p.token = token;
        p.retry.enabled = false;
        p.log = kvship::logging::logger(log_level::debug, [this](log_level, std::string_view, std::string_view line) {
            lines.emplace_back(line);
        });
        if (tweak) {
            tweak(p);
        }
        client = create_consul_client(ioc.get_executor(), p);
    }

    template <class T>
    T run(awaitable<T> aw)
    {
        return test::run(ioc, std::move(aw));
    }

    void check_no_token_anywhere(consul_error const& e) const
    {
        CHECK_THAT(e.what(), !Catch::Contains(token));
        for (auto const& l : lines) {
            CHECK_THAT(l, !Catch::Contains(token));
        }
    }
};

}  // namespace

TEST_CASE("list decodes a listing with its meta and sends the token as a header", "[transport][client]")
{
    fixture f;
    f.consul.push(kv_reply(200, "[" + entry("app/a", "1", 11, 3304740253564472344ULL) + "," + entry("app/b", "2", 12) + "]",
                           "18446744073709551615", "true", "42"));
    auto r = f.run(f.client->list("app/", {}));
    REQUIRE(r);
    CHECK(r->index == 18446744073709551615ULL);
    CHECK(r->known_leader);
    CHECK(r->last_contact == 42ms);
    REQUIRE(r->entries.size() == 2);
    CHECK(r->entries[0].key == "app/a");
    CHECK(r->entries[0].value == std::optional<std::string>("1"));
    CHECK(r->entries[0].flags == 3304740253564472344ULL);
    CHECK(r->entries[1].modify_index == 12);
    REQUIRE(f.consul.requests().size() == 1);
    auto const& req = f.consul.requests()[0];
    CHECK(req.method == http::verb::get);
    CHECK(req.target == "/v1/kv/app/?recurse");
    CHECK(req.token == std::optional<std::string>(token));
    CHECK(req.authorization.empty());
    CHECK_THAT(req.target, !Catch::Contains(token));
    REQUIRE_FALSE(f.lines.empty());
    for (auto const& l : f.lines) {
        CHECK_THAT(l, !Catch::Contains(token));
    }
}

TEST_CASE("no token, no header", "[transport][client]")
{
    fixture f([](consul_params& p) { p.token.clear(); });
    f.consul.push(kv_reply(404, "", "5"));
    REQUIRE(f.run(f.client->list("p/", {})));
    CHECK_FALSE(f.consul.requests()[0].token.has_value());
}

TEST_CASE("a 404 listing is empty and keeps its index", "[transport][client]")
{
    fixture f;
    f.consul.push(kv_reply(404, "", "77"));
    auto r = f.run(f.client->list("nothere/", {}));
    REQUIRE(r);
    CHECK(r->entries.empty());
    CHECK(r->index == 77);
}

TEST_CASE("a listing is never empty for the wrong reason", "[transport][client]")
{
    struct row
    {
        char const* why;
        test::scripted_reply rep;
        errc code;
    };
    std::vector<row> const rows = {
        {"404 without index", kv_reply(404, "", ""), errc::missing_index},
        {"200 without index", kv_reply(200, "[]", ""), errc::missing_index},
        {"403", kv_reply(403, "Permission denied: token with AccessorID 'a' lacks permission 'key:read'", "5"),
         errc::forbidden},
        {"403 ACL not found", reply(403, "ACL not found"), errc::forbidden},
        {"500", kv_reply(500, "rpc error: boom", "5"), errc::server_error},
        {"500 no leader", reply(500, "No cluster leader"), errc::no_leader},
        {"500 unknown dc", reply(500, "No path to datacenter"), errc::no_path_to_datacenter},
        {"200 known leader false", kv_reply(200, "[]", "5", "false"), errc::no_leader},
        {"404 known leader false", kv_reply(404, "", "5", "false"), errc::no_leader},
        {"404 no known-leader header", kv_reply(404, "", "5", ""), errc::no_leader},
        {"200 malformed JSON", kv_reply(200, "[{\"Key\":", "5"), errc::malformed_response},
        {"200 wrong shape", kv_reply(200, "{\"a\":1}", "5"), errc::malformed_response},
        {"200 empty body", kv_reply(200, "", "5"), errc::malformed_response},
        {"400", reply(400, "Invalid wait time"), errc::bad_request},
        {"429", reply(429, ""), errc::rate_limited},
    };
    for (auto const& r : rows) {
        INFO(r.why);
        fixture f;
        f.consul.push(r.rep);
        auto got = f.run(f.client->list("p/", {}));
        REQUIRE_FALSE(got);
        CHECK(got.error().code == make_error_code(r.code));
        CHECK_THAT(got.error().message, Catch::Contains("GET /v1/kv/p/?recurse"));
        f.check_no_token_anywhere(got.error());
    }
}

TEST_CASE("a truncated response is an error", "[transport][client]")
{
    fixture f;
    auto rep = kv_reply(200, "[" + entry("p/a", std::string(4000, 'x'), 3) + "]", "3");
    rep.cut_after = 300;
    f.consul.push(rep);
    auto r = f.run(f.client->list("p/", {}));
    REQUIRE_FALSE(r);
    CHECK(r.error() == errc::connection_lost);
    CHECK(is_retryable(r.error()));
}

TEST_CASE("the token never reaches an error, even when the server echoes it", "[transport][client]")
{
    fixture f;
    f.consul.push(reply(403, std::string("ACL not found: token ") + token));
    auto r = f.run(f.client->get("k", {}));
    REQUIRE_FALSE(r);
    CHECK(r.error() == errc::forbidden);
    CHECK_THAT(r.error().message, Catch::Contains("<redacted>"));
    f.check_no_token_anywhere(r.error());
    CHECK_THROWS_WITH(r.value(), !Catch::Contains(token));
}

TEST_CASE("query options reach the URL; keys are escaped", "[transport][client]")
{
    fixture f;
    f.consul.push(kv_reply(404, "", "5"));
    query_options q{.dc = "dc2", .index = 42, .wait = 1500ms, .mode = consistency::stale};
    REQUIRE(f.run(f.client->list("a b/c?", q)));
    CHECK(f.consul.requests()[0].target == "/v1/kv/a%20b/c%3F?recurse&dc=dc2&stale&index=42&wait=1500ms");
}

TEST_CASE("get: one entry or nullopt with the index", "[transport][client]")
{
    fixture f;
    f.consul.push(kv_reply(200, "[" + entry("k/x", "v", 9) + "]", "9"));
    f.consul.push(kv_reply(404, "", "31"));
    f.consul.push(kv_reply(200, "[" + entry("k/x", "v", 9) + "," + entry("k/y", "v", 9) + "]", "9"));
    auto one = f.run(f.client->get("k/x", {.mode = consistency::consistent}));
    REQUIRE(one);
    REQUIRE(one->entry);
    CHECK(one->entry->value == std::optional<std::string>("v"));
    CHECK(one->index == 9);
    auto none = f.run(f.client->get("k/x", {}));
    REQUIRE(none);
    CHECK_FALSE(none->entry);
    CHECK(none->index == 31);
    auto two = f.run(f.client->get("k/x", {}));
    REQUIRE_FALSE(two);
    CHECK(two.error() == errc::malformed_response);
    CHECK(f.consul.requests()[0].target == "/v1/kv/k/x?consistent");
}

TEST_CASE("keys with a separator", "[transport][client]")
{
    fixture f;
    f.consul.push(kv_reply(200, R"(["a/","a/b","a/c/"])", "8"));
    f.consul.push(kv_reply(404, "", "8"));
    auto r = f.run(f.client->keys("a/", std::string("/"), {}));
    REQUIRE(r);
    CHECK(r->keys == std::vector<std::string>{"a/", "a/b", "a/c/"});
    CHECK(f.consul.requests()[0].target == "/v1/kv/a/?keys&separator=%2F");
    auto none = f.run(f.client->keys("zz", std::nullopt, {}));
    REQUIRE(none);
    CHECK(none->keys.empty());
    CHECK(f.consul.requests()[1].target == "/v1/kv/zz?keys");
}

TEST_CASE("a blocking read waits past its wait, then times out at wait + wait/16 + margin", "[transport][client]")
{
    fixture f([](consul_params& p) { p.blocking_margin = 100ms; });
    // wait 160 ms → deadline 160 + 10 + 100 = 270 ms. A reply after 200 ms is in time.
    auto in_time = kv_reply(200, "[]", "6");
    in_time.delay = 200ms;
    f.consul.push(in_time);
    auto ok = f.run(f.client->list("p/", {.index = 5, .wait = 160ms}));
    REQUIRE(ok);
    CHECK(ok->index == 6);
    CHECK(f.consul.requests()[0].target == "/v1/kv/p/?recurse&index=5&wait=160ms");

    auto late = kv_reply(200, "[]", "7");
    late.delay = 2s;
    f.consul.push(late);
    auto const start = std::chrono::steady_clock::now();
    auto r = f.run(f.client->list("p/", {.index = 6, .wait = 160ms}));
    auto const took = std::chrono::steady_clock::now() - start;
    REQUIRE_FALSE(r);
    CHECK(r.error() == errc::timed_out);
    CHECK(took >= 260ms);
    CHECK(took < 1500ms);
    CHECK_THAT(r.error().message, Catch::Contains("deadline 270 ms"));
}

TEST_CASE("a non-blocking read uses the request timeout", "[transport][client]")
{
    fixture f([](consul_params& p) { p.request_timeout = 150ms; });
    auto late = reply(200, R"({"Config":{"Datacenter":"dc1","NodeName":"n"}})");
    late.delay = 1s;
    f.consul.push(late);
    auto r = f.run(f.client->agent_self());
    REQUIRE_FALSE(r);
    CHECK(r.error() == errc::timed_out);
}

TEST_CASE("a terminal cancellation ends a blocking read at once", "[transport][client]")
{
    fixture f;
    auto slow = kv_reply(200, "[]", "9");
    slow.delay = 5s;
    f.consul.push(slow);
    asio::cancellation_signal stop;
    std::optional<consul_result<kv_listing>> got;
    asio::co_spawn(f.ioc, f.client->list("p/", {.index = 8, .wait = 60s}),
                   asio::bind_cancellation_slot(stop.slot(), [&](std::exception_ptr e, consul_result<kv_listing> r) {
                       REQUIRE_FALSE(e);
                       got.emplace(std::move(r));
                   }));
    asio::steady_timer t(f.ioc, 100ms);
    t.async_wait([&](boost::system::error_code) { stop.emit(asio::cancellation_type::terminal); });
    auto const start = std::chrono::steady_clock::now();
    while (!got) {
        f.ioc.run_one();
    }
    CHECK(std::chrono::steady_clock::now() - start < 2s);
    REQUIRE_FALSE(*got);
    CHECK(got->error() == errc::cancelled);
    CHECK_FALSE(is_retryable(got->error()));
}

TEST_CASE("reads retry transient errors with backoff, never 403s", "[transport][client][retry]")
{
    auto tweak = [](consul_params& p) {
        p.retry = {.enabled = true, .max_attempts = 3, .backoff = 20ms, .max_backoff = 50ms, .jitter = 0.0, .seed = 7};
    };
    SECTION("500, 500, then 200")
    {
        fixture f(tweak);
        f.consul.push(reply(500, "boom"));
        f.consul.push(reply(503, ""));
        f.consul.push(kv_reply(200, "[" + entry("p/a", "x", 4) + "]", "4"));
        auto const start = std::chrono::steady_clock::now();
        auto r = f.run(f.client->list("p/", {}));
        REQUIRE(r);
        CHECK(r->entries.size() == 1);
        CHECK(f.consul.requests().size() == 3);
        CHECK(std::chrono::steady_clock::now() - start >= 60ms);  // slept 20 + 40
        auto const retries = std::count_if(f.lines.begin(), f.lines.end(), [](auto const& l) {
            return l.find("consul retry attempt=") != std::string::npos;
        });
        CHECK(retries == 2);
    }
    SECTION("attempts run out: the last error comes back")
    {
        fixture f(tweak);
        f.consul.fallback([](test::recorded_request const&) { return reply(500, "No cluster leader"); });
        auto r = f.run(f.client->list("p/", {}));
        REQUIRE_FALSE(r);
        CHECK(r.error() == errc::no_leader);
        CHECK(f.consul.requests().size() == 4);  // 1 + 3 retries
    }
    SECTION("403 is final")
    {
        fixture f(tweak);
        f.consul.push(reply(403, "Permission denied"));
        auto r = f.run(f.client->list("p/", {}));
        REQUIRE_FALSE(r);
        CHECK(r.error() == errc::forbidden);
        CHECK(f.consul.requests().size() == 1);
    }
    SECTION("malformed is final")
    {
        fixture f(tweak);
        f.consul.push(kv_reply(200, "[", "5"));
        CHECK_FALSE(f.run(f.client->list("p/", {})));
        CHECK(f.consul.requests().size() == 1);
    }
    SECTION("writes are never retried")
    {
        fixture f(tweak);
        f.consul.fallback([](test::recorded_request const&) { return reply(500, "boom"); });
        auto r = f.run(f.client->txn({{.verb = txn_verb::set, .key = "a", .value = std::string("1")}}, ""));
        REQUIRE_FALSE(r);
        CHECK(r.error() == errc::server_error);
        auto p = f.run(f.client->put("a", "1", {}));
        REQUIRE_FALSE(p);
        CHECK(f.consul.requests().size() == 2);
    }
}

TEST_CASE("a refused connection is connect_failed", "[transport][client]")
{
    asio::io_context ioc{1};
    tcp::acceptor probe(ioc, transport::parse_endpoint("127.0.0.1:0"));
    auto const port = probe.local_endpoint().port();
    probe.close();
    consul_params p;
    p.address = "http://127.0.0.1:" + std::to_string(port) + "/";
    p.token = token;
    p.retry.enabled = false;
    auto client = create_consul_client(ioc.get_executor(), p);
    auto r = test::run(ioc, client->list("p/", {}));
    REQUIRE_FALSE(r);
    CHECK(r.error() == errc::connect_failed);
    CHECK(is_retryable(r.error()));
    CHECK_THAT(r.error().what(), !Catch::Contains(token));
}

TEST_CASE("bad addresses are refused at construction", "[transport][client]")
{
    asio::io_context ioc{1};
    CHECK_NOTHROW(create_consul_client(ioc.get_executor(), {.address = "unix:///tmp/consul.sock"}));
    CHECK_THROWS_WITH(create_consul_client(ioc.get_executor(), {.address = "unix://consul.sock"}),
                      Catch::Contains("absolute socket path"));
    CHECK_THROWS_WITH(create_consul_client(ioc.get_executor(), {.address = "ftp://h:1"}),
                      Catch::Contains("only http://, https:// and unix://"));
    CHECK_THROWS_AS(create_consul_client(ioc.get_executor(), {.address = ""}), std::invalid_argument);
    CHECK_THROWS_WITH(create_consul_client(ioc.get_executor(), {.token = "abc\r\nX-Evil: 1"}),
                      !Catch::Contains("abc") && Catch::Contains("token"));
}

TEST_CASE("txn: committed results, rolled-back errors, op and byte limits", "[transport][client][txn]")
{
    fixture f;
    std::vector<txn_op> ops = {{.verb = txn_verb::set, .key = "t1", .value = std::string("a"), .flags = 5},
                               {.verb = txn_verb::delete_key, .key = "t2"}};
    f.consul.push(reply(200, R"({"Results":[{"KV":)" + entry("t1", "", 50) + R"(}],"Errors":null})"));
    auto ok = f.run(f.client->txn(ops, "dc2"));
    REQUIRE(ok);
    CHECK(ok->committed);
    REQUIRE(ok->results.size() == 1);
    CHECK(ok->results[0].modify_index == 50);
    auto const& req = f.consul.requests()[0];
    CHECK(req.method == http::verb::put);
    CHECK(req.target == "/v1/txn?dc=dc2");
    CHECK(req.body == R"([{"KV":{"Verb":"set","Key":"t1","Value":"YQ==","Flags":5}},{"KV":{"Verb":"delete","Key":"t2"}}])");
    CHECK(req.token == std::optional<std::string>(token));

    f.consul.push(reply(409, R"({"Results":null,"Errors":[{"OpIndex":1,"What":"failed to set key \"t1\", index is stale"}]})"));
    auto rolled = f.run(f.client->txn(ops, ""));
    REQUIRE(rolled);
    CHECK_FALSE(rolled->committed);
    CHECK(rolled->errors == std::vector<txn_error_item>{{1, "failed to set key \"t1\", index is stale"}});
    CHECK(f.consul.requests()[1].target == "/v1/txn");

    f.consul.push(reply(413, "Transaction contains too many operations (129 > 128)"));
    auto many = f.run(f.client->txn(ops, ""));
    REQUIRE_FALSE(many);
    CHECK(many.error() == errc::too_many_operations);
    CHECK(many.error().limit == 128);
    CHECK(many.error().http_status == 413);
    CHECK_THAT(many.error().message, Catch::Contains("(129 > 128)"));

    f.consul.push(reply(413, "Request body(600000 bytes) too large, max size: 524288 bytes. See https://x."));
    auto big = f.run(f.client->txn(ops, ""));
    REQUIRE_FALSE(big);
    CHECK(big.error() == errc::request_too_large);
    CHECK(big.error().limit == 524288);

    f.consul.push(reply(403, "Permission denied"));
    auto denied = f.run(f.client->txn(ops, ""));
    REQUIRE_FALSE(denied);
    CHECK(denied.error() == errc::forbidden);

    f.consul.push(reply(200, R"({"Results":[{"KV":{"Key":"t1"}}],"Errors":null})"));
    auto bad = f.run(f.client->txn(ops, ""));
    REQUIRE_FALSE(bad);
    CHECK(bad.error() == errc::malformed_response);
}

TEST_CASE("small writes: put with options, delete with cas", "[transport][client]")
{
    fixture f;
    f.consul.push(reply(200, "true"));
    f.consul.push(reply(200, "false"));
    f.consul.push(reply(200, "true"));
    f.consul.push(reply(200, "true"));
    f.consul.push(reply(500, "strconv.ParseUint: parsing \"x\": invalid syntax"));
    auto a = f.run(f.client->put("svc/lock/.lock", "", {.flags = 3304740253564472344ULL, .acquire = "sid-1"}));
    REQUIRE(a);
    CHECK(*a);
    auto b = f.run(f.client->put("status/p", "{\"LastReplicated\":5}", {.cas = 0, .dc = "dc1"}));
    REQUIRE(b);
    CHECK_FALSE(*b);
    REQUIRE(f.run(f.client->remove("a key", std::uint64_t{17}, "")).value());
    REQUIRE(f.run(f.client->remove("b", std::nullopt, "dc9")).value());
    auto bad = f.run(f.client->put("k", "v", {}));
    REQUIRE_FALSE(bad);
    CHECK(bad.error() == errc::server_error);
    auto const& reqs = f.consul.requests();
    CHECK(reqs[0].target == "/v1/kv/svc/lock/.lock?flags=3304740253564472344&acquire=sid-1");
    CHECK(reqs[0].body.empty());
    CHECK(reqs[1].target == "/v1/kv/status/p?cas=0&dc=dc1");
    CHECK(reqs[1].body == "{\"LastReplicated\":5}");
    CHECK(reqs[2].method == http::verb::delete_);
    CHECK(reqs[2].target == "/v1/kv/a%20key?cas=17");
    CHECK(reqs[3].target == "/v1/kv/b?dc=dc9");
    CHECK(reqs[4].target == "/v1/kv/k");
}

TEST_CASE("agent/self, datacenters and sessions", "[transport][client]")
{
    fixture f;
    f.consul.push(reply(200, R"({"Config":{"Datacenter":"dc1","NodeName":"node-1"},"Member":{}})"));
    f.consul.push(reply(200, R"(["dc1","dc2"])"));
    f.consul.push(reply(200, R"({"ID":"5e1f-sid"})"));
    f.consul.push(reply(200, R"([{"ID":"5e1f-sid","TTL":"15s"}])"));
    f.consul.push(reply(404, "Session id '5e1f-sid' not found"));
    f.consul.push(reply(200, "true"));
    f.consul.push(reply(403, "Permission denied"));

    auto self = f.run(f.client->agent_self());
    REQUIRE(self);
    CHECK(self->datacenter == "dc1");
    CHECK(self->node_name == "node-1");
    auto dcs = f.run(f.client->datacenters());
    REQUIRE(dcs);
    CHECK(*dcs == std::vector<std::string>{"dc1", "dc2"});
    auto sid = f.run(f.client->session_create({.name = "kvship lock", .ttl = "15s"}, ""));
    REQUIRE(sid);
    CHECK(*sid == "5e1f-sid");
    auto ttl = f.run(f.client->session_renew(*sid, ""));
    REQUIRE(ttl);
    CHECK(*ttl == "15s");
    auto gone = f.run(f.client->session_renew(*sid, "dc2"));
    REQUIRE_FALSE(gone);
    CHECK(gone.error() == errc::not_found);
    REQUIRE(f.run(f.client->session_destroy(*sid, "")).value());
    auto denied = f.run(f.client->agent_self());
    REQUIRE_FALSE(denied);
    CHECK(denied.error() == errc::forbidden);

    auto const& reqs = f.consul.requests();
    CHECK(reqs[0].target == "/v1/agent/self");
    CHECK(reqs[1].target == "/v1/catalog/datacenters");
    CHECK(reqs[2].method == http::verb::put);
    CHECK(reqs[2].target == "/v1/session/create");
    CHECK(reqs[2].body == R"({"Name":"kvship lock","TTL":"15s"})");
    CHECK(reqs[3].target == "/v1/session/renew/5e1f-sid");
    CHECK(reqs[4].target == "/v1/session/renew/5e1f-sid?dc=dc2");
    CHECK(reqs[5].target == "/v1/session/destroy/5e1f-sid");
}

TEST_CASE("connections are kept alive and reused", "[transport][client]")
{
    fixture f;
    f.consul.fallback([](test::recorded_request const&) { return kv_reply(404, "", "3"); });
    for (int i = 0; i < 5; ++i) {
        REQUIRE(f.run(f.client->list("p/", {})));
    }
    CHECK(f.consul.requests().size() == 5);
    CHECK(f.consul.connections() == 1);
}

TEST_CASE("a response over body_limit is an error; a 24 MB listing fits the default", "[transport][client]")
{
    std::string body = "[";
    std::string const value = gotext::base64_encode(std::string(120, 'v'));
    for (int i = 0; i < 100000; ++i) {
        if (i > 0) {
            body += ',';
        }
        body += fmt::format(
            R"({{"LockIndex":0,"Key":"vault/logical/{:08d}/entry","Flags":0,"Value":"{}","CreateIndex":{},"ModifyIndex":{}}})",
            i, value, 100 + i, 100 + i);
    }
    body += "]";
    REQUIRE(body.size() > 20'000'000);
    {
        fixture f;
        f.consul.push(kv_reply(200, body, "100099"));
        auto r = f.run(f.client->list("vault/", {}));
        REQUIRE(r);
        CHECK(r->entries.size() == 100000);
        CHECK(r->index == 100099);
    }
    {
        fixture f([](consul_params& p) { p.body_limit = 1024 * 1024; });
        f.consul.push(kv_reply(200, body, "100099"));
        auto r = f.run(f.client->list("vault/", {}));
        REQUIRE_FALSE(r);
        CHECK(r.error() == errc::response_too_large);
        CHECK_FALSE(is_retryable(r.error()));
    }
}

TEST_CASE("an unrequested gzip body is refused", "[transport][client]")
{
    fixture f;
    auto rep = kv_reply(200, "\x1f\x8b garbage", "5");
    rep.headers.emplace_back("Content-Encoding", "gzip");
    f.consul.push(rep);
    auto r = f.run(f.client->list("p/", {}));
    REQUIRE_FALSE(r);
    CHECK(r.error() == errc::malformed_response);
}

TEST_CASE("basic auth goes in the Authorization header and never into errors", "[transport][client]")
{
    fixture f([](consul_params& p) { p.basic_auth = "replicator:hunter2-secret"; });
    f.consul.push(kv_reply(404, "", "5"));
    REQUIRE(f.run(f.client->list("p/", {})));
    REQUIRE(f.consul.requests().size() == 1);
    // base64("replicator:hunter2-secret")
    CHECK(f.consul.requests()[0].authorization == "Basic cmVwbGljYXRvcjpodW50ZXIyLXNlY3JldA==");

    f.consul.push(kv_reply(500, "bad auth replicator:hunter2-secret Basic cmVwbGljYXRvcjpodW50ZXIyLXNlY3JldA==", "5"));
    auto r = f.run(f.client->list("p/", {}));
    REQUIRE_FALSE(r);
    CHECK_THAT(r.error().message, !Catch::Contains("hunter2"));
    CHECK_THAT(r.error().message, !Catch::Contains("cmVwbGljYXRvcjpodW50ZXIyLXNlY3JldA"));
}

TEST_CASE("health and catalog service reads: targets, answers, errors", "[transport][client][gate]")
{
    fixture f;
    f.consul.push(reply(200, R"([{"Node": {"Node": "n1", "Address": "10.0.0.1", "Datacenter": "dc2"},
        "Service": {"Service": "vault", "Tags": ["active"], "Address": "", "Port": 8200}}])"));
    health_query const q{"active", true, "dc2"};
    auto r = f.run(f.client->health_service("vault", q));
    REQUIRE(r);
    REQUIRE(r->size() == 1);
    CHECK((*r)[0].address == "10.0.0.1");
    CHECK(f.consul.requests()[0].target == "/v1/health/service/vault?tag=active&passing&dc=dc2");
    CHECK(f.consul.requests()[0].token == std::optional<std::string>(token));

    f.consul.push(reply(200, "[]"));
    auto c = f.run(f.client->catalog_service("vault", "dc1"));
    REQUIRE(c);
    CHECK(c->empty());
    CHECK(f.consul.requests()[1].target == "/v1/catalog/service/vault?dc=dc1");

    // an error is an error, never "no instance"
    f.consul.push(reply(500, "No path to datacenter"));
    auto e = f.run(f.client->health_service("vault", q));
    REQUIRE_FALSE(e);
    CHECK(e.error() == errc::no_path_to_datacenter);
    f.consul.push(reply(200, "{}"));
    e = f.run(f.client->health_service("vault", q));
    REQUIRE_FALSE(e);
    CHECK(e.error() == errc::malformed_response);
}

TEST_CASE("Vault's sys/leader goes to the Vault address without any Consul credential", "[transport][client][gate]")
{
    fixture f([](consul_params& p) { p.basic_auth = "user:pw"; });
    test::fake_consul v{f.ioc};
    v.push(reply(200, R"({"ha_enabled": true, "is_self": true, "leader_address": "http://10.0.0.1:8200"})"));
    auto r = f.run(f.client->vault_sys_leader("http://" + v.address() + "/"));
    REQUIRE(r);
    CHECK(r->is_self);
    CHECK(r->leader_address == "http://10.0.0.1:8200");
    REQUIRE(v.requests().size() == 1);
    CHECK(v.requests()[0].target == "/v1/sys/leader");
    CHECK_FALSE(v.requests()[0].token.has_value());
    CHECK(v.requests()[0].authorization.empty());
    CHECK(f.consul.requests().empty());

    v.push(reply(503, R"({"errors":["Vault is sealed"]})"));
    auto e = f.run(f.client->vault_sys_leader("http://" + v.address()));
    REQUIRE_FALSE(e);
    CHECK_THAT(e.error().what(), Catch::Contains("/v1/sys/leader"));
    f.check_no_token_anywhere(e.error());

    e = f.run(f.client->vault_sys_leader("ftp://" + v.address()));
    REQUIRE_FALSE(e);
    CHECK(e.error() == errc::bad_request);
}
