// The compact source snapshot (compact.hpp): digests, the kept entries against plain entry lists
// (prefix ranges, splices, plans and layouts come out the same), its size, and streamed rounds that
// let their values go.
#include "builders.hpp"

#include <engine/compact.hpp>
#include <engine/groups.hpp>
#include <engine/replicator_fsm.hpp>

#include <map>
#include <random>

using namespace kvship::engine;
using namespace kvship::engine::test;

namespace {

template <class A>
A expect(const replicator_action& a)
{
    REQUIRE(std::holds_alternative<A>(a));
    return std::get<A>(a);
}

std::vector<kv_entry> sorted(std::vector<kv_entry> entries)
{
    sort_entries(entries);
    return entries;
}

// Random sorted entries under a few prefixes, some with sessions, flags and long keys.
std::vector<kv_entry> random_entries(std::mt19937& rng, std::size_t max_n)
{
    auto pick = [&](std::size_t n) { return std::uniform_int_distribution<std::size_t>(0, n - 1)(rng); };
    std::vector<kv_entry> out;
    for (std::size_t n = pick(max_n + 1); n > 0; --n) {
        std::string key = std::string("s/") + "abc"[pick(3)] + "/";
        for (std::size_t len = pick(6); len > 0; --len) key.push_back("xy/z"[pick(4)]);
        if (pick(20) == 0)
            key.append(300, 'k');
        auto e =
            kv(key, std::string(pick(3), "pq"[pick(2)]), 1 + pick(5), pick(4) == 0 ? lock_flag_value : pick(2)
            );
        if (pick(6) == 0)
            e.session = pick(2) == 0 ? "" : "sess";
        out.push_back(std::move(e));
    }
    return sorted(std::move(out));
}

}  // namespace

TEST_CASE("digest_value: MurmurHash3_x64_128, seed 0", "[engine][compact]")
{
    // The published test vectors (hash bytes 6c1b07bc...7a and cbd8a7b3...19 as two little-endian words).
    CHECK(
        digest_value("The quick brown fox jumps over the lazy dog") ==
        value_digest{0xe34bbc7bbc071b6cULL, 0x7a433ca9c49a9347ULL}
    );
    CHECK(digest_value("hello") == value_digest{0xcbd8a7b341bd9b02ULL, 0x5b1e906a48ae1d19ULL});
    CHECK(digest_value("") == value_digest{0, 0});
    // Every tail length, and one flipped bit anywhere, gives another digest.
    std::string base(40, 'a');
    std::vector<value_digest> seen;
    for (std::size_t len = 0; len <= base.size(); ++len) {
        auto const d = digest_value(std::string_view(base).substr(0, len));
        CHECK(std::find(seen.begin(), seen.end(), d) == seen.end());
        seen.push_back(d);
    }
    for (std::size_t i = 0; i < base.size(); ++i) {
        auto flipped = base;
        flipped[i] ^= 1;
        CHECK(digest_value(flipped) != digest_value(base));
    }
}

TEST_CASE("compact_entries: entries compare as the listed ones, without their values", "[engine][compact]")
{
    auto const listed = std::vector<kv_entry>{
        kv("s/a", "1", 4), with_session(kv("s/b", "22", 5, 7), "sess"), with_session(kv("s/c", "", 6), "")};
    auto const c = compact(listed);
    REQUIRE(c.size() == 3);
    CHECK(c.key(1) == "s/b");
    CHECK(c[1].value_size == 2);
    CHECK(c[1].flags == 7);
    CHECK(c[1].modify_index == 5);
    REQUIRE(c[1].session != nullptr);
    CHECK(*c[1].session == "sess");
    CHECK(c[0].session == nullptr);
    REQUIRE(c[2].session != nullptr);  // an empty session is still one
    CHECK(c[2].session->empty());
    for (std::size_t i = 0; i < listed.size(); ++i) CHECK(c[i] == listed[i]);
    CHECK(same_entries(c, listed));
    CHECK(same_entries(c, compact(listed)));
    // Any one field changed: not the same.
    std::vector<std::vector<kv_entry>> others(6, listed);
    others[0][0].value = "2";
    others[1][0].flags = 1;
    others[2][0].modify_index = 9;
    others[3][0].session = "s";
    others[4][1].session.reset();
    others[5].pop_back();
    for (auto const& o : others) {
        CHECK_FALSE(same_entries(c, o));
        CHECK_FALSE(same_entries(c, compact(o)));
    }
    CHECK(c[0].same_value(kv("d/a", "1", 99)));  // value and flags only
    CHECK_FALSE(c[0].same_value(kv("d/a", "1", 99, 3)));
    CHECK_FALSE(c[0].same_value(kv("d/a", "11", 99)));
}

