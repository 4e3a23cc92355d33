// The replicator's process logger: logging::logger (a level filter plus a sink, passed by reference,
// never global) writing consul-replicate's format (replicate/log_line.hpp), with optional syslog.
#pragma once

#include <logging/logger.hpp>
#include <replicate/config.hpp>
#include <replicate/log_line.hpp>
#include <string>
#include <string_view>

namespace kvship::replicate {

// The one logger type (logging/logger.hpp): the level filter and the sink.
using logging::logger;

// The process logger for a configuration: stderr lines in cfg.format, plus syslog (tag
// consul-replicate, cfg.syslog.facility) when cfg.syslog.enabled. Opens syslog as a side effect.
[[nodiscard]] logger make_process_logger(const config& cfg);

// The syslog facility value (<syslog.h> LOG_LOCAL0 ...) for a name such as "LOCAL0" or "daemon";
// -1 when unknown.
[[nodiscard]] int syslog_facility(std::string_view name);

}  // namespace kvship::replicate
