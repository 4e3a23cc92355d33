#include <prefixes/rule.hpp>
#include <prefixes/status_key.hpp>

#include <catch2/catch.hpp>

#include <string>
#include <vector>

using kvship::prefixes::check_pairs;
using kvship::prefixes::is_protected;
using kvship::prefixes::is_status_key;
using kvship::prefixes::key_filter;
using kvship::prefixes::make_rule;
using kvship::prefixes::make_rules;
using kvship::prefixes::prefix_spec;
using kvship::prefixes::rule;

TEST_CASE("make_rule names the status key and protects the status dir", "[prefixes]")
{
    rule const r =
        make_rule(prefix_spec{"web", "dc1", "web"}, key_filter{.excludes = {"web/x"}, .includes = {}}, "st/");
    CHECK(r.status_key == "st/4b6a8b56271d06bed31bfa838eb2235e");
    CHECK(r.status_prefix == "st/");
    CHECK(r.protected_prefixes.empty());
    CHECK(r.filter.excludes == std::vector<std::string>{"web/x"});

    CHECK(is_status_key(r, "st/4b6a8b56271d06bed31bfa838eb2235e"));
    CHECK(is_status_key(r, "st/other-pair"));
    CHECK_FALSE(is_status_key(r, "st"));
    CHECK_FALSE(is_status_key(r, "web/st/x"));
    CHECK(is_protected(r, "st/x"));
    CHECK_FALSE(is_protected(r, "web/a"));
}

TEST_CASE("a hand-built rule with empty fields protects nothing", "[prefixes]")
{
    rule r;
    r.protected_prefixes = {""};
    CHECK_FALSE(is_status_key(r, "a"));
    CHECK_FALSE(is_protected(r, "a"));
    CHECK_FALSE(is_protected(r, ""));
}

TEST_CASE("make_rules gives nested destinations to the more specific pair", "[prefixes]")
{
    std::vector<prefix_spec> const specs = {
        {"app", "dc1", "app"},
        {"app2", "dc2", "app2"},
        {"app/sub/", "dc3", "app/sub/"},
        {"other", "dc1", "x"},
    };
    auto const rules = make_rules(specs, key_filter{}, kvship::prefixes::default_status_dir);
    REQUIRE(rules.size() == 4);
    CHECK(rules[0].protected_prefixes == std::vector<std::string>{"app/sub/", "app2"});
    CHECK(rules[1].protected_prefixes.empty());
    CHECK(rules[2].protected_prefixes.empty());
    CHECK(rules[3].protected_prefixes.empty());
    CHECK(is_protected(rules[0], "app2/k"));
    CHECK(is_protected(rules[0], "app/sub/k"));
    CHECK_FALSE(is_protected(rules[0], "app/k"));
    CHECK(
        rules[0].status_key == kvship::prefixes::status_key(kvship::prefixes::default_status_dir, specs[0])
    );
}

TEST_CASE("check_pairs reports pairs that share a destination", "[prefixes]")
{
    CHECK(check_pairs({{"a", "dc1", "a"}, {"b", "dc1", "b"}}).empty());
    auto const problems = check_pairs({{"a", "dc1", "x"}, {"b", "dc2", "x"}, {"c", "dc1", "y"}});
    REQUIRE(problems.size() == 1);
    CHECK(problems[0] == R"(prefixes "a@dc1:x" and "b@dc2:x" both replicate into destination "x")");
}

TEST_CASE("rule checks on split keys agree with the joined key", "[prefixes]")
{
    auto const rules = make_rules({{"app", "dc1", "app"}, {"app2", "dc2", "app2"}}, key_filter{}, "st");
    auto const& r = rules[0];
    for (auto const& [head, tail] : std::vector<std::pair<std::string, std::string>>{
             {"app", "2/x"},
             {"app", "/x"},
             {"st", "/abc"},
             {"s", "t"},
             {"", r.status_key},
             {r.status_key.substr(0, 5), r.status_key.substr(5)},
         }) {
        CAPTURE(head, tail);
        std::string const joined = head + tail;
        CHECK(is_protected(r, head, tail) == is_protected(r, joined));
        CHECK(is_status_key(r, head, tail) == is_status_key(r, joined));
    }
}