TEST_CASE("compact_entries: a million-key shape costs the keys plus 48 bytes each", "[engine][compact]")
{
    compact_entries c;
    std::string const value(100, 'v');
    std::size_t key_bytes = 0;
    for (int i = 0; i < 20000; ++i) {
        auto e = kv(fmt::format("bench/d{:03}/k{:07}", i % 256, i), value, static_cast<std::uint64_t>(i + 1));
        key_bytes += e.key.size();
        c.push_back(e);
    }
    // The listed form holds about 270 bytes per key of this shape (entry, key and value on the heap).
    std::size_t const per_key = c.heap_bytes() / c.size();
    CAPTURE(per_key, key_bytes / c.size());
    CHECK(per_key <= key_bytes / c.size() + 48 + 16);  // the last key block is part-filled
    CHECK(c.key(19999) == "bench/d031/k0019999");
}

TEST_CASE("compact_entries: prefix ranges and splices match the listed form", "[engine][compact]")
{
    std::mt19937 rng(0xc0c0);
    auto pick = [&](std::size_t n) { return std::uniform_int_distribution<std::size_t>(0, n - 1)(rng); };
    std::vector<std::string> const prefixes = {"s/", "s/a/", "s/b/", "s/c/x", "s/a/y/", "s/q/", ""};
    for (int iteration = 0; iteration < 200; ++iteration) {
        auto listed = random_entries(rng, 40);
        auto kept = compact(listed);
        for (int step = 0; step < 30; ++step) {
            auto const& prefix = prefixes[pick(prefixes.size())];
            CHECK(prefix_range(kept, prefix) == prefix_range(listed, prefix));
            // A new listing for the group: sometimes the same, sometimes changed, sometimes empty.
            auto const [lo, hi] = prefix_range(listed, prefix);
            std::vector<kv_entry> group(
                listed.begin() + static_cast<std::ptrdiff_t>(lo),
                listed.begin() + static_cast<std::ptrdiff_t>(hi)
            );
            std::size_t const what = pick(4);
            if (what == 1 && !group.empty())
                group[pick(group.size())].value += "!";
            if (what == 2)
                group.clear();
            if (what == 3)
                for (auto const& e : random_entries(rng, 8))
                    if (e.key.starts_with(prefix))
                        group.push_back(e);
            group = sorted(std::move(group));
            bool const changed_listed = splice_group(listed, prefix, group);
            bool const changed_kept = splice_group(kept, prefix, group);
            CHECK(changed_listed == changed_kept);
            REQUIRE(same_entries(kept, listed));
        }
    }
    // Many splices of a large snapshot: replaced keys are collected, the size stays bounded.
    std::vector<kv_entry> big;
    for (int i = 0; i < 3000; ++i) big.push_back(kv(fmt::format("s/{:02}/{:0200}", i % 10, i), "v"));
    big = sorted(std::move(big));
    auto kept = compact(big);
    std::size_t const start = kept.heap_bytes();
    for (int round = 0; round < 50; ++round) {
        auto const prefix = fmt::format("s/{:02}/", round % 10);
        auto const [lo, hi] = prefix_range(big, prefix);
        std::vector<kv_entry> group(
            big.begin() + static_cast<std::ptrdiff_t>(lo), big.begin() + static_cast<std::ptrdiff_t>(hi)
        );
        for (auto& e : group) e.modify_index = static_cast<std::uint64_t>(round + 2);
        CHECK(splice_group(big, prefix, group));
        CHECK(splice_group(kept, prefix, group));
    }
    CHECK(same_entries(kept, big));
    CHECK(kept.heap_bytes() < 3 * start);
}

