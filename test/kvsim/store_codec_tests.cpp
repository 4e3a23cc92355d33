// Snapshot, journal events and replay.
#include "store_test_support.hpp"

#include <catch2/catch.hpp>

#include <cstdint>
#include <random>

using namespace kvship::kvsim;
using namespace kvship::kvsim::test;

namespace {

std::string const binary_key = std::string("bin\0key\n with space%25 \xFF\x7F", 25);
std::string const binary_value = std::string("\0\r\n\t %\xC3\xA9 = ~ end\xFF", 17);
constexpr std::uint64_t huge = UINT64_MAX;

// The snapshot without its id-generator line (events do not carry it).
std::string state_of(store const& s)
{
    auto snap = s.encode_snapshot();
    auto const a = snap.find("\nids ");
    auto const b = snap.find('\n', a + 1);
    return snap.erase(a, b - a);
}

store rich_store()
{
    store_params p;
    p.acl = acl_config{true, true, "root"};
    store s(p);
    REQUIRE(s.set(binary_key, binary_value, huge).ok);
    REQUIRE(s.set("empty", val(""), 0).ok);
    REQUIRE(s.set("nil", std::nullopt, 1).ok);
    REQUIRE(s.set("gone", val("x"), 0).ok);
    REQUIRE(s.erase("gone", t0).ok);
    REQUIRE(s.set("undated", val("x"), 0).ok);
    REQUIRE(s.erase("undated").ok);
    session_request req;
    req.name = std::string("name with\nnewline");
    req.ttl = "15s";
    req.behavior = "delete";
    auto const sess = make_session(s, req);
    REQUIRE(s.acquire("held", val("v"), 3304740253564472344ULL, sess.id, t0).ok);
    auto pol = s.put_policy(
        "p", "key_prefix \"a \\\"q\\\"\" { policy = \"list\" }\nkey \"x\" { policy = \"deny\" }"
    );
    REQUIRE(std::holds_alternative<acl_policy>(pol));
    acl_token t;
    t.description = "d\x01";
    t.policy_ids = {std::get<acl_policy>(pol).id};
    t.local = true;
    REQUIRE(std::holds_alternative<acl_token>(s.put_token(t)));
    return s;
}

}  // namespace

TEST_CASE("every event round-trips through its line", "[kvsim][codec]")
{
    session sess;
    sess.id = "id";
    sess.name = binary_value;
    sess.behavior = session_behavior::del;
    sess.node_checks = {};
    sess.service_checks = {"a b", ""};
    sess.expires_at = t0;
    sess.create_index = huge;
    kv_entry e;
    e.key = binary_key;
    e.value = binary_value;
    e.flags = huge;
    e.lock_index = huge - 1;
    e.session = "s";
    kv_entry nil_entry;
    nil_entry.key = "k";
    acl_policy pol;
    pol.id = "pid";
    pol.rules_text = "key \"\" {\n policy = \"read\"\n}";
    pol.key_rules = {acl_rule{"", true, acl_access::list}, acl_rule{" x", false, acl_access::deny}};
    acl_token tok;
    tok.accessor_id = "a";
    tok.secret_id = "s";
    tok.policy_ids = {"pid", "p2"};
    tok.management = true;

    std::vector<store_event> const events{
        ev_entry_put{e},
        ev_entry_put{nil_entry},
        ev_entry_erase{binary_key},
        ev_entry_erase{""},
        ev_tombstone{"t", 5, std::nullopt},
        ev_tombstone{binary_key, huge, t0},
        ev_tombstones_reaped{huge},
        ev_session_put{sess},
        ev_session_erase{"id"},
        ev_index{1, 2, 3, huge},
        ev_acl_policy_put{pol},
        ev_acl_token_put{tok},
    };
    for (auto const& ev : events) {
        auto const line = store::encode_event(ev);
        INFO(line);
        CHECK(line.find('\n') == std::string::npos);
        auto back = store::decode_event(line);
        REQUIRE(back);
        CHECK(store::encode_event(*back) == line);
        CHECK(back->index() == ev.index());
    }
    auto const e2 = std::get<ev_entry_put>(*store::decode_event(store::encode_event(ev_entry_put{e})));
    CHECK(e2.entry == e);
    auto const n2 =
        std::get<ev_entry_put>(*store::decode_event(store::encode_event(ev_entry_put{nil_entry})));
    CHECK(n2.entry == nil_entry);
    CHECK_FALSE(n2.entry.value);
    auto const s2 = std::get<ev_session_put>(*store::decode_event(store::encode_event(ev_session_put{sess})));
    CHECK(s2.s == sess);
    auto const t2 =
        std::get<ev_tombstone>(*store::decode_event(store::encode_event(ev_tombstone{"k", 9, t0})));
    CHECK(t2.created == t0);

    for (std::string_view bad :
         {"",
          "put",
          "put =k",
          "nope =x",
          "idx 1 2 3",
          "idx 1 2 3 4 5",
          "del k",
          "del =%4",
          "del =%ZZ",
          "reap -1",
          "reap 18446744073709551616",
          "tomb =k 1 x",
          "del =a  =b"}) {
        INFO(bad);
        CHECK_FALSE(store::decode_event(bad));
    }
}

