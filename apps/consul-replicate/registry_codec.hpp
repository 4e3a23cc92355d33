// A replicator registry entry (registry.hpp): its JSON in the KV, encoded and decoded.
#pragma once

#include <engine/two_way.hpp>

#include <optional>
#include <string>
#include <string_view>

namespace kvship::replicate {

[[nodiscard]] std::string encode_registry_entry(const engine::published_replicator& r);
// nullopt for a value that is not such an entry (ignored by the check).
[[nodiscard]] std::optional<engine::published_replicator> decode_registry_entry(std::string_view text);

}  // namespace kvship::replicate
