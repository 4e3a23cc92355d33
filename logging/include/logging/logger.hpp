// The logger of kvship's programs as a value (STYLE §3.6, Boost.Redis's): a level filter plus a sink,
// passed by reference or copied, never global. consul-replicate, the Consul client (transport) and
// consul-kvsim share it; each program's sink lays out its own lines (consul-replicate's format, the
// sim's), so sharing it changes no output.
#pragma once

#include <fmt/format.h>

#include <functional>
#include <string_view>
#include <utility>

namespace kvship::logging {

// logutils' levels in order; a line is printed when its level is at or above the configured one.
enum class log_level
{
    trace,
    debug,
    info,
    warn,
    err,
};

// True when a line at `line` passes a filter set to `minimum`.
[[nodiscard]] constexpr bool log_enabled(log_level minimum, log_level line) noexcept
{
    return static_cast<int>(line) >= static_cast<int>(minimum);
}

class logger
{
public:
    // (level, component, message): the message is already formatted; the sink lays out the line. The
    // component is empty where a program has none (the sim) or leaves it to its caller (transport).
    using sink_fn = std::function<void(log_level, std::string_view, std::string_view)>;

    // Logs nothing.
    logger() = default;

    logger(log_level level, sink_fn sink) : level_(level), sink_(std::move(sink)) {}

    [[nodiscard]] bool enabled(log_level l) const { return sink_ && log_enabled(level_, l); }

    [[nodiscard]] log_level level() const { return level_; }

    void write(log_level l, std::string_view component, std::string_view message) const
    {
        if (enabled(l))
            sink_(l, component, message);
    }

    // A line without a component.
    void write(log_level l, std::string_view message) const { write(l, {}, message); }

    // fmt formats only when the level passes.
    template <class... Args>
    void log(log_level l, std::string_view component, fmt::format_string<Args...> f, Args&&... args) const
    {
        if (enabled(l))
            sink_(l, component, fmt::format(f, std::forward<Args>(args)...));
    }

    template <class... Args>
    void trace(std::string_view c, fmt::format_string<Args...> f, Args&&... args) const
    {
        log(log_level::trace, c, f, std::forward<Args>(args)...);
    }

    template <class... Args>
    void debug(std::string_view c, fmt::format_string<Args...> f, Args&&... args) const
    {
        log(log_level::debug, c, f, std::forward<Args>(args)...);
    }

    template <class... Args>
    void info(std::string_view c, fmt::format_string<Args...> f, Args&&... args) const
    {
        log(log_level::info, c, f, std::forward<Args>(args)...);
    }

    template <class... Args>
    void warn(std::string_view c, fmt::format_string<Args...> f, Args&&... args) const
    {
        log(log_level::warn, c, f, std::forward<Args>(args)...);
    }

    template <class... Args>
    void err(std::string_view c, fmt::format_string<Args...> f, Args&&... args) const
    {
        log(log_level::err, c, f, std::forward<Args>(args)...);
    }

private:
    log_level level_ = log_level::warn;  // consul-replicate's default (replicate::default_log_level)
    sink_fn sink_;
};

}  // namespace kvship::logging