TEST_CASE("make_plan over the kept snapshot: the plan without puts of the listed one", "[engine][compact]")
{
    std::mt19937 rng(0x91a7);
    auto pick = [&](std::size_t n) { return std::uniform_int_distribution<std::size_t>(0, n - 1)(rng); };
    for (int iteration = 0; iteration < 300; ++iteration) {
        auto const rule = pair_rule(
            "s/", "d/", pick(3) == 0 ? std::vector<std::string>{"s/b/"} : std::vector<std::string>{}
        );
        auto const src = random_entries(rng, 30);
        std::vector<kv_entry> dst;
        for (auto const& e : src)
            if (pick(2) == 0)
                dst.push_back(
                    kv("d/" + e.key.substr(2),
                       pick(2) == 0 ? e.value : e.value + "x",
                       1,
                       pick(3) == 0 ? 1 : e.flags)
                );
        for (auto const& e : random_entries(rng, 10)) dst.push_back(kv("d/" + e.key.substr(2), "old"));
        dst = sorted(std::move(dst));
        checkpoint const prev{3, "s/", "d/"};
        auto const lean = make_plan(src, 7, dst, rule, prev, false);
        auto const kept = make_plan(compact(src), 7, dst, rule, prev);
        CHECK(kept == lean);
    }
}

TEST_CASE("split_layout over the kept snapshot: the layout of the listed one", "[engine][compact]")
{
    std::mt19937 rng(0x5b1);
    for (int iteration = 0; iteration < 100; ++iteration) {
        auto const src = random_entries(rng, 80);
        auto const kept = compact(src);
        for (std::size_t budget : {3, 5, 9, 17}) {
            CHECK(split_layout(kept, "s/", budget) == split_layout(src, "s/", budget));
            kvship::prefixes::key_filter const f{{"s/b/"}, {}};
            CHECK(split_layout(kept, "s/", budget, f) == split_layout(src, "s/", budget, f));
        }
    }
}

namespace {

replicator_config lean_config()
{
    replicator_config c;
    c.rule = pair_rule("s/", "d/");
    c.backoff = backoff_params{.attempts = 3, .jitter_percent = 0};
    c.once = true;
    c.stream_full_reads = true;
    c.limits.max_ops = 4;
    c.stream_batch = 4;
    c.stream_keep_bytes = 0;  // let the values go at the first chunk
    c.encode_checkpoint = [](const checkpoint& cp) { return fmt::format("cp:{}", cp.last_replicated); };
    return c;
}

using kv_map = std::map<std::string, std::string>;

void apply_ops(kv_map& state, const batch& b)
{
    for (auto const& op : b.ops) {
        if (op.verb == txn_verb::set)
            state[op.key] = op.value;
        else
            state.erase(op.key);
    }
}

std::vector<kv_entry> numbered(int n, int from = 0)
{
    std::vector<kv_entry> out;
    for (int i = from; i < from + n; ++i)
        out.push_back(kv(fmt::format("s/{:03}", i), fmt::format("v{}", i), static_cast<std::uint64_t>(i + 1))
        );
    return out;
}

}  // namespace

