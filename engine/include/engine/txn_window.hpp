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

#include <engine/batch.hpp>

#include <cstddef>
#include <deque>
#include <optional>
#include <string_view>
#include <vector>

namespace kvship::engine {

class txn_window
{
public:
    // `pieces` cover [0, n_ops) in order. With `checkpoint_last`, the piece ending at n_ops holds the
    // checkpoint. Throws std::invalid_argument when the pieces do not cover [0, n_ops) exactly.
    txn_window(std::vector<txn_piece> pieces, std::size_t n_ops, bool checkpoint_last, std::size_t width);

    // An open-ended window (the stream's puts): `p` covers the next ops, [n_ops, p.to). Throws
    // std::invalid_argument when it does not, or when the window holds a checkpoint.
    void append(const txn_piece& p);

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

// What each txn carries besides a batch's ops: with -lock, the fence (`check-session` on the lock
// key) as its first op.
struct txn_reserve
{
    std::size_t ops = 0;
    std::size_t bytes = 0;

    bool operator==(const txn_reserve&) const = default;
};

// The room of the fence op on `key` with a session id of `session_bytes` bytes.
[[nodiscard]] txn_reserve fence_reserve(std::string_view key, std::size_t session_bytes);

// The limits batches are cut by so that a txn (a batch plus the reserve) stays within the server's
// `server_ops` ops and `server_bytes` body bytes: at least 1 op; oversized puts become plain PUTs.
[[nodiscard]] batch_limits limits_for_txns(
    std::size_t server_ops, std::size_t server_bytes, std::size_t max_value_bytes, txn_reserve reserve
);

// The server refused a txn as too large (413).
struct txn_too_large
{
    bool too_many_ops = true;  // "too many operations (N > M)"; else the request body was too large
    std::size_t limit = 0;     // the M the server named; 0: it said none
    std::size_t sent_ops = 0;  // the ops the server saw, the fence op included
};

// What a refusal teaches and how the refused piece goes again.
struct too_large_answer
{
    std::optional<std::size_t> learned_ops;    // the server's op limit, when lower than known
    std::optional<std::size_t> learned_bytes;  // its body limit, when it named a lower one
    // The piece cut again (covering it in order, each part smaller than it); empty when it cannot be
    // made smaller (one op): the refusal is a failure of the round.
    std::vector<txn_piece> parts;
};

// The rules for a refused piece `p` (ops [p.from, p.to) of `b`) when the server's limits were known
// as `server_ops` and `server_bytes`:
// - too many ops: the limit is the one the server named when it is below what was sent, else half
//   of what was sent; it is learned when lower than server_ops; the piece is cut again by cut_ops
//   with the (learned) limit, so each source transaction's writes stay together where they fit;
// - too many bytes with a named limit below server_bytes: learned, the piece is cut again by it;
//   without one, the piece goes again as its two halves;
// - a cut that would give the piece back whole gives its two halves instead.
[[nodiscard]] too_large_answer answer_too_large(
    const batch& b,
    const txn_piece& p,
    const txn_too_large& r,
    std::size_t server_ops,
    std::size_t server_bytes,
    txn_reserve reserve
);

// How one finished txn (or plain PUT) ended, as the driver saw it.
enum class txn_answer
{
    committed,
    too_many_ops,  // 413 "too many operations"
    too_large,     // 413, the body or a value too large
    fenced,        // rolled back by its check-session op: the lock is no longer this process's
    not_held,      // not sent: the lock was not held
    cancelled,     // aborted (a stop, or the lock lost)
    failed,        // any other error
    rolled_back,   // a 409 by a data op, or a plain PUT answered false
};

// What it means for the round.
struct txn_verdict
{
    enum class kind
    {
        committed,  // count its ops as applied
        recut,      // send it again cut as answer_too_large says
        lock_gone,  // stop the pair at once (abort what is in flight); with fenced_batch the lock is lost
        failure,    // the round fails (the first failure's reason is reported) and is retried
        nothing,    // an abort while stopping: not a failure
    };

    kind what = kind::committed;
    std::string_view result;    // kvship_txn_total{result}: ok, too_large, rolled_back, error; empty: none
    bool fenced_batch = false;  // kvship_fenced_batches_total +1, the lock counts as lost

    bool operator==(const txn_verdict&) const = default;
};

// The rules: committed -> committed (ok); a 413 that answer_too_large could cut (`recut_parts`) -> recut
// (too_large), one it could not (one op) -> failure (error); fenced -> lock_gone (rolled_back, a fenced
// batch); not held -> lock_gone (not counted: nothing was sent); cancelled while `stopping` -> nothing
// (error), else failure (error); failed -> failure (error); rolled back -> failure (rolled_back).
[[nodiscard]] txn_verdict judge_txn(txn_answer a, bool recut_parts, bool stopping);

}  // namespace kvship::engine
