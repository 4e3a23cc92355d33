// One pair's destination writes (the pair driver's writer, DRIVER.md step 3): every batch one txn
// (or a plain PUT for a value too big for any txn body), up to `width` of them in flight. What goes
// next is engine::txn_window's, what a finished txn means engine::judge_txn's, how a refused one is
// cut again engine::answer_too_large's; this class only sends, takes the answers back and counts.
// The pair driver opens a window for a stage of batches (write_stage) or for the stream's puts (a
// window it feeds with `append` while the source listing is read).
#pragma once

#include "logger.hpp"
#include "metrics.hpp"

#include <engine/batch.hpp>
#include <engine/txn_window.hpp>
#include <transport/consul_client.hpp>

#include <boost/asio/cancellation_signal.hpp>

#include <chrono>
#include <cstdio>
#include <cstddef>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

namespace kvship::replicate {

// The destination's /v1/txn op limit, shared by every pair writing to it: starts at the
// configured value and drops to what a 413 "too many operations (N > M)" says.
struct txn_limit
{
    std::size_t max_ops = 128;
    std::size_t max_bytes = 512 * 1024;  // txn_max_req_len
};

class destination_writer
{
public:
    struct settings
    {
        std::string label;      // the pair's: the `pair` metrics label and log context
        std::size_t width = 4;  // txns in flight at once
        // -lock fencing (pair_params::fence / on_fenced): the `check-session` op every txn starts with,
        // nullopt when the lock is not held (nothing is sent).
        std::function<std::optional<transport::txn_op>()> fence;
        std::function<void()> on_fenced;
        // -dry-run: nothing is sent; each batch is printed to `plan_out` (when set), the checkpoint
        // named by `status_key`.
        bool dry_run = false;
        std::FILE* plan_out = nullptr;
        std::string status_key;
    };

    // What the pair driver learns from the writes as they finish.
    struct hooks
    {
        std::function<void(const engine::batch&, std::size_t from, std::size_t to)> committed;
        std::function<void()> lock_gone;  // stop the pair at once (it aborts every txn in flight)
        std::function<bool()> stopping;   // the pair is stopping: an aborted txn is not a failure
    };

    // `destination`, `limit`, `log` and `metrics` must outlive the writer.
    destination_writer(
        transport::consul_client& destination,
        settings s,
        txn_limit& limit,
        const logger& log,
        metrics_registry& metrics,
        hooks h
    );

    // The limits the machine cuts batches by now: the learned op and byte limits less the fence op's room.
    [[nodiscard]] engine::batch_limits limits(std::size_t max_value_bytes) const;

    // One window of txns: its batches, one cancellation slot per txn in flight, the outcomes not
    // taken yet. `pump` takes every finished txn into the engine's window, then sends what it gives.
    class window;

    // A window for the stream's puts, its txns run on `ex`; `wake` is called whenever one finishes.
    std::shared_ptr<window> open(asio::any_io_executor ex, std::function<void()> wake);

    struct stage_result
    {
        bool fenced = false;                                         // the lock is gone: stop
        std::optional<std::pair<std::string, std::string>> failure;  // (error kind, what)
        bool complete = false;                                       // every op committed
        std::size_t committed_ops = 0;
        std::size_t ops = 0;
    };

    // Writes one stage (engine::action::apply_batch): the batches laid end to end, the one that
    // carries the checkpoint (last) only after every other committed. `number` is the first batch's
    // in the round of `count`, for the trace.
    awaitable<stage_result> write_stage(std::span<const engine::batch> batches, std::size_t number, std::size_t count);

    // -dry-run's line per op of `b`.
    void print(const engine::batch& b) const;

    // Aborts every txn in flight (they are atomic: committed or not).
    void abort();

private:
    // Ops [from, to) of one batch sent as one txn (the whole batch unless a 413 re-cut it), or one
    // op sent as a plain PUT.
    using chunk = engine::txn_piece;

