// Pure parts of the Consul client: targets, deadlines, meta headers, status → error, backoff.
#include "fake_consul.hpp"

#include <transport/consul_request.hpp>
#include <transport/consul_retry.hpp>

#include <catch2/catch.hpp>

#include <boost/beast/http/fields.hpp>

using namespace kvship::transport;
using namespace std::chrono_literals;

TEST_CASE("keys are percent-encoded in the path, '/' kept", "[transport][request]")
{
    CHECK(escape_path("vault/core/keyring") == "vault/core/keyring");
    CHECK(escape_path("a b?c#d%e&f=g+h") == "a%20b%3Fc%23d%25e%26f%3Dg%2Bh");
    CHECK(escape_path("A-Z_a.z~0") == "A-Z_a.z~0");
    CHECK(escape_path(std::string("\xC3\xA9\x01\x7F", 4)) == "%C3%A9%01%7F");
    CHECK(escape_path("") == "");
    CHECK(escape_query_value("a/b c") == "a%2Fb%20c");
}

TEST_CASE("query options become Consul's parameters", "[transport][request]")
{
    CHECK(target_builder("/v1/kv/p").flag("recurse").query({}).str() == "/v1/kv/p?recurse");
    CHECK(target_builder("/v1/kv/p").query({}).str() == "/v1/kv/p");
    query_options q{.dc = "dc 2", .index = 18446744073709551615ULL, .wait = 90s, .mode = consistency::stale};
    CHECK(target_builder("/v1/kv/p").flag("recurse").query(q).str() ==
          "/v1/kv/p?recurse&dc=dc%202&stale&index=18446744073709551615&wait=90000ms");
    // No index: no blocking, so no wait either.
    CHECK(target_builder("/v1/kv/p").query({.wait = 5s, .mode = consistency::consistent}).str() ==
          "/v1/kv/p?consistent");
    // Index without wait: the server's default applies.
    CHECK(target_builder("/x").query({.index = 7}).str() == "/x?index=7");
    CHECK(target_builder("/x").param("separator", "/").param("cas", std::uint64_t{0}).str() ==
          "/x?separator=%2F&cas=0");
}

TEST_CASE("a source read: ?stale with -max-stale, blocking once an index is known", "[transport][request]")
{
    read_settings const consistent{.dc = "dc2", .max_stale = 0ns, .wait = 60s};
    CHECK(read_query(consistent, 0) == query_options{.dc = "dc2"});
    CHECK(read_query(consistent, 42) == query_options{.dc = "dc2", .index = 42, .wait = 60s});
    read_settings const stale{.max_stale = 2s, .wait = 5s};
    CHECK(read_query(stale, 0) == query_options{.mode = consistency::stale});
    CHECK(target_builder("/v1/kv/p").flag("recurse").query(read_query(stale, 9)).str() ==
          "/v1/kv/p?recurse&stale&index=9&wait=5000ms");
}

TEST_CASE("a ?stale answer further behind than -max-stale is read again without ?stale", "[transport][request]")
{
    read_settings const s{.dc = "dc2", .max_stale = 2s, .wait = 5s};
    auto const sent = read_query(s, 9);
    CHECK_FALSE(stale_reread(s, sent, 0ms));
    CHECK_FALSE(stale_reread(s, sent, 2000ms));  // at the bound: still used
    auto const again = stale_reread(s, sent, 2001ms);
    REQUIRE(again);
    CHECK(*again == query_options{.dc = "dc2", .index = 9, .wait = 5s, .mode = consistency::default_mode});
    // The answer to the re-read is used however old: it was not a ?stale read.
    CHECK_FALSE(stale_reread(s, *again, 60000ms));
    // Without a bound nothing is ever too stale.
    read_settings const none{.dc = "dc2"};
    CHECK_FALSE(stale_reread(none, read_query(none, 9), 60000ms));
    // A bound below a millisecond: any lag over it counts.
    read_settings const tight{.max_stale = 500us};
    CHECK_FALSE(stale_reread(tight, read_query(tight, 0), 0ms));
    CHECK(stale_reread(tight, read_query(tight, 0), 1ms));
}

