// The sim's request-body decoders (api/codec.cpp, api/catalog_codec.cpp) and its journal line decoder:
// the first byte picks one, the rest is the body. /v1/txn bodies (parse_txn_body) get the most
// weight; a decoded txn body has no more ops than elements.
#include "fuzz_check.hpp"

#include "api/codec.hpp"
#include "store/store.hpp"

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <variant>

namespace api = kvship::kvsim::api;

extern "C" int LLVMFuzzerTestOneInput(std::uint8_t const* data, std::size_t size)
{
    if (size == 0)
        return 0;
    std::string_view body(reinterpret_cast<char const*>(data + 1), size - 1);
    switch (data[0] % 12) {
    case 0: (void)api::parse_session_body(body); break;
    case 1: (void)api::parse_policy_body(body); break;
    case 2: (void)api::parse_token_body(body); break;
    case 3: (void)api::parse_service_body(body); break;
    case 4: (void)api::parse_check_body(body); break;
    case 5: (void)api::parse_check_update_body(body); break;
    case 6: (void)api::parse_fault_body(body); break;
    case 7: (void)kvship::kvsim::store::decode_event(body); break;
    default: {
        auto r = api::parse_txn_body(body);
        if (auto const* t = std::get_if<api::txn_body>(&r))
            FUZZ_CHECK(t->ops.size() <= t->element_count);
        break;
    }
    }
    return 0;
}
