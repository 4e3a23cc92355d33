#include "builders.hpp"
#include "txn_encoding.hpp"

#include <engine/batch.hpp>

#include <map>
#include <random>
#include <set>

using namespace kvship::engine;
using namespace kvship::engine::test;

namespace {

plan plan_of(std::vector<put_op> puts, std::vector<std::string> deletes = {})
{
    plan p;
    p.puts = std::move(puts);
    for (auto& d : deletes) p.deletes.push_back({std::move(d)});
    p.next_checkpoint = checkpoint{9, "s/", "d/"};
    return p;
}

txn_op checkpoint_op(std::string value = R"({
  "LastReplicated": 9,
  "Source": "s/",
  "Destination": "d/"
})")
{
    return txn_op{txn_verb::set, "service/consul-replicate/statuses/abc", std::move(value), 0};
}

std::vector<std::size_t> sizes(const std::vector<batch>& batches)
{
    std::vector<std::size_t> out;
    for (auto const& b : batches) out.push_back(b.ops.size());
    return out;
}

std::vector<put_op> numbered_puts(
    std::size_t n, std::uint64_t first_index, bool same_index, std::size_t value_bytes = 1
)
{
    std::vector<put_op> out;
    for (std::size_t i = 0; i < n; ++i)
        out.push_back(
            put(fmt::format("d/{:05}", i),
                std::string(value_bytes, 'v'),
                same_index ? first_index : first_index + i)
        );
    return out;
}

void check_invariants(const std::vector<batch>& batches, const batch_limits& limits, bool with_checkpoint)
{
    for (std::size_t i = 0; i < batches.size(); ++i) {
        auto const& b = batches[i];
        CAPTURE(i);
        CHECK_FALSE(b.ops.empty());
        CHECK(b.ops.size() <= limits.max_ops);
        CHECK(b.estimated_bytes <= limits.max_bytes);
        CHECK(b.estimated_bytes == estimate_body_bytes(b.ops));
        CHECK(encode_body(b.ops).size() <= b.estimated_bytes);
        CHECK(b.carries_checkpoint == (with_checkpoint && i + 1 == batches.size()));
    }
}

}  // namespace

TEST_CASE("limits follow the server version", "[engine]")
{
    CHECK(limits_for_consul_version(1, 13).max_ops == 64);
    CHECK(limits_for_consul_version(0, 9).max_ops == 64);
    CHECK(limits_for_consul_version(1, 14).max_ops == 128);
    CHECK(limits_for_consul_version(1, 21).max_ops == 128);
    CHECK(limits_for_consul_version(2, 0).max_ops == 128);
    CHECK(limits_for_consul_version(1, 14).max_bytes == 512 * 1024);
    CHECK(batch_limits{}.max_ops == 64);
}

TEST_CASE("size estimates are upper bounds of the encoded body", "[engine]")
{
    CHECK(base64_length(0) == 0);
    CHECK(base64_length(1) == 4);
    CHECK(base64_length(3) == 4);
    CHECK(base64_length(4) == 8);
    CHECK(base64_length(512 * 1024) == 699052);
    CHECK(json_string_bound("abc") == 3);
    CHECK(json_string_bound("a\"\\") == 5);
    CHECK(json_string_bound("<&>") == 18);
    CHECK(json_string_bound("\n") == 6);
    CHECK(json_string_bound("\xc3\xa9") == 6);

    // the overhead covers the longest verb and flags
    txn_op const worst{txn_verb::delete_key, "", "", UINT64_MAX};
    CHECK(encode_body(std::span(&worst, 1)).size() <= estimate_body_bytes(std::span(&worst, 1)));

    std::mt19937 rng(42);
    std::uniform_int_distribution<int> byte(0, 255);
    std::uniform_int_distribution<int> len(0, 40);
    std::vector<txn_op> ops;
    for (int i = 0; i < 300; ++i) {
        txn_op op{
            i % 3 == 0 ? txn_verb::delete_key : txn_verb::set, {}, {}, static_cast<std::uint64_t>(rng())};
        for (int n = len(rng); n > 0; --n) op.key.push_back(static_cast<char>(byte(rng)));
        for (int n = len(rng) * 10; n > 0; --n) op.value.push_back(static_cast<char>(byte(rng)));
        ops.push_back(op);
        CHECK(encode_body(ops).size() <= estimate_body_bytes(ops));
    }
}

