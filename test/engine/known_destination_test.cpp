// engine::known_destination: the destination as the pair knows it between full reads.
#include "builders.hpp"

#include <engine/known_destination.hpp>

#include <catch2/catch.hpp>

#include <random>
#include <string>
#include <vector>

using namespace kvship::engine;
using namespace kvship::engine::test;

namespace {

txn_op set(std::string key, std::string value, std::uint64_t flags = 0)
{
    return txn_op{txn_verb::set, std::move(key), std::move(value), flags};
}

txn_op del(std::string key)
{
    return txn_op{txn_verb::delete_key, std::move(key), {}, 0};
}

std::vector<std::string> keys(const snapshot& s)
{
    std::vector<std::string> out;
    for (auto const& e : s.entries) out.push_back(e.key);
    return out;
}

}  // namespace

TEST_CASE("known_destination: committed ops patch the listing in commit order", "[engine][known]")
{
    known_destination k(
        snap(40, {kv("d/a", "1", 5), with_session(kv("d/b", "2", 6, 7), "sess"), kv("d/c", "3", 7)}), "d/", "st/x");
    CHECK(k.size() == 3);
    std::vector<txn_op> const ops{
        set("d/b", "20", 9),  // a set keeps the entry's session
        del("d/c"),
        set("d/aa", "new"),
        set("d/aa", "newer"),
        del("d/missing"),     // deleting what is not there is fine
        set("other/x", "y"),  // outside the destination: not kept
        set("st/x", "cp:1"),
        set("st/x", "cp:2"),
    };
    auto const status = k.apply(ops);
    REQUIRE(status.has_value());
    CHECK(*status == "cp:2");  // the last set of the status key
    auto const all = k.view({});
    CHECK(all.index == 40);
    CHECK(keys(all) == std::vector<std::string>{"d/a", "d/aa", "d/b"});
    CHECK(all.entries[1].value == "newer");
    CHECK(all.entries[2].value == "20");
    CHECK(all.entries[2].flags == 9);
    CHECK(all.entries[2].session == std::optional<std::string>("sess"));
    CHECK(!k.apply(std::vector<txn_op>{set("d/z", "1")}).has_value());
}

TEST_CASE("known_destination: a view of ranges holds only their entries, in key order", "[engine][known]")
{
    known_destination k(
        snap(3, {kv("d/a/1", "x"), kv("d/a/2", "x"), kv("d/ab", "x"), kv("d/b/1", "x"), kv("d/c/1", "x")}), "d/", "s");
    CHECK(keys(k.view({"d/a/", "d/c/"})) == std::vector<std::string>{"d/a/1", "d/a/2", "d/c/1"});
    CHECK(keys(k.view({"d/a"})) == std::vector<std::string>{"d/a/1", "d/a/2", "d/ab"});
    CHECK(k.view({"d/x/"}).entries.empty());
    CHECK(k.view({"d/x/"}).index == 3);
}

TEST_CASE("known_destination: bytes() follows what is held", "[engine][known]")
{
    known_destination k(snap(1, {}), "d/", "s");
    CHECK(k.bytes() == 0);
    (void)k.apply(std::vector<txn_op>{set("d/k", std::string(1000, 'v'))});
    std::size_t const one = k.bytes();
    CHECK(one == known_destination::cost(kv("d/k", std::string(1000, 'v'))));
    CHECK(one >= 1000);
    (void)k.apply(std::vector<txn_op>{set("d/k", "small")});
    CHECK(k.bytes() == one - 995);
    (void)k.apply(std::vector<txn_op>{del("d/k")});
    CHECK(k.bytes() == 0);
    known_destination from(snap(1, {kv("d/a", "12"), kv("d/b", "345")}), "d/", "s");
    CHECK(from.bytes() == known_destination::cost(std::vector<kv_entry>{kv("d/a", "12"), kv("d/b", "345")}));
}

// The known state must be what reading the destination again would give: random ops against a model
// (a sorted vector patched the slow way).
TEST_CASE("known_destination: random ops give what a fresh listing would", "[engine][known]")
{
    std::mt19937 rng(7);
    std::vector<kv_entry> model;
    for (int i = 0; i < 50; ++i) model.push_back(kv(fmt::format("d/{:03}", i * 2), "v0"));
    known_destination k(snap(1, model), "d/", "s");
    for (int round = 0; round < 200; ++round) {
        std::vector<txn_op> ops;
        int const n = static_cast<int>(rng() % 8) + 1;
        for (int j = 0; j < n; ++j) {
            auto key = fmt::format("d/{:03}", rng() % 120);
            if (rng() % 3 == 0)
                ops.push_back(del(key));
            else
                ops.push_back(set(key, fmt::format("v{}", round), rng() % 2));
        }
        (void)k.apply(ops);
        for (auto const& op : ops) {
            auto it = std::lower_bound(model.begin(), model.end(), op.key, [](const kv_entry& e, const std::string& key) {
                return e.key < key;
            });
            bool const found = it != model.end() && it->key == op.key;
            if (op.verb == txn_verb::delete_key) {
                if (found)
                    model.erase(it);
            } else if (found) {
                it->value = op.value;
                it->flags = op.flags;
            } else {
                model.insert(it, kv(op.key, op.value, 0, op.flags));
            }
        }
        auto const got = k.view({});
        REQUIRE(got.entries.size() == model.size());
        for (std::size_t i = 0; i < model.size(); ++i) {
            REQUIRE(got.entries[i].key == model[i].key);
            REQUIRE(got.entries[i].value == model[i].value);
            REQUIRE(got.entries[i].flags == model[i].flags);
        }
        CHECK(k.bytes() == known_destination::cost(model));
    }
}

TEST_CASE("plan_destination_read: the known view while fresh, ranges when not kept, else a whole read", "[engine][known_destination]")
{
    using w = destination_read_plan::way;
    // Nothing known (the first round, after a failure or a full read): whole, not a refresh.
    CHECK(plan_destination_read(false, false, false, true) == destination_read_plan{w::whole, false});
    CHECK(plan_destination_read(false, false, false, false) == destination_read_plan{w::whole, false});
    // Fresh and kept: the known view, for a whole round or a grouped one.
    CHECK(plan_destination_read(true, true, true, true) == destination_read_plan{w::known, false});
    CHECK(plan_destination_read(true, true, true, false) == destination_read_plan{w::known, false});
    // Fresh, not kept: a grouped round reads its ranges; a whole round reads it all (not a refresh).
    CHECK(plan_destination_read(true, true, false, false) == destination_read_plan{w::ranges, false});
    CHECK(plan_destination_read(true, true, false, true) == destination_read_plan{w::whole, false});
    // Stale: whole, and that is the periodic refresh, kept or not.
    CHECK(plan_destination_read(true, false, true, false) == destination_read_plan{w::whole, true});
    CHECK(plan_destination_read(true, false, false, true) == destination_read_plan{w::whole, true});
}
