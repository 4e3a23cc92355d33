// The pair driver (apps/consul-replicate/replicator.cpp) as it runs in the program, over the real
// transport client, against an in-process fake Consul (test/transport/fake_consul) that keeps a small
// KV store: a round, a txn refused as too large and cut again, a fenced batch, a stop mid-round.
#include "../transport/fake_consul.hpp"

#include <checkpoint_codec.hpp>
#include <replicator.hpp>

#include <gotext/base64.hpp>
#include <prefixes/prefix_spec.hpp>
#include <prefixes/rule.hpp>
#include <transport/consul_client.hpp>

#include <rapidjson/document.h>

#include <catch2/catch.hpp>

#include <fmt/format.h>

#include <map>
#include <set>

using namespace kvship;
using namespace std::chrono_literals;

namespace {

struct stored
{
    std::string value;
    std::uint64_t flags = 0;
    std::uint64_t modify = 0;
};

// The KV part of Consul the driver uses with -once: listings, one-key GETs, /v1/txn (set, delete,
// check-session), plus the faults the tests need.
struct fake_kv
{
    std::map<std::string, stored> kv;
    std::uint64_t index = 1;
    std::size_t max_ops = 0;        // 413 "too many operations" above this (0: no limit)
    bool refuse_session = false;    // check-session ops fail: the lock is not ours
    std::chrono::milliseconds txn_delay{0};
    std::vector<std::vector<std::string>> txns;  // the keys of each committed txn, in order
    std::size_t refused = 0;

    void put(std::string key, std::string value) { kv[std::move(key)] = stored{std::move(value), 0, ++index}; }

    // Several keys in one transaction: they share a ModifyIndex.
    void put_txn(const std::vector<std::string>& keys)
    {
        ++index;
        for (auto const& k : keys) kv[k] = stored{"t", 0, index};
    }

    std::string entry_json(const std::string& key, const stored& e) const
    {
        return fmt::format(
            R"({{"LockIndex":0,"Key":"{}","Flags":{},"Value":"{}","CreateIndex":{},"ModifyIndex":{}}})",
            key,
            e.flags,
            gotext::base64_encode(e.value),
            e.modify,
            e.modify
        );
    }

    test::scripted_reply answer(const test::recorded_request& r)
    {
        std::string const target = r.target;
        auto const q = target.find('?');
        std::string const path = target.substr(0, q);
        std::string const query = q == std::string::npos ? std::string{} : target.substr(q + 1);
        if (r.method == http::verb::get && path.starts_with("/v1/kv/")) {
            std::string const key = path.substr(7);
            std::string body = "[";
            bool const recurse = query.find("recurse") != std::string::npos;
            for (auto const& [k, e] : kv) {
                if (recurse ? !k.starts_with(key) : k != key)
                    continue;
                if (body.size() > 1)
                    body += ",";
                body += entry_json(k, e);
            }
            body += "]";
            if (body == "[]")
                return test::kv_reply(404, "", std::to_string(index));
            return test::kv_reply(200, body, std::to_string(index));
        }
        if (r.method == http::verb::put && path == "/v1/txn")
            return txn(r.body);
        return test::reply(500, "fake_kv: not scripted: " + target);
    }

    test::scripted_reply txn(const std::string& body)
    {
        rapidjson::Document doc;
        doc.Parse(body.c_str(), body.size());
        REQUIRE(doc.IsArray());
        auto const n = doc.GetArray().Size();
        if (max_ops > 0 && n > max_ops) {
            ++refused;
            return with_delay(test::reply(413, fmt::format("Transaction contains too many operations ({} > {})", n, max_ops)));
        }
        std::vector<std::pair<std::string, std::optional<std::string>>> writes;
        std::size_t i = 0;
        for (auto const& op : doc.GetArray()) {
            auto const& kvop = op["KV"];
            std::string const verb = kvop["Verb"].GetString();
            std::string const key = kvop["Key"].GetString();
            if (verb == "check-session") {
                if (refuse_session)
                    return with_delay(test::reply(
                        409,
                        fmt::format(R"({{"Results":null,"Errors":[{{"OpIndex":{},"What":"failed session check"}}]}})", i)
                    ));
            } else if (verb == "set") {
                auto const v = kvop.HasMember("Value") && kvop["Value"].IsString()
                                   ? gotext::base64_decode(kvop["Value"].GetString())
                                   : std::optional<std::string>(std::string{});
                REQUIRE(v);
                writes.emplace_back(key, *v);
            } else if (verb == "delete") {
                writes.emplace_back(key, std::nullopt);
            } else {
                FAIL("fake_kv: verb " << verb);
            }
            ++i;
        }
        ++index;
        std::vector<std::string> keys;
        for (auto& [k, v] : writes) {
            keys.push_back(k);
            if (v)
                kv[k] = stored{*v, 0, index};
            else
                kv.erase(k);
        }
        txns.push_back(std::move(keys));
        return with_delay(test::reply(200, R"({"Results":[],"Errors":null})"));
    }

