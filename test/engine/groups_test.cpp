// Source groups (split, coverage, splice) and the replicator_fsm's grouped rounds (source_delta),
// including a property: random changes applied through deltas leave the destination exactly as
// full reads would.
#include "builders.hpp"

#include <engine/groups.hpp>
#include <engine/replicator_fsm.hpp>

#include <map>
#include <random>

using namespace kvship::engine;
using namespace kvship::engine::test;

namespace {

std::vector<kv_entry> dirs(std::size_t n_dirs, std::size_t per_dir, std::string_view prefix = "s/")
{
    std::vector<kv_entry> out;
    for (std::size_t d = 0; d < n_dirs; ++d)
        for (std::size_t k = 0; k < per_dir; ++k)
            out.push_back(kv(fmt::format("{}d{:03}/k{:04}", prefix, d, k), std::string(100, 'v')));
    sort_entries(out);
    return out;
}

template <class A>
A expect(const replicator_action& a)
{
    REQUIRE(std::holds_alternative<A>(a));
    return std::get<A>(a);
}

replicator_config config()
{
    replicator_config c;
    c.rule = pair_rule("s/", "d/");
    c.backoff = backoff_params{.attempts = 2, .jitter_percent = 0};
    c.encode_checkpoint = [](const checkpoint& cp) { return fmt::format("cp:{}", cp.last_replicated); };
    return c;
}

// Runs a started machine through one full round on `src` against an empty destination.
void full_round(replicator_fsm& fsm, const snapshot& src)
{
    (void)expect<action::read_destination>(fsm.resume(event::source_read{src}));
    auto a = fsm.resume(event::destination_read{snap(1, {}), std::nullopt});
    while (std::holds_alternative<action::apply_batch>(a)) a = fsm.resume(event::batch_applied{});
    (void)expect<action::read_source>(a);
    (void)fsm.take_report();
}

std::vector<kv_entry> mapped(const std::vector<kv_entry>& src, std::string_view from, std::string_view to)
{
    std::vector<kv_entry> out;
    for (auto e : src) {
        e.key = std::string(to) + e.key.substr(from.size());
        out.push_back(std::move(e));
    }
    return out;
}

}  // namespace

TEST_CASE("split_layout: 256 sibling directories balanced under a budget", "[engine][groups]")
{
    auto const entries = dirs(256, 4);
    for (std::size_t budget : {4, 10, 27, 64, 300}) {
        CAPTURE(budget);
        auto const layout = split_layout(entries, "s/", budget);
        auto const& groups = layout.groups;
        REQUIRE(groups.size() >= 2);
        CHECK(layout.watches() <= budget);
        CHECK(std::is_sorted(groups.begin(), groups.end()));
        for (std::size_t i = 0; i + 1 < groups.size(); ++i) CHECK_FALSE(groups[i + 1].starts_with(groups[i]));
        for (auto const& e : entries) CHECK(is_covered(groups, e.key));
        if (budget < 300) {
            // no directory holds more than a watch's share: the groups stay above the first '/'
            CHECK(layout.dirs == std::vector<std::string>{"s/"});
            for (auto const& g : groups) {
                REQUIRE(g.starts_with("s/"));
                auto const rel = std::string_view(g).substr(2);
                auto const slash = rel.find('/');
                CHECK((slash == std::string_view::npos || slash + 1 == rel.size()));
            }
        }
    }
    // 64: the three top digits first (d0, d1, d2), then the heavy ones finer.
    CHECK(split_layout(entries, "s/", 64).groups.size() > 26);
    // 300 watches: every directory is a group, and some (now above a watch's share) are split inside.
    auto const fine = split_layout(entries, "s/", 300);
    CHECK(fine.watches() <= 300);
    CHECK(fine.dirs.size() > 1);
    CHECK(fine.dirs.front() == "s/");
    CHECK(fine.groups.front().starts_with("s/d000/"));
}

