// The sim's ACL rule parser (store/acl.cpp, HCL or JSON policy rules).
#include "store/store.hpp"

#include <cstddef>
#include <cstdint>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(std::uint8_t const* data, std::size_t size)
{
    (void)kvship::kvsim::parse_acl_rules(std::string_view(reinterpret_cast<char const*>(data), size));
    return 0;
}