    test::scripted_reply with_delay(test::scripted_reply r) const
    {
        r.delay = txn_delay;
        return r;
    }
};

struct fixture
{
    asio::io_context ioc{1};
    test::fake_consul source{ioc};
    test::fake_consul destination{ioc};
    fake_kv src;
    fake_kv dst;
    std::unique_ptr<transport::consul_client> src_client;
    std::unique_ptr<transport::consul_client> dst_client;
    replicate::txn_limit limit;
    std::vector<std::string> lines;
    replicate::logger log{replicate::log_level::debug, [this](replicate::log_level, std::string_view c, std::string_view m) {
                              lines.push_back(fmt::format("({}) {}", c, m));
                          }};
    replicate::metrics_registry metrics;

    fixture()
    {
        replicate::declare_metrics(metrics, "test", "test");
        source.fallback([this](const test::recorded_request& r) { return src.answer(r); });
        destination.fallback([this](const test::recorded_request& r) { return dst.answer(r); });
        src_client = client_for(source);
        dst_client = client_for(destination);
    }

    std::unique_ptr<transport::consul_client> client_for(const test::fake_consul& c)
    {
        transport::consul_params p;
        p.address = c.address();
        p.retry.enabled = false;
        return transport::create_consul_client(ioc.get_executor(), p);
    }

    replicate::pair_params params(std::string spec = "s/@dc1:d/")
    {
        replicate::pair_params p;
        auto parsed = prefixes::parse_prefix_spec(spec);
        REQUIRE(parsed.has_value());
        p.fsm.rule = prefixes::make_rule(*parsed, {}, "service/consul-replicate/statuses");
        p.fsm.once = true;
        p.fsm.stage_batches = true;  // as app.cpp runs it
        p.fsm.encode_checkpoint = &replicate::encode_checkpoint;
        p.fsm.backoff.attempts = 0;
        p.label = spec;
        p.retry_enabled = false;
        return p;
    }

    std::optional<std::string> run(replicate::pair_replicator& r) { return test::run(ioc, r.run()); }

    bool logged(std::string_view text) const
    {
        for (auto const& l : lines)
            if (l.find(text) != std::string::npos)
                return true;
        return false;
    }

    // The destination's data keys (no checkpoint) with the source's names.
    std::map<std::string, std::string> copied() const
    {
        std::map<std::string, std::string> out;
        for (auto const& [k, e] : dst.kv)
            if (k.starts_with("d/"))
                out["s/" + k.substr(2)] = e.value;
        return out;
    }

    std::map<std::string, std::string> source_data() const
    {
        std::map<std::string, std::string> out;
        for (auto const& [k, e] : src.kv) out[k] = e.value;
        return out;
    }

    bool has_checkpoint() const
    {
        for (auto const& [k, e] : dst.kv)
            if (k.starts_with("service/consul-replicate/statuses/"))
                return true;
        return false;
    }
};

// 30 single writes, then five 6-key transactions.
void load_mixed(fake_kv& kv)
{
    for (int i = 0; i < 30; ++i) kv.put(fmt::format("s/single/{:02}", i), "v");
    for (int t = 0; t < 5; ++t) {
        std::vector<std::string> keys;
        for (int k = 0; k < 6; ++k) keys.push_back(fmt::format("s/txn{}/{}", t, k));
        kv.put_txn(keys);
    }
}

// Every source transaction's keys were written by one destination txn.
void check_source_txns_whole(const fixture& f)
{
    std::map<std::uint64_t, std::set<std::uint64_t>> dst_of;  // source ModifyIndex -> destination ones
    for (auto const& [k, e] : f.src.kv) dst_of[e.modify].insert(f.dst.kv.at("d/" + k.substr(2)).modify);
    for (auto const& [s, d] : dst_of) {
        CAPTURE(s);
        CHECK(d.size() == 1);
    }
}

}  // namespace

TEST_CASE("driver: a round copies the source and writes the checkpoint last", "[driver]")
{
    fixture f;
    for (int i = 0; i < 300; ++i) f.src.put(fmt::format("s/k{:03}", i), fmt::format("value {}", i));
    f.limit.max_ops = 64;
    replicate::pair_replicator r(*f.src_client, *f.dst_client, f.params(), f.limit, f.log, f.metrics, nullptr);
    CHECK(f.run(r) == std::nullopt);
    CHECK(f.copied() == f.source_data());
    REQUIRE(f.has_checkpoint());
    // 300 puts and the checkpoint at 64 ops a txn: 5 txns, the checkpoint in the last, alone in
    // none of them.
    REQUIRE(f.dst.txns.size() == 5);
    for (auto const& t : f.dst.txns) CHECK(t.size() <= 64);
    CHECK(f.dst.txns.back().back().starts_with("service/consul-replicate/statuses/"));
    CHECK(r.applied_index() == f.src.index);
    CHECK(f.metrics.value("kvship_keys_put_total", {{"pair", "s/@dc1:d/"}}) == 300);
}

