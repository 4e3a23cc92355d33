// KV writes, indexes, tombstones and listings (consul-api.md §2-§5).
#include "store_test_support.hpp"

#include <catch2/catch.hpp>

#include <algorithm>

using namespace kvship::kvsim;
using namespace kvship::kvsim::test;

TEST_CASE("raft index starts at initial_index and every write advances it", "[kvsim][store]")
{
    store_params p;
    p.initial_index = 42;
    store s(p);
    CHECK(s.raft_index() == 42);
    CHECK(s.kvs_max_index() == 1);  // never below 1
    CHECK(s.set("a", val("1"), 0).ok);
    CHECK(s.raft_index() == 43);
    auto const* a = s.get("a");
    REQUIRE(a != nullptr);
    CHECK(a->create_index == 43);
    CHECK(a->modify_index == 43);
    CHECK(a->lock_index == 0);
    CHECK(a->value == val("1"));
    CHECK(s.kvs_max_index() == 43);

    CHECK(s.set("a", val("2"), 7).ok);
    CHECK(s.get("a")->create_index == 43);
    CHECK(s.get("a")->modify_index == 44);
    CHECK(s.get("a")->flags == 7);

    // a plain set without flags resets them to 0
    CHECK(s.set("a", val("2"), 0).ok);
    CHECK(s.get("a")->flags == 0);
    CHECK(s.get("a")->modify_index == 45);

    // delete of a missing key: a Raft write, but no data change
    CHECK(s.erase("missing").ok);
    CHECK(s.raft_index() == 46);
    CHECK(s.kvs_max_index() == 45);
    CHECK(s.tombstone_count() == 0);
}

TEST_CASE("idempotent set keeps ModifyIndex and emits no entry event", "[kvsim][store]")
{
    struct row
    {
        std::optional<std::string> first;
        std::uint64_t first_flags;
        std::optional<std::string> second;
        std::uint64_t second_flags;
        bool changes;
    };

    auto const rows = std::vector<row>{
        {val("same"), 3, val("same"), 3, false},
        {val("same"), 3, val("same"), 4, true},
        {val("same"), 3, val("other"), 3, true},
        {std::nullopt, 0, std::nullopt, 0, false},
        {std::nullopt, 0, val(""), 0, false},  // nil and empty bytes are equal (bytes.Equal)
        {std::nullopt, 0, val("x"), 0, true},
    };
    for (auto const& r : rows) {
        store s;
        recorder rec;
        rec.attach(s);
        REQUIRE(s.set("k", r.first, r.first_flags).ok);
        auto const before = *s.get("k");
        rec.events.clear();
        auto const raft_before = s.raft_index();
        CHECK(s.set("k", r.second, r.second_flags).ok);
        CHECK(s.raft_index() == raft_before + 1);
        CHECK((s.get("k")->modify_index != before.modify_index) == r.changes);
        CHECK((rec.count<ev_entry_put>() == 1) == r.changes);
        CHECK(rec.count<ev_index>() == 1);
        CHECK((s.kvs_max_index() == s.raft_index()) == r.changes);
    }
}

TEST_CASE("cas semantics", "[kvsim][store]")
{
    struct row
    {
        bool exists;
        int cas;  // -1: the current ModifyIndex, -2: a stale one, else the literal
        bool ok;
    };

    auto const rows = std::vector<row>{
        {false, 0, true},
        {true, 0, false},
        {true, -1, true},
        {true, -2, false},
        {false, 5, false},
    };
    for (auto const& r : rows) {
        store s;
        if (r.exists) {
            REQUIRE(s.set("k", val("old"), 0).ok);
            REQUIRE(s.set("other", val("x"), 0).ok);
            REQUIRE(s.set("k", val("old2"), 0).ok);
        }
        index_t cas_index = static_cast<index_t>(r.cas);
        if (r.cas == -1) {
            cas_index = s.get("k")->modify_index;
        } else if (r.cas == -2) {
            cas_index = s.get("k")->modify_index - 2;
        }
        auto const raft_before = s.raft_index();
        auto const kvs_before = s.kvs_max_index();
        auto const res = s.cas("k", val("new"), 9, cas_index);
        CHECK(res.ok == r.ok);
        CHECK_FALSE(res.error);
        CHECK(s.raft_index() == raft_before + 1);  // a failed CAS still uses an index
        if (r.ok) {
            CHECK(s.get("k")->value == val("new"));
            CHECK(s.get("k")->modify_index == s.raft_index());
        } else {
            CHECK(s.kvs_max_index() == kvs_before);
            if (r.exists) {
                CHECK(s.get("k")->value == val("old2"));
            } else {
                CHECK(s.get("k") == nullptr);
            }
        }
    }
}

