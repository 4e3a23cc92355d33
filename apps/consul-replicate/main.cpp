// consul-replicate (kvship): parse the command line and config files as consul-replicate v0.4.0
// does, then run the replicator until -once completes, a fatal error, or the kill signal.
#include "app.hpp"
#include "drift_report.hpp"
#include "lost_found.hpp"

#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <replicate/flags.hpp>
#include <replicate/loader.hpp>
#include <string>
#include <vector>

namespace {

using namespace kvship;
using namespace kvship::replicate;

void print_line(std::string_view text)
{
    std::fwrite(text.data(), 1, text.size(), stderr);
    std::fputc('\n', stderr);
    std::fflush(stderr);
}

// Before logging is configured, errors still use consul-replicate's line format.
void print_error(std::string_view component, std::string_view message)
{
    print_line(format_log_line(std::chrono::system_clock::now(), log_level::err, component, message));
}

// An optional Go duration from the environment (test and tuning knobs, not consul-replicate settings).
template <class Duration>
void env_duration(const char* name, Duration& out)
{
    char const* v = std::getenv(name);
    if (v == nullptr || *v == '\0')
        return;
    auto d = parse_go_duration(v);
    if (!d || d.value().count() < 0) {
        print_error("cli", fmt::format("ignoring {}={:?}: not a duration", name, v));
        return;
    }
    out = std::chrono::duration_cast<Duration>(d.value());
}

// An optional count from the environment (a tuning knob).
void env_count(const char* name, std::size_t& out)
{
    char const* v = std::getenv(name);
    if (v == nullptr || *v == '\0')
        return;
    std::size_t n = 0;
    auto const* end = v + std::strlen(v);
    auto const [ptr, ec] = std::from_chars(v, end, n);
    if (ec != std::errc{} || ptr != end) {
        print_error("cli", fmt::format("ignoring {}={:?}: not a count", name, v));
        return;
    }
    out = n;
}

}  // namespace

int main(int argc, char** argv)
{
    std::vector<std::string> args(argv + 1, argv + argc);
    auto parsed = parse_command_line(args);
    if (!parsed) {
        print_line(parsed.error().message);
        return static_cast<int>(parsed.error().code);
    }
    command_line cli = std::move(parsed).value();
    for (auto const& w : cli.warnings)
        print_line(format_log_line(std::chrono::system_clock::now(), log_level::warn, "", w));
    if (cli.help) {
        std::fputs(usage_text().c_str(), stderr);
        return 0;
    }

    std::vector<std::string> warnings;
    auto loaded = load_config(cli, process_environment(), warnings);
    for (auto const& w : warnings)
        print_line(format_log_line(std::chrono::system_clock::now(), log_level::warn, "", w));
    if (!loaded) {
        print_error("cli", loaded.error().message);
        return static_cast<int>(loaded.error().code);
    }
    if (cli.version) {
        print_line(version_text("kvship " KVSHIP_VERSION));
        return 0;
    }
    config cfg = std::move(loaded).value();
    if (cli.lost_found_list || cli.lost_found_restore)
        return run_lost_found_command(cli, cfg, stdout);

    app_tuning tuning;
    env_duration("KVSHIP_BLOCKING_WAIT", tuning.blocking_wait);
    env_duration("KVSHIP_STOP_GRACE", tuning.stop_grace);
    env_duration("KVSHIP_DESTINATION_REFRESH", tuning.destination_refresh);
    env_count("KVSHIP_SOURCE_WATCHES", tuning.source_watches);
    env_count("KVSHIP_GROUP_MIN_KEYS", tuning.group_min_keys);
    env_count("KVSHIP_STREAM_FULL_READS", tuning.stream_full_reads);
    env_count("KVSHIP_KNOWN_DESTINATION_BYTES", tuning.known_destination_bytes);

    {
        logger log = make_process_logger(cfg);
        log.info("", "{}", version_text("kvship " KVSHIP_VERSION));
        for (auto const& w : lint(cfg)) log.warn("cli", "{}", w);
        log.debug("runner", "final config (tokens suppressed):\n{}", redacted_summary(cfg));
    }

    if (cfg.diff) {
        // -diff: read, compare, print; no signals, pid file, metrics, lock or writes.
        int const diff_code = run_drift_report(cfg, make_process_logger(cfg), stdout);
        std::fflush(stderr);
        return diff_code;
    }

    int code = 0;
    {
        asio::io_context ioc(1);
        app a(ioc, std::move(cli), std::move(cfg), tuning);
        code = a.run();
    }
    std::fflush(stdout);
    std::fflush(stderr);
    return code;
}
