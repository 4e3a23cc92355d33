// Go's time.ParseDuration and Duration.String, exactly: Consul's wire format for durations (?wait=, session
// TTL and LockDelay, its error texts), and consul-replicate's for its duration flags. Pure functions.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

namespace kvship::gotext {

// "300ms", "-1.5h", "2h45m", "1µs", "0". nullopt when Go would return an error.
[[nodiscard]] std::optional<std::chrono::nanoseconds> parse_go_duration(std::string_view text);

// The same, with Go's error text on failure, e.g. `time: invalid duration "abc"`,
// `time: missing unit in duration "5"`, `time: unknown unit "x" in duration "5x"`.
[[nodiscard]] std::variant<std::chrono::nanoseconds, std::string> parse_go_duration_or_error(
    std::string_view text
);

// Go's Duration.String(): "0s", "1.5s", "500ms", "1µs", "24h0m0s", "-2m3s".
[[nodiscard]] std::string format_go_duration(std::chrono::nanoseconds d);

}  // namespace kvship::gotext