TEST_CASE("erase_cas semantics", "[kvsim][store]")
{
    store s;
    REQUIRE(s.set("a", val("1"), 0).ok);
    auto const mi = s.get("a")->modify_index;
    CHECK_FALSE(s.erase_cas("a", 0).ok);  // cas=0 never deletes an existing key
    CHECK_FALSE(s.erase_cas("a", mi + 1).ok);
    CHECK(s.get("a") != nullptr);
    CHECK(s.erase_cas("gone", 7).ok);  // missing: true, nothing to delete
    CHECK(s.tombstone_count() == 0);
    CHECK(s.erase_cas("a", mi).ok);
    CHECK(s.get("a") == nullptr);
    CHECK(s.tombstone_index("a") == s.raft_index());
}

TEST_CASE("a delete raises the prefix index above live entries (tombstone)", "[kvsim][store]")
{
    store s;
    REQUIRE(s.set("p/x", val("1"), 0).ok);
    REQUIRE(s.set("p/y", val("2"), 0).ok);
    auto const x2 = s.get("p/y")->modify_index;
    CHECK(s.list_index("p/") == x2);
    REQUIRE(s.erase("p/y", t0).ok);
    auto const d = s.raft_index();
    CHECK(d > x2);
    CHECK(s.list_index("p/") == d);
    CHECK(s.kvs_max_index() == d);
    CHECK(s.tombstone_index("p/y") == d);

    // a listing of a prefix with neither entries nor tombstones falls back to kvsMaxIndex
    REQUIRE(s.set("zz", val("1"), 0).ok);
    CHECK(s.list_index("nothere/") == s.get("zz")->modify_index);
    CHECK(s.list_index("") == s.kvs_max_index());
    // entries only
    CHECK(s.list_index("zz") == s.get("zz")->modify_index);
    CHECK(store().list_index("anything") == 1);
    CHECK(store().list_index("") == 1);
}

TEST_CASE(
    "erase_tree: raw prefix, one tombstone at the prefix only when something was deleted", "[kvsim][store]"
)
{
    store s;
    for (auto const* k : {"p", "p/x", "pq", "q"}) {
        REQUIRE(s.set(k, val("v"), 0).ok);
    }
    auto const kvs_before = s.kvs_max_index();

    REQUIRE(s.erase_tree("nothing/", t0).ok);
    CHECK(s.tombstone_count() == 0);
    CHECK(s.kvs_max_index() == kvs_before);

    REQUIRE(s.erase_tree("p", t0).ok);
    auto const d = s.raft_index();
    CHECK(s.get("p") == nullptr);
    CHECK(s.get("p/x") == nullptr);
    CHECK(s.get("pq") == nullptr);
    CHECK(s.get("q") != nullptr);
    CHECK(s.tombstone_count() == 1);
    CHECK(s.tombstone_index("p") == d);
    CHECK_FALSE(s.tombstone_index("p/x"));
    CHECK(s.list_index("p") == d);
    // a narrower prefix does not see the tombstone at "p": it falls back to kvsMaxIndex
    CHECK(s.list_index("p/") == s.kvs_max_index());

    // empty prefix deletes everything and leaves no tombstone
    REQUIRE(s.erase_tree("", t0).ok);
    CHECK(s.kv_count() == 0);
    CHECK(s.tombstone_count() == 1);
    CHECK(s.kvs_max_index() == s.raft_index());
}

