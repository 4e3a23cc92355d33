#include <prefixes/status_key.hpp>

#include <catch2/catch.hpp>

#include <cstddef>
#include <string>

using kvship::prefixes::default_status_dir;
using kvship::prefixes::md5_hex;
using kvship::prefixes::prefix_spec;
using kvship::prefixes::status_key;
using kvship::prefixes::trim_status_dir;

namespace {

std::string pattern(std::size_t n)
{
    std::string s;
    for (std::size_t i = 0; i < n; ++i) s.push_back(static_cast<char>((i * 7 + 3) % 256));
    return s;
}

}  // namespace

TEST_CASE("md5_hex matches RFC 1321 and block-boundary vectors", "[prefixes]")
{
    // RFC 1321 appendix A.5
    CHECK(md5_hex("") == "d41d8cd98f00b204e9800998ecf8427e");
    CHECK(md5_hex("a") == "0cc175b9c0f1b6a831c399e269772661");
    CHECK(md5_hex("abc") == "900150983cd24fb0d6963f7d28e17f72");
    CHECK(md5_hex("message digest") == "f96b697d7cb7938d525a2f31aaf161d0");
    CHECK(md5_hex("abcdefghijklmnopqrstuvwxyz") == "c3fcd3d76192e4007dfb496cca67e13b");
    CHECK(
        md5_hex("12345678901234567890123456789012345678901234567890123456789012345678901234567890") ==
        "57edf4a22be3c955ac49da2e2107b67a"
    );

    struct vector_case
    {
        std::size_t length;
        std::string hex;
    };

    // padding edges: 55/56/57 bytes (one or two tail blocks), 63/64/65, 127/128, many blocks
    auto const c = GENERATE(
        vector_case{55, "52c0e574e1198de5fe3f8f11440dcb1b"},
        vector_case{56, "46c9907fc908ee68b1e7b8e71286a518"},
        vector_case{57, "1c805dd236c35cab25fcb1bc73802c51"},
        vector_case{63, "a62f6d59e837867693f042f5b8f5a236"},
        vector_case{64, "7160b8fb5e9e4023d549c3971fbaeead"},
        vector_case{65, "70bd662e7aefbda85a0f7244167b7897"},
        vector_case{127, "acce2474d6cc8302120d09c818d17ef7"},
        vector_case{128, "10b2da1a82f16d99a81a7203fe9f02cb"},
        vector_case{1000, "10046f077f2082ac19676b8079f1cb1a"}
    );
    CAPTURE(c.length);
    CHECK(md5_hex(pattern(c.length)) == c.hex);
}

TEST_CASE("status_key is consul-replicate's <status_dir>/<md5(source-dest)>", "[prefixes]")
{
    // md5("web-web") = 4b6a8b56..., the status key seen in consul-replicate#24 (compat §3.3).
    CHECK(
        status_key(default_status_dir, "web", "web") ==
        "service/consul-replicate/statuses/4b6a8b56271d06bed31bfa838eb2235e"
    );
    CHECK(
        status_key("service/consul-replicate/statuses", prefix_spec{"vault/", "dc1", "vault/"}) ==
        "service/consul-replicate/statuses/ab3a9b09cd37932bf1d7bde9240befd8"
    );
    // every trailing `/` is trimmed (strings.TrimRight), nothing else is cleaned
    CHECK(status_key("a/b///", "web", "web") == "a/b/4b6a8b56271d06bed31bfa838eb2235e");
    CHECK(status_key("/a//b", "web", "web") == "/a//b/4b6a8b56271d06bed31bfa838eb2235e");
    CHECK(status_key("", "web", "web") == "/4b6a8b56271d06bed31bfa838eb2235e");
    // the datacenter is not part of the name
    CHECK(
        status_key("s", prefix_spec{"web", "dc1", "web"}) == status_key("s", prefix_spec{"web", "dc2", "web"})
    );

    CHECK(trim_status_dir("x//") == "x");
    CHECK(trim_status_dir("///").empty());
}
