#include "builders.hpp"

#include <engine/plan.hpp>

#include <algorithm>
#include <random>

using namespace kvship::engine;
using namespace kvship::engine::test;

namespace {

struct plan_case
{
    std::string name;
    snapshot src;
    snapshot dst;
    std::vector<std::string> excludes;
    std::vector<put_op> puts;
    std::vector<std::string> deletes;
};

}  // namespace

TEST_CASE("make_plan diffs by value: puts what differs, deletes what the source lost", "[engine]")
{
    auto const c = GENERATE(
        plan_case{"identical", snap(9, {kv("s/a", "1", 5)}), snap(3, {kv("d/a", "1", 2)}), {}, {}, {}},
        plan_case{
            "new key",
            snap(9, {kv("s/a", "1", 5), kv("s/b", "2", 7)}),
            snap(3, {kv("d/a", "1")}),
            {},
            {put("d/b", "2", 7)},
            {}},
        plan_case{
            "value changed",
            snap(9, {kv("s/a", "new", 8)}),
            snap(3, {kv("d/a", "old")}),
            {},
            {put("d/a", "new", 8)},
            {}},
        plan_case{
            "flags changed",
            snap(9, {kv("s/a", "v", 8, 42)}),
            snap(3, {kv("d/a", "v", 1, 0)}),
            {},
            {put("d/a", "v", 8, 42)},
            {}},
        plan_case{
            "only the index moved", snap(9, {kv("s/a", "v", 99)}), snap(3, {kv("d/a", "v", 1)}), {}, {}, {}},
        plan_case{
            "empty value is a value", snap(9, {kv("s/a", "", 4)}), snap(3, {}), {}, {put("d/a", "", 4)}, {}},
        plan_case{
            "extra destination key",
            snap(9, {kv("s/a", "1")}),
            snap(3, {kv("d/a", "1"), kv("d/z", "x")}),
            {},
            {},
            {"d/z"}},
        plan_case{
            "drift repaired (#52)",
            snap(9, {kv("s/a", "1", 2)}),
            snap(3, {kv("d/a", "edited", 5)}),
            {},
            {put("d/a", "1", 2)},
            {}},
        plan_case{
            "excluded source key is not copied",
            snap(9, {kv("s/x/1", "v"), kv("s/a", "1")}),
            snap(3, {kv("d/a", "1")}),
            {"s/x"},
            {},
            {}},
        plan_case{
            "excluded destination key is not deleted",
            snap(9, {}),
            snap(3, {kv("d/x/1", "v"), kv("d/y", "v")}),
            {"s/x"},
            {},
            {"d/y"}},
        plan_case{
            "excluded key present on both sides is left alone",
            snap(9, {kv("s/x", "new")}),
            snap(3, {kv("d/x", "old")}),
            {"s/x"},
            {},
            {}},
        // consul-replicate mapped d/... back with replace-all: "d/s/d/k" -> "s/s/s/k", which misses the
        // exclude
        plan_case{
            "delete-side exclude uses the leading prefix only",
            snap(9, {}),
            snap(3, {kv("d/s/d/k", "v")}),
            {"s/s/d/"},
            {},
            {}}
    );
    CAPTURE(c.name);
    auto const p = make_plan(c.src, c.dst, pair_rule("s/", "d/", c.excludes), checkpoint{});
    CHECK(p.puts == c.puts);
    CHECK(keys_of(p.deletes) == c.deletes);
    CHECK_FALSE(p.refused.has_value());
}

TEST_CASE("make_plan maps keys as plain text with the leading prefix only", "[engine]")
{
    auto const p = make_plan(
        snap(5, {kv("global", "0"), kv("globalization", "1"), kv("global/global", "2")}),
        snap(1, {kv("backupx", "stale")}),
        pair_rule("global", "backup"),
        checkpoint{}
    );
    CHECK(keys_of(p.puts) == std::vector<std::string>{"backup", "backup/global", "backupization"});
    CHECK(keys_of(p.deletes) == std::vector<std::string>{"backupx"});
}

TEST_CASE("make_plan never writes or deletes checkpoint keys", "[engine]")
{
    // The destination contains the status dir (dest "" is not possible, "service/" is).
    auto const r = pair_rule("service/", "service/");
    std::string const own = r.status_key;
    std::string const other = "service/consul-replicate/statuses/0123456789abcdef0123456789abcdef";
    auto const p = make_plan(
        snap(7, {kv("service/a", "1"), kv(own, "{\"LastReplicated\": 1}")}),
        snap(3, {kv("service/a", "1"), kv(own, "{}"), kv(other, "{}")}),
        r,
        checkpoint{}
    );
    CHECK(p.puts.empty());
    CHECK(p.deletes.empty());
    CHECK(p.stats.protected_keys == 3);
    CHECK(p.warnings == std::vector<warning>{{warning_kind::status_key_collision, own}});
}