TEST_CASE("make_batches respects the op limit and puts the checkpoint last", "[engine]")
{
    struct op_case
    {
        std::string name;
        std::size_t puts;
        std::size_t deletes;
        std::size_t max_ops;
        bool same_index;
        bool with_checkpoint;
        std::vector<std::size_t> sizes;
    };

    auto const c = GENERATE(
        op_case{"empty, no checkpoint", 0, 0, 64, false, false, {}},
        op_case{"empty, checkpoint only", 0, 0, 64, false, true, {1}},
        op_case{"fits in one", 10, 5, 64, false, true, {16}},
        op_case{"exactly full, checkpoint alone", 64, 0, 64, false, true, {64, 1}},
        op_case{"one short of full", 63, 0, 64, false, true, {64}},
        op_case{"200 puts at 64", 200, 0, 64, false, true, {64, 64, 64, 9}},
        op_case{"200 puts at 128", 200, 0, 128, false, true, {128, 73}},
        op_case{"puts then deletes", 100, 100, 128, false, true, {128, 73}},
        op_case{"one source txn larger than a batch is split", 150, 0, 64, true, false, {64, 64, 22}},
        op_case{"max_ops 1", 2, 1, 1, false, true, {1, 1, 1, 1}}
    );
    CAPTURE(c.name);
    std::vector<std::string> deletes;
    for (std::size_t i = 0; i < c.deletes; ++i) deletes.push_back(fmt::format("d/z{:04}", i));
    batch_limits const limits{.max_ops = c.max_ops};
    auto const r = make_batches(
        plan_of(numbered_puts(c.puts, 10, c.same_index), deletes),
        limits,
        c.with_checkpoint ? std::optional(checkpoint_op()) : std::nullopt
    );
    REQUIRE(r.has_value());
    CHECK(sizes(*r) == c.sizes);
    check_invariants(*r, limits, c.with_checkpoint);
    if (c.with_checkpoint)
        CHECK(r->back().ops.back() == checkpoint_op());
}

TEST_CASE("make_batches keeps writes of one source index together where they fit", "[engine]")
{
    // 60 puts at index 1, then a 10-put source transaction at index 2: it does not fit in the 4
    // slots left, so it starts the next batch instead of being split.
    auto puts = numbered_puts(60, 1, true);
    for (std::size_t i = 0; i < 10; ++i) puts.push_back(put(fmt::format("d/t{}", i), "v", 2));
    auto const r = make_batches(plan_of(puts), batch_limits{}, checkpoint_op());
    REQUIRE(r.has_value());
    CHECK(sizes(*r) == std::vector<std::size_t>{60, 11});
    for (auto const& op : r->at(1).ops) {
        if (op.key != checkpoint_op().key)
            CHECK(op.key.starts_with("d/t"));
    }

    // order: by source index, then key; deletes after all puts
    plan p = plan_of({put("d/b", "1", 7), put("d/a", "1", 9), put("d/c", "1", 7)}, {"d/y", "d/x"});
    std::sort(p.deletes.begin(), p.deletes.end(), [](auto& a, auto& b) { return a.key < b.key; });
    auto const ordered = make_batches(p, batch_limits{});
    REQUIRE(ordered.has_value());
    REQUIRE(ordered->size() == 1);
    std::vector<std::string> keys;
    for (auto const& op : ordered->front().ops) keys.push_back(op.key);
    CHECK(keys == std::vector<std::string>{"d/b", "d/c", "d/a", "d/x", "d/y"});
    CHECK(ordered->front().ops[3].verb == txn_verb::delete_key);
    CHECK(ordered->front().ops[3].value.empty());
}