TEST_CASE(
    "tombstones are reaped after the TTL rounded up to the granularity; the index goes back", "[kvsim][store]"
)
{
    store_params p;
    p.tombstone_ttl = 15min;
    p.tombstone_granularity = 30s;
    store s(p);
    REQUIRE(s.set("p/a", val("1"), 0).ok);
    REQUIRE(s.set("p/b", val("1"), 0).ok);
    auto const live = s.get("p/a")->modify_index;  // what remains after p/b goes
    auto const created = t0 + 10s;  // t0 is a multiple of 30 s, so the deadline is t0 + 15m + 30s
    REQUIRE(s.erase("p/b", created).ok);
    auto const d = s.raft_index();
    CHECK(s.list_index("p/") == d);

    auto next = s.tick(created + 1s);
    REQUIRE(next);
    CHECK(*next == t0 + 15min + 30s);
    CHECK(s.tombstone_count() == 1);
    s.tick(t0 + 15min + 29s);
    CHECK(s.tombstone_count() == 1);
    auto const raft_before = s.raft_index();
    s.tick(t0 + 15min + 30s);
    CHECK(s.tombstone_count() == 0);
    CHECK(s.raft_index() == raft_before + 1);  // a reap is a Raft write
    CHECK(s.list_index("p/") == live);         // went backwards
    CHECK(s.list_index("p/") < d);
    CHECK(s.kvs_max_index() == d);  // table indexes are not lowered
}

TEST_CASE("a tombstone made without a time is dated by the next tick", "[kvsim][store]")
{
    store_params p;
    p.tombstone_ttl = 60s;
    p.tombstone_granularity = 1s;
    store s(p);
    REQUIRE(s.set("k", val("1"), 0).ok);
    REQUIRE(s.erase("k").ok);
    auto next = s.tick(t0 + 100s);  // stamps it with t0+100s
    REQUIRE(next);
    CHECK(*next == t0 + 160s);
    s.tick(t0 + 159s);
    CHECK(s.tombstone_count() == 1);
    s.tick(t0 + 160s);
    CHECK(s.tombstone_count() == 0);
}

TEST_CASE("reaping removes every tombstone up to the bucket's highest index", "[kvsim][store]")
{
    store_params p;
    p.tombstone_ttl = 10s;
    p.tombstone_granularity = 10s;
    store s(p);
    for (auto const* k : {"a", "b", "c"}) {
        REQUIRE(s.set(k, val("1"), 0).ok);
    }
    REQUIRE(s.erase("a", t0 + 1s).ok);
    REQUIRE(s.erase("b", t0 + 2s).ok);
    REQUIRE(s.erase("c", t0 + 12s).ok);
    s.tick(t0 + 20s);
    CHECK(s.tombstone_count() == 1);
    CHECK(s.tombstone_index("c"));
    s.reap_all_tombstones();
    CHECK(s.tombstone_count() == 0);
}

TEST_CASE("list is a raw prefix in byte order and does not copy", "[kvsim][store]")
{
    store s;
    for (auto const* k : {"ab", "a/b", "a", "b", "A"}) {
        REQUIRE(s.set(k, val(k), 0).ok);
    }
    auto const l = s.list("a");
    std::vector<std::string> keys;
    for (auto const* e : l) {
        keys.push_back(e->key);
    }
    CHECK(keys == std::vector<std::string>{"a", "a/b", "ab"});
    CHECK(l.front() == s.get("a"));
    CHECK(s.list("").size() == 5);
    CHECK(s.list("zz").empty());
}