TEST_CASE("make_plan leaves nested destinations of other pairs alone", "[engine]")
{
    auto const rules = kvship::prefixes::make_rules(
        {{"app", "dc1", "app"}, {"app2", "dc2", "app2"}}, {}, kvship::prefixes::default_status_dir
    );
    auto const p = make_plan(
        snap(5, {kv("app/a", "1"), kv("app2/b", "from-dc1")}),
        snap(3, {kv("app/old", "x"), kv("app2/b", "from-dc2"), kv("app2/c", "y")}),
        rules[0],
        checkpoint{}
    );
    CHECK(p.puts == std::vector<put_op>{put("app/a", "1")});
    CHECK(keys_of(p.deletes) == std::vector<std::string>{"app/old"});
    CHECK(p.stats.protected_keys == 3);
}

TEST_CASE("make_plan copies value and flags but never sessions, and warns", "[engine]")
{
    auto const p = make_plan(
        snap(
            9,
            {with_session(kv("s/held", "v", 3), "sess-1"),
             kv("s/lock", "", 4, lock_flag_value),
             kv("s/sema", "x", 5, semaphore_flag_value),
             with_session(kv("s/same", "v", 6), "sess-2")}
        ),
        snap(3, {kv("d/same", "v")}),
        pair_rule("s/", "d/"),
        checkpoint{}
    );
    CHECK(
        p.puts ==
        std::vector<put_op>{
            put("d/held", "v", 3),
            put("d/lock", "", 4, lock_flag_value),
            put("d/sema", "x", 5, semaphore_flag_value)}
    );
    // like consul-replicate, only keys being written are reported
    CHECK(
        p.warnings ==
        std::vector<warning>{
            {warning_kind::session_attached, "d/held"},
            {warning_kind::lock_flag, "d/lock"},
            {warning_kind::semaphore_flag, "d/sema"},
        }
    );
}

TEST_CASE("make_plan reports entries outside the prefixes and duplicates, and ignores them", "[engine]")
{
    auto const p = make_plan(
        snap(9, {kv("s/a", "1"), kv("s/a", "dup"), kv("t/b", "2")}),
        snap(3, {kv("e/z", "x"), kv("d/q", "q"), kv("d/q", "q2")}),
        pair_rule("s/", "d/"),
        checkpoint{}
    );
    CHECK(p.puts == std::vector<put_op>{put("d/a", "1")});
    CHECK(keys_of(p.deletes) == std::vector<std::string>{"d/q"});
    CHECK(
        p.warnings ==
        std::vector<warning>{
            {warning_kind::duplicate_key, "d/q"},
            {warning_kind::outside_destination, "e/z"},
            {warning_kind::duplicate_key, "s/a"},
            {warning_kind::outside_source_prefix, "t/b"},
        }
    );
}

TEST_CASE("make_plan leaves keys holding U+FFFD alone on both sides, and warns", "[engine]")
{
    // Consul lists s/\xff and s/\xfe both as s/<U+FFFD>: neither can be copied by that name, and the
    // destination's d/<U+FFFD> (written by an older replicator) is not deleted by it either.
    std::string const fffd = "\xEF\xBF\xBD";
    auto const p = make_plan(
        snap(9, {kv("s/a", "1"), kv("s/x" + fffd, "2"), kv("s/x" + fffd, "3")}),
        snap(3, {kv("d/x" + fffd, "old"), kv("d/z" + fffd, "z")}),
        pair_rule("s/", "d/"),
        checkpoint{}
    );
    CHECK(p.puts == std::vector<put_op>{put("d/a", "1")});
    CHECK(p.deletes.empty());
    CHECK(p.stats.unreadable == 4);
    CHECK(p.stats.source_keys == 3);
    CHECK(p.stats.selected_keys == 1);
    CHECK(p.stats.destination_keys == 0);
    CHECK(
        p.warnings ==
        std::vector<warning>{
            {warning_kind::replacement_character, "d/x" + fffd},
            {warning_kind::replacement_character, "d/z" + fffd},
            {warning_kind::replacement_character, "s/x" + fffd},
            {warning_kind::replacement_character, "s/x" + fffd},
        }
    );
}

TEST_CASE("make_plan honours includes", "[engine]")
{
    auto const p = make_plan(
        snap(9, {kv("v/logical/a", "1"), kv("v/sys/expire/x", "2"), kv("v/sys/policy/p", "3")}),
        snap(3, {kv("v/sys/expire/old", "x"), kv("v/logical/gone", "y")}),
        pair_rule("v/", "v/", {}, {"v/logical/", "v/sys/policy/"}),
        checkpoint{}
    );
    CHECK(keys_of(p.puts) == std::vector<std::string>{"v/logical/a", "v/sys/policy/p"});
    CHECK(keys_of(p.deletes) == std::vector<std::string>{"v/logical/gone"});
    CHECK(p.stats.filtered == 1);
    CHECK(p.stats.destination_keys == 1);
}

