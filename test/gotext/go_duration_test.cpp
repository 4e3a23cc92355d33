// Go duration parsing and formatting.
#include <gotext/go_duration.hpp>

#include <catch2/catch.hpp>

#include <cstdint>

using namespace kvship::gotext;
using namespace std::chrono_literals;

TEST_CASE("parse_go_duration accepts Go's syntax", "[gotext][duration]")
{
    struct row
    {
        std::string_view text;
        std::chrono::nanoseconds want;
    };

    auto const rows = std::vector<row>{
        {"0", 0ns},
        {"+0", 0ns},
        {"-0", 0ns},
        {"0s", 0ns},
        {"15s", 15s},
        {"300ms", 300ms},
        {"15000ms", 15s},
        {"-1.5h", -90min},
        {"2h45m", 165min},
        {"1h2m3s4ms5us6ns", 1h + 2min + 3s + 4ms + 5us + 6ns},
        {"1us", 1us},
        {"1\xC2\xB5s", 1us},
        {"1\xCE\xBCs", 1us},
        {".5s", 500ms},
        {"1.s", 1s},
        {"1.0000000001s", 1s},
        {"0.1ns", 0ns},
        {"24h", 24h},
        {"9223372036854775807ns", std::chrono::nanoseconds(INT64_MAX)},
        {"-9223372036854775808ns", std::chrono::nanoseconds(INT64_MIN)},
        {"2562047h47m16.854775807s", std::chrono::nanoseconds(INT64_MAX)},
    };
    for (auto const& r : rows) {
        INFO(r.text);
        auto d = parse_go_duration(r.text);
        REQUIRE(d);
        CHECK(d->count() == r.want.count());
    }
}

TEST_CASE("parse_go_duration rejects what Go rejects, with Go's messages", "[gotext][duration]")
{
    struct row
    {
        std::string_view text;
        std::string_view error;
    };

    auto const rows = std::vector<row>{
        {"", R"(time: invalid duration "")"},
        {"abc", R"(time: invalid duration "abc")"},
        {"5", R"(time: missing unit in duration "5")"},
        {"10", R"(time: missing unit in duration "10")"},
        {"5x", R"(time: unknown unit "x" in duration "5x")"},
        {"1e3s", R"(time: unknown unit "e" in duration "1e3s")"},
        {".", R"(time: invalid duration ".")"},
        {".s", R"(time: invalid duration ".s")"},
        {"-", R"(time: invalid duration "-")"},
        {"1s ", R"(time: unknown unit "s " in duration "1s ")"},
        {"9223372036854775808ns", R"(time: invalid duration "9223372036854775808ns")"},
        {"3000000h", R"(time: invalid duration "3000000h")"},
        {"1\n", "time: unknown unit \"\\x0a\" in duration \"1\\x0a\""},
    };
    for (auto const& r : rows) {
        INFO(r.text);
        CHECK_FALSE(parse_go_duration(r.text));
        auto e = parse_go_duration_or_error(r.text);
        REQUIRE(std::holds_alternative<std::string>(e));
        CHECK(std::get<std::string>(e) == r.error);
    }
}

TEST_CASE("format_go_duration matches Duration.String", "[gotext][duration]")
{
    struct row
    {
        std::chrono::nanoseconds d;
        std::string_view want;
    };

    auto const rows = std::vector<row>{
        {0ns, "0s"},
        {1ns, "1ns"},
        {1100ns, "1.1\xC2\xB5s"},
        {2200us, "2.2ms"},
        {1500ms, "1.5s"},
        {10s, "10s"},
        {90min, "1h30m0s"},
        {24h, "24h0m0s"},
        {-(2min + 3s), "-2m3s"},
        {std::chrono::nanoseconds(INT64_MAX), "2562047h47m16.854775807s"},
        {std::chrono::nanoseconds(INT64_MIN), "-2562047h47m16.854775808s"},
    };
    for (auto const& r : rows) {
        CHECK(format_go_duration(r.d) == r.want);
    }
}