TEST_CASE("keys with and without a separator", "[kvsim][store]")
{
    store s;
    for (auto const* k : {"a/", "a/b", "a/c/d", "a/c/e", "b", "c//x", "c//y", "c/z"}) {
        REQUIRE(s.set(k, val("v"), 0).ok);
    }

    struct row
    {
        std::string prefix;
        std::string sep;
        std::vector<std::string> want;
    };

    auto const rows = std::vector<row>{
        {"a/", "/", {"a/", "a/b", "a/c/"}},
        {"", "/", {"a/", "b", "c/"}},
        {"", "", {"a/", "a/b", "a/c/d", "a/c/e", "b", "c//x", "c//y", "c/z"}},
        {"a", "/", {"a/"}},
        {"c", "//", {"c//", "c/z"}},
        {"zz", "/", {}},
        {"a/c/", "/", {"a/c/d", "a/c/e"}},
    };
    for (auto const& r : rows) {
        INFO("prefix=" << r.prefix << " sep=" << r.sep);
        CHECK(s.keys(r.prefix, r.sep, authorizer::allow_all()) == r.want);
    }
}

TEST_CASE("acquire, release and LockIndex", "[kvsim][store][locks]")
{
    store s;
    auto const s1 = make_session(s, req_with(std::nullopt, 0s)).id;
    auto const s2 = make_session(s, req_with(std::nullopt, 0s)).id;

    CHECK(s.acquire("l", val("v"), 0, s1, t0).ok);
    CHECK(s.get("l")->lock_index == 1);
    CHECK(s.get("l")->session == s1);
    auto const mi = s.get("l")->modify_index;

    // same holder: LockIndex unchanged; identical value is a no-op write
    CHECK(s.acquire("l", val("v"), 0, s1, t0).ok);
    CHECK(s.get("l")->modify_index == mi);
    CHECK(s.acquire("l", val("again"), 0, s1, t0).ok);
    CHECK(s.get("l")->lock_index == 1);
    CHECK(s.get("l")->value == val("again"));

    CHECK_FALSE(s.acquire("l", val("you"), 0, s2, t0).ok);
    CHECK_FALSE(s.release("l", val("x"), 0, s2).ok);
    CHECK_FALSE(s.release("missing", val("x"), 0, s1).ok);

    // release overwrites value and flags, keeps LockIndex, clears Session
    CHECK(s.release("l", std::nullopt, 9, s1).ok);
    CHECK(s.get("l")->session.empty());
    CHECK(s.get("l")->lock_index == 1);
    CHECK(s.get("l")->value == std::nullopt);
    CHECK(s.get("l")->flags == 9);

    // no lock-delay after an explicit release
    CHECK(s.acquire("l", val("you"), 3304740253564472344ULL, s2, t0).ok);
    CHECK(s.get("l")->lock_index == 2);
    CHECK(s.get("l")->flags == 3304740253564472344ULL);
    CHECK_FALSE(s.lock_delay("l", t0));
}

TEST_CASE("a plain set on a locked key keeps the Session and resets LockIndex", "[kvsim][store][locks]")
{
    store s;
    auto const sid = make_session(s).id;
    REQUIRE(s.acquire("l", val("v"), 0, sid, t0).ok);
    REQUIRE(s.set("l", val("w"), 0).ok);
    CHECK(s.get("l")->session == sid);
    CHECK(s.get("l")->lock_index == 0);
    CHECK(s.get("l")->value == val("w"));
    // and the lock is still the session's: destroying it releases the key
    s.destroy_session(sid, t0);
    CHECK(s.get("l")->session.empty());
}

