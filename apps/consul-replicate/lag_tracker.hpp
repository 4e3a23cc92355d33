// When each source change waiting to be applied was first seen: the basis of kvship_lag_seconds and of
// the replication latency histogram. Pure (time is passed in), unit-tested in test/replicate.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <utility>

namespace kvship::replicate {

class lag_tracker
{
public:
    using time_point = std::chrono::steady_clock::time_point;

    explicit lag_tracker(std::size_t max_entries = 1024) : max_(max_entries < 1 ? 1 : max_entries) {}

    // A source read (or watch) returned `index`, of which everything up to `applied` is in the
    // destination. Indexes not above the newest one kept add nothing (they were seen earlier). Past
    // max_entries the newest entry takes the index and keeps its older time: that overstates the lag,
    // it never hides it.
    void seen(std::uint64_t index, std::uint64_t applied, time_point now)
    {
        if (index <= applied)
            return;
        if (!seen_.empty() && index <= seen_.back().first)
            return;
        if (seen_.size() < max_)
            seen_.emplace_back(index, now);
        else
            seen_.back().first = index;
    }

    // Everything through `index` is applied: drops it and returns when the oldest of it was seen.
    std::optional<time_point> applied(std::uint64_t index)
    {
        std::optional<time_point> oldest;
        while (!seen_.empty() && seen_.front().first <= index) {
            if (!oldest)
                oldest = seen_.front().second;
            seen_.pop_front();
        }
        return oldest;
    }

    // When the oldest change still waiting was seen; nullopt when caught up.
    [[nodiscard]] std::optional<time_point> oldest() const
    {
        if (seen_.empty())
            return std::nullopt;
        return seen_.front().second;
    }

    // The index line restarted (a snapshot restore, a tombstone reap): forget what was waiting.
    void clear() { seen_.clear(); }

    [[nodiscard]] std::size_t size() const { return seen_.size(); }

private:
    std::size_t max_;
    std::deque<std::pair<std::uint64_t, time_point>> seen_;
};

}  // namespace kvship::replicate