TEST_CASE("make_plan produces consul-replicate's next checkpoint and checks the previous one", "[engine]")
{
    auto const r = pair_rule("s/", "d/");

    auto p = make_plan(snap(42, {}), snap(1, {}), r, checkpoint{});
    CHECK(p.next_checkpoint == checkpoint{42, "s/", "d/"});
    CHECK(p.warnings.empty());

    p = make_plan(snap(42, {}), snap(1, {}), r, checkpoint{40, "s/", "d/"});
    CHECK(p.warnings.empty());

    p = make_plan(snap(42, {}), snap(1, {}), r, checkpoint{50, "s/", "d/"});
    CHECK(p.warnings == std::vector<warning>{{warning_kind::index_behind_checkpoint, ""}});
    CHECK(p.next_checkpoint == checkpoint{42, "s/", "d/"});

    p = make_plan(snap(42, {}), snap(1, {}), r, checkpoint{10, "other", "d/"});
    CHECK(p.warnings == std::vector<warning>{{warning_kind::checkpoint_mismatch, ""}});
}

TEST_CASE("make_plan counts what it saw", "[engine]")
{
    auto const p = make_plan(
        snap(9, {kv("s/a", "1"), kv("s/b", "2"), kv("s/x/c", "3"), kv("t/d", "4")}),
        snap(3, {kv("d/a", "1"), kv("d/b", "old"), kv("d/x/c", "3"), kv("d/e", "5")}),
        pair_rule("s/", "d/", {"s/x/"}),
        checkpoint{}
    );
    CHECK(
        p.stats ==
        plan_stats{
            .source_keys = 3,
            .selected_keys = 2,
            .destination_keys = 3,
            .unchanged = 1,
            .filtered = 1,
            .protected_keys = 0}
    );
    CHECK(has_changes(p));
    CHECK_FALSE(has_changes(make_plan(snap(1, {}), snap(1, {}), pair_rule("s/", "d/"), checkpoint{})));
}

TEST_CASE("make_plan is deterministic whatever the input order", "[engine]")
{
    std::vector<kv_entry> src;
    std::vector<kv_entry> dst;
    for (int i = 0; i < 50; ++i) {
        src.push_back(
            kv(fmt::format("s/{:02}", i), fmt::format("v{}", i % 7), static_cast<std::uint64_t>(100 - i))
        );
        dst.push_back(kv(fmt::format("d/{:02}", i * 2), fmt::format("v{}", i % 5)));
    }
    auto const r = pair_rule("s/", "d/", {"s/1"});
    auto const expected = make_plan(snap(200, src), snap(3, dst), r, checkpoint{});
    CHECK(std::is_sorted(expected.puts.begin(), expected.puts.end(), [](auto& a, auto& b) {
        return a.key < b.key;
    }));
    CHECK(std::is_sorted(expected.deletes.begin(), expected.deletes.end(), [](auto& a, auto& b) {
        return a.key < b.key;
    }));

    std::mt19937 rng(7);
    for (int round = 0; round < 5; ++round) {
        std::shuffle(src.begin(), src.end(), rng);
        std::shuffle(dst.begin(), dst.end(), rng);
        CHECK(make_plan(snap(200, src), snap(3, dst), r, checkpoint{}) == expected);
    }
}

TEST_CASE("apply_plan applies puts and deletes as Consul would", "[engine]")
{
    plan p;
    p.puts = {put("d/a", "new", 5, 7), put("d/c", "c", 6)};
    p.deletes = {{"d/b"}, {"d/missing"}};
    auto const out = apply_plan(
        snap(3, {with_session(kv("d/a", "old", 2), "s1"), kv("d/b", "b"), kv("d/z", "z", 1)}), p, 10
    );
    CHECK(
        out == snap(
                   10,
                   {kv_entry{"d/a", "new", 7, 10, "s1"},  // txn set keeps the destination's session
                    kv("d/c", "c", 10),
                    kv("d/z", "z", 1)}
               )
    );
}

TEST_CASE(
    "sort_entries sorts by key and keeps the first of duplicates; same_entries ignores the index", "[engine]"
)
{
    std::vector<kv_entry> entries = {kv("b", "1"), kv("a", "first"), kv("c", "3"), kv("a", "second")};
    sort_entries(entries);
    CHECK(entries == std::vector<kv_entry>{kv("a", "first"), kv("b", "1"), kv("c", "3")});

    CHECK(same_entries(snap(1, {kv("a", "1", 4)}), snap(9, {kv("a", "1", 4)})));
    CHECK_FALSE(same_entries(snap(1, {kv("a", "1", 4)}), snap(1, {kv("a", "1", 5)})));
}

TEST_CASE("engine types print readably", "[engine]")
{
    CHECK(
        fmt::format("{}", with_session(kv("a\n", "v", 3, 1), "s")) ==
        R"({key="a\n" value="v" flags=1 modify_index=3 session="s"})"
    );
    CHECK(
        fmt::format("{}", checkpoint{4, "s/", "d/"}) ==
        R"(checkpoint{last_replicated=4 source="s/" destination="d/"})"
    );
    CHECK(fmt::format("{}", warning{warning_kind::lock_flag, "k"}) == R"(lock_flag("k"))");
}
