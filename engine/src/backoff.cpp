#include <engine/backoff.hpp>

#include <algorithm>
#include <limits>

namespace kvship::engine {

namespace {

// splitmix64: a small, well-mixed, stateless hash from (seed, attempt) to 64 bits.
std::uint64_t mix(std::uint64_t x)
{
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30U)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27U)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31U);
}

}  // namespace

std::chrono::nanoseconds backoff_delay(unsigned attempt, const backoff_params& params, std::uint64_t seed)
{
    using rep = std::chrono::nanoseconds::rep;
    rep const base = std::max<rep>(params.base.count(), 0);
    rep const cap = std::max<rep>(params.max.count(), 0);
    constexpr rep limit = std::numeric_limits<rep>::max();

    rep delay = base;
    for (unsigned i = 0; i < attempt && delay != 0 && delay != limit; ++i)
        delay = delay > limit / 2 ? limit : delay * 2;
    if (cap > 0)
        delay = std::min(delay, cap);

    unsigned const pct = std::min(params.jitter_percent, 100U);
    if (pct == 0 || delay == 0)
        return std::chrono::nanoseconds(delay);

    // u in [0, 1) with 53 bits; cut = delay * pct% * u, computed in long double to avoid overflow.
    std::uint64_t const r = mix(seed ^ mix(static_cast<std::uint64_t>(attempt)));
    long double const u = static_cast<long double>(r >> 11U) / static_cast<long double>(1ULL << 53U);
    long double const cut = static_cast<long double>(delay) * static_cast<long double>(pct) / 100.0L * u;
    rep const cut_ns = std::min<rep>(static_cast<rep>(cut), delay);
    return std::chrono::nanoseconds(delay - cut_ns);
}

bool should_retry(unsigned attempt, const backoff_params& params)
{
    return params.attempts == 0 || attempt < params.attempts;
}

}  // namespace kvship::engine
