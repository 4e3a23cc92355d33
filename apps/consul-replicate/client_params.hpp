// The Consul client settings for one agent address, from the configuration (TLS, basic auth, the
// `transport` block) and the process logger. Shared by the replicator (app.cpp) and -diff.
#pragma once

#include "logger.hpp"

#include <replicate/config.hpp>
#include <transport/consul_client.hpp>

#include <string>

namespace kvship::replicate {

// Client retries are off (the pair loop owns retries); `log` must outlive the client.
[[nodiscard]] transport::consul_params consul_client_params(
    const config& cfg, const logger& log, const std::string& address, const std::string& token
);

}  // namespace kvship::replicate