TEST_CASE("split_layout: cases that cannot be split", "[engine][groups]")
{
    CHECK(split_layout(dirs(4, 4), "s/", 2).empty());
    CHECK(split_layout({}, "s/", 8).empty());
    CHECK(split_layout(std::vector<kv_entry>{kv("s/a", "1")}, "s/", 8).empty());
    // the prefix itself is a key (a folder marker): no child group would cover it
    CHECK(split_layout(std::vector<kv_entry>{kv("s/", ""), kv("s/a", "1"), kv("s/b", "2")}, "s/", 8).empty());
    // entries outside the prefix are ignored
    auto const g =
        split_layout(std::vector<kv_entry>{kv("r/z", "1"), kv("s/a", "1"), kv("s/b", "2")}, "s/", 8);
    CHECK(g.groups == std::vector<std::string>{"s/a", "s/b"});
    CHECK(g.dirs == std::vector<std::string>{"s/"});
    // a key that is a group's prefix stops that group's split, not the others
    auto const h = split_layout(
        std::vector<kv_entry>{
            kv("s/a", "1"), kv("s/ab", "1"), kv("s/ac", "1"), kv("s/b1", "2"), kv("s/b2", "2")},
        "s/",
        8
    );
    CHECK(h.groups == std::vector<std::string>{"s/a", "s/b1", "s/b2"});
    // one top-level directory holding everything: split inside it, with a names watch of its own
    auto const one = split_layout(std::vector<kv_entry>{kv("s/x/a", "1"), kv("s/x/b", "2")}, "s/", 8);
    CHECK(one.dirs == std::vector<std::string>{"s/", "s/x/"});
    CHECK(one.groups == std::vector<std::string>{"s/x/a", "s/x/b"});
    // ... but not when the budget has no room for its names watch
    CHECK(split_layout(std::vector<kv_entry>{kv("s/x/a", "1"), kv("s/x/b", "2")}, "s/", 3).empty());
    // a directory that is itself a key is not split
    CHECK(split_layout(std::vector<kv_entry>{kv("s/x/", ""), kv("s/x/a", "1"), kv("s/x/b", "2")}, "s/", 8)
              .empty());
    // a directory whose split would not fit stays one group (no names watch for nothing)
    std::vector<kv_entry> tokens{kv("s/a", "1"), kv("s/b", "2")};
    for (char c : std::string_view("0123456789abcdef"))
        for (int i = 0; i < 4; ++i)
            tokens.push_back(kv(fmt::format("s/x/h{}{}", c, i), std::string(100, 'v')));
    sort_entries(tokens);
    auto const narrow = split_layout(tokens, "s/", 8);
    CHECK(narrow.dirs == std::vector<std::string>{"s/"});
    CHECK(narrow.groups == std::vector<std::string>{"s/a", "s/b", "s/x/"});
    auto const wide = split_layout(tokens, "s/", 30);
    CHECK(wide.dirs == std::vector<std::string>{"s/", "s/x/"});
    CHECK(wide.groups.size() >= 18);
    // everything excluded: nothing to watch
    CHECK(split_layout(dirs(4, 4), "s/", 8, kvship::prefixes::key_filter{{"s/"}, {}}).empty());
}

namespace {

// A Vault-like source: tokens, mounts, core, auth, and the operators' usual exclude (sys/expire).
std::vector<kv_entry> vault_like()
{
    std::vector<kv_entry> out;
    auto const hex = [](std::size_t i, std::size_t width) {
        return fmt::format("{:0{}x}", (i * 2654435761u) % (std::size_t{1} << (4 * width)), width);
    };
    for (std::size_t i = 0; i < 600; ++i)
        out.push_back(kv("vault/sys/token/id/h" + hex(i, 8), std::string(200, 't')));
    for (std::size_t i = 0; i < 200; ++i)
        out.push_back(kv("vault/sys/expire/id/auth/token/create/h" + hex(i, 8), std::string(100, 'e')));
    for (std::size_t m = 0; m < 20; ++m)
        for (std::size_t i = 0; i < 18; ++i)
            out.push_back(
                kv(fmt::format("vault/logical/{}-mount/secret{:02}", hex(m + 7, 8), i), std::string(200, 'l'))
            );
    for (std::size_t i = 0; i < 20; ++i)
        out.push_back(kv(fmt::format("vault/core/k{:02}", i), std::string(100, 'c')));
    for (std::size_t i = 0; i < 20; ++i)
        out.push_back(kv(fmt::format("vault/auth/{}/k{:02}", hex(3, 8), i), std::string(100, 'a')));
    out.push_back(kv("vault/sys/policy/default", "p"));
    out.push_back(kv("vault/sys/counters/requests/2026/11", "c"));
    sort_entries(out);
    return out;
}

}  // namespace

