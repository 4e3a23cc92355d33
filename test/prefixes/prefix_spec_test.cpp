#include <prefixes/prefix_spec.hpp>

#include <catch2/catch.hpp>

#include <optional>
#include <string>
#include <vector>

using kvship::prefixes::parse_options;
using kvship::prefixes::parse_prefix_block;
using kvship::prefixes::parse_prefix_spec;
using kvship::prefixes::prefix_errc;
using kvship::prefixes::prefix_error;
using kvship::prefixes::prefix_spec;

namespace {

struct ok_case
{
    std::string input;
    std::string source;
    std::optional<std::string> dc;
    std::string destination;
};

struct error_case
{
    std::string input;
    prefix_errc code;
    std::string message;
};

}  // namespace

TEST_CASE("parse_prefix_spec accepts every consul-replicate form", "[prefixes]")
{
    auto const c = GENERATE(
        // compat.md §1.3 examples
        ok_case{"global@nyc1", "global", "nyc1", "global"},
        ok_case{"/global@nyc1", "global", "nyc1", "global"},
        ok_case{"global/@nyc1:backup/", "global/", "nyc1", "backup/"},
        ok_case{"global@nyc1:default", "global", "nyc1", "default"},
        // an empty destination means "same as the source", leading `/` already stripped
        ok_case{"/global@nyc1:", "global", "nyc1", "global"},
        // only the first `:` splits: the destination may hold more
        ok_case{"a@dc1:x:y", "a", "dc1", "x:y"},
        // the destination is neither validated nor trimmed
        ok_case{"a@dc1:/abs", "a", "dc1", "/abs"},
        ok_case{"a@dc1: spaced ", "a", "dc1", " spaced "},
        // only one leading `/` is optional; `/@dc` backtracks to the prefix `/`, as Go's regexp does
        ok_case{"//a@dc1", "/a", "dc1", "/a"},
        ok_case{"/@dc1", "/", "dc1", "/"},
        // dc is [A-Za-z0-9_.-]+
        ok_case{"vault/@us-east-1.prod_2", "vault/", "us-east-1.prod_2", "vault/"},
        // v0.4.0 (consul-template v0.19): `?` is an ordinary prefix character
        ok_case{"app?ns=team1@dc1:dst", "app?ns=team1", "dc1", "dst"},
        // any character but `@` belongs to the prefix, blanks and newlines included
        ok_case{" @dc1", " ", "dc1", " "},
        ok_case{"a b/\n@dc1", "a b/\n", "dc1", "a b/\n"},
        ok_case{"caf\xc3\xa9/@dc1", "caf\xc3\xa9/", "dc1", "caf\xc3\xa9/"}
    );
    CAPTURE(c.input);
    auto const r = parse_prefix_spec(c.input);
    REQUIRE(r.has_value());
    CHECK(r->source == c.source);
    CHECK(r->datacenter == c.dc);
    CHECK(r->destination == c.destination);
}

TEST_CASE("parse_prefix_spec reports consul-replicate's errors", "[prefixes]")
{
    auto const c = GENERATE(
        error_case{"", prefix_errc::missing_prefix, "missing prefix"},
        error_case{"   ", prefix_errc::missing_prefix, "missing prefix"},
        error_case{" \t\r\n\v\f", prefix_errc::missing_prefix, "missing prefix"},
        error_case{"global", prefix_errc::missing_datacenter, "missing datacenter"},
        error_case{"/global", prefix_errc::missing_datacenter, "missing datacenter"},
        error_case{"global:backup", prefix_errc::missing_datacenter, "missing datacenter"},
        error_case{"/", prefix_errc::missing_datacenter, "missing datacenter"},
        error_case{"@dc1", prefix_errc::invalid_source_format, R"(invalid source format: "@dc1")"},
        error_case{":dest", prefix_errc::invalid_source_format, R"(invalid source format: "")"},
        error_case{"a@", prefix_errc::invalid_source_format, R"(invalid source format: "a@")"},
        error_case{"a@:b", prefix_errc::invalid_source_format, R"(invalid source format: "a@")"},
        error_case{"a@b@c", prefix_errc::invalid_source_format, R"(invalid source format: "a@b@c")"},
        error_case{"a@dc!", prefix_errc::invalid_source_format, R"(invalid source format: "a@dc!")"},
        error_case{"a@dc 1", prefix_errc::invalid_source_format, R"(invalid source format: "a@dc 1")"},
        error_case{"a@dc/x:y", prefix_errc::invalid_source_format, R"(invalid source format: "a@dc/x")"},
        error_case{
            "a@d\xc3\xa9", prefix_errc::invalid_source_format, "invalid source format: \"a@d\xc3\xa9\""},
        error_case{"a\"@dc\n", prefix_errc::invalid_source_format, R"(invalid source format: "a\"@dc\n")"}
    );
    CAPTURE(c.input);
    auto const r = parse_prefix_spec(c.input);
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().code == c.code);
    CHECK(r.error().message == c.message);
}

