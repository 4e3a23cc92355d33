#include <prefixes/key_map.hpp>

#include <catch2/catch.hpp>

#include <optional>
#include <random>
#include <string>

using kvship::prefixes::map_key;
using kvship::prefixes::prefix_spec;
using kvship::prefixes::unmap_key;

namespace {

struct map_case
{
    std::string source;
    std::string destination;
    std::string source_key;
    std::optional<std::string> destination_key;
};

}  // namespace

TEST_CASE("map_key replaces only the leading source prefix, as plain text", "[prefixes]")
{
    auto const c = GENERATE(
        map_case{"global", "backup", "globalization", "backupization"},  // compat §1.2 v0.3.0
        map_case{"global", "backup", "global", "backup"},
        map_case{"global/", "backup/", "global/a/b", "backup/a/b"},
        map_case{"global", "global", "global/x", "global/x"},
        map_case{"global", "backup/", "global/x", "backup//x"},  // no `/` is added or removed
        map_case{"a", "a/b", "a/a/a", "a/b/a/a"},                // later occurrences untouched
        map_case{"vault/", "dr/vault/", "vault/vault/x", "dr/vault/vault/x"},
        map_case{"global", "backup", "other/global", std::nullopt},  // not under the source
        map_case{"global/", "backup/", "global", std::nullopt}
    );
    CAPTURE(c.source, c.destination, c.source_key);
    CHECK(map_key(c.source, c.destination, c.source_key) == c.destination_key);
    CHECK(map_key(prefix_spec{c.source, "dc1", c.destination}, c.source_key) == c.destination_key);
}

TEST_CASE("unmap_key fixes consul-replicate's replace-all on the delete path", "[prefixes]")
{
    auto const c = GENERATE(
        // consul-replicate: strings.Replace("a/x/a/y", "a/", "vault/", -1) = "vault/x/vault/y"
        map_case{"vault/", "a/", "a/x/a/y", "vault/x/a/y"},
        map_case{"global", "backup", "backupization", "globalization"},
        map_case{"src", "d", "dd", "srcd"},
        map_case{"src/", "dst/", "src/x", std::nullopt},  // not under the destination
        map_case{"src/", "dst/", "dst", std::nullopt}
    );
    CAPTURE(c.source, c.destination, c.source_key);
    CHECK(unmap_key(c.source, c.destination, c.source_key) == c.destination_key);
    CHECK(unmap_key(prefix_spec{c.source, std::nullopt, c.destination}, c.source_key) == c.destination_key);
}

TEST_CASE("unmap_key inverts map_key for every key under the source", "[prefixes]")
{
    std::mt19937 rng(20260101);
    std::uniform_int_distribution<int> len(0, 6);
    std::uniform_int_distribution<int> ch(0, 3);
    auto word = [&] {
        std::string s;
        for (int n = len(rng); n > 0; --n) s.push_back("a/b@"[ch(rng)]);
        return s;
    };
    for (int i = 0; i < 2000; ++i) {
        std::string const source = word() + "s";
        std::string const destination = word() + "d";
        std::string const key = source + word();
        auto const mapped = map_key(source, destination, key);
        REQUIRE(mapped.has_value());
        CHECK(unmap_key(source, destination, *mapped) == key);
    }
}

TEST_CASE("split-key helpers agree with the joined key", "[prefixes]")
{
    using kvship::prefixes::equals_split;
    using kvship::prefixes::starts_with_split;

    CHECK(starts_with_split("vault/", "sys/expire/x", "vault/sys/expire"));
    CHECK(starts_with_split("vault/", "sys", "vau"));
    CHECK(starts_with_split("vault/", "", "vault/"));
    CHECK(starts_with_split("", "", ""));
    CHECK_FALSE(starts_with_split("vault/", "sy", "vault/sys"));
    CHECK_FALSE(starts_with_split("vaul", "t/x", "vault/y"));
    CHECK(equals_split("a/", "b", "a/b"));
    CHECK_FALSE(equals_split("a/", "b", "a/bc"));
    CHECK_FALSE(equals_split("a/", "bc", "a/b"));

    std::mt19937 rng(99);
    std::uniform_int_distribution<int> len(0, 4);
    std::uniform_int_distribution<int> ch(0, 2);
    auto word = [&] {
        std::string s;
        for (int n = len(rng); n > 0; --n)
            s.push_back("ab/"[ch(rng)]);
        return s;
    };
    for (int i = 0; i < 5000; ++i) {
        std::string const head = word();
        std::string const tail = word();
        std::string const probe = word();
        std::string const joined = head + tail;
        CAPTURE(head, tail, probe);
        CHECK(starts_with_split(head, tail, probe) == std::string_view(joined).starts_with(probe));
        CHECK(equals_split(head, tail, probe) == (joined == probe));
    }
}