TEST_CASE("driver: writes of one source transaction land in one destination txn", "[driver]")
{
    fixture f;
    load_mixed(f.src);
    f.limit.max_ops = 8;
    replicate::pair_replicator r(*f.src_client, *f.dst_client, f.params(), f.limit, f.log, f.metrics, nullptr);
    CHECK(f.run(r) == std::nullopt);
    CHECK(f.copied() == f.source_data());
    check_source_txns_whole(f);
    for (auto const& t : f.dst.txns) CHECK(t.size() <= 8);
}

TEST_CASE("driver: a txn refused as too large teaches the limit and goes again cut by it", "[driver]")
{
    fixture f;
    load_mixed(f.src);
    f.dst.max_ops = 8;  // the driver starts at 128
    replicate::pair_replicator r(*f.src_client, *f.dst_client, f.params(), f.limit, f.log, f.metrics, nullptr);
    CHECK(f.run(r) == std::nullopt);
    CHECK(f.dst.refused >= 1);
    CHECK(f.limit.max_ops == 8);
    CHECK(f.logged("destination allows at most 8 operations per transaction"));
    CHECK(f.copied() == f.source_data());
    REQUIRE(f.has_checkpoint());
    CHECK(f.dst.txns.back().back().starts_with("service/consul-replicate/statuses/"));
    // The re-cut is make_batches's rule: source transactions stay whole.
    check_source_txns_whole(f);
    CHECK(f.metrics.value("kvship_txn_total", {{"pair", "s/@dc1:d/"}, {"result", "too_large"}}) >= 1);
}

TEST_CASE("driver: a fenced batch stops the pair at once and writes nothing", "[driver]")
{
    fixture f;
    for (int i = 0; i < 50; ++i) f.src.put(fmt::format("s/k{:03}", i), "v");
    f.dst.refuse_session = true;
    f.limit.max_ops = 8;
    auto p = f.params();
    bool fenced = false;
    p.fence = [] {
        transport::txn_op op;
        op.verb = transport::txn_verb::check_session;
        op.key = "service/kvship/.lock";
        op.session = "01234567-89ab-cdef-0123-456789abcdef";
        return std::optional<transport::txn_op>(op);
    };
    p.on_fenced = [&] { fenced = true; };
    replicate::pair_replicator r(*f.src_client, *f.dst_client, std::move(p), f.limit, f.log, f.metrics, nullptr);
    CHECK(f.run(r) == std::nullopt);  // stopped, not failed: the lock is gone
    CHECK(fenced);
    CHECK(f.dst.txns.empty());
    CHECK_FALSE(f.has_checkpoint());
    CHECK(f.metrics.value("kvship_fenced_batches_total", {}) >= 1);
    // Every txn sent carried the fence op first, and left room for it: 7 data ops at most.
    std::size_t txns = 0;
    for (auto const& req : f.destination.requests()) {
        if (req.target.rfind("/v1/txn", 0) != 0)
            continue;
        ++txns;
        rapidjson::Document doc;
        doc.Parse(req.body.c_str(), req.body.size());
        REQUIRE(doc.IsArray());
        REQUIRE(doc.GetArray().Size() >= 2);
        CHECK(doc.GetArray().Size() <= 8);
        CHECK(std::string(doc[0]["KV"]["Verb"].GetString()) == "check-session");
    }
    CHECK(txns >= 1);
    CHECK(txns <= 4);  // the window's first txns at most: nothing goes out after the refusal
}

TEST_CASE("driver: a stop mid-round ends the run; what committed is whole, no checkpoint ahead of it", "[driver]")
{
    fixture f;
    for (int i = 0; i < 200; ++i) f.src.put(fmt::format("s/k{:03}", i), "v");
    f.limit.max_ops = 10;
    f.dst.txn_delay = 100ms;
    replicate::pair_replicator r(*f.src_client, *f.dst_client, f.params(), f.limit, f.log, f.metrics, nullptr);
    asio::steady_timer stop(f.ioc, 150ms);  // the first window's txns are in flight
    stop.async_wait([&](boost::system::error_code) { r.request_stop(); });
    CHECK(f.run(r) == std::nullopt);
    CHECK_FALSE(f.has_checkpoint());
    CHECK(f.dst.txns.size() >= 1);
    CHECK(f.dst.txns.size() < 20);  // 200 puts at 10 a txn: the round did not finish
    for (auto const& t : f.dst.txns) CHECK(t.size() == 10);
    CHECK(f.copied().size() == f.dst.txns.size() * 10);
}
