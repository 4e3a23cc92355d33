// -wait min:max, consul-replicate's quiescence (consul-template's): after a change is seen, keep
// reading while changes keep coming, until the source has been quiet for `min` or `max` has passed
// since the first change. Pure: the driver sends each blocking read and reports what it answered.
#pragma once

#include <algorithm>
#include <chrono>

namespace kvship::engine {

class quiescence
{
public:
    using time = std::chrono::nanoseconds;  // monotonic, from any origin

    enum class answer
    {
        same,       // the read blocked to its wait and the index did not move: quiet for `min`
        advanced,   // more changes: take the new listing and read again
        went_back,  // the index went backwards: take the listing and stop (the machine starts over)
        failed,     // an error or a filtered listing: act on what was read (the next read reports it)
    };

    enum class verdict
    {
        read,       // read again, blocking for `wait`
        min_fired,  // quiet for `min`: replicate now ("quiescence minTimer fired")
        max_fired,  // `max` passed since the first change ("quiescence maxTimer fired")
        done,       // stop reading (went_back or failed)
    };

    struct step
    {
        verdict what = verdict::read;
        std::chrono::milliseconds wait{0};  // read: the blocking wait, at least 1 ms

        bool operator==(const step&) const = default;
    };

    // The first change was seen at `now`.
    quiescence(time min, time max, time now) : min_(min), deadline_(now + max) {}

    // The first read after the change.
    [[nodiscard]] step start(time now) const { return next(now); }

    // The read answered `a` at `now`.
    [[nodiscard]] step answered(answer a, time now) const
    {
        switch (a) {
            case answer::same:
                return {verdict::min_fired, {}};
            case answer::went_back:
            case answer::failed:
                return {verdict::done, {}};
            case answer::advanced:
                break;
        }
        return next(now);
    }

private:
    [[nodiscard]] step next(time now) const
    {
        if (now >= deadline_)
            return {verdict::max_fired, {}};
        time const until = std::min(now + min_, deadline_);
        auto const wait = std::chrono::ceil<std::chrono::milliseconds>(until - now);
        return {verdict::read, std::max(std::chrono::milliseconds(1), wait)};
    }

    time min_;
    time deadline_;
};

}  // namespace kvship::engine
