// Go's time.ParseDuration and Duration.String, for -max-stale, -wait, retry and transport settings.
// Pure; the algorithm is gotext's (gotext/go_duration.hpp), in this library's result type.
#pragma once

#include <prefixes/result.hpp>

#include <chrono>
#include <string>
#include <string_view>

namespace kvship::replicate {

using nanos = std::chrono::nanoseconds;

// "300ms", "-1.5h", "2h45m", "1us", "1µs", "0". On failure, Go's error text:
// `time: invalid duration "abc"`, `time: missing unit in duration "5"`,
// `time: unknown unit "x" in duration "5x"`.
[[nodiscard]] prefixes::result<nanos, std::string> parse_go_duration(std::string_view text);

// Go's Duration.String(): "0s", "1.5s", "500ms", "1µs", "24h0m0s", "-2m3s".
[[nodiscard]] std::string format_go_duration(nanos d);

}  // namespace kvship::replicate