TEST_CASE(
    "replicator_fsm streamed, values let go: puts early, deletes and stats at the end", "[engine][compact]"
)
{
    replicator_fsm fsm(lean_config());
    (void)expect<action::begin_stream>(fsm.resume(event::start{}));
    kv_map state{{"d/001", "v1"}, {"d/002", "old"}, {"d/zzz", "gone"}};
    auto a = fsm.resume(event::destination_read{
        snap(3, {kv("d/001", "v1"), kv("d/002", "old"), kv("d/zzz", "gone")}), std::nullopt});
    (void)expect<action::stream_source>(a);
    auto const src = numbered(10);
    for (std::size_t pos = 0; pos < src.size(); pos += 3) {
        std::vector<kv_entry> chunk(
            src.begin() + static_cast<std::ptrdiff_t>(pos),
            src.begin() + static_cast<std::ptrdiff_t>(std::min(src.size(), pos + 3))
        );
        a = fsm.resume(event::source_chunk{std::move(chunk)});
        while (auto const* p = std::get_if<action::apply_puts>(&a)) {
            apply_ops(state, p->ops);
            a = fsm.resume(event::puts_queued{});
        }
        (void)expect<action::read_chunk>(a);
    }
    a = fsm.resume(event::source_end{50});
    while (auto const* b = std::get_if<action::apply_batch>(&a)) {
        apply_ops(state, *b->ops);
        a = fsm.resume(event::batch_applied{});
    }
    (void)expect<action::done>(a);
    kv_map want;
    for (auto const& e : src) want["d/" + e.key.substr(2)] = e.value;
    want[pair_rule("s/", "d/").status_key] = "cp:50";
    CHECK(state == want);
    auto const r = fsm.take_report();
    REQUIRE(r);
    CHECK(r->puts == 9);
    CHECK(r->deletes == 1);
    CHECK(r->stats.unchanged == 1);
    CHECK(r->streamed_puts == 8);
    REQUIRE(fsm.source() != nullptr);
    CHECK(same_entries(fsm.source()->entries, src));
}

TEST_CASE(
    "replicator_fsm streamed, values let go: out of order after that reads the source whole",
    "[engine][compact]"
)
{
    replicator_fsm fsm(lean_config());
    (void)fsm.resume(event::start{});
    (void)fsm.resume(event::destination_read{snap(3, {kv("d/zzz", "gone")}), std::nullopt});
    kv_map state{{"d/zzz", "gone"}};
    auto a = fsm.resume(event::source_chunk{numbered(4, 10)});
    apply_ops(state, expect<action::apply_puts>(a).ops);
    (void)expect<action::read_chunk>(fsm.resume(event::puts_queued{}));
    // Keys before the last ones seen, and the values of the first chunk are gone: nothing is
    // deleted or checkpointed from this listing; a whole read plans the round.
    (void)expect<action::read_chunk>(fsm.resume(event::source_chunk{numbered(8)}));
    CHECK(expect<action::read_source>(fsm.resume(event::source_end{30})).index == 0);
    CHECK_FALSE(fsm.take_report());
    CHECK(state.count("d/zzz") == 1);
    auto whole = numbered(8);
    for (auto& e : numbered(4, 10)) whole.push_back(std::move(e));
    std::shuffle(whole.begin(), whole.end(), std::mt19937(7));
    a = fsm.resume(event::source_read{snap(30, whole)});
    (void)expect<action::read_destination>(a);
    std::vector<kv_entry> now;
    for (auto const& [k, v] : state) now.push_back(kv(k, v));
    a = fsm.resume(event::destination_read{snap(31, now), std::nullopt});
    while (auto const* b = std::get_if<action::apply_batch>(&a)) {
        apply_ops(state, *b->ops);
        a = fsm.resume(event::batch_applied{});
    }
    (void)expect<action::done>(a);
    CHECK(state.size() == 13);  // 12 keys and the checkpoint
    CHECK(state.count("d/zzz") == 0);
    auto const r = fsm.take_report();
    REQUIRE(r);
    CHECK(r->puts == 8);  // the 4 early ones are in place already
    CHECK(r->deletes == 1);
}