TEST_CASE("make_batches respects the byte budget", "[engine]")
{
    // 100 KiB values: ~136.6 KiB each as base64, so three per 512 KiB body.
    batch_limits const limits{.max_ops = 128};
    auto const r = make_batches(plan_of(numbered_puts(10, 1, false, 100 * 1024)), limits, checkpoint_op());
    REQUIRE(r.has_value());
    CHECK(sizes(*r) == std::vector<std::size_t>{3, 3, 3, 2});
    check_invariants(*r, limits, true);

    // a same-index group that fits only in an empty batch starts one
    auto const g = make_batches(
        plan_of(
            {put("d/a", std::string(200 * 1024, 'a'), 1),
             put("d/b", std::string(100 * 1024, 'b'), 2),
             put("d/c", std::string(100 * 1024, 'c'), 2)}
        ),
        limits
    );
    REQUIRE(g.has_value());
    CHECK(sizes(*g) == std::vector<std::size_t>{1, 2});

    // a checkpoint that does not fit the last batch goes alone
    auto const full = make_batches(
        plan_of(numbered_puts(3, 1, false, 120 * 1024)), limits, checkpoint_op(std::string(130 * 1024, 'x'))
    );
    REQUIRE(full.has_value());
    CHECK(sizes(*full) == std::vector<std::size_t>{3, 1});
    check_invariants(*full, limits, true);
}

TEST_CASE("make_batches returns errors instead of skipping", "[engine]")
{
    batch_limits const limits{};

    auto r =
        make_batches(plan_of({put("d/ok", "v"), put("d/huge", std::string(512 * 1024 + 1, 'x'))}), limits);
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().code == batch_errc::value_too_large);
    CHECK(r.error().key == "d/huge");
    CHECK(r.error().bytes == 512 * 1024 + 1);
    CHECK(r.error().message == R"(value for key "d/huge" is too large (524289 > 524288 bytes))");

    // Accepted by Consul as a plain PUT, but its base64 does not fit a 512 KiB txn body.
    r = make_batches(plan_of({put("d/big", std::string(400 * 1024, 'x'))}), limits);
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().code == batch_errc::op_too_large);
    CHECK(r.error().key == "d/big");
    CHECK(r.error().limit == 512 * 1024);

    // The largest value that still fits alone.
    std::size_t const fits = (512 * 1024 - txn_body_overhead_bytes - txn_op_overhead_bytes - 5) / 4 * 3;
    CHECK(make_batches(plan_of({put("d/big", std::string(fits, 'x'))}), limits).has_value());

    r = make_batches(plan_of({}), batch_limits{.max_ops = 0});
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().code == batch_errc::invalid_limits);
    r = make_batches(plan_of({}), batch_limits{.max_bytes = 50});
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().code == batch_errc::invalid_limits);

    plan refused = plan_of({put("d/a", "v")});
    refused.refused = refusal{refusal_reason::empty_source, 3, 3, "x"};
    refused.next_checkpoint.reset();
    r = make_batches(refused, limits, checkpoint_op());
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().code == batch_errc::checkpoint_on_refused_plan);
    CHECK(make_batches(refused, limits).has_value());  // its puts alone are fine

    r = make_batches(plan_of({}), limits, checkpoint_op(std::string(600 * 1024, 'x')));
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().code == batch_errc::value_too_large);

    // a key too long for any body
    r = make_batches(plan_of({}, {std::string(600 * 1024, 'k')}), limits);
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().code == batch_errc::op_too_large);
}

