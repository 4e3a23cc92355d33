#include <prefixes/filter.hpp>

#include <catch2/catch.hpp>

#include <string>
#include <utility>
#include <vector>

using kvship::prefixes::is_excluded;
using kvship::prefixes::is_included;
using kvship::prefixes::is_selected;
using kvship::prefixes::key_filter;
using kvship::prefixes::matching_exclude;
using kvship::prefixes::parse_exclude;

TEST_CASE("excludes are HasPrefix on the full source key", "[prefixes]")
{
    key_filter const f{.excludes = {"vault/sys/expire", "vault/core/lock"}, .includes = {}};

    struct filter_case
    {
        std::string key;
        bool excluded;
    };

    auto const c = GENERATE(
        filter_case{"vault/sys/expire/id/auth/token/create/abc", true},
        filter_case{"vault/sys/expire", true},
        filter_case{"vault/sys/expired", true},  // a plain string prefix, not a folder
        filter_case{"vault/core/lock", true},
        filter_case{"vault/core/locks", true},
        filter_case{"vault/sys/exp", false},
        filter_case{"vault/logical/abc", false},
        filter_case{"sys/expire/x", false},  // matched against the full key, never the relative one
        filter_case{"/vault/sys/expire", false},
        filter_case{"", false}
    );
    CAPTURE(c.key);
    CHECK(is_excluded(f, c.key) == c.excluded);
    CHECK(is_selected(f, c.key) == !c.excluded);
}

TEST_CASE("matching_exclude names the first matching exclude in order", "[prefixes]")
{
    key_filter const f{.excludes = {"a/b", "a/", "x"}, .includes = {}};
    CHECK(matching_exclude(f, "a/b/c") == "a/b");
    CHECK(matching_exclude(f, "a/c") == "a/");
    CHECK_FALSE(matching_exclude(f, "b").has_value());
}

TEST_CASE("an empty exclude matches every key, as in consul-replicate", "[prefixes]")
{
    key_filter const f{.excludes = {""}, .includes = {}};
    CHECK(is_excluded(f, "anything"));
    CHECK(is_excluded(f, ""));
}

TEST_CASE("includes narrow the replicated set; excludes still win", "[prefixes]")
{
    key_filter const none{};
    CHECK(is_included(none, "any/key"));
    CHECK(is_selected(none, "any/key"));

    key_filter const f{
        .excludes = {"vault/logical/secret"}, .includes = {"vault/logical/", "vault/sys/policy/"}};
    CHECK(is_selected(f, "vault/logical/abc"));
    CHECK(is_selected(f, "vault/sys/policy/admin"));
    CHECK_FALSE(is_selected(f, "vault/sys/expire/x"));      // not included
    CHECK_FALSE(is_selected(f, "vault/logical/secret/x"));  // included but excluded
    CHECK(is_included(f, "vault/logical/secret/x"));
}

TEST_CASE("parse_exclude rejects blank values and keeps the rest verbatim", "[prefixes]")
{
    CHECK(parse_exclude("").error().message == "missing exclude");
    CHECK(parse_exclude(" \t\n").error().message == "missing exclude");
    CHECK(parse_exclude("vault/sys/expire").value() == "vault/sys/expire");
    CHECK(parse_exclude(" x/").value() == " x/");
    CHECK(parse_exclude("/vault").value() == "/vault");
}

TEST_CASE("filters on split keys agree with filters on joined keys", "[prefixes]")
{
    key_filter const f{.excludes = {"vault/sys/expire", "vault/core/lock"}, .includes = {"vault/"}};
    for (auto const& [head, tail] : std::vector<std::pair<std::string, std::string>>{
             {"vault/", "sys/expire/x"},
             {"vault/sys/", "expired"},
             {"vault/", "logical/a"},
             {"vau", "lt/core/lock"},
             {"", "vault/core/x"},
             {"other/", "vault/x"},
         }) {
        CAPTURE(head, tail);
        std::string const joined = head + tail;
        CHECK(is_excluded(f, head, tail) == is_excluded(f, joined));
        CHECK(is_included(f, head, tail) == is_included(f, joined));
        CHECK(is_selected(f, head, tail) == is_selected(f, joined));
    }
    CHECK(is_included(key_filter{}, "x", "y"));
}