TEST_CASE("a blocking read's deadline is wait + wait/16 + margin", "[transport][request]")
{
    auto const timeout = 30s;
    auto const margin = 5s;
    CHECK(read_deadline({}, timeout, margin) == timeout);                    // not blocking
    CHECK(read_deadline({.wait = 60s}, timeout, margin) == timeout);         // wait without index: not blocking
    CHECK(read_deadline({.index = 5, .wait = 160s}, timeout, margin) == 160s + 10s + 5s);
    CHECK(read_deadline({.index = 5, .wait = 1600ms}, timeout, margin) == 1600ms + 100ms + 5s);
    CHECK(read_deadline({.index = 5}, timeout, margin) == 300s + 18750ms + 5s);    // server default 5 min
    CHECK(read_deadline({.index = 5, .wait = 3600s}, timeout, margin) == 600s + 37500ms + 5s);  // capped at 10 min
    CHECK(effective_wait({.index = 1, .wait = 15000ms}) == 15s);
}

namespace {

boost::beast::http::fields headers(std::initializer_list<std::pair<char const*, char const*>> list)
{
    boost::beast::http::fields f;
    for (auto const& [k, v] : list) {
        f.set(k, v);
    }
    return f;
}

}  // namespace

TEST_CASE("meta headers: index required and exact, known leader required", "[transport][request]")
{
    auto m = parse_query_meta(headers({{"X-Consul-Index", "18446744073709551615"},
                                       {"X-Consul-KnownLeader", "true"},
                                       {"X-Consul-LastContact", "250"}}),
                              "GET /v1/kv/p");
    REQUIRE(m);
    CHECK(m->index == 18446744073709551615ULL);
    CHECK(m->known_leader);
    CHECK(m->last_contact == 250ms);

    auto zero = parse_query_meta(headers({{"X-Consul-Index", "0"}, {"X-Consul-KnownLeader", "true"}}), "r");
    REQUIRE(zero);
    CHECK(zero->index == 1);  // Consul never sends 0; clients raise it to 1
    CHECK(zero->last_contact == 0ms);

    for (auto const* bad : {"", "-1", "18446744073709551616", "12a", "1 2", "+5", "1.0"}) {
        INFO(bad);
        auto r = parse_query_meta(headers({{"X-Consul-Index", bad}, {"X-Consul-KnownLeader", "true"}}), "r");
        REQUIRE_FALSE(r);
        CHECK(r.error() == errc::missing_index);
    }
    auto missing = parse_query_meta(headers({{"X-Consul-KnownLeader", "true"}}), "GET /v1/kv/p?recurse");
    REQUIRE_FALSE(missing);
    CHECK(missing.error() == errc::missing_index);
    CHECK_THAT(missing.error().message, Catch::Contains("GET /v1/kv/p?recurse"));

    auto no_leader = parse_query_meta(headers({{"X-Consul-Index", "5"}, {"X-Consul-KnownLeader", "false"}}), "r");
    REQUIRE_FALSE(no_leader);
    CHECK(no_leader.error() == errc::no_leader);
    auto absent = parse_query_meta(headers({{"X-Consul-Index", "5"}}), "r");
    REQUIRE_FALSE(absent);
    CHECK(absent.error() == errc::no_leader);

    auto contact = parse_query_meta(
        headers({{"X-Consul-Index", "5"}, {"X-Consul-KnownLeader", "true"}, {"X-Consul-LastContact", "x"}}), "r");
    REQUIRE_FALSE(contact);
    CHECK(contact.error() == errc::malformed_response);
}

TEST_CASE("HTTP statuses map to codes, with the body's start in the message", "[transport][request]")
{
    struct row
    {
        unsigned status;
        char const* body;
        errc code;
        std::uint64_t limit;
    };
    row const rows[] = {
        {400, "Invalid wait time", errc::bad_request, 0},
        {403, "Permission denied: token with AccessorID 'x' lacks permission 'key:read' on \"p\"", errc::forbidden, 0},
        {403, "ACL not found", errc::forbidden, 0},
        {404, "Session id 'x' not found", errc::not_found, 0},
        {405, "method PATCH not allowed", errc::bad_request, 0},
        {413, "Transaction contains too many operations (129 > 128)", errc::too_many_operations, 128},
        {413, "Transaction contains too many operations (65 > 64)", errc::too_many_operations, 64},
        {413,
         "Request body(600000 bytes) too large, max size: 524288 bytes. See "
         "https://developer.hashicorp.com/docs/agent/config/config-files#txn_max_req_len.",
         errc::request_too_large, 524288},
        {413, "Value for key \"k\" is too large (600000 > 524288 bytes)", errc::request_too_large, 524288},
        {413, "", errc::request_too_large, 0},
        {429, "Your IP is issuing too many concurrent connections", errc::rate_limited, 0},
        {500, "No cluster leader", errc::no_leader, 0},
        {500, "rpc error making call: No path to datacenter", errc::no_path_to_datacenter, 0},
        {500, "Remote DC has no server currently reachable", errc::no_path_to_datacenter, 0},
        {500, "strconv.ParseUint: parsing \"x\": invalid syntax", errc::server_error, 0},
        {502, "", errc::server_error, 0},
        {503, "", errc::server_error, 0},
        {301, "", errc::bad_status, 0},
        {201, "", errc::bad_status, 0},
    };
    for (auto const& r : rows) {
        INFO(r.status << " " << r.body);
        auto const e = error_from_status("GET /v1/kv/p?recurse", r.status, r.body);
        CHECK(e.code == make_error_code(r.code));
        CHECK(e.http_status == r.status);
        CHECK(e.limit == r.limit);
        CHECK_THAT(e.message, Catch::StartsWith("GET /v1/kv/p?recurse: HTTP " + std::to_string(r.status)));
        CHECK_THAT(e.message, Catch::Contains(std::string(r.body).substr(0, 40)));
        CHECK(e.code.category() == consul_category());
    }
    auto const long_body = error_from_status("r", 500, std::string(10000, 'x') + "\n");
    CHECK(long_body.message.size() < 400);
    CHECK_THAT(long_body.message, Catch::EndsWith("..."));
}

