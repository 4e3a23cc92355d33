#include "logger.hpp"

#include <array>
#include <chrono>
#include <cstdio>
#include <syslog.h>
#include <utility>

namespace kvship::replicate {

namespace {

bool iequals(std::string_view a, std::string_view b)
{
    if (a.size() != b.size())
        return false;
    for (std::size_t i = 0; i < a.size(); ++i) {
        auto const x = static_cast<unsigned char>(a[i]);
        auto const y = static_cast<unsigned char>(b[i]);
        auto const ux = (x >= 'a' && x <= 'z') ? x - 'a' + 'A' : x;
        auto const uy = (y >= 'a' && y <= 'z') ? y - 'a' + 'A' : y;
        if (ux != uy)
            return false;
    }
    return true;
}

}  // namespace

int syslog_facility(std::string_view name)
{
    struct entry
    {
        std::string_view name;
        int value;
    };

    static constexpr std::array<entry, 20> table{{
        {"KERN", LOG_KERN},     {"USER", LOG_USER},     {"MAIL", LOG_MAIL},         {"DAEMON", LOG_DAEMON},
        {"AUTH", LOG_AUTH},     {"SYSLOG", LOG_SYSLOG}, {"LPR", LOG_LPR},           {"NEWS", LOG_NEWS},
        {"UUCP", LOG_UUCP},     {"CRON", LOG_CRON},     {"AUTHPRIV", LOG_AUTHPRIV}, {"FTP", LOG_FTP},
        {"LOCAL0", LOG_LOCAL0}, {"LOCAL1", LOG_LOCAL1}, {"LOCAL2", LOG_LOCAL2},     {"LOCAL3", LOG_LOCAL3},
        {"LOCAL4", LOG_LOCAL4}, {"LOCAL5", LOG_LOCAL5}, {"LOCAL6", LOG_LOCAL6},     {"LOCAL7", LOG_LOCAL7},
    }};
    for (auto const& e : table) {
        if (iequals(e.name, name))
            return e.value;
    }
    return -1;
}

logger make_process_logger(const config& cfg)
{
    bool use_syslog = false;
    if (cfg.syslog.enabled) {
        int const facility = syslog_facility(cfg.syslog.facility);
        if (facility >= 0) {
            openlog("consul-replicate", LOG_PID, facility);
            use_syslog = true;
        }
    }
    auto const format = cfg.format;
    auto sink = [format, use_syslog](log_level level, std::string_view component, std::string_view message) {
        std::string line =
            format_log_line(format, std::chrono::system_clock::now(), level, component, message);
        line.push_back('\n');
        std::fwrite(line.data(), 1, line.size(), stderr);
        std::fflush(stderr);
        if (use_syslog) {
            // The [LEVEL] tag is left out: syslog carries the priority.
            std::string text =
                component.empty() ? std::string(message) : fmt::format("({}) {}", component, message);
            ::syslog(syslog_priority(level), "%s", text.c_str());
        }
    };
    return logger(cfg.level, std::move(sink));
}

}  // namespace kvship::replicate