TEST_CASE(
    "split_layout: a Vault-like source splits deep directories and skips excluded ones", "[engine][groups]"
)
{
    auto const entries = vault_like();
    kvship::prefixes::key_filter const filter{{"vault/sys/expire"}, {}};
    auto const layout = split_layout(entries, "vault/", 57, filter);
    REQUIRE_FALSE(layout.empty());
    CHECK(layout.watches() <= 57);
    for (std::string_view d :
         {"vault/", "vault/sys/", "vault/sys/token/", "vault/sys/token/id/", "vault/logical/"})
        CHECK(std::binary_search(layout.dirs.begin(), layout.dirs.end(), d));
    // the tokens are spread over several groups, the excluded tree over none
    std::size_t token_groups = 0;
    for (auto const& g : layout.groups) {
        CAPTURE(g);
        CHECK_FALSE(std::string_view("vault/sys/expire/").starts_with(g));
        CHECK_FALSE(g.starts_with("vault/sys/expire"));
        if (g.starts_with("vault/sys/token/id/h"))
            ++token_groups;
    }
    CHECK(token_groups >= 8);
    for (auto const& e : entries) {
        CAPTURE(e.key);
        CHECK(is_covered(layout.groups, e.key) == !e.key.starts_with("vault/sys/expire"));
    }
    CHECK(classify_name(layout, filter, "vault/sys/", "vault/sys/expire/") == name_kind::covered);
    CHECK(classify_name(layout, filter, "vault/sys/", "vault/sys/token/") == name_kind::covered);
    CHECK(classify_name(layout, filter, "vault/sys/", "vault/sys/raw/") == name_kind::fresh);
    CHECK(classify_name(layout, filter, "vault/sys/", "vault/sys/t") == name_kind::overlaps);
    CHECK(classify_name(layout, filter, "vault/sys/token/", "vault/sys/token/") == name_kind::overlaps);
    CHECK(classify_name(layout, filter, "vault/sys/token/id/", "vault/sys/token/id/zz") == name_kind::fresh);
    // without the exclude, the expire tree is read (in groups of its own)
    auto const all = split_layout(entries, "vault/", 57);
    for (auto const& e : entries) CHECK(is_covered(all.groups, e.key));
    // a small budget still covers everything
    for (std::size_t budget = 3; budget < 20; ++budget) {
        auto const l = split_layout(entries, "vault/", budget, filter);
        CAPTURE(budget);
        CHECK(l.watches() <= budget);
        for (auto const& e : entries)
            if (!e.key.starts_with("vault/sys/expire"))
                CHECK((l.empty() || is_covered(l.groups, e.key)));
    }
}

namespace {

// The name under which the names watch of `dir` lists `key`.
std::string name_in(std::string_view dir, std::string_view key)
{
    auto const rel = key.substr(dir.size());
    auto const slash = rel.find('/');
    return std::string(slash == std::string_view::npos ? key : key.substr(0, dir.size() + slash + 1));
}

// The deepest dir of `layout` that is a prefix of `key`.
std::string_view deepest_dir(const source_layout& layout, std::string_view key)
{
    std::string_view best;
    for (auto const& d : layout.dirs)
        if (key.starts_with(d) && d.size() >= best.size())
            best = d;
    return best;
}

std::string random_nested_key(std::mt19937& rng, std::size_t depth)
{
    auto pick = [&](std::size_t n) { return std::uniform_int_distribution<std::size_t>(0, n - 1)(rng); };
    static constexpr std::string_view parts[] = {"a", "ab", "b", "c", "x", "xy", "e", "ex"};
    std::string k = "s/";
    for (std::size_t d = pick(depth) + 1; d > 0; --d) {
        k += parts[pick(8)];
        if (d > 1 || pick(3) == 0)
            k += '/';
    }
    if (k.back() == '/' && pick(2) == 0)
        k += parts[pick(8)];
    return k;
}

}  // namespace

