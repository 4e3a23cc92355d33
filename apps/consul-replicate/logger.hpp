// The replicator's logger as a value (STYLE §3.6): a level filter plus a sink, passed by reference,
// never global. Lines use consul-replicate's format (replicate/log_line.hpp); syslog is optional.
#pragma once

#include <fmt/format.h>

#include <functional>
#include <replicate/config.hpp>
#include <replicate/log_line.hpp>
#include <string>
#include <string_view>

namespace kvship::replicate {

class logger
{
public:
    // (level, component, message): the message is already formatted; the sink lays out the line.
    using sink_fn = std::function<void(log_level, std::string_view, std::string_view)>;

    logger() = default;

    logger(log_level level, sink_fn sink) : level_(level), sink_(std::move(sink)) {}

    [[nodiscard]] bool enabled(log_level l) const { return sink_ && log_enabled(level_, l); }

    [[nodiscard]] log_level level() const { return level_; }

    void write(log_level l, std::string_view component, std::string_view message) const
    {
        if (enabled(l))
            sink_(l, component, message);
    }

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
    log_level level_ = default_log_level;
    sink_fn sink_;
};

// The process logger for a configuration: stderr lines in cfg.format, plus syslog (tag
// consul-replicate, cfg.syslog.facility) when cfg.syslog.enabled. Opens syslog as a side effect.
[[nodiscard]] logger make_process_logger(const config& cfg);

// The syslog facility value (<syslog.h> LOG_LOCAL0 ...) for a name such as "LOCAL0" or "daemon";
// -1 when unknown.
[[nodiscard]] int syslog_facility(std::string_view name);

}  // namespace kvship::replicate
