#include <transport/consul_retry.hpp>

#include <algorithm>
#include <cmath>

namespace kvship::transport {

namespace {

// splitmix64: tiny, and the same sequence on every platform for a given seed.
std::uint64_t next_random(std::uint64_t& state)
{
    std::uint64_t z = (state += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

}  // namespace

backoff::backoff(retry_params params, std::uint64_t seed) : params_(params), state_(seed) {}

std::optional<std::chrono::milliseconds> backoff::next()
{
    if (!params_.enabled || (params_.max_attempts != 0 && attempt_ >= params_.max_attempts)) {
        return std::nullopt;
    }
    auto const n = attempt_++;
    // backoff * 2^n without overflow: past 2^40 ms (35 years) every cap has long been reached.
    double base = static_cast<double>(std::max<std::int64_t>(params_.backoff.count(), 0));
    base = std::ldexp(base, static_cast<int>(std::min(n, 40u)));
    if (params_.max_backoff.count() > 0) {
        base = std::min(base, static_cast<double>(params_.max_backoff.count()));
    }
    base = std::min(base, 1e12);
    double const jitter = std::clamp(params_.jitter, 0.0, 1.0);
    double const u = static_cast<double>(next_random(state_) >> 11) * 0x1.0p-53;  // [0, 1)
    auto const ms = static_cast<std::int64_t>(std::floor(base * (1.0 - jitter * u)));
    return std::chrono::milliseconds(ms);
}

}  // namespace kvship::transport
