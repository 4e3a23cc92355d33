// Go time.ParseDuration / Duration.String, and the -wait syntax built on them.
#include <replicate/config.hpp>
#include <replicate/duration.hpp>

#include <catch2/catch.hpp>

using namespace kvship::replicate;
using namespace std::chrono_literals;

TEST_CASE("parse_go_duration accepts Go syntax", "[replicate][duration]")
{
    struct row
    {
        const char* text;
        nanos want;
    };

    for (auto const& r : {
             row{"0", 0ns},
             row{"-0", 0ns},
             row{"1ns", 1ns},
             row{"1us", 1us},
             row{"1\xC2\xB5s", 1us},
             row{"1\xCE\xBCs", 1us},
             row{"250ms", 250ms},
             row{"2s", 2s},
             row{"1m30s", 90s},
             row{"1.5h", 90min},
             row{".5s", 500ms},
             row{"1.s", 1s},
             row{"-2m3s", -123s},
             row{"+5s", 5s},
             row{"2h45m", 165min},
         }) {
        INFO(r.text);
        auto d = parse_go_duration(r.text);
        REQUIRE(d.has_value());
        CHECK(*d == r.want);
    }
}

TEST_CASE("parse_go_duration errors carry Go's text", "[replicate][duration]")
{
    struct row
    {
        const char* text;
        const char* error;
    };

    for (auto const& r : {
             row{"", R"(time: invalid duration "")"},
             row{"x", R"(time: invalid duration "x")"},
             row{"5", R"(time: missing unit in duration "5")"},
             row{"5y", R"(time: unknown unit "y" in duration "5y")"},
             row{".s", R"(time: invalid duration ".s")"},
             row{"-", R"(time: invalid duration "-")"},
             row{"9999999999h", R"(time: invalid duration "9999999999h")"},
         }) {
        INFO(r.text);
        auto d = parse_go_duration(r.text);
        REQUIRE_FALSE(d.has_value());
        CHECK(d.error() == r.error);
    }
}

TEST_CASE("format_go_duration prints as Go does", "[replicate][duration]")
{
    CHECK(format_go_duration(0ns) == "0s");
    CHECK(format_go_duration(250ms) == "250ms");
    CHECK(format_go_duration(1500ms) == "1.5s");
    CHECK(format_go_duration(1min) == "1m0s");
    CHECK(format_go_duration(24h) == "24h0m0s");
    CHECK(format_go_duration(-123s) == "-2m3s");
    CHECK(format_go_duration(1us) == "1\xC2\xB5s");
}

TEST_CASE("parse_wait: min[:max], max defaults to 4 x min", "[replicate][duration]")
{
    auto w = parse_wait("5s");
    REQUIRE(w.has_value());
    CHECK(w->min == nanos(5s));
    CHECK(w->max == nanos(20s));
    CHECK(w->enabled());
    w = parse_wait(" 1s:3s ");
    REQUIRE(w.has_value());
    CHECK(w->max == nanos(3s));
    w = parse_wait("2s:2s");
    REQUIRE(w.has_value());
    CHECK_FALSE(parse_wait("0s").value().enabled());
    CHECK(parse_wait("").error() == "wait: cannot be empty");
    CHECK(parse_wait("   ").error() == "wait: cannot be empty");
    CHECK(parse_wait("1s:2s:3s").error() == "wait: invalid format");
    CHECK(parse_wait("-1s").error() == "wait: cannot be negative");
    CHECK(parse_wait("1s:-1s").error() == "wait: cannot be negative");
    CHECK(parse_wait("3s:1s").error() == "wait: min must be less than max");
    CHECK(parse_wait("1s:x").error() == R"(time: invalid duration "x")");
}