TEST_CASE("snapshot round trip with binary data and huge numbers", "[kvsim][codec]")
{
    auto s = rich_store();
    auto const snap = s.encode_snapshot();
    store r(s.params());
    REQUIRE_FALSE(r.restore_snapshot(snap));
    CHECK(r.encode_snapshot() == snap);
    REQUIRE(r.get(binary_key) != nullptr);
    CHECK(*r.get(binary_key) == *s.get(binary_key));
    CHECK(r.get(binary_key)->flags == huge);
    CHECK(r.get("empty")->value == val(""));
    CHECK_FALSE(r.get("nil")->value);
    CHECK(r.raft_index() == s.raft_index());
    CHECK(r.kvs_max_index() == s.kvs_max_index());
    CHECK(r.sessions_index() == s.sessions_index());
    CHECK(r.list_index("gone") == s.list_index("gone"));
    CHECK(r.tombstone_count() == 2);
    REQUIRE(r.sessions().size() == 1);
    CHECK(*r.sessions()[0] == *s.sessions()[0]);
    // the session index of held keys is rebuilt: destroying the session deletes "held"
    r.destroy_session(r.sessions()[0]->id, t0);
    CHECK(r.get("held") == nullptr);
    // ACLs restored
    auto const* tok = s.find_token(s.find_policy("p")->id);
    CHECK(tok == nullptr);
    CHECK(r.find_policy("p") != nullptr);
    CHECK(r.find_policy("p")->key_rules.size() == 2);
    // new ids never collide with restored ones
    auto const fresh = make_session(r);
    CHECK(fresh.id != s.sessions()[0]->id);
}

TEST_CASE("restore replaces all state and indexes may go backwards", "[kvsim][codec]")
{
    store s;
    REQUIRE(s.set("old", val("1"), 0).ok);
    auto const snap = s.encode_snapshot();
    auto const idx = s.raft_index();
    for (int i = 0; i < 5; ++i) {
        REQUIRE(s.set("new" + std::to_string(i), val("1"), 0).ok);
    }
    s.lock_delay_until("old", t0 + 1h);
    REQUIRE_FALSE(s.restore_snapshot(snap));
    CHECK(s.raft_index() == idx);
    CHECK(s.kv_count() == 1);
    CHECK(s.get("new0") == nullptr);
    CHECK_FALSE(s.lock_delay("old", t0));
}

