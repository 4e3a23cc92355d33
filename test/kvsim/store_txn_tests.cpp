// Transactions (consul-api.md §7).
#include "store_test_support.hpp"

#include <catch2/catch.hpp>

using namespace kvship::kvsim;
using namespace kvship::kvsim::test;

namespace {

txn_result run(store& s, std::vector<txn_kv_op> ops, authorizer const& acl = authorizer::allow_all())
{
    return s.txn(ops, acl, t0);
}

std::vector<std::string> whats(txn_result const& r)
{
    std::vector<std::string> out;
    for (auto const& e : r.errors) {
        out.push_back(std::to_string(e.op_index) + ":" + e.what);
    }
    return out;
}

}  // namespace

TEST_CASE("txn sets share one index and results carry no value", "[kvsim][txn]")
{
    store s;
    recorder rec;
    rec.attach(s);
    auto const raft = s.raft_index();
    auto r = run(s, {op("set", "t1", val("a")), op("set", "t2", val("b"), 0, "", 7)});
    REQUIRE(r.ok);
    CHECK(r.had_writes);
    CHECK(r.errors.empty());
    CHECK(r.index == raft + 1);
    CHECK(s.raft_index() == raft + 1);
    REQUIRE(r.results.size() == 2);
    for (auto const& e : r.results) {
        CHECK(e.value == std::nullopt);
        CHECK(e.modify_index == raft + 1);
        CHECK(e.create_index == raft + 1);
    }
    CHECK(s.get("t2")->flags == 7);
    CHECK(s.get("t2")->value == val("b"));
    CHECK(rec.count<ev_entry_put>() == 2);
    CHECK(rec.count<ev_index>() == 1);
}

TEST_CASE("txn rollback on a failed op: nothing applied, index used", "[kvsim][txn]")
{
    store s;
    REQUIRE(s.set("t1", val("a"), 0).ok);
    REQUIRE(s.set("gone", val("g"), 0).ok);
    auto const sid = make_session(s).id;
    auto const t1 = *s.get("t1");
    auto const snap = s.encode_snapshot();
    auto const kvs = s.kvs_max_index();
    recorder rec;
    rec.attach(s);
    auto const raft = s.raft_index();

    auto r =
        run(s,
            {op("set", "t3", val("a")),
             op("set", "t1", val("changed")),
             op("delete", "gone"),
             op("lock", "t4", val("x"), 0, sid),
             op("delete-tree", "t"),
             op("cas", "t1", val("x"), 1)});
    REQUIRE_FALSE(r.ok);
    CHECK(r.results.empty());
    CHECK(whats(r) == std::vector<std::string>{"5:failed to set key \"t1\", index is stale"});
    CHECK(s.get("t3") == nullptr);
    CHECK(s.get("t4") == nullptr);
    CHECK(*s.get("t1") == t1);
    CHECK(s.get("gone") != nullptr);
    CHECK(s.tombstone_count() == 0);
    CHECK(s.kvs_max_index() == kvs);
    CHECK(s.raft_index() == raft + 1);
    CHECK(rec.count<ev_entry_put>() == 0);
    CHECK(rec.count<ev_entry_erase>() == 0);
    CHECK(rec.count<ev_index>() == 1);
    // the session's lock index was rolled back too: destroying it touches nothing
    s.destroy_session(sid, t0);
    CHECK(s.get("t1")->modify_index == t1.modify_index);
    // the state equals the state before, apart from the indexes
    CHECK(s.list("").size() == 2);
    (void)snap;
}

TEST_CASE("txn collects every error", "[kvsim][txn]")
{
    store s;
    auto r = run(s, {op("get", "x"), op("get", "y"), op("bogus", "z")});
    REQUIRE_FALSE(r.ok);
    CHECK_FALSE(r.had_writes);
    CHECK(
        whats(r) ==
        std::vector<std::string>{
            "0:key \"x\" doesn't exist", "1:key \"y\" doesn't exist", "2:unknown KV verb \"bogus\""}
    );
}

TEST_CASE("txn later ops see earlier ones", "[kvsim][txn]")
{
    store s;
    auto r =
        run(s,
            {op("set", "k", val("a")),
             op("get", "k"),
             op("delete", "k"),
             op("get-or-empty", "k"),
             op("check-not-exists", "k")});
    REQUIRE(r.ok);
    REQUIRE(r.results.size() == 3);
    CHECK(r.results[1].value == val("a"));
    CHECK(r.results[2].key == "k");
    CHECK(r.results[2].value == std::nullopt);
    CHECK(s.get("k") == nullptr);
    CHECK(s.tombstone_index("k") == r.index);
}

