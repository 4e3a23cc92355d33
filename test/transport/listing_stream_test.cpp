// Streaming decode of KV listings: kv_listing_decoder fed at every split point, strings holding
// braces, brackets and escaped quotes, truncated and garbage bodies; list_stream against the fake
// Consul (batches, the safety rules before any entry, truncation after some, the sink stopping it).
#include "fake_consul.hpp"

#include <gotext/base64.hpp>
#include <transport/consul_client.hpp>
#include <transport/consul_codec.hpp>

#include <catch2/catch.hpp>
#include <fmt/format.h>

using namespace kvship;
using namespace kvship::transport;
using test::kv_reply;
using test::reply;

namespace {

std::string entry(
    std::string const& key_json, std::string const& value, std::uint64_t modify, std::string const& extra = ""
)
{
    return fmt::format(
        R"({{"LockIndex":0,"Key":{},"Flags":0,"Value":"{}",{}"CreateIndex":{},"ModifyIndex":{}}})",
        key_json,
        gotext::base64_encode(value),
        extra,
        modify,
        modify
    );
}

// Keys whose text holds every character the scanner must not take for structure.
std::string tricky_body()
{
    return "[ " + entry(R"("a{b")", "1", 1) + " ,\n" + entry(R"("c}]d")", "2", 2) + "," +
           entry(R"("e\"f")", "3", 3) + "," + entry(R"("g\\")", "4", 4) + "," +
           entry(R"("h\\\"[{")", "5", 5, R"("Unknown":{"x":["}",{"y":"]"}]},)") + "," +
           entry(R"("i\u007d")", "6", 6) + " ]\n";
}

std::vector<std::string> const tricky_keys = {"a{b", "c}]d", "e\"f", "g\\", "h\\\"[{", "i}"};

struct fed
{
    std::vector<kv_entry> entries;
    std::optional<consul_error> error;
};

// Feeds `body` in pieces cut at `cuts` (increasing positions), taking entries as they come.
fed feed_split(std::string_view body, std::vector<std::size_t> const& cuts, std::size_t batch)
{
    kv_listing_decoder d(batch);
    fed out;
    std::size_t pos = 0;
    auto take = [&] {
        for (auto& e : d.take()) {
            out.entries.push_back(std::move(e));
        }
    };
    for (std::size_t c : cuts) {
        if (auto e = d.feed(body.substr(pos, c - pos))) {
            out.error = e;
            return out;
        }
        take();
        pos = c;
    }
    if (auto e = d.feed(body.substr(pos))) {
        out.error = e;
        return out;
    }
    out.error = d.finish();
    take();
    return out;
}

}  // namespace

TEST_CASE("the decoder gives the whole-body entries at every split point", "[transport][codec][stream]")
{
    auto const body = tricky_body();
    auto const whole = decode_kv_entries(body);
    REQUIRE(whole);
    REQUIRE(whole->size() == tricky_keys.size());
    for (std::size_t i = 0; i < tricky_keys.size(); ++i) {
        CHECK((*whole)[i].key == tricky_keys[i]);
    }
    for (std::size_t batch : {1, 2, 1000}) {
        for (std::size_t cut = 0; cut <= body.size(); ++cut) {
            INFO("batch " << batch << " cut at " << cut);
            auto got = feed_split(body, {cut}, batch);
            REQUIRE_FALSE(got.error);
            REQUIRE(got.entries == *whole);
        }
    }
    // One byte at a time.
    std::vector<std::size_t> every;
    for (std::size_t i = 1; i < body.size(); ++i) {
        every.push_back(i);
    }
    auto got = feed_split(body, every, 1);
    REQUIRE_FALSE(got.error);
    CHECK(got.entries == *whole);
}

TEST_CASE("entries arrive in batches as their objects complete", "[transport][codec][stream]")
{
    std::string body = "[";
    for (int i = 0; i < 10; ++i) {
        body += (i ? "," : "") + entry(fmt::format("\"k{}\"", i), "v", 1);
    }
    body += "]";
    kv_listing_decoder d(3);
    auto const third = body.find("\"k3\"");  // inside the fourth object
    REQUIRE_FALSE(d.feed(std::string_view(body).substr(0, third)));
    CHECK(d.ready() == 3);
    REQUIRE_FALSE(d.feed(""));
    CHECK(d.ready() == 3);
    auto first = d.take();
    REQUIRE(first.size() == 3);
    CHECK(first[2].key == "k2");
    REQUIRE_FALSE(d.feed(std::string_view(body).substr(third)));
    CHECK(d.ready() == 7);  // every complete object is decoded once 3 are pending
    REQUIRE_FALSE(d.finish());
    auto rest = d.take();
    REQUIRE(rest.size() == 7);
    CHECK(rest.back().key == "k9");
}

