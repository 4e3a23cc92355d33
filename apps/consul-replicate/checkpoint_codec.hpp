// consul-replicate's status record (engine::checkpoint) as the JSON it stores in the destination KV:
// Go's json.MarshalIndent with a 2-space indent, so a swap with consul-replicate needs no re-copy.
#pragma once

#include <engine/types.hpp>

#include <string>
#include <string_view>

namespace kvship::replicate {

// {\n  "LastReplicated": N,\n  "Source": "...",\n  "Destination": "..."\n} with Go's string escaping
// (HTML-safe: <, > and & as \u003c \u003e \u0026; U+2028/2029 escaped; invalid UTF-8 as \ufffd).
// No trailing newline. A checkpoint with source_datacenter (kvship's gated runs) adds
// ,\n  "SourceDatacenter": "...",\n  "MirroredIndex": N after Destination.
[[nodiscard]] std::string encode_checkpoint(const engine::checkpoint& c);

// Decodes a stored record as Go's json.Unmarshal into consul-replicate's Status struct would:
// an object; LastReplicated an unsigned integer (missing = 0); Source and Destination strings
// (missing = ""); kvship's SourceDatacenter (string) and MirroredIndex (unsigned); other fields ignored; key names matched case-insensitively. Errors name the problem.
[[nodiscard]] engine::result<engine::checkpoint, std::string> decode_checkpoint(std::string_view text);

}  // namespace kvship::replicate
