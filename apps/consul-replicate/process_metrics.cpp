#include "process_metrics.hpp"

#include <charconv>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <sstream>
#include <string>
#include <sys/resource.h>
#include <unistd.h>
#include <vector>

namespace kvship::replicate {

namespace {

template <class T>
std::optional<T> to_number(std::string_view s)
{
    T v{};
    auto const [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc{} || end != s.data() + s.size())
        return std::nullopt;
    return v;
}

std::vector<std::string_view> split_spaces(std::string_view s)
{
    std::vector<std::string_view> out;
    std::size_t i = 0;
    while (i < s.size()) {
        while (i < s.size() && (s[i] == ' ' || s[i] == '\n' || s[i] == '\t')) ++i;
        std::size_t const start = i;
        while (i < s.size() && s[i] != ' ' && s[i] != '\n' && s[i] != '\t') ++i;
        if (i > start)
            out.push_back(s.substr(start, i - start));
    }
    return out;
}

std::optional<std::string> read_text(const char* path)
{
    std::ifstream in(path, std::ios::binary);
    if (!in)
        return std::nullopt;
    std::ostringstream ss;
    ss << in.rdbuf();
    return std::move(ss).str();
}

}  // namespace

std::optional<proc_stat> parse_proc_stat(std::string_view text)
{
    auto const open = text.find('(');
    auto const close = text.rfind(')');
    if (open == std::string_view::npos || close == std::string_view::npos || close < open)
        return std::nullopt;
    // Field 3 (the state) is the first after the command name: field n is fields[n - 3].
    auto const fields = split_spaces(text.substr(close + 1));
    if (fields.size() < 22)
        return std::nullopt;
    auto const utime = to_number<std::uint64_t>(fields[14 - 3]);
    auto const stime = to_number<std::uint64_t>(fields[15 - 3]);
    auto const start = to_number<std::uint64_t>(fields[22 - 3]);
    auto const vsize = to_number<std::uint64_t>(fields[23 - 3]);
    auto const rss = to_number<std::int64_t>(fields[24 - 3]);
    if (!utime || !stime || !start || !vsize || !rss)
        return std::nullopt;
    return proc_stat{*utime, *stime, *start, *vsize, *rss};
}

std::optional<std::uint64_t> parse_boot_time(std::string_view text)
{
    while (!text.empty()) {
        auto const nl = text.find('\n');
        auto const line = text.substr(0, nl);
        text = nl == std::string_view::npos ? std::string_view{} : text.substr(nl + 1);
        auto const f = split_spaces(line);
        if (f.size() == 2 && f[0] == "btime")
            return to_number<std::uint64_t>(f[1]);
    }
    return std::nullopt;
}

process_sample to_sample(const proc_stat& st, long ticks_per_second, long page_size, std::uint64_t boot_time)
{
    double const hz = ticks_per_second > 0 ? static_cast<double>(ticks_per_second) : 100.0;
    process_sample s;
    s.cpu_seconds = static_cast<double>(st.utime_ticks + st.stime_ticks) / hz;
    s.resident_bytes = static_cast<double>(st.rss_pages) * static_cast<double>(page_size);
    s.virtual_bytes = static_cast<double>(st.vsize_bytes);
    s.start_time_seconds = static_cast<double>(boot_time) + static_cast<double>(st.starttime_ticks) / hz;
    return s;
}

std::optional<process_sample> read_process_sample(std::uint64_t boot_time)
{
    auto const text = read_text("/proc/self/stat");
    if (!text)
        return std::nullopt;
    auto const st = parse_proc_stat(*text);
    if (!st)
        return std::nullopt;
    auto s = to_sample(*st, ::sysconf(_SC_CLK_TCK), ::sysconf(_SC_PAGESIZE), boot_time);
    // Every entry of /proc/self/fd, the directory's own descriptor included (as client_golang counts).
    std::error_code ec;
    std::size_t fds = 0;
    for (std::filesystem::directory_iterator it("/proc/self/fd", ec), end; !ec && it != end; it.increment(ec))
        ++fds;
    s.open_fds = static_cast<double>(fds);
    rlimit lim{};
    if (::getrlimit(RLIMIT_NOFILE, &lim) == 0)
        s.max_fds = lim.rlim_cur == RLIM_INFINITY ? static_cast<double>(INT64_MAX) : static_cast<double>(lim.rlim_cur);
    return s;
}

void register_process_metrics(metrics_registry& reg)
{
    using t = metric_type;
    reg.describe(std::string(metric::process_cpu), t::counter, "Total user and system CPU time spent in seconds.");
    reg.describe(std::string(metric::process_resident), t::gauge, "Resident memory size in bytes.");
    reg.describe(std::string(metric::process_virtual), t::gauge, "Virtual memory size in bytes.");
    reg.describe(std::string(metric::process_open_fds), t::gauge, "Number of open file descriptors.");
    reg.describe(std::string(metric::process_max_fds), t::gauge, "Maximum number of open file descriptors.");
    reg.describe(
        std::string(metric::process_start_time),
        t::gauge,
        "Start time of the process since unix epoch in seconds."
    );
    auto const stat = read_text("/proc/stat");
    auto const boot = stat ? parse_boot_time(*stat) : std::nullopt;
    if (!boot)
        return;
    auto const first = read_process_sample(*boot);
    if (!first)
        return;
    // One read of /proc per scrape; the series' callbacks show that sample.
    auto cache = std::make_shared<process_sample>(*first);
    reg.on_render([cache, b = *boot] {
        if (auto s = read_process_sample(b))
            *cache = *s;
    });
    reg.set_callback(metric::process_cpu, {}, [cache] { return cache->cpu_seconds; });
    reg.set_callback(metric::process_resident, {}, [cache] { return cache->resident_bytes; });
    reg.set_callback(metric::process_virtual, {}, [cache] { return cache->virtual_bytes; });
    reg.set_callback(metric::process_open_fds, {}, [cache] { return cache->open_fds; });
    reg.set_callback(metric::process_max_fds, {}, [cache] { return cache->max_fds; });
    reg.set_callback(metric::process_start_time, {}, [cache] { return cache->start_time_seconds; });
}

}  // namespace kvship::replicate
