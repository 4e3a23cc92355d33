// decode_kv_entries (whole body) against kv_listing_decoder (streamed): for one body, the streamed
// decoder fed byte by byte, at two split points taken from the body's hash, and in one piece, with
// small batches so the batching paths run, must agree with the whole decoder: both succeed with the
// same entries (in order, take() called between feeds), or both fail.
#include "fuzz_check.hpp"

#include <transport/consul_codec.hpp>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace {

using kvship::transport::kv_entry;
using kvship::transport::kv_listing_decoder;

struct streamed
{
    bool ok = false;
    std::vector<kv_entry> entries;
};

// Feeds `body` cut at `cuts` (sorted offsets), taking entries after every feed.
streamed stream(std::string_view body, std::vector<std::size_t> const& cuts, std::size_t batch, std::size_t batch_bytes)
{
    kv_listing_decoder d(batch, batch_bytes);
    streamed r;
    std::size_t at = 0;
    bool failed = false;
    auto take = [&] {
        auto got = d.take();
        r.entries.insert(r.entries.end(), got.begin(), got.end());
    };
    for (std::size_t cut : cuts) {
        if (!failed && d.feed(body.substr(at, cut - at)))
            failed = true;
        at = cut;
        take();
    }
    if (!failed && d.feed(body.substr(at)))
        failed = true;
    if (!failed && d.finish())
        failed = true;
    take();
    FUZZ_CHECK(d.offset() <= body.size());
    r.ok = !failed;
    return r;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(std::uint8_t const* data, std::size_t size)
{
    std::string_view body(reinterpret_cast<char const*>(data), size);
    auto whole = kvship::transport::decode_kv_entries(std::string(body));

    auto check = [&](streamed const& s) {
        FUZZ_CHECK(s.ok == whole.has_value());
        if (s.ok)
            FUZZ_CHECK(s.entries == *whole);
    };

    check(stream(body, {}, 1000, std::size_t{4} << 20));
    check(stream(body, {}, 1, 1));

    std::size_t h = std::hash<std::string_view>{}(body);
    if (size > 0) {
        std::size_t a = h % (size + 1), b = (h >> 20) % (size + 1);
        if (a > b)
            std::swap(a, b);
        check(stream(body, {a, b}, 2, 64));
    }
    if (size <= 4096) {
        std::vector<std::size_t> every;
        for (std::size_t i = 1; i < size; ++i)
            every.push_back(i);
        check(stream(body, every, 3, 16));
    }
    return 0;
}