TEST_CASE(
    "property: every possible key is covered by exactly one group or seen by a names watch",
    "[engine][groups]"
)
{
    std::size_t nested = 0;    // layouts with a split directory below the root
    std::size_t skipping = 0;  // layouts that leave an excluded tree unread
    for (std::uint32_t seed = 1; seed <= 300; ++seed) {
        CAPTURE(seed);
        std::mt19937 rng(seed);
        auto pick = [&](std::size_t n) { return std::uniform_int_distribution<std::size_t>(0, n - 1)(rng); };
        std::vector<kv_entry> entries;
        std::size_t const depth = 1 + pick(4);
        for (std::size_t n = 2 + pick(200); n > 0; --n)
            entries.push_back(kv(random_nested_key(rng, depth), std::string(pick(300), 'v')));
        sort_entries(entries);
        entries.erase(
            std::unique(
                entries.begin(), entries.end(), [](auto const& a, auto const& b) { return a.key == b.key; }
            ),
            entries.end()
        );
        kvship::prefixes::key_filter filter;
        if (pick(2) == 0)
            filter.excludes.push_back(random_nested_key(rng, depth));
        if (pick(3) == 0)
            filter.excludes.push_back("s/e");
        std::size_t const budget = 3 + pick(40);
        CAPTURE(budget, filter.excludes);
        auto const layout = split_layout(entries, "s/", budget, filter);
        if (layout.empty())
            continue;
        CHECK(layout.watches() <= budget);
        nested += layout.dirs.size() > 1 ? 1 : 0;
        bool skips = false;
        for (auto const& e : entries) skips = skips || !is_covered(layout.groups, e.key);
        skipping += skips ? 1 : 0;
        REQUIRE(std::is_sorted(layout.groups.begin(), layout.groups.end()));
        REQUIRE(std::is_sorted(layout.dirs.begin(), layout.dirs.end()));
        REQUIRE(layout.dirs.front() == "s/");
        for (std::size_t i = 0; i + 1 < layout.groups.size(); ++i)
            CHECK_FALSE(layout.groups[i + 1].starts_with(layout.groups[i]));
        for (auto const& d : layout.dirs) {
            CAPTURE(d);
            CHECK(d.back() == '/');
            CHECK_FALSE(is_covered(layout.groups, d));  // no group is a prefix of a dir
            CHECK_FALSE(subtree_unselected(filter, d));
        }
        for (auto const& g : layout.groups) {
            CAPTURE(g);
            auto const d = deepest_dir(layout, g);
            REQUIRE(d.size() < g.size());
            auto const rel = std::string_view(g).substr(d.size());
            auto const slash = rel.find('/');
            CHECK((slash == std::string_view::npos || slash + 1 == rel.size()));
        }
        // the keys that exist, and others that may appear later
        std::vector<std::string> keys;
        for (auto const& e : entries) keys.push_back(e.key);
        for (std::size_t n = 0; n < 300; ++n) keys.push_back(random_nested_key(rng, depth + 1));
        for (auto const& g : layout.groups) keys.push_back(g + "new");
        for (auto const& d : layout.dirs) keys.push_back(d);
        for (auto const& k : keys) {
            CAPTURE(k);
            std::size_t owners = 0;
            for (auto const& g : layout.groups) owners += k.starts_with(g) ? 1 : 0;
            CHECK(owners <= 1);
            auto const d = deepest_dir(layout, k);
            auto const kind = classify_name(layout, filter, d, name_in(d, k));
            bool const selected = kvship::prefixes::is_selected(filter, k);
            if (owners == 1)
                CHECK(kind == name_kind::covered);
            else if (selected)
                CHECK(kind != name_kind::covered);  // the names watch of d reports it
            if (k == d)
                CHECK(kind != name_kind::covered);
            if (std::binary_search(
                    entries.begin(),
                    entries.end(),
                    k,
                    [](auto const& a, auto const& b) {
                        if constexpr (std::is_same_v<std::decay_t<decltype(a)>, kv_entry>)
                            return a.key < b;
                        else
                            return a < b.key;
                    }
                ) &&
                selected)
                CHECK(owners == 1);
        }
    }
    CHECK(nested >= 30);
    CHECK(skipping >= 30);
}