TEST_CASE("make_batches records each op's source transaction; cut_ops keeps them together", "[engine][cut]")
{
    // 30 single puts (indexes 1..30), then five 6-put source transactions (31..35), at 8 ops a txn:
    // a greedy cut would put ops 24..31 together, straddling transaction 31.
    auto puts = numbered_puts(30, 1, false);
    for (std::uint64_t t = 0; t < 5; ++t)
        for (std::size_t k = 0; k < 6; ++k) puts.push_back(put(fmt::format("d/t{}/{}", t, k), "x", 31 + t));
    batch_limits limits;
    limits.max_ops = 8;
    auto const r = make_batches(plan_of(puts), limits, checkpoint_op());
    REQUIRE(r.has_value());
    check_invariants(*r, limits, true);
    CHECK(sizes(*r) == std::vector<std::size_t>{8, 8, 8, 6, 6, 6, 6, 6, 7});
    for (auto const& b : *r) {
        REQUIRE(b.sources.size() == b.ops.size());
        CHECK_FALSE(b.plain_put);
    }
    std::map<std::uint64_t, std::set<std::size_t>> batches_of;  // source index -> batches holding it
    for (std::size_t i = 0; i < r->size(); ++i)
        for (auto const s : r->at(i).sources)
            if (s != no_source)
                batches_of[s].insert(i);
    for (auto const& [s, in] : batches_of) {
        CAPTURE(s);
        CHECK(in.size() == 1);
    }
    CHECK(r->back().sources.back() == no_source);  // the checkpoint

    // put_grouping::none (a streamed chunk): greedy, every txn full.
    auto const greedy = make_batches(plan_of(puts), limits, checkpoint_op(), put_grouping::none);
    REQUIRE(greedy.has_value());
    CHECK(sizes(*greedy) == std::vector<std::size_t>{8, 8, 8, 8, 8, 8, 8, 5});

    // The same rule re-cuts one batch: a 12-op batch holding 4 singles and two 4-op transactions
    // at 5 ops a piece keeps each transaction whole.
    std::vector<txn_op> ops;
    std::vector<std::uint64_t> sources;
    for (std::size_t i = 0; i < 4; ++i) {
        ops.push_back(txn_op{txn_verb::set, fmt::format("d/s{}", i), "v", 0});
        sources.push_back(1 + i);
    }
    for (std::uint64_t t = 0; t < 2; ++t)
        for (std::size_t k = 0; k < 4; ++k) {
            ops.push_back(txn_op{txn_verb::set, fmt::format("d/t{}{}", t, k), "v", 0});
            sources.push_back(10 + t);
        }
    batch_limits five;
    five.max_ops = 5;
    CHECK(cut_ops(ops, sources, five) == std::vector<txn_piece>{{0, 4}, {4, 8}, {8, 12}});
    // Without sources every op stands alone: greedy.
    CHECK(cut_ops(ops, {}, five) == std::vector<txn_piece>{{0, 5}, {5, 10}, {10, 12}});
    // A transaction larger than a piece is split in order
    five.max_ops = 3;
    // (a run that fits no piece on its own is not moved to a fresh one: it fills the open piece).
    CHECK(cut_ops(ops, sources, five) == std::vector<txn_piece>{{0, 3}, {3, 6}, {6, 9}, {9, 12}});
    CHECK(cut_ops({}, {}, five).empty());
}

TEST_CASE("make_batches: with plain_put_oversized a put too large for any txn is a plain PUT batch", "[engine][cut]")
{
    // A 400 KiB value: its base64 (~533 KiB) is larger than a 512 KiB body.
    auto puts = numbered_puts(3, 1, false);
    puts.insert(puts.begin() + 1, put("d/big", std::string(400 * 1024, 'b'), 1));
    batch_limits limits;
    auto const refused = make_batches(plan_of(puts), limits, checkpoint_op());
    REQUIRE_FALSE(refused.has_value());
    CHECK(refused.error().code == batch_errc::op_too_large);
    CHECK(refused.error().key == "d/big");

    limits.plain_put_oversized = true;
    auto const r = make_batches(plan_of(puts), limits, checkpoint_op());
    REQUIRE(r.has_value());
    // Order by (source index, key): d/00000 (1), d/big (1), d/00001 (2), d/00002 (3), checkpoint.
    REQUIRE(sizes(*r) == std::vector<std::size_t>{1, 1, 3});
    CHECK_FALSE(r->at(0).plain_put);
    CHECK(r->at(1).plain_put);
    CHECK(r->at(1).ops.front().key == "d/big");
    CHECK_FALSE(r->at(2).plain_put);
    CHECK(r->at(2).carries_checkpoint);

    // A value above Consul's 512 KiB is refused either way.
    puts.push_back(put("d/huge", std::string(512 * 1024 + 1, 'h'), 9));
    auto const huge = make_batches(plan_of(puts), limits, checkpoint_op());
    REQUIRE_FALSE(huge.has_value());
    CHECK(huge.error().code == batch_errc::value_too_large);
}
