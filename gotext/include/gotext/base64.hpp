// Standard base64 with padding (RFC 4648 §4), as Consul uses for KV values in JSON.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace kvship::gotext {

std::string base64_encode(std::string_view bytes);
// nullopt when `text` is not valid padded standard base64 (Go's base64.StdEncoding rules).
std::optional<std::string> base64_decode(std::string_view text);
// Length of the encoding of n bytes.
constexpr std::size_t base64_size(std::size_t n) { return (n + 2) / 3 * 4; }

}  // namespace kvship::gotext