TEST_CASE("uncovered_names and is_covered", "[engine][groups]")
{
    std::vector<std::string> const groups{"s/d0", "s/d1", "s/e/"};
    CHECK(is_covered(groups, "s/d000/k"));
    CHECK(is_covered(groups, "s/e/x"));
    CHECK_FALSE(is_covered(groups, "s/d2"));
    CHECK_FALSE(is_covered(groups, "s/e"));
    CHECK_FALSE(is_covered(groups, "s/"));
    CHECK(
        uncovered_names(groups, {"s/d05/", "s/d2/", "s/e/", "s/f", "s/d1x"}) ==
        std::vector<std::string>{"s/d2/", "s/f"}
    );
    CHECK(uncovered_names({}, {"s/a"}) == std::vector<std::string>{"s/a"});
    CHECK(contains_group(groups, "s/d"));
    CHECK(contains_group(groups, "s/e"));
    CHECK_FALSE(contains_group(groups, "s/d2"));
    CHECK_FALSE(contains_group(groups, "s/f"));
}

TEST_CASE("splice_group replaces one prefix's range", "[engine][groups]")
{
    std::vector<kv_entry> e{kv("s/a/1", "x"), kv("s/b/1", "x"), kv("s/b/2", "x"), kv("s/c/1", "x")};
    CHECK_FALSE(splice_group(e, "s/b/", {kv("s/b/2", "x"), kv("s/b/1", "x")}));
    CHECK(splice_group(e, "s/b/", {kv("s/b/2", "y")}));
    CHECK(e == std::vector<kv_entry>{kv("s/a/1", "x"), kv("s/b/2", "y"), kv("s/c/1", "x")});
    CHECK(splice_group(e, "s/b/", {kv("s/b/3", "z"), kv("s/b/0", "w"), kv("s/x", "outside")}));
    CHECK(e == std::vector<kv_entry>{kv("s/a/1", "x"), kv("s/b/0", "w"), kv("s/b/3", "z"), kv("s/c/1", "x")});
    CHECK(splice_group(e, "s/b/", {}));
    CHECK(e == std::vector<kv_entry>{kv("s/a/1", "x"), kv("s/c/1", "x")});
    CHECK(splice_group(e, "s/bb", {kv("s/bb", "new")}));
    CHECK(e == std::vector<kv_entry>{kv("s/a/1", "x"), kv("s/bb", "new"), kv("s/c/1", "x")});
    CHECK(prefix_range(e, "s/b") == std::pair<std::size_t, std::size_t>{1, 2});
    CHECK(prefix_range(e, "s/bz") == std::pair<std::size_t, std::size_t>{2, 2});
    CHECK(prefix_range(e, "s/q") == std::pair<std::size_t, std::size_t>{3, 3});
    CHECK(split_layout(dirs(4, 4), "s/", 2).empty());  // two watches: the root watch and one group
}

TEST_CASE("replicator_fsm: a grouped round plans only the changed groups", "[engine][groups]")
{
    replicator_fsm fsm(config());
    CHECK_FALSE(fsm.takes_deltas());
    (void)fsm.resume(event::start{});
    full_round(fsm, snap(10, {kv("s/a/1", "1", 5), kv("s/b/1", "1", 6), kv("s/b/2", "2", 7)}));
    CHECK(fsm.takes_deltas());
    REQUIRE(fsm.source() != nullptr);
    CHECK(fsm.source()->entries.size() == 3);

    // an unchanged group listing with a new index: no round
    CHECK(
        expect<action::read_source>(fsm.resume(event::source_delta{{{"s/a/", 11, {kv("s/a/1", "1", 5)}}}})
        ).index == 11
    );
    // b changes: the destination is read for d/b/ only, and only b is planned
    auto const rd = expect<action::read_destination>(fsm.resume(event::source_delta{
        {{"s/b/", 12, {kv("s/b/2", "3", 12), kv("s/b/1", "1", 6)}}}}));
    CHECK(rd.ranges == std::vector<std::string>{"d/b/"});
    // a destination key outside the ranges that differs is not this round's business
    auto const ab = expect<action::apply_batch>(fsm.resume(event::destination_read{
        snap(20, {kv("d/a/1", "stale"), kv("d/b/1", "1"), kv("d/b/2", "2"), kv("d/b/old", "x")}),
        std::nullopt}));
    REQUIRE(ab.ops != nullptr);
    std::vector<std::string> keys;
    for (auto const& op : ab.ops->ops) keys.push_back(op.key);
    CHECK(keys == std::vector<std::string>{"d/b/2", "d/b/old", pair_rule("s/", "d/").status_key});
    CHECK(ab.ops->ops.back().value == "cp:10");  // the full read's index, not the group's (next case)
    CHECK(expect<action::read_source>(fsm.resume(event::batch_applied{})).index == 12);
    auto const r = fsm.take_report();
    REQUIRE(r.has_value());
    CHECK(r->source_index == 12);
    CHECK(r->puts == 1);
    CHECK(r->deletes == 1);
    CHECK(r->stats.source_keys == 3);
    CHECK(r->stats.selected_keys == 3);
    CHECK(r->stats.destination_keys == 3);  // the managed destination after the full round
    CHECK(fsm.source()->entries[2] == kv("s/b/2", "3", 12));
}

