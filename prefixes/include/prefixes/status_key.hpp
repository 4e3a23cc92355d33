// Where consul-replicate keeps a pair's checkpoint in the destination KV, so existing ones are found.
#pragma once

#include <prefixes/prefix_spec.hpp>

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace kvship::prefixes {

// consul-replicate's `-status-dir` default.
inline constexpr std::string_view default_status_dir = "service/consul-replicate/statuses";

// MD5 (RFC 1321) of `data`. Only here because consul-replicate names status keys by an MD5; it is
// not used for anything that needs a secure hash.
[[nodiscard]] std::array<std::uint8_t, 16> md5(std::string_view data);

// Lower-case hex of md5(data), as Go's hex.EncodeToString(md5.Sum(...)).
[[nodiscard]] std::string md5_hex(std::string_view data);

// The status dir with every trailing `/` removed (Go strings.TrimRight(dir, "/")).
[[nodiscard]] std::string_view trim_status_dir(std::string_view status_dir);

// consul-replicate v0.4.0's checkpoint key:
//   TrimRight(status_dir, "/") + "/" + md5hex(source + "-" + destination)
// The datacenter is not part of it, so `p@dc1:x` and `p@dc2:x` share one checkpoint (compat §3.6).
[[nodiscard]] std::string status_key(
    std::string_view status_dir, std::string_view source, std::string_view destination
);

[[nodiscard]] std::string status_key(std::string_view status_dir, const prefix_spec& spec);

}  // namespace kvship::prefixes
