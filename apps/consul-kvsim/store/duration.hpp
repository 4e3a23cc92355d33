// The sim speaks Consul's durations through gotext's Go duration functions.
#pragma once

#include <gotext/go_duration.hpp>

namespace kvship::kvsim {

using gotext::format_go_duration;
using gotext::parse_go_duration;
using gotext::parse_go_duration_or_error;

}  // namespace kvship::kvsim