// test_crashpoints (steady kind, seed 2): one source txn at 373 set keys in two groups; the first group's
// wake made a round whose checkpoint said 373 while the other group's key still had its old value, so
// "every key at or below LastReplicated is in the destination" (consul-replicate skips those) was false.
TEST_CASE("replicator_fsm: a grouped round's checkpoint never passes a group not read yet", "[engine][groups]")
{
    replicator_fsm fsm(config());
    (void)fsm.resume(event::start{});
    full_round(fsm, snap(10, {kv("s/a/1", "1", 5), kv("s/b/1", "1", 6)}));
    // one txn at 12 changed s/a/1 and s/b/1; only group a's watch has answered
    (void)expect<action::read_destination>(
        fsm.resume(event::source_delta{{{"s/a/", 12, {kv("s/a/1", "2", 12)}}}}));
    auto const ab = expect<action::apply_batch>(fsm.resume(event::destination_read{
        snap(20, {kv("d/a/1", "1"), kv("d/b/1", "1")}), checkpoint{10, "s/", "d/"}}));
    REQUIRE(ab.ops != nullptr);
    CHECK(ab.ops->ops.front().key == "d/a/1");
    CHECK(ab.ops->ops.back().value == "cp:10");  // not 12: d/b/1 does not hold s/b/1's value at 12
    (void)expect<action::read_source>(fsm.resume(event::batch_applied{}));
    // group b answers: still the full read's index (a group's index never vouches for the others)
    (void)expect<action::read_destination>(
        fsm.resume(event::source_delta{{{"s/b/", 12, {kv("s/b/1", "2", 12)}}}}));
    auto const ab2 = expect<action::apply_batch>(fsm.resume(event::destination_read{
        snap(21, {kv("d/a/1", "2"), kv("d/b/1", "1")}), checkpoint{10, "s/", "d/"}}));
    REQUIRE(ab2.ops != nullptr);
    CHECK(ab2.ops->ops.back().value == "cp:10");
}