TEST_CASE("parse_prefix_spec can leave the datacenter out for the leader gate", "[prefixes]")
{
    parse_options const optional_dc{.require_datacenter = false};

    auto r = parse_prefix_spec("global:backup", optional_dc);
    REQUIRE(r.has_value());
    CHECK(*r == prefix_spec{"global", std::nullopt, "backup"});

    r = parse_prefix_spec("/global", optional_dc);
    REQUIRE(r.has_value());
    CHECK(*r == prefix_spec{"global", std::nullopt, "global"});

    r = parse_prefix_spec("global@dc2", optional_dc);
    REQUIRE(r.has_value());
    CHECK(r->datacenter == "dc2");

    // the other errors stay
    CHECK(parse_prefix_spec("@dc1", optional_dc).error().code == prefix_errc::invalid_source_format);
    CHECK(parse_prefix_spec(" ", optional_dc).error().code == prefix_errc::missing_prefix);
}

TEST_CASE("the DC-less form (with a gate): a table", "[prefixes]")
{
    struct row
    {
        std::string_view input;
        prefix_spec want;
    };

    parse_options const optional_dc{.require_datacenter = false};
    for (auto const& [input, want] : std::vector<row>{
             {"vault/", {"vault/", std::nullopt, "vault/"}},
             {"/vault/", {"vault/", std::nullopt, "vault/"}},
             {"vault/:vault/", {"vault/", std::nullopt, "vault/"}},
             {"vault/:", {"vault/", std::nullopt, "vault/"}},
             {"vault/:backup/vault/", {"vault/", std::nullopt, "backup/vault/"}},
             {"a:b:c", {"a", std::nullopt, "b:c"}},
             {"app?x:y", {"app?x", std::nullopt, "y"}},
             {"/",
              {"/", std::nullopt, "/"}},  // `/` alone: the greedy `/` fails, the body takes it (as with @dc)
         }) {
        CAPTURE(input);
        auto const r = parse_prefix_spec(input, optional_dc);
        REQUIRE(r.has_value());
        CHECK(*r == want);
        // the canonical text parses back to the same spec
        auto const again = parse_prefix_spec(to_string(*r), optional_dc);
        REQUIRE(again.has_value());
        CHECK(*again == want);
        // and without the option it stays consul-replicate's error
        auto const strict = parse_prefix_spec(input);
        REQUIRE_FALSE(strict.has_value());
        CHECK(strict.error() == prefix_error{prefix_errc::missing_datacenter, "missing datacenter"});
    }
    auto const block = parse_prefix_block("vault/", "", "copy/", optional_dc);
    REQUIRE(block.has_value());
    CHECK(*block == prefix_spec{"vault/", std::nullopt, "copy/"});
    CHECK(to_string(*block) == "vault/:copy/");
    CHECK(parse_prefix_spec("@", optional_dc).error().code == prefix_errc::invalid_source_format);
    CHECK(parse_prefix_spec("a@", optional_dc).error().code == prefix_errc::invalid_source_format);
}

TEST_CASE("parse_prefix_block rebuilds source[@dc][:dest] as consul-replicate does", "[prefixes]")
{
    auto r = parse_prefix_block("global", "nyc1", "default");
    REQUIRE(r.has_value());
    CHECK(*r == prefix_spec{"global", "nyc1", "default"});

    r = parse_prefix_block("global@nyc1:default", "", "");
    REQUIRE(r.has_value());
    CHECK(*r == prefix_spec{"global", "nyc1", "default"});

    r = parse_prefix_block("global@nyc1", "dc2", "");
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().message == R"(invalid source format: "global@nyc1@dc2")");

    CHECK(parse_prefix_block("global", "", "").error().code == prefix_errc::missing_datacenter);
    CHECK(parse_prefix_block("", "nyc1", "").error().message == R"(invalid source format: "@nyc1")");
}

TEST_CASE("to_string gives a form that parses back to the same spec", "[prefixes]")
{
    for (auto const* text : {"global@nyc1", "/global@nyc1:backup/", "a@dc1:x:y", "app?x@dc1:d"}) {
        CAPTURE(text);
        auto const first = parse_prefix_spec(text);
        REQUIRE(first.has_value());
        auto const again = parse_prefix_spec(to_string(*first));
        REQUIRE(again.has_value());
        CHECK(*again == *first);
    }
    CHECK(to_string(prefix_spec{"a", std::nullopt, "b"}) == "a:b");
    CHECK(fmt::format("{}", prefix_spec{"a", "dc1", "b"}) == "a@dc1:b");
}
