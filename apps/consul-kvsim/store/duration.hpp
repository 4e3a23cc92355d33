// The sim speaks Consul's durations through transport's Go duration functions.
#pragma once

#include <transport/go_duration.hpp>

namespace kvship::kvsim {

using transport::format_go_duration;
using transport::parse_go_duration;
using transport::parse_go_duration_or_error;

}  // namespace kvship::kvsim
