// Sessions: defaults, validation, expiry, destroy behaviours and lock-delay (consul-api.md §8).
#include "store_test_support.hpp"

#include <catch2/catch.hpp>

using namespace kvship::kvsim;
using namespace kvship::kvsim::test;

TEST_CASE("session create defaults", "[kvsim][session]")
{
    store_params p;
    p.node_name = "node-1";
    store s(p);
    recorder rec;
    rec.attach(s);
    auto const raft = s.raft_index();
    session_request req;
    req.name = "t";
    req.ttl = "15s";
    auto const sess = make_session(s, req);
    CHECK(sess.id.size() == 36);
    CHECK(sess.name == "t");
    CHECK(sess.node == "node-1");
    CHECK(sess.lock_delay == 15s);
    CHECK(sess.behavior == session_behavior::release);
    CHECK(sess.ttl == "15s");
    CHECK(sess.ttl_duration == 15s);
    CHECK(sess.node_checks == std::vector<std::string>{"serfHealth"});
    CHECK(sess.service_checks.empty());
    CHECK(sess.create_index == raft + 1);
    CHECK(sess.modify_index == raft + 1);
    CHECK(sess.expires_at == t0 + 30s);  // 2 x TTL
    CHECK(s.raft_index() == raft + 1);
    CHECK(s.sessions_index() == raft + 1);
    REQUIRE(s.get_session(sess.id) != nullptr);
    CHECK(*s.get_session(sess.id) == sess);
    CHECK(rec.count<ev_session_put>() == 1);

    // no body at all
    auto const bare = make_session(s);
    CHECK(bare.ttl.empty());
    CHECK_FALSE(bare.expires_at);
    CHECK(bare.id != sess.id);
    CHECK(s.sessions().size() == 2);

    // Checks: [] removes the default check; TTL "0s" means no TTL
    session_request none;
    none.node_checks = std::vector<std::string>{};
    none.ttl = "0s";
    auto const nc = make_session(s, none);
    CHECK(nc.node_checks.empty());
    CHECK_FALSE(nc.expires_at);
    CHECK(nc.ttl == "0s");
}

TEST_CASE("session create validation errors", "[kvsim][session]")
{
    struct row
    {
        session_request req;
        std::string error;
        bool uses_index;
    };

    auto with = [](auto f) {
        session_request r;
        f(r);
        return r;
    };
    auto const rows = std::vector<row>{
        {with([](auto& r) { r.behavior = "x"; }), "Invalid Behavior setting 'x'", false},
        {with([](auto& r) { r.ttl = "5s"; }),
         "Invalid Session TTL '5000000000', must be between [10s=24h0m0s]",
         false},
        {with([](auto& r) { r.ttl = "25h"; }),
         "Invalid Session TTL '90000000000000', must be between [10s=24h0m0s]",
         false},
        {with([](auto& r) { r.ttl = "abc"; }),
         "Session TTL 'abc' invalid: time: invalid duration \"abc\"",
         false},
        {with([](auto& r) { r.ttl = "15"; }),
         "Session TTL '15' invalid: time: missing unit in duration \"15\"",
         false},
        {with([](auto& r) { r.node = "other"; }), "Missing node registration", true},
        {with([](auto& r) {
             r.node_checks = std::vector<std::string>{"serfHealth", "web"};
         }),
         "Missing check 'web' registration",
         true},
        {with([](auto& r) { r.service_checks = std::vector<std::string>{"svc"}; }),
         "Missing check 'svc' registration",
         true},
    };
    for (auto const& r : rows) {
        INFO(r.error);
        store s;
        auto const raft = s.raft_index();
        auto res = s.create_session(r.req, t0);
        REQUIRE(std::holds_alternative<std::string>(res));
        CHECK(std::get<std::string>(res) == r.error);
        CHECK(s.raft_index() == raft + (r.uses_index ? 1 : 0));
        CHECK(s.sessions().empty());
    }
    // the bounds are inclusive
    store s;
    CHECK(std::holds_alternative<session>(s.create_session(req_with(std::nullopt, std::nullopt, "10s"), t0)));
    CHECK(std::holds_alternative<session>(s.create_session(req_with(std::nullopt, std::nullopt, "24h"), t0)));
    CHECK(std::holds_alternative<session>(s.create_session(req_with("delete", std::nullopt, "1m"), t0)));
}

TEST_CASE("session expiry at 2xTTL, renew, and tick's next deadline", "[kvsim][session]")
{
    store s;
    auto const sess = make_session(s, req_with(std::nullopt, 0s, "10s"));
    REQUIRE(s.acquire("l", val("v"), 0, sess.id, t0).ok);

    auto next = s.tick(t0 + 5s);
    REQUIRE(next);
    CHECK(*next == t0 + 20s);

    auto renewed = s.renew_session(sess.id, t0 + 15s);
    REQUIRE(renewed);
    CHECK(renewed->expires_at == t0 + 35s);
    auto const raft = s.raft_index();
    s.tick(t0 + 34s);
    CHECK(s.get_session(sess.id) != nullptr);
    CHECK(s.raft_index() == raft);  // renew and idle ticks are not Raft writes

    s.tick(t0 + 35s);
    CHECK(s.get_session(sess.id) == nullptr);
    CHECK(s.raft_index() == raft + 1);
    CHECK(s.get("l")->session.empty());
    CHECK_FALSE(s.renew_session(sess.id, t0 + 36s));
    CHECK_FALSE(s.tick(t0 + 36s));
}

