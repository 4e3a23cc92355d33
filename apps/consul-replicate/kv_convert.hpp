// Consul's KV entries (transport) as the engine's and back, and a transport error's metrics kind: the
// conversions the pair driver, its writer and -diff share.
// It lives here, not in transport/ or engine/, because neither library may know the other's types.
#pragma once

#include <engine/batch.hpp>
#include <engine/types.hpp>
#include <transport/consul_error.hpp>
#include <transport/consul_types.hpp>

#include <string_view>

#include <vector>

namespace kvship::replicate {

// Each entry's key, value bytes (a null Value is the empty value), flags, ModifyIndex and session,
// in listing order.
[[nodiscard]] std::vector<engine::kv_entry> to_engine_entries(std::vector<transport::kv_entry> entries);

// A listing as a snapshot: its index and its entries sorted by key.
[[nodiscard]] engine::snapshot to_snapshot(transport::kv_listing listing);

// An engine op as a /v1/txn op.
[[nodiscard]] transport::txn_op to_transport(const engine::txn_op& op);

// The `kind` label of kvship_errors_total for a transport error, or `fallback` (the phase).
[[nodiscard]] std::string_view error_kind(const transport::consul_error& e, std::string_view fallback);

}  // namespace kvship::replicate
