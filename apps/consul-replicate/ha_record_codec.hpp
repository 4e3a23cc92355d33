// The georedundant-Vault designation record (vault { }): its JSON in the KV, encoded and decoded.
#pragma once

#include <engine/vault_ha.hpp>
#include <prefixes/result.hpp>

#include <string>
#include <string_view>

namespace kvship::replicate {

// The designation record as JSON:
//   {"Epoch":2,"Primary":"dc2","Phase":"promoting","From":"dc1","Force":false,"Reason":"promote",
//    "FenceIndex":812,"UpdatedAt":"2026-12-03T18:00:00Z"}
// UpdatedAt is written for operators and ignored on reading. Errors name the problem.
[[nodiscard]] std::string encode_ha_record(const engine::ha_record& r);
[[nodiscard]] prefixes::result<engine::ha_record, std::string> decode_ha_record(std::string_view text);

}  // namespace kvship::replicate
