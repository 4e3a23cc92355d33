// consul-replicate's log levels and line format (compat.md §4), as pure functions over values.
#pragma once

#include <logging/logger.hpp>

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace kvship::replicate {

// logutils levels in order (the one level enum of kvship's programs, logging/logger.hpp).
using logging::log_level;
using logging::log_enabled;

// How a line is laid out. text is v0.4.0's; json is a kvship extension (one object per line).
enum class log_format
{
    text,
    json,
};

inline constexpr log_level default_log_level = log_level::warn;

// "TRACE", "DEBUG", "INFO", "WARN", "ERR".
[[nodiscard]] std::string_view to_string(log_level level);

// Case-insensitive; only the five names above (no "error", no "warning"), as logutils.
[[nodiscard]] std::optional<log_level> parse_log_level(std::string_view name);

// "text" or "json", case-insensitive.
[[nodiscard]] std::string_view to_string(log_format format);
[[nodiscard]] std::optional<log_format> parse_log_format(std::string_view name);

// logutils' filter on an already formatted line: the text between the first `[` and the next `]`
// is the level; a line whose level is a known one below `minimum` is dropped, any other line
// (no tag, unknown tag) is printed.
[[nodiscard]] bool line_passes(log_level minimum, std::string_view line);

// v0.4.0's line: `2017/08/10 21:45:04.123456 [INFO] (runner) running` (UTC, microseconds,
// truncated). An empty component leaves out `(component) `. No trailing newline.
[[nodiscard]] std::string format_log_line(
    std::chrono::system_clock::time_point time,
    log_level level,
    std::string_view component,
    std::string_view message
);

// The same event as one JSON object: {"@timestamp":"2017-08-10T21:45:04.123456Z","@level":"info",
// "@module":"runner","@message":"running"} (strings escaped per RFC 8259; no trailing newline).
[[nodiscard]] std::string format_log_line_json(
    std::chrono::system_clock::time_point time,
    log_level level,
    std::string_view component,
    std::string_view message
);

// Dispatch on the configured format.
[[nodiscard]] std::string format_log_line(
    log_format format,
    std::chrono::system_clock::time_point time,
    log_level level,
    std::string_view component,
    std::string_view message
);

// syslog priority for a level, as consul-template maps it: DEBUG ->
// INFO, INFO -> NOTICE, WARN -> WARNING, ERR -> ERR, anything else (TRACE) -> NOTICE.
// Returned as the <syslog.h> priority value (LOG_INFO, LOG_NOTICE, LOG_WARNING, LOG_ERR).
[[nodiscard]] int syslog_priority(log_level level);

}  // namespace kvship::replicate
