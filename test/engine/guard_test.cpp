#include "builders.hpp"

#include <engine/guard.hpp>

using namespace kvship::engine;
using namespace kvship::engine::test;

namespace {

// A plan as the guard sees it: `selected` source keys, `total` managed destination keys, `deletes` deletes.
plan shaped(std::size_t selected, std::size_t total, std::size_t deletes)
{
    plan p;
    p.stats.selected_keys = selected;
    p.stats.destination_keys = total;
    for (std::size_t i = 0; i < deletes; ++i) p.deletes.push_back({fmt::format("d/{}", i)});
    p.puts.push_back(put("d/kept", "v"));
    p.next_checkpoint = checkpoint{9, "s/", "d/"};
    return p;
}

struct guard_case
{
    std::string name;
    std::size_t selected;
    std::size_t total;
    std::size_t deletes;
    guard_params params;
    std::optional<refusal_reason> reason;
};

}  // namespace

TEST_CASE("check_guard refuses empty sources and mass deletes", "[engine]")
{
    guard_params const defaults{};
    guard_params const allow_empty{.allow_empty_source = true};
    guard_params const allow_mass{.allow_mass_delete = true};
    guard_params const strict{.max_delete_percent = 0, .min_keys = 0};
    guard_params const loose{.max_delete_percent = 100};

    auto const c = GENERATE_COPY(
        guard_case{"nothing to delete", 0, 0, 0, defaults, std::nullopt},
        guard_case{"empty source, empty destination", 0, 0, 0, defaults, std::nullopt},
        guard_case{"empty source wipes one key", 0, 1, 1, defaults, refusal_reason::empty_source},
        guard_case{"empty source wipes many keys", 0, 500, 500, defaults, refusal_reason::empty_source},
        guard_case{"empty source allowed", 0, 500, 500, allow_empty, std::nullopt},
        guard_case{
            "empty source, mass deletes allowed only", 0, 500, 500, allow_mass, refusal_reason::empty_source},
        guard_case{"exactly half of 20", 5, 20, 10, defaults, std::nullopt},
        guard_case{"more than half of 20", 5, 20, 11, defaults, refusal_reason::mass_delete},
        guard_case{"all of 10 keys: too few to judge", 1, 10, 9, defaults, std::nullopt},
        guard_case{"6 of 11 keys", 1, 11, 6, defaults, refusal_reason::mass_delete},
        guard_case{"5 of 11 keys", 1, 11, 5, defaults, std::nullopt},
        guard_case{"mass delete allowed", 1, 100, 99, allow_mass, std::nullopt},
        guard_case{"0% allows no delete", 3, 3, 1, strict, refusal_reason::mass_delete},
        guard_case{"100% never trips", 1, 1000, 999, loose, std::nullopt}
    );
    CAPTURE(c.name);
    auto const verdict = check_guard(shaped(c.selected, c.total, c.deletes), c.params);
    REQUIRE(verdict.has_value() == c.reason.has_value());
    if (verdict) {
        CHECK(verdict->reason == *c.reason);
        CHECK(verdict->deletes == c.deletes);
        CHECK(verdict->destination_keys == c.total);
    }
}

TEST_CASE("guard_plan withholds deletes and the checkpoint, keeps puts, explains why", "[engine]")
{
    auto const refused = guard_plan(shaped(0, 30, 30), guard_params{});
    REQUIRE(refused.refused.has_value());
    CHECK(refused.refused->reason == refusal_reason::empty_source);
    CHECK(
        refused.refused->message ==
        "source has no keys but 30 of 30 destination keys would be deleted; allow an empty source to proceed"
    );
    CHECK(refused.deletes.empty());
    CHECK(refused.puts.size() == 1);
    CHECK_FALSE(refused.next_checkpoint.has_value());

    auto const mass = guard_plan(shaped(10, 40, 30), guard_params{});
    REQUIRE(mass.refused.has_value());
    CHECK(
        mass.refused->message ==
        "30 of 40 destination keys would be deleted, more than the 50% allowed; allow mass deletes to proceed"
    );
    CHECK(fmt::format("{}", *mass.refused).starts_with("refused(mass_delete): 30 of 40"));

    auto const fine = shaped(10, 40, 3);
    CHECK(guard_plan(fine, guard_params{}) == fine);
}

TEST_CASE("the guard stops the #82 wipe end to end", "[engine]")
{
    // A bogus empty source answer against a populated destination.
    std::vector<kv_entry> dst;
    for (int i = 0; i < 100; ++i) dst.push_back(kv(fmt::format("vault/logical/{}", i), "secret"));
    auto const p = guard_plan(
        make_plan(
            snap(77, {}), snap(5, dst), pair_rule("vault/", "vault/"), checkpoint{50, "vault/", "vault/"}
        ),
        {}
    );
    REQUIRE(p.refused.has_value());
    CHECK(p.deletes.empty());
    CHECK_FALSE(p.next_checkpoint.has_value());

    // A partial answer (a third of the keys) trips the percentage rule.
    std::vector<kv_entry> partial(dst.begin(), dst.begin() + 30);
    auto const q = guard_plan(
        make_plan(snap(77, partial), snap(5, dst), pair_rule("vault/", "vault/"), checkpoint{}), {}
    );
    REQUIRE(q.refused.has_value());
    CHECK(q.refused->reason == refusal_reason::mass_delete);
    CHECK(q.refused->deletes == 70);
}
