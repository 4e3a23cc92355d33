// Go's encoding/json string encoding, byte for byte: Consul and consul-replicate write their JSON with it
// (HTML-safe: <, > and & as \u003c..., U+2028/U+2029 escaped, invalid UTF-8 as \ufffd).
#pragma once

#include <string>
#include <string_view>

namespace kvship::transport {

// Appends `s` as a quoted JSON string, escaped exactly as Go's json.Marshal does.
void append_go_json_string(std::string& out, std::string_view s);

}  // namespace kvship::transport
