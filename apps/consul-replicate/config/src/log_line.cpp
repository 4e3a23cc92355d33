#include <replicate/log_line.hpp>
#include <gotext/go_string.hpp>

#include <fmt/format.h>

#include <array>
#include <ctime>
#include <syslog.h>

namespace kvship::replicate {

namespace {

constexpr std::array<std::string_view, 5> level_names{"TRACE", "DEBUG", "INFO", "WARN", "ERR"};

bool iequals(std::string_view a, std::string_view b)
{
    if (a.size() != b.size())
        return false;
    for (std::size_t i = 0; i < a.size(); ++i) {
        char x = a[i];
        char y = b[i];
        if (x >= 'a' && x <= 'z')
            x = static_cast<char>(x - 'a' + 'A');
        if (y >= 'a' && y <= 'z')
            y = static_cast<char>(y - 'a' + 'A');
        if (x != y)
            return false;
    }
    return true;
}

struct utc_parts
{
    std::tm tm{};
    long long micros = 0;
};

// Splits a time point into a UTC calendar time and the microseconds within that second (floored,
// also before 1970, as Go's time formatting does).
utc_parts split_utc(std::chrono::system_clock::time_point time)
{
    auto const us = std::chrono::floor<std::chrono::microseconds>(time.time_since_epoch());
    auto const secs = std::chrono::floor<std::chrono::seconds>(us);
    utc_parts parts;
    parts.micros = (us - secs).count();
    std::time_t const t = static_cast<std::time_t>(secs.count());
    gmtime_r(&t, &parts.tm);
    return parts;
}

// The time of a line in UTC to the microsecond: `2017/08/10 21:45:04.123456` (date_sep '/', at ' ') or
// `2017-08-10T21:45:04.123456` ('-', 'T').
std::string format_utc(std::chrono::system_clock::time_point time, char date_sep, char at)
{
    auto const p = split_utc(time);
    return fmt::format(
        "{:04}{}{:02}{}{:02}{}{:02}:{:02}:{:02}.{:06}",
        p.tm.tm_year + 1900,
        date_sep,
        p.tm.tm_mon + 1,
        date_sep,
        p.tm.tm_mday,
        at,
        p.tm.tm_hour,
        p.tm.tm_min,
        p.tm.tm_sec,
        p.micros
    );
}

}  // namespace

std::string_view to_string(log_level level)
{
    return level_names[static_cast<std::size_t>(level)];
}

std::optional<log_level> parse_log_level(std::string_view name)
{
    for (std::size_t i = 0; i < level_names.size(); ++i) {
        if (iequals(name, level_names[i]))
            return static_cast<log_level>(i);
    }
    return std::nullopt;
}

std::string_view to_string(log_format format)
{
    return format == log_format::json ? "json" : "text";
}

std::optional<log_format> parse_log_format(std::string_view name)
{
    if (iequals(name, "text"))
        return log_format::text;
    if (iequals(name, "json"))
        return log_format::json;
    return std::nullopt;
}

bool line_passes(log_level minimum, std::string_view line)
{
    auto const open = line.find('[');
    if (open == std::string_view::npos)
        return true;
    auto const close = line.find(']', open);
    if (close == std::string_view::npos)
        return true;
    std::string_view const tag = line.substr(open + 1, close - open - 1);
    for (std::size_t i = 0; i < level_names.size(); ++i) {
        if (tag == level_names[i])  // logutils compares exactly (upper case)
            return log_enabled(minimum, static_cast<log_level>(i));
    }
    return true;
}

std::string format_log_line(
    std::chrono::system_clock::time_point time,
    log_level level,
    std::string_view component,
    std::string_view message
)
{
    std::string out = fmt::format("{} [{}] ", format_utc(time, '/', ' '), to_string(level));
    if (!component.empty()) {
        out += '(';
        out += component;
        out += ") ";
    }
    out += message;
    return out;
}

std::string format_log_line_json(
    std::chrono::system_clock::time_point time,
    log_level level,
    std::string_view component,
    std::string_view message
)
{
    std::string out = fmt::format("{{\"@timestamp\":\"{}Z\",\"@level\":", format_utc(time, '-', 'T'));
    std::string lower(to_string(level));
    for (auto& c : lower) c = static_cast<char>(c - 'A' + 'a');
    gotext::append_go_json_string(out, lower);
    if (!component.empty()) {
        out += ",\"@module\":";
        gotext::append_go_json_string(out, component);
    }
    out += ",\"@message\":";
    gotext::append_go_json_string(out, message);
    out += '}';
    return out;
}

std::string format_log_line(
    log_format format,
    std::chrono::system_clock::time_point time,
    log_level level,
    std::string_view component,
    std::string_view message
)
{
    if (format == log_format::json)
        return format_log_line_json(time, level, component, message);
    return format_log_line(time, level, component, message);
}

int syslog_priority(log_level level)
{
    switch (level) {
        case log_level::debug:
            return LOG_INFO;
        case log_level::info:
            return LOG_NOTICE;
        case log_level::warn:
            return LOG_WARNING;
        case log_level::err:
            return LOG_ERR;
        case log_level::trace:
            break;
    }
    return LOG_NOTICE;
}

}  // namespace kvship::replicate
