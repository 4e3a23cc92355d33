// The sim's request-target handling (api/url.cpp), reached without sockets: split_target, the query
// parser, escaping, clean_path, rune decoding and parse_uint_go. Properties: escapes round-trip,
// clean_path is idempotent, a parsed query survives encode() and re-parse, decode_rune stays in bounds.
#include "fuzz_check.hpp"

#include "api/url.hpp"

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace api = kvship::kvsim::api;

extern "C" int LLVMFuzzerTestOneInput(std::uint8_t const* data, std::size_t size)
{
    std::string_view s(reinterpret_cast<char const*>(data), size);

    if (auto t = api::split_target(s)) {
        auto q = api::query_params::parse(t->raw_query);
        auto encoded = q.encode();
        FUZZ_CHECK(api::query_params::parse(encoded).encode() == encoded);
        auto cleaned = api::clean_path(t->path);
        FUZZ_CHECK(api::clean_path(cleaned) == cleaned);
        (void)api::is_printable_path(t->path);
    }
    auto p = api::path_unescape(api::path_escape(s));
    FUZZ_CHECK(p && *p == s);
    auto q = api::query_unescape(api::query_escape(s));
    FUZZ_CHECK(q && *q == s);
    (void)api::path_unescape(s);
    (void)api::query_unescape(s);

    for (std::size_t i = 0; i < s.size();) {
        auto [r, n] = api::decode_rune(s, i);
        FUZZ_CHECK(n >= 1 && i + n <= s.size());
        (void)r;
        i += n;
    }
    (void)api::parse_uint_go(s);
    return 0;
}
