// The async driver of one replication pair: runs engine::replicator_fsm over the Consul client.
// Each FSM action becomes one awaitable call on one of the pair's parts (source_reader,
// source_watcher, stream_round, destination_reader, destination_writer; pair_books keeps the
// accounts), whose outcome is fed back as the next event. The decisions are the engine's
// (replicator_fsm, txn_window, cut_ops, answer_too_large, watch_plan, known_destination, quiescence).
//
// It lives in apps/ rather than engine/ because engine/ is sans-I/O (a purity ctest greps it for
// Asio).
#pragma once

#include "destination_reader.hpp"
#include "destination_writer.hpp"
#include "logger.hpp"
#include "metrics.hpp"
#include "pair_books.hpp"
#include "pair_params.hpp"
#include "source_reader.hpp"
#include "source_watcher.hpp"
#include "stream_round.hpp"

#include <engine/known_destination.hpp>
#include <engine/replicator_fsm.hpp>
#include <engine/txn_window.hpp>
#include <engine/watch_plan.hpp>
#include <transport/consul_client.hpp>
#include <transport/consul_request.hpp>

#include <boost/asio/cancellation_signal.hpp>

#include <chrono>
#include <cstdio>
#include <deque>
#include <memory>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace kvship::replicate {

class pair_replicator
{
public:
    // `source` and `destination` may be the same client. Everything passed by reference must
    // outlive run(). `plan_out` receives the dry-run plan lines.
    pair_replicator(
        transport::consul_client& source,
        transport::consul_client& destination,
        pair_params params,
        txn_limit& limit,
        const logger& log,
        metrics_registry& metrics,
        std::FILE* plan_out
    );

    // Runs until stopped, until a -once round is done, or until retries run out. Returns the error
    // that ended it (nullopt: stopped or -once complete). Never throws for I/O failures.
    awaitable<std::optional<std::string>> run();

    // Stage 1: stop at the next step boundary; a blocking read or a backoff sleep ends at once, an
    // in-flight txn is allowed to finish.
    void request_stop();
    // Stage 2: also abort an in-flight txn (it is atomic: either committed or not).
    void abort();

    [[nodiscard]] const pair_status& status() const { return books_.status(); }
    // The newest source index whose state the destination mirrors (0 before the first round).
    [[nodiscard]] std::uint64_t applied_index() const { return books_.applied_index(); }

    [[nodiscard]] const std::string& label() const { return params_.label; }

private:
    awaitable<engine::replicator_event> read_source(std::uint64_t index);
    // The round's view of the destination (destination_reader_), or the failure.
    awaitable<engine::replicator_event> read_destination(std::vector<std::string> ranges);

    // Grouped watching (source_watcher): whether to, start (false: the source cannot be split), the
    // next delta or full-read reset from the watches' reports, stop.
    [[nodiscard]] bool grouping_wanted(const engine::replicator_fsm& fsm) const;
    bool start_watches(const engine::replicator_fsm& fsm);
    awaitable<engine::replicator_event> next_delta();
    awaitable<void> stop_watches();
    // One stage of a round (engine::action::apply_batch), written by writer_.
    awaitable<engine::replicator_event> apply_batch(
        std::span<const engine::batch> batches, std::size_t number, std::size_t count
    );
    awaitable<engine::replicator_event> sleep(std::chrono::nanoseconds delay);
    // A failure as the machine's next event: counted by the books; nothing is known of the
    // destination any more.
    engine::replicator_event fail(std::string_view kind, std::string what);

    // Streamed full rounds (DRIVER.md "Streamed full rounds"): a source_stream decodes the source
    // listing into a bounded queue of chunks; the puts the machine hands out are written by a window
    // of destination_writer's txns while the reader goes on.
    void begin_full_read();
    void start_stream();
    awaitable<engine::replicator_event> next_stream_event();
    awaitable<engine::replicator_event> queue_puts(engine::batch b);
    awaitable<void> close_stream();
    // A stream_round's outcome as the machine's next event.
    awaitable<engine::replicator_event> stream_event(stream_round::outcome o);

    label_set labels() const { return {{"pair", params_.label}}; }

    label_set labels(std::string_view k, std::string_view v) const
    {
        return {{"pair", params_.label}, {std::string(k), std::string(v)}};
    }

    transport::consul_client& source_;
    pair_params params_;
    const logger& log_;
    metrics_registry& metrics_;
    pair_books books_;
    bool stopping_ = false;
    asio::cancellation_signal read_cancel_;  // the pair's own reads (not the watches' or the stream's)
    destination_writer writer_;
    destination_reader destination_reader_;
    source_reader source_reader_;
    std::optional<asio::steady_timer> timer_;

    bool first_read_ = true;
    bool fast_no_change_ = false;

    std::unique_ptr<stream_round> stream_;  // set while a streamed full round reads the source
    std::unique_ptr<source_watcher> watch_;  // set while grouped watching runs
    bool group_blocked_ = false;          // after a failed watch: one full-read wake before regrouping
    std::optional<engine::full_read_reason> next_full_reason_;  // the next full read's, when not the usual
};

}  // namespace kvship::replicate
