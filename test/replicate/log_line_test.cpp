// consul-replicate v0.4.0's log levels and line format (compat.md §4).
#include <replicate/log_line.hpp>

#include <catch2/catch.hpp>

#include <syslog.h>

using namespace kvship::replicate;
using namespace std::chrono_literals;

namespace {

// 2017-08-10T21:45:04.123456789Z, the v0.4.0 release day.
std::chrono::system_clock::time_point release_time()
{
    return std::chrono::system_clock::time_point{} +
           std::chrono::duration_cast<std::chrono::system_clock::duration>(
               std::chrono::seconds{1502401504} + std::chrono::nanoseconds{123456789}
           );
}

}  // namespace

TEST_CASE("format_log_line: UTC, microseconds, [LEVEL] (component) message", "[replicate][log]")
{
    CHECK(
        format_log_line(release_time(), log_level::info, "runner", "running") ==
        "2017/08/10 21:45:04.123456 [INFO] (runner) running"
    );
    CHECK(
        format_log_line(release_time(), log_level::err, "cli", "boom") ==
        "2017/08/10 21:45:04.123456 [ERR] (cli) boom"
    );
    CHECK(
        format_log_line(release_time(), log_level::warn, "", "-auth is now -consul-auth") ==
        "2017/08/10 21:45:04.123456 [WARN] -auth is now -consul-auth"
    );
    CHECK(
        format_log_line(std::chrono::system_clock::time_point{}, log_level::trace, "view", "x") ==
        "1970/01/01 00:00:00.000000 [TRACE] (view) x"
    );
    // Before the epoch the microseconds are still counted forward within the second.
    CHECK(
        format_log_line(std::chrono::system_clock::time_point{} - 1us, log_level::debug, "a", "b") ==
        "1969/12/31 23:59:59.999999 [DEBUG] (a) b"
    );
}

TEST_CASE("format_log_line_json: one object per line", "[replicate][log]")
{
    CHECK(
        format_log_line_json(release_time(), log_level::info, "runner", "say \"hi\"\n") ==
        R"({"@timestamp":"2017-08-10T21:45:04.123456Z","@level":"info","@module":"runner","@message":"say \"hi\"\n"})"
    );
    CHECK(
        format_log_line_json(release_time(), log_level::err, "", std::string("a\x01") + "b") ==
        R"({"@timestamp":"2017-08-10T21:45:04.123456Z","@level":"err","@message":"a\u0001b"})"
    );
    CHECK(
        format_log_line(log_format::text, release_time(), log_level::info, "r", "m") ==
        format_log_line(release_time(), log_level::info, "r", "m")
    );
    CHECK(
        format_log_line(log_format::json, release_time(), log_level::info, "r", "m") ==
        format_log_line_json(release_time(), log_level::info, "r", "m")
    );
}

TEST_CASE("log levels: names, order, default WARN", "[replicate][log]")
{
    CHECK(default_log_level == log_level::warn);
    CHECK(parse_log_level("trace") == log_level::trace);
    CHECK(parse_log_level("DEBUG") == log_level::debug);
    CHECK(parse_log_level("Info") == log_level::info);
    CHECK(parse_log_level("warn") == log_level::warn);
    CHECK(parse_log_level("err") == log_level::err);
    CHECK_FALSE(parse_log_level("error").has_value());
    CHECK_FALSE(parse_log_level("warning").has_value());
    CHECK_FALSE(parse_log_level("").has_value());
    CHECK(to_string(log_level::err) == "ERR");

    CHECK(log_enabled(log_level::warn, log_level::err));
    CHECK(log_enabled(log_level::warn, log_level::warn));
    CHECK_FALSE(log_enabled(log_level::warn, log_level::info));
    CHECK(log_enabled(log_level::trace, log_level::trace));
    CHECK_FALSE(log_enabled(log_level::err, log_level::warn));

    CHECK(parse_log_format("TEXT") == log_format::text);
    CHECK(parse_log_format("json") == log_format::json);
    CHECK_FALSE(parse_log_format("logfmt").has_value());
}

TEST_CASE("line_passes filters by the [LEVEL] tag - untagged lines always pass", "[replicate][log]")
{
    CHECK(line_passes(log_level::warn, "2017/08/10 21:45:04 [ERR] (cli) x"));
    CHECK(line_passes(log_level::warn, "2017/08/10 21:45:04 [WARN] x"));
    CHECK_FALSE(line_passes(log_level::warn, "2017/08/10 21:45:04 [INFO] (runner) running"));
    CHECK_FALSE(line_passes(log_level::info, "[DEBUG] x"));
    CHECK(line_passes(log_level::err, "ERR (runner) failed to add watch"));
    CHECK(line_passes(log_level::err, "[custom] tag"));
    CHECK(line_passes(log_level::err, "[info] lower case is not a level"));
    CHECK(line_passes(log_level::err, "no closing [bracket"));
}

TEST_CASE("syslog priorities follow consul-template", "[replicate][log]")
{
    CHECK(syslog_priority(log_level::debug) == LOG_INFO);
    CHECK(syslog_priority(log_level::info) == LOG_NOTICE);
    CHECK(syslog_priority(log_level::warn) == LOG_WARNING);
    CHECK(syslog_priority(log_level::err) == LOG_ERR);
    CHECK(syslog_priority(log_level::trace) == LOG_NOTICE);
}