TEST_CASE("replicator_fsm: grouped rounds fall back to full reads when they cannot judge", "[engine][groups]")
{
    snapshot const base = snap(10, dirs(4, 20));

    SECTION("a group that turned empty")
    {
        replicator_fsm fsm(config());
        (void)fsm.resume(event::start{});
        full_round(fsm, base);
        CHECK(expect<action::read_source>(fsm.resume(event::source_delta{{{"s/d001/", 15, {}}}})).index == 0);
        // the full read equals the spliced state, yet it is planned (the deletes were never applied)
        auto s = base;
        s.index = 15;
        std::erase_if(s.entries, [](const kv_entry& e) { return e.key.starts_with("s/d001/"); });
        (void)expect<action::read_destination>(fsm.resume(event::source_read{s}));
    }
    SECTION("more deletes than the guard's min_keys")
    {
        replicator_fsm fsm(config());
        (void)fsm.resume(event::start{});
        full_round(fsm, base);
        std::vector<kv_entry> left{kv("s/d002/k0000", std::string(100, 'v'))};
        auto const rd =
            expect<action::read_destination>(fsm.resume(event::source_delta{{{"s/d002/", 16, left}}}));
        CHECK(rd.ranges == std::vector<std::string>{"d/d002/"});
        CHECK(
            expect<action::read_source>(fsm.resume(event::destination_read{
                                            snap(3, mapped(base.entries, "s/", "d/")), std::nullopt}))
                .index == 0
        );
    }
    SECTION("source_reset")
    {
        replicator_fsm fsm(config());
        (void)fsm.resume(event::start{});
        full_round(fsm, base);
        CHECK(expect<action::read_source>(fsm.resume(event::source_reset{})).index == 0);
        CHECK(fsm.wait_index() == 0);
    }
    SECTION("after a refused round")
    {
        auto c = config();
        replicator_fsm fsm(c);
        (void)fsm.resume(event::start{});
        (void)fsm.resume(event::source_read{snap(10, {kv("s/a/1", "1")})});
        auto dst = mapped(base.entries, "s/", "d/");
        (void)expect<action::apply_batch>(fsm.resume(event::destination_read{snap(3, dst), std::nullopt}));
        (void)expect<action::read_source>(fsm.resume(event::batch_applied{}));
        REQUIRE(fsm.take_report()->refused.has_value());
        CHECK_FALSE(fsm.takes_deltas());
        CHECK(
            expect<action::read_source>(fsm.resume(event::source_delta{{{"s/a/", 11, {kv("s/a/1", "2")}}}})
            ).index == 0
        );
    }
    SECTION("-once never takes deltas")
    {
        auto c = config();
        c.once = true;
        replicator_fsm fsm(c);
        (void)fsm.resume(event::start{});
        (void)fsm.resume(event::source_read{base});
        CHECK_FALSE(fsm.takes_deltas());
    }
}

