#include <gotext/go_string.hpp>

#include <catch2/catch.hpp>

#include <string>

using kvship::gotext::go_quote;

TEST_CASE("go_quote matches Go's strconv.Quote", "[gotext]")
{
    struct quote_case
    {
        std::string in;
        std::string out;
    };

    auto const c = GENERATE(
        quote_case{"", R"("")"},
        quote_case{"plain/key", R"("plain/key")"},
        quote_case{"a\"b\\c", R"("a\"b\\c")"},
        quote_case{"\a\b\f\n\r\t\v", R"("\a\b\f\n\r\t\v")"},
        quote_case{std::string("\x00\x01\x1f\x7f", 4), R"("\x00\x01\x1f\x7f")"},
        quote_case{
            "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\""},
        // invalid UTF-8: lone continuation, truncated sequence, overlong, surrogate, > U+10FFFF
        quote_case{"\x80", R"("\x80")"},
        quote_case{"\xc3", R"("\xc3")"},
        quote_case{"\xc0\xaf", R"("\xc0\xaf")"},
        quote_case{"\xed\xa0\x80", R"("\xed\xa0\x80")"},
        quote_case{"\xf4\x90\x80\x80", R"("\xf4\x90\x80\x80")"},
        // C1 controls are not printable
        quote_case{"\xc2\x85", R"("\u0085")"}
    );
    CAPTURE(c.in);
    CHECK(go_quote(c.in) == c.out);
}

TEST_CASE("json_field_name_equal: encoding/json's case-insensitive field match", "[gotext]")
{
    using kvship::gotext::json_field_name_equal;
    CHECK(json_field_name_equal("LastReplicated", "LastReplicated"));
    CHECK(json_field_name_equal("lastreplicated", "LastReplicated"));
    CHECK(json_field_name_equal("LASTREPLICATED", "LastReplicated"));
    CHECK_FALSE(json_field_name_equal("LastReplicate", "LastReplicated"));
    CHECK_FALSE(json_field_name_equal("Last_Replicated", "LastReplicated"));
    CHECK_FALSE(json_field_name_equal("", "Source"));
}
