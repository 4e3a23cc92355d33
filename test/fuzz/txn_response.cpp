// decode_txn_response: the first byte picks 200 (committed) or 409, the rest is the body. Checks that
// a decoded outcome is consistent: a commit carries no errors, a 409 no results.
#include "fuzz_check.hpp"

#include <transport/consul_codec.hpp>

#include <cstddef>
#include <cstdint>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(std::uint8_t const* data, std::size_t size)
{
    if (size == 0)
        return 0;
    bool committed = (data[0] & 1) != 0;
    std::string body(reinterpret_cast<char const*>(data + 1), size - 1);
    auto r = kvship::transport::decode_txn_response(std::move(body), committed);
    if (r) {
        FUZZ_CHECK(r->committed == committed);
        if (committed)
            FUZZ_CHECK(r->errors.empty());
        else
            FUZZ_CHECK(r->results.empty());
    }
    return 0;
}