TEST_CASE(
    "property: changes applied through source deltas give the same destination as full reads",
    "[engine][groups]"
)
{
    std::size_t nested_rounds = 0;  // grouped rounds over a layout with a split directory below the root
    for (std::uint32_t seed = 1; seed <= 120; ++seed) {
        CAPTURE(seed);
        std::mt19937 rng(seed);
        auto pick = [&](std::size_t n) { return std::uniform_int_distribution<std::size_t>(0, n - 1)(rng); };
        auto c = config();
        if (seed % 3 == 0)
            c.rule = pair_rule("s/", "d/", {"s/x"});
        c.guard.min_keys = pick(2) == 0 ? 0 : 10;
        c.guard.allow_empty_source = true;  // the guard is tested above; here every plan goes
        c.guard.allow_mass_delete = true;
        replicator_fsm fsm(c);

        std::map<std::string, kv_entry> source;  // the truth
        std::map<std::string, kv_entry> dest;
        std::uint64_t index = 1;
        // nested names (s/b/xy/a, s/ex/...) so that directories get split too
        auto const random_key = [&] { return random_nested_key(rng, 3); };
        for (std::size_t n = 10 + pick(40); n > 0; --n) {
            auto k = random_key();
            source[k] = kv(k, std::to_string(pick(3)), ++index);
        }
        auto const source_snapshot = [&] {
            snapshot s;
            s.index = index;
            for (auto const& [k, e] : source) s.entries.push_back(e);
            return s;
        };
        auto const dest_snapshot = [&] {
            snapshot s;
            s.index = 1;
            for (auto const& [k, e] : dest) s.entries.push_back(e);
            return s;
        };
        source_layout layout;
        std::size_t budget = 0;
        bool grouped = false;

        // Drives the machine until it waits on the source; answers full reads from the truth.
        auto run = [&](replicator_action act) {
            for (int steps = 0; steps < 100; ++steps) {
                if (auto* rs = std::get_if<action::read_source>(&act)) {
                    if (rs->index != 0)
                        return;
                    grouped = false;
                    act = fsm.resume(event::source_read{source_snapshot()});
                } else if (std::get_if<action::read_destination>(&act)) {
                    act = fsm.resume(event::destination_read{dest_snapshot(), std::nullopt});
                } else if (auto* ab = std::get_if<action::apply_batch>(&act)) {
                    for (auto const& op : ab->ops->ops) {
                        if (op.verb == txn_verb::set)
                            dest[op.key] = kv(op.key, op.value, 1, op.flags);
                        else
                            dest.erase(op.key);
                    }
                    act = fsm.resume(event::batch_applied{});
                } else {
                    FAIL("unexpected action");
                }
                (void)fsm.take_report();
            }
            FAIL("no quiescence");
        };
        run(fsm.resume(event::start{}));

        for (int step = 0; step < 25; ++step) {
            if (!grouped && fsm.takes_deltas()) {
                budget = 3 + pick(12);
                layout = split_layout(fsm.source()->entries, "s/", budget, c.rule.filter);
                grouped = !layout.empty();
            }
            auto const& groups = layout.groups;
            // random changes: puts (some under new names), deletes, whole-group deletes
            for (std::size_t n = 1 + pick(4); n > 0; --n) {
                std::size_t const what = pick(10);
                if (what < 6) {
                    // a new name in the root or in a split directory, or anywhere
                    std::string const dir =
                        layout.dirs.empty() ? "s/" : layout.dirs[pick(layout.dirs.size())];
                    auto k = pick(5) == 0 ? dir + "n" + std::to_string(pick(4)) + (pick(2) == 0 ? "/" : "") +
                                                std::to_string(pick(3))
                                          : random_key();
                    source[k] = kv(k, std::to_string(pick(3)), ++index);
                } else if (what < 9 && !source.empty()) {
                    auto it = source.begin();
                    std::advance(it, static_cast<std::ptrdiff_t>(pick(source.size())));
                    source.erase(it);
                    ++index;
                } else if (!groups.empty()) {
                    auto const g = groups[pick(groups.size())];
                    std::erase_if(source, [&](const auto& kvp) { return kvp.first.starts_with(g); });
                    ++index;
                }
            }
            if (!grouped) {
                run(fsm.resume(event::source_read{source_snapshot()}));
            } else {
                // the names watches: names outside every group become new groups
                bool clash = false;
                std::vector<std::string> fresh;
                for (auto const& d : layout.dirs) {
                    std::vector<std::string> names;
                    for (auto const& [k, e] : source) {
                        if (!k.starts_with(d))
                            continue;
                        auto name = name_in(d, k);
                        if (names.empty() || names.back() != name)
                            names.push_back(std::move(name));
                    }
                    for (auto& n : names) {
                        auto const kind = classify_name(layout, c.rule.filter, d, n);
                        if (kind == name_kind::overlaps)
                            clash = true;  // a new key is a prefix of a group: regroup after a full read
                        else if (kind == name_kind::fresh)
                            fresh.push_back(n);
                    }
                }
                if (layout.watches() + fresh.size() > budget)
                    clash = true;  // over the budget: regroup after a full read
                if (!clash)
                    for (auto& n : fresh)
                        layout.groups.insert(
                            std::upper_bound(layout.groups.begin(), layout.groups.end(), n), n
                        );
                if (clash) {
                    grouped = false;
                    run(fsm.resume(event::source_reset{}));
                    continue;
                }
                event::source_delta delta;
                for (auto const& g : groups) {
                    if (pick(4) == 0)
                        continue;  // this group's watch has not woken yet (it will next step)
                    event::group_listing l{g, index, {}};
                    for (auto const& [k, e] : source)
                        if (k.starts_with(g))
                            l.entries.push_back(e);
                    delta.groups.push_back(std::move(l));
                }
                // every group delivered eventually: send the rest in a second delta
                nested_rounds += layout.dirs.size() > 1 ? 1 : 0;
                run(fsm.resume(std::move(delta)));
                if (grouped && fsm.takes_deltas()) {
                    event::source_delta rest;
                    for (auto const& g : groups) {
                        event::group_listing l{g, index, {}};
                        for (auto const& [k, e] : source)
                            if (k.starts_with(g))
                                l.entries.push_back(e);
                        rest.groups.push_back(std::move(l));
                    }
                    run(fsm.resume(std::move(rest)));
                } else if (grouped) {
                    grouped = false;
                    run(fsm.resume(event::source_reset{}));
                }
            }
            // The destination now equals what a full read plans: apply a full plan and compare.
            auto want = dest_snapshot();
            auto const full = make_plan(source_snapshot(), want, c.rule, checkpoint{});
            INFO(fmt::format("{}", full));
            CHECK(full.puts.empty());
            CHECK(full.deletes.empty());
        }
    }
    CHECK(nested_rounds >= 100);
}
