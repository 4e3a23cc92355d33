// A pair's view of its destination for each round (DRIVER.md step 4): read whole (the prefix and the
// status key), read by ranges, or taken from what is known since the last whole read (that listing
// plus every op committed since, engine::known_destination) while it is fresh (younger than
// `refresh`) and small enough to keep (`keep_bytes`). After a failure nothing is known (forget()).
#pragma once

#include "logger.hpp"
#include "metrics.hpp"

#include <engine/known_destination.hpp>
#include <engine/replicator_fsm.hpp>
#include <transport/consul_client.hpp>

#include <boost/asio/cancellation_signal.hpp>

#include <chrono>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace kvship::replicate {

class destination_reader
{
public:
    struct settings
    {
        std::string label;        // the pair's: the `pair` metrics label and log context
        std::string prefix;       // the destination prefix
        std::string status_key;   // the checkpoint's key
        std::chrono::seconds refresh{std::chrono::minutes(10)};  // re-read at least this often
        std::size_t keep_bytes = std::size_t{32} << 20;          // keep the entries up to this size
        bool keep = true;         // false under -dry-run and -once: read whole every round
    };

    // A read's outcome: the round's view, or what failed (`transport`: a request failed, else the
    // status record could not be decoded).
    struct result
    {
        std::optional<engine::event::destination_read> read;
        std::string kind;  // kvship_errors_total's kind when it failed
        std::string what;
        std::optional<transport::consul_error> error;
        bool whole = false;  // the destination was read whole (not taken from what is known, nor by ranges)
    };

    // `destination`, `log` and `metrics` must outlive the reader; requests run under `cancel`.
    destination_reader(
        transport::consul_client& destination,
        settings s,
        asio::cancellation_signal& cancel,
        const logger& log,
        metrics_registry& metrics
    );

    // The view for a round over `ranges` (empty: the whole prefix).
    awaitable<result> read(std::vector<std::string> ranges);
    // Ops committed at the destination: patch what is known (the entries and the checkpoint).
    void committed(std::span<const engine::txn_op> ops);
    // Nothing is known for sure any more (a failure: a timed-out txn may have committed).
    void forget() { known_.reset(); }
    // When what is known goes stale (nullopt: nothing known).
    [[nodiscard]] std::optional<std::chrono::steady_clock::time_point> stale_at() const;

private:
    awaitable<result> read_ranges(const std::vector<std::string>& ranges);
    awaitable<result> read_whole(std::vector<std::string> ranges);

    label_set labels() const { return {{"pair", settings_.label}}; }

    // The destination as it is known to be since the last full read: its entries (the listing plus
    // every op committed since) while they fit keep_bytes, and the checkpoint.
    struct known_state
    {
        std::optional<engine::known_destination> entries;  // nullopt: too big to keep, ranges are read
        std::optional<engine::checkpoint> prev;
        std::chrono::steady_clock::time_point read_at;
        std::uint64_t status_index = 0;  // the status key's ModifyIndex at the listing (lost+found's C)
    };

    transport::consul_client& destination_;
    settings settings_;
    asio::cancellation_signal& cancel_;
    const logger& log_;
    metrics_registry& metrics_;
    std::optional<known_state> known_;
};

}  // namespace kvship::replicate