TEST_CASE("error codes: retryable or not, messages, exceptions", "[transport][request]")
{
    for (auto e : {errc::connect_failed, errc::connection_lost, errc::timed_out, errc::no_leader,
                   errc::no_path_to_datacenter, errc::server_error, errc::rate_limited}) {
        CHECK(is_retryable(make_error_code(e)));
    }
    for (auto e : {errc::cancelled, errc::tls_failed, errc::response_too_large, errc::malformed_response,
                   errc::missing_index, errc::forbidden, errc::not_found, errc::bad_request,
                   errc::request_too_large, errc::too_many_operations, errc::bad_status}) {
        CHECK_FALSE(is_retryable(make_error_code(e)));
    }
    CHECK_FALSE(is_retryable(boost::system::error_code(boost::asio::error::timed_out)));  // other categories: no
    consul_error const e{errc::forbidden, 403, "GET /v1/kv/p: HTTP 403: Permission denied"};
    CHECK(e.what() == "permission denied by Consul ACLs: GET /v1/kv/p: HTTP 403: Permission denied");
    consul_result<int> r = e;
    CHECK_THROWS_AS(r.value(), boost::system::system_error);
    CHECK_THROWS_WITH(r.value(), Catch::Contains("HTTP 403"));
}

TEST_CASE("redact scrubs every occurrence of the token", "[transport][request]")
{
    std::string s = "token abc in abc and abcabc";
    redact(s, "abc");
    CHECK(s == "token <redacted> in <redacted> and <redacted><redacted>");
    std::string t = "unchanged";
    redact(t, "");
    CHECK(t == "unchanged");
}

TEST_CASE("backoff doubles up to the cap, with bounded jitter and a fixed seed", "[transport][retry]")
{
    retry_params p{.enabled = true, .max_attempts = 12, .backoff = 250ms, .max_backoff = 60s, .jitter = 0.0};
    backoff plain(p, 1);
    std::vector<long> got;
    while (auto d = plain.next()) {
        got.push_back(static_cast<long>(d->count()));
    }
    // consul-replicate's defaults: 0.25, 0.5, 1, 2, 4, 8, 16, 32, 60, 60, 60, 60 s.
    CHECK(got == std::vector<long>{250, 500, 1000, 2000, 4000, 8000, 16000, 32000, 60000, 60000, 60000, 60000});
    CHECK(plain.attempt() == 12);
    plain.reset();
    CHECK(plain.next() == 250ms);

    p.jitter = 0.5;
    backoff a(p, 42);
    backoff b(p, 42);
    backoff c(p, 43);
    bool differs = false;
    for (unsigned n = 0; n < 12; ++n) {
        auto const da = a.next();
        auto const db = b.next();
        auto const dc = c.next();
        REQUIRE(da);
        CHECK(da == db);  // same seed, same sequence
        differs = differs || da != dc;
        auto const base = std::min<long>(250L << std::min(n, 20u), 60000);
        CHECK(da->count() <= base);
        CHECK(da->count() >= base / 2);
    }
    CHECK(differs);

    backoff forever({.max_attempts = 0, .backoff = 1ms, .max_backoff = 0ms, .jitter = 0.0}, 1);
    std::chrono::milliseconds last{};
    for (int i = 0; i < 100; ++i) {
        auto d = forever.next();
        REQUIRE(d);
        CHECK(*d >= last);  // no overflow, no cap
        last = *d;
    }
    backoff off({.enabled = false}, 1);
    CHECK_FALSE(off.next());
}