TEST_CASE("acquire errors and lock-delay", "[kvsim][store][locks]")
{
    store s;
    auto const before = s.raft_index();
    auto r = s.acquire("l", val("x"), 0, "00000000-0000-0000-0000-000000000000", t0);
    CHECK_FALSE(r.ok);
    CHECK(r.error == std::string("invalid session \"00000000-0000-0000-0000-000000000000\""));
    CHECK(s.get("l") == nullptr);
    CHECK(s.raft_index() == before + 1);  // the error comes from the Raft apply

    r = s.acquire("l", val("x"), 0, "", t0);
    CHECK(r.error == std::string("missing session"));
    r = s.release("l", val("x"), 0, "");
    CHECK(r.error == std::string("missing session"));

    auto const sid = make_session(s).id;
    s.lock_delay_until("l", t0 + 15s);
    auto const raft = s.raft_index();
    r = s.acquire("l", val("x"), 0, sid, t0 + 14s);
    CHECK_FALSE(r.ok);
    CHECK_FALSE(r.error);
    CHECK(s.raft_index() == raft);          // refused without a Raft write
    CHECK(s.set("l", val("plain"), 0).ok);  // plain writes are not affected
    CHECK(s.acquire("l", val("x"), 0, sid, t0 + 15s).ok);
}

TEST_CASE("empty keys are refused by the single-key writes", "[kvsim][store]")
{
    store s;
    auto const raft = s.raft_index();
    CHECK(s.set("", val("x"), 0).error == std::string("Must provide key"));
    CHECK(s.cas("", val("x"), 0, 0).error == std::string("Must provide key"));
    CHECK(s.erase("").error == std::string("Must provide key"));
    CHECK(s.raft_index() == raft);
}

TEST_CASE("events: one per change plus one index event per write", "[kvsim][store]")
{
    store s;
    recorder rec;
    rec.attach(s);
    REQUIRE(s.set("a", val("1"), 0).ok);
    REQUIRE(s.erase("a", t0).ok);
    REQUIRE(s.erase("a", t0).ok);
    CHECK(rec.count<ev_entry_put>() == 1);
    CHECK(rec.count<ev_entry_erase>() == 1);
    CHECK(rec.count<ev_tombstone>() == 1);
    CHECK(rec.count<ev_index>() == 3);
    auto const& last = std::get<ev_index>(rec.events.back());
    CHECK(last.raft_index == s.raft_index());
    CHECK(last.kvs_table == s.raft_index() - 1);
}

TEST_CASE("keys: separators and keys with 0xFF bytes", "[kvsim][store]")
{
    store s;
    for (auto const& k :
         {std::string("a\xFF"
                      "1"),
          std::string("a\xFF"
                      "2"),
          std::string("a\xFF\xFF"),
          std::string("b")}) {
        REQUIRE(s.set(k, val("v"), 0).ok);
    }
    CHECK(s.keys("", "\xFF", authorizer::allow_all()) == std::vector<std::string>{"a\xFF", "b"});
    CHECK(
        s.keys("a\xFF", "\xFF", authorizer::allow_all()) ==
        std::vector<std::string>{
            "a\xFF"
            "1",
            "a\xFF"
            "2",
            "a\xFF\xFF"}
    );
}

TEST_CASE("go_quote matches Go's %q", "[kvsim][store]")
{
    struct row
    {
        std::string in;
        std::string want;
    };

    auto const rows = std::vector<row>{
        {"plain/key", "\"plain/key\""},
        {"q\"b\\s", "\"q\\\"b\\\\s\""},
        {"\a\b\f\n\r\t\v", "\"\\a\\b\\f\\n\\r\\t\\v\""},
        {std::string("\0\x1f\x7f", 3), "\"\\x00\\x1f\\x7f\""},
        {"caf\xC3\xA9 \xE6\xBC\xA2", "\"caf\xC3\xA9 \xE6\xBC\xA2\""},
        {"\x80 \xC3", "\"\\x80 \\xc3\""},
        {"\xC2\xA0\xC2\xAD", "\"\\u00a0\\u00ad\""},
        {"\xF0\x9F\x98\x80", "\"\xF0\x9F\x98\x80\""},
    };
    for (auto const& r : rows) {
        CHECK(go_quote(r.in) == r.want);
    }
}
