#include <engine/txn_window.hpp>

#include <algorithm>
#include <span>
#include <stdexcept>

namespace kvship::engine {

namespace {

// Whether `parts` cover [from, to) in order, without gaps, overlaps or empty parts.
bool covers(const std::vector<txn_piece>& parts, std::size_t from, std::size_t to)
{
    std::size_t pos = from;
    for (auto const& p : parts) {
        if (p.from != pos || p.to <= p.from)
            return false;
        pos = p.to;
    }
    return pos == to && (from < to || parts.empty());
}

}  // namespace

txn_window::txn_window(std::vector<txn_piece> pieces, std::size_t n_ops, bool checkpoint_last, std::size_t width)
    : queue_(pieces.begin(), pieces.end()),
      n_ops_(n_ops),
      width_(std::max<std::size_t>(1, width)),
      checkpoint_last_(checkpoint_last && n_ops > 0)
{
    if (!covers(pieces, 0, n_ops))
        throw std::invalid_argument("txn_window: the pieces do not cover the batch's ops in order");
}

void txn_window::append(const txn_piece& p)
{
    if (checkpoint_last_ || p.from != n_ops_ || p.to <= p.from)
        throw std::invalid_argument("txn_window: an appended piece must cover the next ops of a window without a checkpoint");
    queue_.push_back(p);
    n_ops_ = p.to;
}

std::optional<txn_piece> txn_window::next()
{
    if (stopped_ || queue_.empty() || in_flight_.size() >= width_)
        return std::nullopt;
    txn_piece const p = queue_.front();
    // The checkpoint's piece is the last queued: it goes when it is alone and nothing is in flight.
    if (holds_checkpoint(p) && (!in_flight_.empty() || queue_.size() > 1))
        return std::nullopt;
    queue_.pop_front();
    in_flight_.push_back(p);
    return p;
}

void txn_window::take_in_flight(const txn_piece& p)
{
    auto const it = std::find(in_flight_.begin(), in_flight_.end(), p);
    if (it == in_flight_.end())
        throw std::logic_error("txn_window: an outcome for a piece that is not in flight");
    in_flight_.erase(it);
}

void txn_window::committed(const txn_piece& p)
{
    take_in_flight(p);
    committed_ops_ += p.to - p.from;
}

void txn_window::split(const txn_piece& p, const std::vector<txn_piece>& parts)
{
    if (!covers(parts, p.from, p.to) || parts.empty())
        throw std::logic_error("txn_window: the parts of a refused piece do not cover it");
    take_in_flight(p);
    // The parts go before anything else; the checkpoint's part stays behind every other piece.
    auto first_after = parts.end();
    if (holds_checkpoint(parts.back()))
        first_after = parts.end() - 1;
    queue_.insert(queue_.begin(), parts.begin(), first_after);
    if (first_after != parts.end())
        queue_.push_back(parts.back());
}

void txn_window::failed(const txn_piece& p)
{
    take_in_flight(p);
    stopped_ = true;
}

txn_reserve fence_reserve(std::string_view key, std::size_t session_bytes)
{
    // {"KV":{"Verb":"check-session","Key":...,"Session":"..."}}, and its comma.
    return txn_reserve{1, txn_op_overhead_bytes + json_string_bound(key) + session_bytes + 16};
}

batch_limits limits_for_txns(
    std::size_t server_ops, std::size_t server_bytes, std::size_t max_value_bytes, txn_reserve reserve
)
{
    batch_limits l;
    l.max_ops = server_ops > reserve.ops ? server_ops - reserve.ops : 1;
    l.max_bytes = server_bytes > reserve.bytes ? server_bytes - reserve.bytes : 0;
    l.max_value_bytes = max_value_bytes;
    l.plain_put_oversized = true;
    return l;
}

too_large_answer answer_too_large(
    const batch& b,
    const txn_piece& p,
    const txn_too_large& r,
    std::size_t server_ops,
    std::size_t server_bytes,
    txn_reserve reserve
)
{
    too_large_answer out;
    std::size_t const n = p.to - p.from;
    if (n <= 1 || p.to > b.ops.size())
        return out;
    std::size_t ops_limit = server_ops;
    std::size_t bytes_limit = server_bytes;
    bool halve = false;
    if (r.too_many_ops) {
        std::size_t const sent = std::max(n, r.sent_ops);
        std::size_t const learned = r.limit > 0 && r.limit < sent ? r.limit : sent / 2;
        if (learned < server_ops) {
            out.learned_ops = learned;
            ops_limit = learned;
        }
    } else if (r.limit > 0 && r.limit < server_bytes) {
        out.learned_bytes = r.limit;
        bytes_limit = r.limit;
    } else {
        halve = true;
    }
    if (!halve) {
        auto const ops = std::span<const txn_op>(b.ops).subspan(p.from, n);
        std::span<const std::uint64_t> sources;
        if (b.sources.size() == b.ops.size())
            sources = std::span<const std::uint64_t>(b.sources).subspan(p.from, n);
        auto const limits = limits_for_txns(ops_limit, bytes_limit, ~std::size_t{0}, reserve);
        out.parts = cut_ops(ops, sources, limits);
        for (auto& part : out.parts) {
            part.from += p.from;
            part.to += p.from;
        }
        halve = out.parts.size() < 2;
    }
    if (halve) {
        std::size_t const mid = p.from + n / 2;
        out.parts = {txn_piece{p.from, mid, false}, txn_piece{mid, p.to, false}};
    }
    return out;
}

txn_verdict judge_txn(txn_answer a, bool recut_parts, bool stopping)
{
    using k = txn_verdict::kind;
    switch (a) {
        case txn_answer::committed:
            return {k::committed, "ok", false};
        case txn_answer::too_many_ops:
        case txn_answer::too_large:
            return recut_parts ? txn_verdict{k::recut, "too_large", false} : txn_verdict{k::failure, "error", false};
        case txn_answer::fenced:
            return {k::lock_gone, "rolled_back", true};
        case txn_answer::not_held:
            return {k::lock_gone, {}, false};
        case txn_answer::cancelled:
            return {stopping ? k::nothing : k::failure, "error", false};
        case txn_answer::failed:
            return {k::failure, "error", false};
        case txn_answer::rolled_back:
            return {k::failure, "rolled_back", false};
    }
    return {k::failure, "error", false};
}

}  // namespace kvship::engine
