// A pair's whole-prefix source read (DRIVER.md steps 1 and 4): `GET /v1/kv/<src>?recurse`, blocking past
// an index once one is known, with the stale re-read (read_fresh) and, under -wait min:max, the
// quiescence reads until the source has been quiet (engine::quiescence decides). A listing the ACLs
// filtered is a failure: a partial listing must never drive deletes.
#pragma once

#include "logger.hpp"

#include <transport/consul_client.hpp>
#include <transport/consul_request.hpp>

#include <boost/asio/cancellation_signal.hpp>

#include <chrono>
#include <functional>
#include <optional>
#include <string>

namespace kvship::replicate {

class source_reader
{
public:
    struct settings
    {
        std::string label;               // the pair's: log context
        std::string prefix;              // the source prefix
        transport::read_settings reads;  // ?dc, -max-stale, the blocking wait
        std::chrono::nanoseconds wait_min{0};  // -wait min:max; both 0 = off
        std::chrono::nanoseconds wait_max{0};
        std::function<bool()> stopping;  // the pair is stopping: end the quiescence reads
    };

    // A read's outcome: the listing, or what failed (`error` when a request failed), or stopped.
    struct result
    {
        std::optional<transport::kv_listing> listing;
        std::string kind;  // kvship_errors_total's kind when it failed
        std::string what;
        std::optional<transport::consul_error> error;
        bool stopped = false;
    };

    // `source` and `log` must outlive the reader; requests run under `cancel`.
    source_reader(transport::consul_client& source, settings s, asio::cancellation_signal& cancel, const logger& log);

    // The whole listing, blocking past `index` when it is above 0.
    awaitable<result> read(std::uint64_t index);

private:
    transport::consul_client& source_;
    settings settings_;
    asio::cancellation_signal& cancel_;
    const logger& log_;
};

}  // namespace kvship::replicate