TEST_CASE("txn read-only path: no index, values returned", "[kvsim][txn]")
{
    store s;
    REQUIRE(s.set("r/1", val("one"), 0).ok);
    REQUIRE(s.set("r/2", val("two"), 0).ok);
    recorder rec;
    rec.attach(s);
    auto const raft = s.raft_index();
    auto r =
        run(s, {op("get", "r/1"), op("get-tree", "r/"), op("get-or-empty", "r/3", std::nullopt, 77, "", 4)});
    REQUIRE(r.ok);
    CHECK_FALSE(r.had_writes);
    CHECK(r.index == 0);
    CHECK(s.raft_index() == raft);
    CHECK(rec.events.empty());
    REQUIRE(r.results.size() == 4);
    CHECK(r.results[0].value == val("one"));
    CHECK(r.results[1].value == val("one"));
    CHECK(r.results[2].value == val("two"));
    // get-or-empty on a missing key echoes the request
    CHECK(r.results[3].key == "r/3");
    CHECK(r.results[3].flags == 4);
    CHECK(r.results[3].modify_index == 77);
    CHECK(r.results[3].value == std::nullopt);

    auto empty = run(s, {});
    CHECK(empty.ok);
    CHECK_FALSE(empty.had_writes);
}

TEST_CASE("txn verbs: successes and exact error texts", "[kvsim][txn]")
{
    struct row
    {
        std::string name;
        txn_kv_op o;
        std::string error;  // empty: success
        std::size_t results;
    };

    store base;
    REQUIRE(base.set("a", val("1"), 0).ok);
    auto const sid = make_session(base).id;
    auto const sid2 = make_session(base).id;
    REQUIRE(base.acquire("locked", val("v"), 0, sid, t0).ok);
    auto const mi = base.get("a")->modify_index;
    auto const lmi = base.get("locked")->modify_index;
    auto const snap = base.encode_snapshot();

    auto const rows = std::vector<row>{
        {"set", op("set", "n", val("x")), "", 1},
        {"cas create", op("cas", "n", val("x"), 0), "", 1},
        {"cas create exists", op("cas", "a", val("x"), 0), "failed to set key \"a\", index is stale", 0},
        {"cas ok", op("cas", "a", val("x"), mi), "", 1},
        {"cas stale", op("cas", "a", val("x"), mi + 1), "failed to set key \"a\", index is stale", 0},
        {"lock", op("lock", "n", val("x"), 0, sid), "", 1},
        {"lock unknown session", op("lock", "locked", val("x"), 0, "other"), "invalid session \"other\"", 0},
        {"lock held",
         op("lock", "locked", val("x"), 0, sid2),
         "failed to lock key \"locked\", lock is already held",
         0},
        {"lock same holder", op("lock", "locked", val("x"), 0, sid), "", 1},
        {"lock missing session", op("lock", "n", val("x")), "missing session", 0},
        {"unlock", op("unlock", "locked", val("x"), 0, sid), "", 1},
        {"unlock not held",
         op("unlock", "a", val("x"), 0, sid),
         "failed to unlock key \"a\", lock isn't held, or is held by another session",
         0},
        {"get", op("get", "a"), "", 1},
        {"get missing", op("get", "zz"), "key \"zz\" doesn't exist", 0},
        {"get-tree", op("get-tree", "zz"), "", 0},
        {"check-index", op("check-index", "a", std::nullopt, mi), "", 1},
        {"check-index stale",
         op("check-index", "a", std::nullopt, 3),
         "failed index check for key \"a\", current modify index " + std::to_string(mi) + " != 3",
         0},
        {"check-index missing",
         op("check-index", "zz", std::nullopt, 3),
         "failed to check index, key \"zz\" doesn't exist",
         0},
        {"check-session", op("check-session", "locked", std::nullopt, 0, sid), "", 1},
        {"check-session wrong",
         op("check-session", "a", std::nullopt, 0, "s2"),
         "failed session check for key \"a\", current session \"\" != \"s2\"",
         0},
        {"check-session missing",
         op("check-session", "zz", std::nullopt, 0, "s2"),
         "failed to check session, key \"zz\" doesn't exist",
         0},
        {"check-not-exists", op("check-not-exists", "zz"), "", 0},
        {"check-not-exists exists", op("check-not-exists", "a"), "key \"a\" exists", 0},
        {"delete", op("delete", "a"), "", 0},
        {"delete missing", op("delete", "zz"), "", 0},
        {"delete-cas", op("delete-cas", "a", std::nullopt, mi), "", 0},
        {"delete-cas missing", op("delete-cas", "zz", std::nullopt, 9), "", 0},
        {"delete-cas stale",
         op("delete-cas", "a", std::nullopt, mi + 5),
         "failed to delete key \"a\", index is stale",
         0},
        {"delete-tree all", op("delete-tree", ""), "", 0},
        {"unknown", op("frob", "a"), "unknown KV verb \"frob\"", 0},
        {"empty key", op("get", ""), "Must provide key", 0},
        {"empty key tree", op("get-tree", ""), "Must provide key", 0},
        {"quoting", op("get", "a\n\"b\""), "key \"a\\n\\\"b\\\"\" doesn't exist", 0},
    };
    for (auto const& r : rows) {
        INFO(r.name);
        store s;
        REQUIRE_FALSE(s.restore_snapshot(snap));
        auto res = run(s, {r.o});
        if (r.error.empty()) {
            CHECK(res.ok);
            CHECK(res.results.size() == r.results);
        } else {
            REQUIRE_FALSE(res.ok);
            CHECK(whats(res) == std::vector<std::string>{"0:" + r.error});
        }
    }

    // a few effects
    store s;
    REQUIRE_FALSE(s.restore_snapshot(snap));
    auto res = run(s, {op("unlock", "locked", val("new"), 0, sid)});
    REQUIRE(res.ok);
    CHECK(s.get("locked")->session.empty());
    CHECK(s.get("locked")->value == val("new"));
    CHECK(s.get("locked")->modify_index > lmi);
    res = run(
        s, {op("lock", "locked", std::nullopt, 0, sid), op("check-session", "locked", std::nullopt, 0, sid)}
    );
    REQUIRE(res.ok);
    CHECK(s.get("locked")->lock_index == 2);
    CHECK(res.results.at(0).session == sid);
    res = run(s, {op("delete-tree", "")});
    REQUIRE(res.ok);
    CHECK(s.kv_count() == 0);
    CHECK(s.tombstone_count() == 0);
}