TEST_CASE("empty listings and whitespace", "[transport][codec][stream]")
{
    for (std::string body : {"[]", " [ ] ", "\n[\n]\n"}) {
        auto got = feed_split(body, {}, 10);
        CHECK_FALSE(got.error);
        CHECK(got.entries.empty());
    }
}

TEST_CASE(
    "truncated, malformed and wrong-shaped bodies are errors at every split point",
    "[transport][codec][stream]"
)
{
    auto const good = tricky_body();

    struct row
    {
        std::string why;
        std::string body;
        std::string says;
    };

    std::vector<row> rows = {
        {"empty", "", "empty body"},
        {"object", R"({"Key":"a"})", "not a JSON array"},
        {"string", R"("[]")", "not a JSON array"},
        {"garbage", "garbage", "not a JSON array"},
        {"unclosed array", "[" + entry(R"("a")", "1", 1), "before its array closes"},
        {"trailing comma", "[" + entry(R"("a")", "1", 1) + ",]", "expected an array element"},
        {"leading comma", "[," + entry(R"("a")", "1", 1) + "]", "expected an array element"},
        {"missing comma", "[" + entry(R"("a")", "1", 1) + entry(R"("b")", "1", 1) + "]", "expected ','"},
        {"trailing bytes", "[]x", "after the end"},
        {"two arrays", "[][]", "after the end"},
        {"scalar element", "[1]", "entry 0 is not an object"},
        {"string element", R"([")" + std::string("x") + R"("])", "entry 0 is not an object"},
        {"array element", "[" + entry(R"("a")", "1", 1) + ",[]]", "entry 1 is not an object"},
        {"mismatched brackets", R"([{"Key":"a"]])", "invalid JSON"},
        {"bad base64 in the third",
         "[" + entry(R"("a")", "1", 1) + "," + entry(R"("b")", "1", 1) + "," +
             R"({"LockIndex":0,"Key":"c","Flags":0,"Value":"!!","CreateIndex":1,"ModifyIndex":1}])",
         "entry 2: \"Value\""},
        {"missing field in the second", "[" + entry(R"("a")", "1", 1) + R"(,{"Key":"b"}])", "entry 1: no"},
        {"truncated in a string", good.substr(0, good.find("c}]d") + 2), "before its array closes"},
        {"truncated after an element", good.substr(0, good.find("},") + 1), "before its array closes"},
    };
    for (auto const& r : rows) {
        for (std::size_t batch : {1, 1000}) {
            for (std::size_t cut = 0; cut <= r.body.size(); ++cut) {
                INFO(r.why << ", batch " << batch << ", cut at " << cut);
                auto got = feed_split(r.body, {cut}, batch);
                REQUIRE(got.error);
                CHECK(*got.error == errc::malformed_response);
                CHECK_THAT(got.error->message, Catch::Contains(r.says));
            }
        }
    }
}

TEST_CASE("a decoder error is sticky", "[transport][codec][stream]")
{
    kv_listing_decoder d;
    REQUIRE(d.feed("{"));
    CHECK(d.feed("[]"));
    CHECK(d.finish());
    CHECK(d.take().empty());
}

// ---- list_stream against the fake Consul ----

namespace {

struct fixture
{
    asio::io_context ioc{1};
    test::fake_consul consul{ioc};
    std::unique_ptr<consul_client> client;

    fixture()
    {
        consul_params p;
        p.address = consul.address();
        p.token = "t0ken";
        p.retry.enabled = false;
        client = create_consul_client(ioc.get_executor(), p);
    }

    struct streamed
    {
        consul_result<kv_listing> result;
        std::vector<std::size_t> batches;
        std::vector<kv_entry> entries;
    };

    streamed stream(std::size_t batch, std::optional<std::size_t> stop_after_batches = std::nullopt)
    {
        auto out = std::make_shared<streamed>(streamed{consul_error{}, {}, {}});
        auto sink = [out, stop_after_batches](
                        query_meta const& meta, std::vector<kv_entry> got
                    ) -> awaitable<std::optional<consul_error>> {
            CHECK(meta.index == 9);
            out->batches.push_back(got.size());
            for (auto& e : got) {
                out->entries.push_back(std::move(e));
            }
            if (stop_after_batches && out->batches.size() >= *stop_after_batches) {
                co_return consul_error{make_error_code(errc::cancelled), 0, "enough"};
            }
            co_return std::nullopt;
        };
        out->result = test::run(ioc, client->list_stream("p/", {}, sink, batch));
        return std::move(*out);
    }
};

std::string big_body(std::size_t n)
{
    std::string body = "[";
    for (std::size_t i = 0; i < n; ++i) {
        body += (i ? "," : "") + entry(fmt::format("\"p/{:06}\"", i), std::string(100, 'v'), i + 1);
    }
    return body + "]";
}

}  // namespace

