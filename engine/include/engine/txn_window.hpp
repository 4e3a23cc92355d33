// The txns of one batch while it is written (apps/consul-replicate/DRIVER.md, "What one pair does",
// step 3): which piece goes out next, what a piece the server refused as too large becomes, and
// whether the batch is done. Pure: the driver sends the pieces and reports each outcome; this decides.
//
// The rules:
// - at most `width` pieces are in flight;
// - the piece that holds the checkpoint (the batch's last op) goes out alone, after every other piece
//   has committed, so the checkpoint never gets ahead of the data;
// - a refused piece goes again as smaller parts before anything else is sent; of its parts, the one
//   holding the checkpoint waits behind all others;
// - after a failure or a stop nothing more goes out; what is in flight still reports;
// - complete() only when every op of the batch has committed.
#pragma once

#include <cstddef>
#include <deque>
#include <optional>
#include <vector>

namespace kvship::engine {

// Ops [from, to) of a batch, sent as one /v1/txn (or, plain_put, one op as a plain KV PUT).
struct txn_piece
{
    std::size_t from = 0;
    std::size_t to = 0;
    bool plain_put = false;

    bool operator==(const txn_piece&) const = default;
};

class txn_window
{
public:
    // `pieces` cover [0, n_ops) in order. With `checkpoint_last`, the piece ending at n_ops holds the
    // checkpoint. Throws std::invalid_argument when the pieces do not cover [0, n_ops) exactly.
    txn_window(std::vector<txn_piece> pieces, std::size_t n_ops, bool checkpoint_last, std::size_t width);

    // The next piece to send now, counted in flight; nullopt when the window is full, the checkpoint's
    // piece must wait, nothing is left, or sending has stopped.
    [[nodiscard]] std::optional<txn_piece> next();

    // Outcomes of pieces next() gave out (std::logic_error for a piece not in flight).
    void committed(const txn_piece& p);
    // The server found `p` too large: it goes again as `parts`, which must cover it in order.
    void split(const txn_piece& p, const std::vector<txn_piece>& parts);
    // `p` failed for good: nothing more is sent.
    void failed(const txn_piece& p);
    // Stop sending (the lock is gone, the process stops); pieces in flight still report.
    void stop() { stopped_ = true; }

    [[nodiscard]] std::size_t in_flight() const { return in_flight_.size(); }
    [[nodiscard]] std::size_t queued() const { return queue_.size(); }
    // Nothing in flight and nothing more will be sent: the driver's loop may end.
    [[nodiscard]] bool idle() const { return in_flight_.empty() && (stopped_ || queue_.empty()); }
    // Every op of the batch committed.
    [[nodiscard]] bool complete() const { return committed_ops_ == n_ops_ && in_flight_.empty(); }
    [[nodiscard]] std::size_t committed_ops() const { return committed_ops_; }

private:
    [[nodiscard]] bool holds_checkpoint(const txn_piece& p) const { return checkpoint_last_ && p.to == n_ops_; }
    void take_in_flight(const txn_piece& p);

    std::deque<txn_piece> queue_;  // the checkpoint's piece, when queued, is always the last
    std::vector<txn_piece> in_flight_;
    std::size_t n_ops_ = 0;
    std::size_t width_ = 1;
    std::size_t committed_ops_ = 0;
    bool checkpoint_last_ = false;
    bool stopped_ = false;
};

}  // namespace kvship::engine