TEST_CASE("txn set on an unchanged entry keeps its ModifyIndex in the result", "[kvsim][txn]")
{
    store s;
    REQUIRE(s.set("a", val("1"), 0).ok);
    auto const mi = s.get("a")->modify_index;
    auto r = run(s, {op("set", "a", val("1")), op("set", "b", val("2"))});
    REQUIRE(r.ok);
    CHECK(r.results[0].modify_index == mi);
    CHECK(r.results[1].modify_index == r.index);
    CHECK(s.get("a")->modify_index == mi);
}

TEST_CASE("txn pre-checks stop the txn before Raft", "[kvsim][txn]")
{
    store s;
    auto const sid = make_session(s).id;
    s.lock_delay_until("ld", t0 + 10s);
    auto const raft = s.raft_index();
    auto r =
        run(s,
            {op("set", "", val("x")),
             op("delete-tree", ""),
             op("lock", "ld", val("x"), 0, sid),
             op("set", "fine", val("x")),
             op("get", "")});
    REQUIRE_FALSE(r.ok);
    CHECK(
        whats(r) ==
        std::vector<std::string>{
            "0:Must provide key", "2:failed to lock key \"ld\" due to lock delay", "4:Must provide key"}
    );
    CHECK(s.raft_index() == raft);
    CHECK(s.get("fine") == nullptr);
}

TEST_CASE("128 sets in one txn", "[kvsim][txn]")
{
    store s;
    std::vector<txn_kv_op> ops;
    for (int i = 0; i < 128; ++i) {
        ops.push_back(op("set", "m" + std::to_string(i), val(std::string(100, 'x'))));
    }
    auto r = run(s, ops);
    REQUIRE(r.ok);
    CHECK(r.results.size() == 128);
    CHECK(s.kv_count() == 128);
    CHECK(s.list_index("m") == r.index);
}