TEST_CASE(
    "property: a streamed round that lets its values go ends as a whole-snapshot round", "[engine][compact]"
)
{
    std::mt19937 rng(0xbeef);
    auto pick = [&](std::size_t n) { return std::uniform_int_distribution<std::size_t>(0, n - 1)(rng); };
    for (int iteration = 0; iteration < 300; ++iteration) {
        auto const src = random_entries(rng, 50);
        kv_map dst;
        for (auto const& e : src)
            if (pick(3) == 0)
                dst["d/" + e.key.substr(2)] = pick(2) == 0 ? e.value : "other";
        for (auto const& e : random_entries(rng, 6)) dst["d/" + e.key.substr(2)] = "stale";
        auto const as_snap = [](const kv_map& m) {
            snapshot s{5, {}};
            for (auto const& [k, v] : m) s.entries.push_back(kv(k, v));
            return s;
        };
        auto c = lean_config();
        c.limits.max_ops = 1 + pick(6);
        c.stream_batch = 1 + pick(8);
        c.stream_keep_bytes = pick(3) == 0 ? 200 : 0;
        CAPTURE(iteration, c.limits.max_ops, c.stream_batch, c.stream_keep_bytes);
        std::vector<kv_entry> src_flagless = src;
        for (auto& e : src_flagless) e.flags = 0;  // the state compared holds values only

        kv_map streamed = dst;
        std::optional<round_report> streamed_report;
        {
            replicator_fsm fsm(c);
            (void)expect<action::begin_stream>(fsm.resume(event::start{}));
            auto a = fsm.resume(event::destination_read{as_snap(streamed), std::nullopt});
            std::size_t pos = 0;
            for (;;) {
                if (auto const* p = std::get_if<action::apply_puts>(&a)) {
                    apply_ops(streamed, p->ops);
                    a = fsm.resume(event::puts_queued{});
                    continue;
                }
                if (pos == src_flagless.size()) {
                    a = fsm.resume(event::source_end{100});
                    break;
                }
                std::size_t const n = 1 + pick(7);
                std::vector<kv_entry> chunk(
                    src_flagless.begin() + static_cast<std::ptrdiff_t>(pos),
                    src_flagless.begin() + static_cast<std::ptrdiff_t>(std::min(src_flagless.size(), pos + n))
                );
                pos += chunk.size();
                a = fsm.resume(event::source_chunk{std::move(chunk)});
            }
            while (auto const* b = std::get_if<action::apply_batch>(&a)) {
                apply_ops(streamed, *b->ops);
                a = fsm.resume(event::batch_applied{});
            }
            (void)expect<action::done>(a);
            streamed_report = fsm.take_report();
        }
        kv_map whole = dst;
        std::optional<round_report> whole_report;
        {
            auto w = c;
            w.stream_full_reads = false;
            replicator_fsm fsm(w);
            (void)expect<action::read_source>(fsm.resume(event::start{}));
            (void)expect<action::read_destination>(fsm.resume(event::source_read{snap(100, src_flagless)}));
            auto a = fsm.resume(event::destination_read{as_snap(whole), std::nullopt});
            while (auto const* b = std::get_if<action::apply_batch>(&a)) {
                apply_ops(whole, *b->ops);
                a = fsm.resume(event::batch_applied{});
            }
            (void)expect<action::done>(a);
            whole_report = fsm.take_report();
        }
        CHECK(streamed == whole);
        REQUIRE(streamed_report);
        REQUIRE(whole_report);
        CHECK(streamed_report->puts == whole_report->puts);
        CHECK(streamed_report->deletes == whole_report->deletes);
        CHECK(streamed_report->refused == whole_report->refused);
        CHECK(streamed_report->stats == whole_report->stats);
        CHECK(streamed_report->warnings == whole_report->warnings);
    }
}
