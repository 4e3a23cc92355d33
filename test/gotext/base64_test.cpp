#include <gotext/base64.hpp>

#include <catch2/catch.hpp>

using kvship::gotext::base64_decode;
using kvship::gotext::base64_encode;

TEST_CASE("base64 encodes as Go's StdEncoding does", "[gotext]")
{
    CHECK(base64_encode("") == "");
    CHECK(base64_encode("a") == "YQ==");
    CHECK(base64_encode("ab") == "YWI=");
    CHECK(base64_encode("abc") == "YWJj");
    CHECK(base64_encode("hello") == "aGVsbG8=");
    CHECK(base64_encode(std::string("\0\xff\n", 3)) == "AP8K");
}

TEST_CASE("base64 decodes and refuses what Go refuses", "[gotext]")
{
    CHECK(base64_decode("aGVsbG8=") == std::optional<std::string>("hello"));
    CHECK(base64_decode("") == std::optional<std::string>(""));
    CHECK(base64_decode("AP8K") == std::optional<std::string>(std::string("\0\xff\n", 3)));
    CHECK_FALSE(base64_decode("aGVsbG8"));   // unpadded
    CHECK_FALSE(base64_decode("aGV=bG8="));  // padding inside
    CHECK_FALSE(base64_decode("a==="));      // too much padding
    CHECK_FALSE(base64_decode("aGVs bG8=")); // not in the alphabet
    CHECK_FALSE(base64_decode("!!!!"));
}

TEST_CASE("base64 round-trips every byte value", "[gotext]")
{
    std::string all;
    for (int i = 0; i < 256; ++i) {
        all.push_back(static_cast<char>(i));
    }
    for (std::size_t n = 0; n < all.size(); n += 37) {
        auto const s = all.substr(0, n);
        CHECK(base64_decode(base64_encode(s)) == std::optional<std::string>(s));
    }
}