TEST_CASE("destroy with release behaviour: keys kept, Session cleared, lock-delay starts", "[kvsim][session]")
{
    store s;
    auto const sess = make_session(s);  // LockDelay 15 s
    REQUIRE(s.acquire("l", val("v"), 5, sess.id, t0).ok);
    REQUIRE(s.acquire("m", val("w"), 0, sess.id, t0).ok);
    REQUIRE(s.set("other", val("o"), 0).ok);
    auto const before = *s.get("l");

    s.destroy_session(sess.id, t0 + 1s);
    auto const d = s.raft_index();
    auto const* l = s.get("l");
    REQUIRE(l != nullptr);
    CHECK(l->session.empty());
    CHECK(l->lock_index == before.lock_index);
    CHECK(l->value == val("v"));
    CHECK(l->flags == 5);
    CHECK(l->modify_index == d);
    CHECK(s.get("m")->modify_index == d);
    CHECK(s.get("other")->modify_index < d);
    CHECK(s.sessions_index() == d);
    CHECK(s.lock_delay("l", t0 + 1s) == t0 + 16s);
    CHECK_FALSE(s.lock_delay("other", t0 + 1s));

    auto const s2 = make_session(s, req_with(std::nullopt, 0s)).id;
    CHECK_FALSE(s.acquire("l", val("x"), 0, s2, t0 + 15s).ok);
    CHECK(s.acquire("l", val("x"), 0, s2, t0 + 16s).ok);
    CHECK(s.get("l")->lock_index == before.lock_index + 1);

    // txn lock during the lock-delay of m
    auto r = s.txn({op("lock", "m", val("x"), 0, s2)}, authorizer::allow_all(), t0 + 2s);
    REQUIRE_FALSE(r.ok);
    CHECK(r.errors.at(0).what == "failed to lock key \"m\" due to lock delay");
}

TEST_CASE("destroy with delete behaviour deletes held keys with tombstones", "[kvsim][session]")
{
    store s;
    auto const sess = make_session(s, req_with("delete", 1s));
    REQUIRE(s.acquire("d", val("v"), 0, sess.id, t0).ok);
    REQUIRE(s.set("keep", val("k"), 0).ok);
    s.destroy_session(sess.id, t0);
    CHECK(s.get("d") == nullptr);
    CHECK(s.get("keep") != nullptr);
    CHECK(s.tombstone_index("d") == s.raft_index());
    CHECK(s.list_index("d") == s.raft_index());
    CHECK(s.lock_delay("d", t0) == t0 + 1s);
}

TEST_CASE("lock-delay is capped by max_lock_delay and absent when 0", "[kvsim][session]")
{
    store_params p;
    p.max_lock_delay = 60s;
    store s(p);
    auto const long_delay = make_session(s, req_with(std::nullopt, 120s)).id;
    auto const no_delay = make_session(s, req_with(std::nullopt, 0s)).id;
    REQUIRE(s.acquire("a", val("v"), 0, long_delay, t0).ok);
    REQUIRE(s.acquire("b", val("v"), 0, no_delay, t0).ok);
    s.destroy_session(long_delay, t0);
    s.destroy_session(no_delay, t0);
    CHECK(s.lock_delay("a", t0) == t0 + 60s);
    CHECK_FALSE(s.lock_delay("b", t0));
    CHECK(s.get_session(long_delay) == nullptr);
}

TEST_CASE("destroy of an unknown session is idempotent but still a Raft write", "[kvsim][session]")
{
    store s;
    REQUIRE(s.set("a", val("1"), 0).ok);
    auto const raft = s.raft_index();
    auto const kvs = s.kvs_max_index();
    s.destroy_session("6b0b4e37-0000-4000-8000-000000000000", t0);
    CHECK(s.raft_index() == raft + 1);
    CHECK(s.kvs_max_index() == kvs);
    CHECK(s.sessions_index() == 1);
}

TEST_CASE("session ids are deterministic per seed and unique", "[kvsim][session]")
{
    store a;
    store b;
    a.seed_ids(7);
    b.seed_ids(7);
    auto const ia = make_session(a).id;
    CHECK(ia == make_session(b).id);
    store c;
    c.seed_ids(8);
    CHECK(make_session(c).id != ia);
    std::set<std::string> ids;
    for (int i = 0; i < 200; ++i) {
        ids.insert(make_session(a).id);
    }
    CHECK(ids.size() == 200);
}
