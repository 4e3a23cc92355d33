// The lost+found .turn record (engine::turn_record) as the JSON stored at <prefix><turn>/.turn.
#pragma once

#include <engine/lost_found.hpp>

#include <string>
#include <string_view>

namespace kvship::replicate {

// {"Turn","OldPrimary","NewPrimary","Time","Rule","SourceReplicated" (null unless the rule used it),
// "LocalCheckpoint","Count"}: Go-style strings, 2-space indent, no trailing newline.
[[nodiscard]] std::string encode_turn_record(const engine::turn_record& r);

// The inverse; missing fields keep their defaults, other fields are ignored. Errors name the problem.
[[nodiscard]] engine::result<engine::turn_record, std::string> decode_turn_record(std::string_view text);

}  // namespace kvship::replicate
