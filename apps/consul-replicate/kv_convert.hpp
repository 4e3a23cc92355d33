// Consul's KV entries (transport) as the engine's: the one conversion the pair driver and -diff share.
// It lives here, not in transport/ or engine/, because neither library may know the other's types.
#pragma once

#include <engine/types.hpp>
#include <transport/consul_types.hpp>

#include <vector>

namespace kvship::replicate {

// Each entry's key, value bytes (a null Value is the empty value), flags, ModifyIndex and session,
// in listing order.
[[nodiscard]] std::vector<engine::kv_entry> to_engine_entries(std::vector<transport::kv_entry> entries);

// A listing as a snapshot: its index and its entries sorted by key.
[[nodiscard]] engine::snapshot to_snapshot(transport::kv_listing listing);

}  // namespace kvship::replicate