TEST_CASE("list_stream hands the listing over in batches with its meta", "[transport][client][stream]")
{
    fixture f;
    f.consul.push(kv_reply(200, big_body(2500), "9"));
    auto got = f.stream(1000);
    REQUIRE(got.result);
    CHECK(got.result->index == 9);
    CHECK(got.result->entries.empty());
    REQUIRE(got.entries.size() == 2500);
    CHECK(got.entries[0].key == "p/000000");
    CHECK(got.entries[2499].key == "p/002499");
    CHECK(got.entries[7].value == std::optional<std::string>(std::string(100, 'v')));
    std::size_t total = 0;
    for (auto b : got.batches) {
        CHECK(b <= 2000);  // a batch is cut when a piece of the body completes at least 1000
        total += b;
    }
    CHECK(total == 2500);
    CHECK(got.batches.size() >= 2);
    REQUIRE(f.consul.requests().size() == 1);
    CHECK(f.consul.requests()[0].target == "/v1/kv/p/?recurse");
    // The connection is reused afterwards.
    f.consul.push(kv_reply(404, "", "9"));
    auto again = f.stream(1000);
    REQUIRE(again.result);
    CHECK(again.entries.empty());
    CHECK(f.consul.connections() == 1);
}

TEST_CASE("list_stream: the safety rules hold before any entry is delivered", "[transport][client][stream]")
{
    struct row
    {
        char const* why;
        test::scripted_reply rep;
        errc code;
    };

    auto const body = big_body(3);
    std::vector<row> const rows = {
        {"200 without index", kv_reply(200, body, ""), errc::missing_index},
        {"403", kv_reply(403, "Permission denied", "9"), errc::forbidden},
        {"500", kv_reply(500, "rpc error: boom", "9"), errc::server_error},
        {"200 known leader false", kv_reply(200, body, "9", "false"), errc::no_leader},
        {"200 malformed JSON", kv_reply(200, "[{\"Key\":", "9"), errc::malformed_response},
        {"200 wrong shape", kv_reply(200, "{\"a\":1}", "9"), errc::malformed_response},
        {"200 empty body", kv_reply(200, "", "9"), errc::malformed_response},
        {"200 trailing garbage", kv_reply(200, body + "]", "9"), errc::malformed_response},
    };
    for (auto const& r : rows) {
        INFO(r.why);
        fixture f;
        f.consul.push(r.rep);
        auto got = f.stream(1);
        REQUIRE_FALSE(got.result);
        CHECK(got.result.error().code == make_error_code(r.code));
        CHECK_THAT(got.result.error().message, Catch::Contains("GET /v1/kv/p/?recurse"));
        CHECK_THAT(got.result.error().what(), !Catch::Contains("t0ken"));
        if (r.code != errc::malformed_response) {
            CHECK(got.entries.empty());
        }
    }
}

TEST_CASE(
    "list_stream: a body cut short is an error after the entries that came", "[transport][client][stream]"
)
{
    fixture f;
    auto rep = kv_reply(200, big_body(3000), "9");
    rep.cut_after = 200000;
    f.consul.push(rep);
    auto got = f.stream(100);
    REQUIRE_FALSE(got.result);
    CHECK(got.result.error() == errc::connection_lost);
    CHECK_FALSE(got.entries.empty());
    CHECK(got.entries.size() < 3000);
}

TEST_CASE("list_stream: the sink can stop the read", "[transport][client][stream]")
{
    fixture f;
    f.consul.push(kv_reply(200, big_body(3000), "9"));
    auto got = f.stream(100, 2);
    REQUIRE_FALSE(got.result);
    CHECK(got.result.error() == errc::cancelled);
    CHECK_THAT(got.result.error().message, Catch::Contains("enough"));
    CHECK(got.batches.size() == 2);
    // The connection was dropped, not pooled mid-body: the next read works on a new one.
    f.consul.push(kv_reply(200, big_body(2), "9"));
    auto next = f.stream(100);
    REQUIRE(next.result);
    CHECK(next.entries.size() == 2);
}

// Found by test/fuzz (kv_listing): RapidJSON's in-situ stream ends at a NUL byte, so the whole-body
// decoders took `[]\0\0...` for `[]` while the streamed decoder (rightly) refused the trailing bytes.
TEST_CASE("a NUL byte anywhere in a body is malformed, whole or streamed", "[transport][codec][stream][fuzz]")
{
    using namespace std::string_literals;
    for (std::string body : {"[]\0"s, "[]\0\0\0\0"s, "[]\0junk"s, "["s + entry(R"("a")", "1", 1) + "]\0]"s,
                             "[\0]"s, "\0[]"s}) {
        INFO(body.size());
        auto whole = decode_kv_entries(body);
        REQUIRE_FALSE(whole);
        CHECK(whole.error() == errc::malformed_response);
        CHECK(feed_split(body, {}, 10).error);
        CHECK_FALSE(decode_txn_response("{\"Results\":null,\"Errors\":null}\0x"s, true));
        CHECK_FALSE(decode_bool("true\0"s));
        CHECK_FALSE(decode_string_array("[\"a\"]\0"s));
    }
}