TEST_CASE("txn limit helpers", "[kvsim][txn]")
{
    CHECK_FALSE(txn_too_many_ops(128, 128));
    CHECK(txn_too_many_ops(129, 128) == std::string("Transaction contains too many operations (129 > 128)"));
    std::vector<txn_kv_op> ops{
        op("set", "ok", val(std::string(10, 'a'))), op("set", "big", val(std::string(11, 'a')))};
    CHECK(txn_value_too_large(ops, 10) == std::string("Value for key \"big\" is too large (11 > 10 bytes)"));
    CHECK_FALSE(txn_value_too_large(ops, 11));
    store_params p;
    p.txn_max_ops = 2;
    p.kv_max_value_size = 3;
    store s(p);
    auto const raft = s.raft_index();
    auto r = s.txn(
        {op("set", "a", val("1")), op("set", "b", val("1")), op("set", "c", val("1"))},
        authorizer::allow_all(),
        t0
    );
    REQUIRE_FALSE(r.ok);
    CHECK(r.errors.at(0).what == "Transaction contains too many operations (3 > 2)");
    r = s.txn({op("set", "a", val("1234"))}, authorizer::allow_all(), t0);
    REQUIRE_FALSE(r.ok);
    CHECK(r.errors.at(0).what == "Value for key \"a\" is too large (4 > 3 bytes)");
    CHECK(s.raft_index() == raft);
    CHECK(s.kv_count() == 0);
    CHECK(is_txn_write_verb("delete-tree"));
    CHECK(is_txn_write_verb("unlock"));
    CHECK_FALSE(is_txn_write_verb("get-or-empty"));
    CHECK_FALSE(is_txn_write_verb("check-not-exists"));
    CHECK_FALSE(is_txn_write_verb("bogus"));
}

TEST_CASE("txn under ACLs: pre-check errors and filtered results", "[kvsim][txn][acl]")
{
    store_params p;
    p.acl = acl_config{true, false, "root"};
    store s(p);
    REQUIRE(s.set("pub/a", val("1"), 0).ok);
    REQUIRE(s.set("priv/b", val("2"), 0).ok);
    auto pol = s.put_policy("rw", R"(key_prefix "pub/" { policy = "write" }
key_prefix "ro/" { policy = "read" })");
    REQUIRE(std::holds_alternative<acl_policy>(pol));
    acl_token tok;
    tok.policy_ids = {std::get<acl_policy>(pol).id};
    auto t = std::get<acl_token>(s.put_token(tok));
    auto acl = s.resolve(t.secret_id);
    REQUIRE(acl);

    auto r = s.txn(
        {op("set", "priv/x", val("1")),
         op("check-index", "priv/b", std::nullopt, 1),
         op("delete-tree", "pub"),
         op("get", "priv/b"),
         op("set", "pub/x", val("1")),
         op("check-not-exists", "ro/x")},
        *acl,
        t0
    );
    REQUIRE_FALSE(r.ok);
    auto const who = "Permission denied: token with AccessorID '" + t.accessor_id + "' lacks permission ";
    CHECK(
        whats(r) ==
        std::vector<std::string>{
            "0:" + who + "'key:write' on \"priv/x\"",
            "1:" + who + "'key:read' on \"priv/b\"",
            "2:" + who + "'key:write' on \"pub\"",
            "5:" + who + "'key:write' on \"ro/x\""}
    );

    r = s.txn({op("get-tree", ""), op("set", "pub/y", val("1"))}, *acl, t0);
    // get-tree "" is refused by the empty key check, not by the ACL
    REQUIRE_FALSE(r.ok);
    r = s.txn({op("get-tree", "p"), op("set", "pub/y", val("1"))}, *acl, t0);
    REQUIRE(r.ok);
    REQUIRE(r.results.size() == 2);  // priv/b filtered out
    CHECK(r.results[0].key == "pub/a");
    CHECK(r.results[1].key == "pub/y");

    auto anon = s.resolve("");
    REQUIRE(anon);
    r = s.txn({op("set", "pub/z", val("1"))}, *anon, t0);
    REQUIRE_FALSE(r.ok);
    CHECK(r.errors.at(0).what.find("Permission denied") == 0);
    auto root = s.resolve("root");
    REQUIRE(root);
    r = s.txn({op("set", "priv/z", val("1")), op("get-tree", "priv/")}, *root, t0);
    REQUIRE(r.ok);
    CHECK(r.results.size() == 3);
}
