// A pair's bookkeeping: what each source read, committed txn, failure and round report means for its
// metrics, its status (/readyz), its logs and its lag (the applied and source indexes, kvship_lag_*).
// The pair driver tells it what happened; it decides nothing about replication.
#pragma once

#include "lag_tracker.hpp"
#include "logger.hpp"
#include "metrics.hpp"

#include <engine/batch.hpp>
#include <engine/replicator_fsm.hpp>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace kvship::replicate {

// What /readyz and the logs need to know about a pair.
struct pair_status
{
    bool initial_sync_done = false;  // a round finished with nothing refused
    bool paused = false;             // the delete guard holds deletes back
    bool failing = false;            // the last action failed; retrying
    std::string last_error;
    bool finished = false;
};

class pair_books
{
public:
    // `config` (the pair's machine's), `log` and `metrics` must outlive the books. Declares the pair's
    // series at 0 and the lag gauges, computed at scrape time so that they keep growing while it is stuck.
    pair_books(
        std::string label, const engine::replicator_config& config, bool dry_run, const logger& log, metrics_registry& metrics
    );

    // The lag callbacks point at this object: once the pair's run ends, they become plain zeros.
    void freeze();

    // A whole source listing at index `got` (a plain or streamed read): the source metrics, the lag
    // bookkeeping (an index below the applied one starts a new index line), the pair not failing.
    void source_read(bool known_leader, std::chrono::milliseconds last_contact, std::uint64_t got);
    // A watched group's listing at index `got`.
    void group_read(std::uint64_t got);
    // The machine's applied index moved on without a round (a new index whose entries equal the last).
    void applied(std::uint64_t index);
    // Ops [from, to) of `b` committed: counted as puts, deletes, bytes and lost+found saves.
    void committed(const engine::batch& b, std::size_t from, std::size_t to);
    // A failure (`kind` for kvship_errors_total); the next retry's log line names it.
    void failed(std::string_view kind, const std::string& what);
    // An action succeeded: the pair is not failing, the retry count starts over.
    void succeeded();
    // The destination was read: not failing (the retry count stays).
    void destination_read() { status_.failing = false; }
    // The end of the run.
    void finished() { status_.finished = true; }
    // The machine's report of a round.
    void round(const engine::round_report& r);

    [[nodiscard]] const pair_status& status() const { return status_; }
    [[nodiscard]] std::uint64_t applied_index() const { return applied_index_; }
    [[nodiscard]] unsigned failures() const { return failures_; }
    [[nodiscard]] const std::string& last_failure() const { return last_failure_; }

private:
    void note_seen(std::uint64_t index);
    // Drops what is applied through `index`; returns when the oldest dropped index was seen.
    std::optional<std::chrono::steady_clock::time_point> mark_applied(std::uint64_t index);

    label_set labels() const { return {{"pair", label_}}; }

    label_set labels(std::string_view k, std::string_view v) const
    {
        return {{"pair", label_}, {std::string(k), std::string(v)}};
    }

    std::string label_;
    const engine::replicator_config& config_;
    bool dry_run_;
    const logger& log_;
    metrics_registry& metrics_;

    pair_status status_;
    std::uint64_t source_index_ = 0;
    std::uint64_t applied_index_ = 0;
    std::optional<std::chrono::steady_clock::time_point> behind_since_;  // seen_.oldest()
    // The source indexes seen above the applied one, each with when it was first seen: a round that
    // applies through index X drops those <= X, so under a steady stream of changes kvship_lag_seconds
    // is the age of the changes still waiting, not the time since the pair was last fully caught up.
    lag_tracker seen_;
    unsigned failures_ = 0;
    std::string last_failure_;
    std::string last_refusal_;
    std::size_t lost_found_committed_ = 0;  // lost+found saves committed since the last round report
    bool lost_found_logged_ = false;        // the rule was logged once
};

}  // namespace kvship::replicate
