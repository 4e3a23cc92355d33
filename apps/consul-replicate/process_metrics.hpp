// The standard process_* metrics every Prometheus client exports (CPU seconds, memory, file
// descriptors, start time), read from /proc at scrape time. The parsing is pure and unit-tested;
// only read_process_sample() does I/O.
#pragma once

#include "metrics.hpp"

#include <cstdint>
#include <optional>
#include <string_view>

namespace kvship::replicate {

namespace metric {
inline constexpr std::string_view process_cpu = "process_cpu_seconds_total";
inline constexpr std::string_view process_resident = "process_resident_memory_bytes";
inline constexpr std::string_view process_virtual = "process_virtual_memory_bytes";
inline constexpr std::string_view process_open_fds = "process_open_fds";
inline constexpr std::string_view process_max_fds = "process_max_fds";
inline constexpr std::string_view process_start_time = "process_start_time_seconds";
}  // namespace metric

// The fields of /proc/<pid>/stat (proc(5)) the metrics need.
struct proc_stat
{
    std::uint64_t utime_ticks = 0;      // field 14
    std::uint64_t stime_ticks = 0;      // field 15
    std::uint64_t starttime_ticks = 0;  // field 22, clock ticks after boot
    std::uint64_t vsize_bytes = 0;      // field 23
    std::int64_t rss_pages = 0;         // field 24
};

// Parses the one line of /proc/<pid>/stat. The command name (field 2) is in parentheses and may hold
// spaces and ')' itself: the fields after it are counted from the last ')'. nullopt when malformed.
[[nodiscard]] std::optional<proc_stat> parse_proc_stat(std::string_view text);

// The "btime N" line of /proc/stat: the boot time in Unix seconds. nullopt when absent.
[[nodiscard]] std::optional<std::uint64_t> parse_boot_time(std::string_view proc_stat_text);

// What the process_* gauges show.
struct process_sample
{
    double cpu_seconds = 0;
    double resident_bytes = 0;
    double virtual_bytes = 0;
    double start_time_seconds = 0;
    double open_fds = 0;
    double max_fds = 0;
};

// Pure: the sample from a parsed stat line, the clock tick rate, the page size and the boot time.
[[nodiscard]] process_sample to_sample(
    const proc_stat& st, long ticks_per_second, long page_size, std::uint64_t boot_time
);

// Reads /proc/self/stat, /proc/self/fd and RLIMIT_NOFILE (the boot time is read once, by the
// caller). nullopt when /proc/self/stat cannot be read or parsed.
[[nodiscard]] std::optional<process_sample> read_process_sample(std::uint64_t boot_time);

// Declares the process_* families and sets them from /proc once per render (scrape). Without a
// readable /proc (not Linux), the families are declared with no series.
void register_process_metrics(metrics_registry& reg);

}  // namespace kvship::replicate