TEST_CASE("malformed snapshots are refused and leave the store unchanged", "[kvsim][codec]")
{
    auto s = rich_store();
    auto const snap = s.encode_snapshot();
    std::vector<std::string> bad{
        "",
        "garbage\n",
        snap.substr(0, snap.size() - 1),      // no final newline
        snap.substr(0, snap.rfind("end ")),   // no end record
        snap + "put =x ~ 0 0 0 0 =\n",        // data after the end
        "kvsim-snapshot 1\nput =x\nend 0\n",  // short record
        "kvsim-snapshot 1\nend 1\n",          // count mismatch
        "kvsim-snapshot 9\nend 0\n",          // unknown version
    };
    for (auto const& b : bad) {
        store t(s.params());
        REQUIRE_FALSE(t.restore_snapshot(snap));
        auto err = t.restore_snapshot(b);
        CHECK(err);
        CHECK(t.encode_snapshot() == snap);
    }
}

TEST_CASE("replaying the journal rebuilds the store", "[kvsim][codec]")
{
    store_params p;
    p.tombstone_ttl = 60s;
    p.tombstone_granularity = 10s;
    store s(p);
    std::vector<std::string> journal;
    s.set_observer([&](store_event const& ev) { journal.push_back(store::encode_event(ev)); });

    std::mt19937_64 rng(1234);
    auto pick = [&](int n) { return static_cast<int>(rng() % static_cast<std::uint64_t>(n)); };
    auto key = [&] {
        return "k/" + std::to_string(pick(40)) + (pick(5) == 0 ? std::string("\n\0x", 3) : "");
    };
    std::vector<std::string> sids;
    auto now = t0;
    for (int i = 0; i < 3000; ++i) {
        now += std::chrono::milliseconds(pick(400));
        switch (pick(11)) {
            case 0:
                (void)s.set(key(), val(std::to_string(pick(3))), static_cast<std::uint64_t>(pick(2)) * huge);
                break;
            case 1:
                (void)s.erase(key(), now);
                break;
            case 2:
                (void)s.erase_tree("k/" + std::to_string(pick(4)), now);
                break;
            case 3:
                (void)s.cas(key(), val("c"), 0, static_cast<index_t>(pick(3) == 0 ? 0 : s.raft_index() - 3));
                break;
            case 4: {
                std::vector<txn_kv_op> ops;
                for (int j = 0, n = 1 + pick(6); j < n; ++j) {
                    static char const* const verbs[] = {
                        "set", "delete", "cas", "delete-tree", "get", "check-not-exists"};
                    ops.push_back(op(verbs[pick(6)], key(), val("t"), 0));
                }
                (void)s.txn(ops, authorizer::allow_all(), now);
                break;
            }
            case 5:
                if (sids.size() < 5) {
                    sids.push_back(
                        make_session(s, req_with(pick(2) ? "delete" : "release", 1s, "10s"), now).id
                    );
                }
                break;
            case 6:
                if (!sids.empty()) {
                    (void)s.acquire(
                        key(),
                        val("l"),
                        0,
                        sids[static_cast<std::size_t>(pick(static_cast<int>(sids.size())))],
                        now
                    );
                }
                break;
            case 7:
                if (!sids.empty()) {
                    (void)s.release(
                        key(),
                        val("r"),
                        0,
                        sids[static_cast<std::size_t>(pick(static_cast<int>(sids.size())))]
                    );
                }
                break;
            case 8:
                if (!sids.empty() && pick(4) == 0) {
                    s.destroy_session(sids.back(), now);
                    sids.pop_back();
                } else if (!sids.empty()) {
                    (void)s.renew_session(sids.front(), now);
                }
                break;
            case 9:
                (void)s.tick(now);
                break;
            default:
                (void)s.erase(key());
                break;
        }
    }
    now += 2h;
    (void)s.tick(now);  // expires sessions, reaps tombstones
    CHECK(s.sessions().empty());

    store replay(p);
    for (auto const& line : journal) {
        auto ev = store::decode_event(line);
        REQUIRE(ev);
        replay.apply_event(*ev);
    }
    CHECK(state_of(replay) == state_of(s));
    CHECK(replay.raft_index() == s.raft_index());
    CHECK(replay.kvs_max_index() == s.kvs_max_index());
}
