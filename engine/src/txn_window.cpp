#include <engine/txn_window.hpp>

#include <algorithm>
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

}  // namespace kvship::engine
