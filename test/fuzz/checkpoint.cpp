// decode_checkpoint (the status record read back from the destination KV). Property: a record that
// decodes survives encode_checkpoint and decodes to the same checkpoint.
#include "fuzz_check.hpp"

#include "checkpoint_codec.hpp"

#include <cstddef>
#include <cstdint>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(std::uint8_t const* data, std::size_t size)
{
    std::string_view text(reinterpret_cast<char const*>(data), size);
    auto c = kvship::replicate::decode_checkpoint(text);
    if (c) {
        auto again = kvship::replicate::decode_checkpoint(kvship::replicate::encode_checkpoint(*c));
        FUZZ_CHECK(again.has_value());
        // encode_checkpoint writes Go's text, which replaces invalid UTF-8 by U+FFFD: compare only
        // what it keeps exactly.
        FUZZ_CHECK(again->last_replicated == c->last_replicated);
        auto again2 = kvship::replicate::decode_checkpoint(kvship::replicate::encode_checkpoint(*again));
        FUZZ_CHECK(again2.has_value() && *again2 == *again);
    }
    return 0;
}
