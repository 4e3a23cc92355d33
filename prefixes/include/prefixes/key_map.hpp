// Mapping keys between the source and destination prefixes of a pair: plain text, leading prefix only.
#pragma once

#include <prefixes/prefix_spec.hpp>

#include <optional>
#include <string>
#include <string_view>

namespace kvship::prefixes {

// destination + (source_key without the leading `source`), as consul-replicate maps keys; no `/`
// is added or removed (`global@dc1:backup` maps `globalization` to `backupization`).
// nullopt when source_key does not start with `source`.
[[nodiscard]] std::optional<std::string> map_key(
    std::string_view source, std::string_view destination, std::string_view source_key
);

[[nodiscard]] std::optional<std::string> map_key(const prefix_spec& spec, std::string_view source_key);

// The inverse: source + (destination_key without the leading `destination`). Only the leading
// prefix is replaced; consul-replicate's delete path used strings.Replace(-1), which rewrote every
// occurrence of the destination text (fixed here). nullopt when the key is outside `destination`.
[[nodiscard]] std::optional<std::string> unmap_key(
    std::string_view source, std::string_view destination, std::string_view destination_key
);

[[nodiscard]] std::optional<std::string> unmap_key(const prefix_spec& spec, std::string_view destination_key);

// Split keys: `head + tail` without building the string (the engine maps 100k keys per round).
// True when head + tail starts with `prefix`.
[[nodiscard]] bool starts_with_split(std::string_view head, std::string_view tail, std::string_view prefix);

// True when head + tail == `text`.
[[nodiscard]] bool equals_split(std::string_view head, std::string_view tail, std::string_view text);

}  // namespace kvship::prefixes
