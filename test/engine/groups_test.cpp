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

TEST_CASE("split_groups: 256 sibling directories balanced under a budget", "[engine][groups]")
{
    auto const entries = dirs(256, 4);
    for (std::size_t budget : {3, 10, 26, 63, 300}) {
        CAPTURE(budget);
        auto const groups = split_groups(entries, "s/", budget);
        REQUIRE(groups.size() >= 2);
        CHECK(groups.size() <= budget);
        CHECK(std::is_sorted(groups.begin(), groups.end()));
        for (std::size_t i = 0; i + 1 < groups.size(); ++i) CHECK_FALSE(groups[i + 1].starts_with(groups[i]));
        for (auto const& g : groups) {
            REQUIRE(g.starts_with("s/"));
            auto const rel = std::string_view(g).substr(2);
            auto const slash = rel.find('/');
            CHECK((slash == std::string_view::npos || slash + 1 == rel.size()));
        }
        for (auto const& e : entries) CHECK(is_covered(groups, e.key));
    }
    // 63: the three top digits first (d0, d1, d2), then the heavy ones finer.
    auto const g63 = split_groups(entries, "s/", 63);
    CHECK(g63.size() > 26);
    CHECK(split_groups(entries, "s/", 300).size() == 256);
    CHECK(split_groups(entries, "s/", 300).front() == "s/d000/");
}

TEST_CASE("split_groups: cases that cannot be split", "[engine][groups]")
{
    CHECK(split_groups(dirs(4, 4), "s/", 1).empty());
    CHECK(split_groups({}, "s/", 8).empty());
    CHECK(split_groups(std::vector<kv_entry>{kv("s/a", "1")}, "s/", 8).empty());
    // one top-level directory: splitting inside it would hide new names from the root watch
    CHECK(split_groups(std::vector<kv_entry>{kv("s/x/a", "1"), kv("s/x/b", "2")}, "s/", 8).empty());
    // the prefix itself is a key (a folder marker): no child group would cover it
    CHECK(split_groups(std::vector<kv_entry>{kv("s/", ""), kv("s/a", "1"), kv("s/b", "2")}, "s/", 8).empty());
    // entries outside the prefix are ignored
    auto const g =
        split_groups(std::vector<kv_entry>{kv("r/z", "1"), kv("s/a", "1"), kv("s/b", "2")}, "s/", 8);
    CHECK(g == std::vector<std::string>{"s/a", "s/b"});
    // a key that is a group's prefix stops that group's split, not the others
    auto const h = split_groups(
        std::vector<kv_entry>{
            kv("s/a", "1"), kv("s/ab", "1"), kv("s/ac", "1"), kv("s/b1", "2"), kv("s/b2", "2")},
        "s/",
        8
    );
    CHECK(h == std::vector<std::string>{"s/a", "s/b1", "s/b2"});
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
    CHECK(split_groups(dirs(4, 4), "s/", 2).empty());  // d0 splits into d00..d03: four groups
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
    CHECK(ab.ops->ops.back().value == "cp:12");
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
    for (std::uint32_t seed = 1; seed <= 60; ++seed) {
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
        auto const random_key = [&] {
            static constexpr std::string_view top[] = {"a", "ab", "b/", "c/", "x", "xy/", "z"};
            std::string k = "s/" + std::string(top[pick(7)]);
            for (std::size_t n = pick(3); n > 0; --n) k.push_back("ab/"[pick(3)]);
            return k;
        };
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
        std::vector<std::string> groups;
        std::vector<std::uint64_t> group_index;
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
                groups = split_groups(fsm.source()->entries, "s/", 2 + pick(6));
                group_index.assign(groups.size(), fsm.wait_index());
                grouped = !groups.empty();
            }
            // random changes: puts (some under new top-level names), deletes, whole-group deletes
            for (std::size_t n = 1 + pick(4); n > 0; --n) {
                std::size_t const what = pick(10);
                if (what < 6) {
                    auto k = pick(5) == 0 ? "s/n" + std::to_string(pick(4)) + "/" + std::to_string(pick(3))
                                          : random_key();
                    source[k] = kv(k, std::to_string(pick(3)), ++index);
                } else if (what < 9 && !source.empty()) {
                    auto it = source.begin();
                    std::advance(it, static_cast<std::ptrdiff_t>(pick(source.size())));
                    source.erase(it);
                    ++index;
                } else if (!groups.empty()) {
                    auto const& g = groups[pick(groups.size())];
                    std::erase_if(source, [&](const auto& kvp) { return kvp.first.starts_with(g); });
                    ++index;
                }
            }
            if (!grouped) {
                run(fsm.resume(event::source_read{source_snapshot()}));
            } else {
                // the root watch: top-level names outside every group become new groups
                std::vector<std::string> names;
                for (auto const& [k, e] : source) {
                    auto const rel = std::string_view(k).substr(2);
                    auto const slash = rel.find('/');
                    auto name =
                        "s/" + std::string(slash == std::string_view::npos ? rel : rel.substr(0, slash + 1));
                    if (names.empty() || names.back() != name)
                        names.push_back(std::move(name));
                }
                bool clash = false;
                for (auto& n : uncovered_names(groups, names)) {
                    if (contains_group(groups, n)) {
                        clash = true;  // a new key is a prefix of a group: regroup after a full read
                        break;
                    }
                    groups.insert(std::upper_bound(groups.begin(), groups.end(), n), n);
                }
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
}
