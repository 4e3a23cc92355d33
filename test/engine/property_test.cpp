// Property: applying the plan (through its txn batches) to the destination yields the mapped,
// filtered source, leaves everything the pair does not manage untouched, and is a fixed point.
#include "builders.hpp"

#include <engine/batch.hpp>
#include <engine/guard.hpp>
#include <engine/plan.hpp>
#include <prefixes/key_map.hpp>

#include <map>
#include <random>
#include <utility>

using namespace kvship::engine;
using namespace kvship::engine::test;

namespace {

using kv_map = std::map<std::string, std::pair<std::string, std::uint64_t>>;  // key -> (value, flags)

struct generator
{
    std::mt19937 rng;

    std::size_t pick(std::size_t n) { return std::uniform_int_distribution<std::size_t>(0, n - 1)(rng); }

    // Short keys over a tiny alphabet, so prefixes, excludes and destinations overlap often.
    std::string word(std::size_t max_len)
    {
        std::string s;
        for (std::size_t n = pick(max_len + 1); n > 0; --n) s.push_back("ab/x"[pick(4)]);
        return s;
    }

    std::vector<kv_entry> entries(const std::string& prefix, const std::string& stray, std::size_t max)
    {
        std::map<std::string, kv_entry> unique;
        for (std::size_t n = pick(max + 1); n > 0; --n) {
            std::string key = (pick(10) == 0 ? stray : prefix) + word(5);
            auto flags = static_cast<std::uint64_t>(pick(3));
            if (pick(20) == 0)
                flags = lock_flag_value;
            kv_entry e = kv(key, std::string(1, "pq"[pick(2)]) + word(2), 1 + pick(40), flags);
            if (pick(10) == 0)
                e.session = "sess";
            unique.emplace(key, e);
        }
        std::vector<kv_entry> out;
        for (auto& [k, e] : unique) out.push_back(std::move(e));
        std::shuffle(out.begin(), out.end(), rng);
        return out;
    }
};

kv_map as_map(const std::vector<kv_entry>& entries)
{
    kv_map m;
    for (auto const& e : entries) m.emplace(e.key, std::make_pair(e.value, e.flags));
    return m;
}

// Applies txn ops in order, as Consul would.
void apply_batches(kv_map& state, const std::vector<batch>& batches)
{
    for (auto const& b : batches) {
        for (auto const& op : b.ops) {
            if (op.verb == txn_verb::set)
                state[op.key] = {op.value, op.flags};
            else
                state.erase(op.key);
        }
    }
}

bool managed(const kvship::prefixes::rule& r, const std::string& destination_key)
{
    if (kvship::prefixes::is_protected(r, destination_key))
        return false;
    auto const source_key = kvship::prefixes::unmap_key(r.spec, destination_key);
    return source_key && kvship::prefixes::is_selected(r.filter, *source_key);
}

}  // namespace

TEST_CASE("property: plan + batches turn the destination into the mapped, filtered source", "[engine]")
{
    struct layout
    {
        std::string source;
        std::string destination;
    };

    std::vector<layout> const layouts = {
        {"s", "d"},  // plain text prefixes: "sx" maps to "dx"
        {"s/", "d/"},
        {"a", "a"},                // same prefix in another DC
        {"a/", "a/b"},             // destination nested in the source text
        {"service/", "service/"},  // the status dir lies inside the destination
    };

    generator gen{std::mt19937(0x5eed)};
    std::size_t total_puts = 0;
    std::size_t total_deletes = 0;
    std::size_t total_unchanged = 0;
    for (int iteration = 0; iteration < 600; ++iteration) {
        auto const& l = layouts[gen.pick(layouts.size())];
        std::vector<std::string> excludes;
        for (std::size_t n = gen.pick(3); n > 0; --n) excludes.push_back(l.source + gen.word(2));
        std::vector<std::string> includes;
        if (gen.pick(4) == 0)
            includes.push_back(l.source + gen.word(1));
        auto const r = pair_rule(l.source, l.destination, excludes, includes);

        auto const src_entries = gen.entries(l.source, "zz", 30);
        auto dst_entries = gen.entries(l.destination, "zz", 30);
        if (gen.pick(3) == 0)
            dst_entries.push_back(kv(r.status_key, "{}"));
        if (l.source == "service/" && gen.pick(2) == 0)
            dst_entries.push_back(kv(std::string(kvship::prefixes::default_status_dir) + "/other", "{}"));
        // sometimes source values are copied over, so unchanged keys occur
        for (auto& e : dst_entries) {
            for (auto const& s : src_entries) {
                if (kvship::prefixes::map_key(r.spec, s.key) == e.key && gen.pick(2) == 0) {
                    e.value = s.value;
                    e.flags = s.flags;
                }
            }
        }

        CAPTURE(iteration, l.source, l.destination, excludes, includes);
        auto const p = make_plan(snap(100, src_entries), snap(50, dst_entries), r, checkpoint{});
        total_puts += p.puts.size();
        total_deletes += p.deletes.size();
        total_unchanged += p.stats.unchanged;
        batch_limits const limits{.max_ops = 1 + gen.pick(8), .max_bytes = 200 + gen.pick(2000)};
        auto const batches =
            make_batches(p, limits, txn_op{txn_verb::set, r.status_key, "{\"LastReplicated\": 100}", 0});
        REQUIRE(batches.has_value());

        kv_map const before = as_map(dst_entries);
        kv_map after = before;
        apply_batches(after, *batches);

        // Expected: unmanaged destination keys untouched, managed ones exactly the mapped source.
        kv_map expected;
        for (auto const& [k, v] : before) {
            if (!managed(r, k))
                expected.emplace(k, v);
        }
        for (auto const& e : src_entries) {
            auto const destination_key = kvship::prefixes::map_key(r.spec, e.key);
            if (!destination_key || !kvship::prefixes::is_selected(r.filter, e.key) ||
                kvship::prefixes::is_protected(r, *destination_key))
                continue;
            expected[*destination_key] = {e.value, e.flags};
        }
        expected[r.status_key] = {"{\"LastReplicated\": 100}", 0};
        CHECK(after == expected);

        // Every op stays inside the pair's destination and off protected keys (checkpoint aside).
        for (auto const& b : *batches) {
            for (auto const& op : b.ops) {
                if (op.key == r.status_key)
                    continue;
                CHECK(managed(r, op.key));
            }
        }

        // apply_plan agrees with the batches, and a second round has nothing to do.
        auto const applied = apply_plan(snap(50, dst_entries), p, 101);
        kv_map applied_map = as_map(applied.entries);
        applied_map[r.status_key] = {"{\"LastReplicated\": 100}", 0};
        CHECK(applied_map == after);
        auto const again =
            make_plan(snap(100, src_entries), applied, r, checkpoint{100, l.source, l.destination});
        CHECK_FALSE(has_changes(again));
        CHECK(again.stats.unchanged == again.stats.selected_keys);

        // The guard never adds ops: a guarded plan is a subset of the plan.
        auto const guarded = guard_plan(p, guard_params{});
        CHECK(guarded.puts == p.puts);
        CHECK(guarded.deletes.size() <= p.deletes.size());
    }
    // The generator really exercises every path.
    CHECK(total_puts > 1000);
    CHECK(total_deletes > 1000);
    CHECK(total_unchanged > 200);
}