    struct chunk_outcome
    {
        chunk c;
        std::optional<transport::consul_error> error;
        std::optional<std::string> rolled_back;
        bool fenced = false;  // refused by the fence op: the lock is no longer ours
        bool unheld = false;  // not sent: the lock is not held
        std::size_t sent_ops = 0;
        std::chrono::milliseconds took{0};
    };

    [[nodiscard]] engine::txn_reserve fence_room() const;
    void send(const std::shared_ptr<window>& w, chunk c);
    awaitable<chunk_outcome> send_chunk(const engine::batch* b, chunk c);
    // What a finished txn means: counted, re-queued smaller (`retry`), a failure or the lock lost.
    void judge_outcome(const engine::batch& b, chunk_outcome& o, std::deque<chunk>& retry, window& w);

    label_set labels() const { return {{"pair", settings_.label}}; }

    transport::consul_client& destination_;
    settings settings_;
    txn_limit& limit_;
    const logger& log_;
    metrics_registry& metrics_;
    hooks hooks_;
    std::vector<std::weak_ptr<window>> open_;  // for abort()
    std::optional<asio::steady_timer> stage_wake_;
};

class destination_writer::window : public std::enable_shared_from_this<window>
{
public:
    window(destination_writer& owner, asio::any_io_executor ex, std::size_t width, std::function<void()> wake_fn)
        : window_({}, 0, false, width),
          cancel_(width),
          busy_(width, false),
          owner_(owner),
          ex_(std::move(ex)),
          wake_(std::move(wake_fn))
    {
    }

    // Takes every finished txn's outcome, then sends what the engine's window gives next.
    void pump();
    // Adds one of the stream's batches at the end (the window must have room()).
    void append(engine::batch b);
    // Room for one more batch: fewer than `width` in flight or queued.
    [[nodiscard]] bool room() const { return window_.in_flight() + window_.queued() < busy_.size(); }
    // Nothing in flight, nothing queued, no outcome waiting.
    [[nodiscard]] bool idle() const { return window_.idle() && finished_.empty(); }
    [[nodiscard]] std::size_t in_flight() const { return window_.in_flight(); }
    // Nothing more is sent; txns in flight finish.
    void stop() { window_.stop(); }

    [[nodiscard]] bool fenced() const { return fenced_; }
    [[nodiscard]] const std::optional<std::pair<std::string, std::string>>& failure() const { return failure_; }

private:
    friend class destination_writer;

    struct held
    {
        const engine::batch* b = nullptr;
        std::shared_ptr<const engine::batch> owner;  // the stream's batches; a stage's belong to the machine
        std::size_t number = 0;                      // in the round (a stage's), for the trace
        std::size_t left = 0;                        // ops not committed yet
    };

    // The batch holding window position `pos`.
    std::map<std::size_t, held>::iterator batch_at(std::size_t pos) { return std::prev(batches_.upper_bound(pos)); }

    // Adds `b` at the end of the window's ops; returns its piece.
    chunk add(const engine::batch* b, std::shared_ptr<const engine::batch> owner, std::size_t number)
    {
        std::size_t const from = end_;
        end_ += b->ops.size();
        batches_[from] = held{b, std::move(owner), number, b->ops.size()};
        return chunk{from, end_, b->plain_put};
    }

    engine::txn_window window_;
    std::map<std::size_t, held> batches_;  // by the window position of their first op
    std::size_t end_ = 0;                  // the window's ops so far
    std::size_t count_ = 0;                // batches in the round (0: the stream's)
    std::deque<asio::cancellation_signal> cancel_;
    std::vector<bool> busy_;
    std::vector<std::pair<chunk, chunk_outcome>> finished_;       // (the piece in the window, its outcome)
    std::optional<std::pair<std::string, std::string>> failure_;  // (kind, what)
    bool fenced_ = false;  // the lock is gone: stop at once, not a failure to retry
    destination_writer& owner_;
    asio::any_io_executor ex_;
    std::function<void()> wake_;
};

}  // namespace kvship::replicate
