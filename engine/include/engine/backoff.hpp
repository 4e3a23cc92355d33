// Retry backoff: exponential growth, a cap, and jitter drawn from an explicit seed (no global RNG).
#pragma once

#include <chrono>
#include <cstdint>

namespace kvship::engine {

// consul-replicate's defaults (-consul-retry-*): 12 attempts, 250ms * 2^n, capped at 1m.
struct backoff_params
{
    std::chrono::nanoseconds base = std::chrono::milliseconds(250);
    std::chrono::nanoseconds max = std::chrono::minutes(1);  // 0 = no cap
    unsigned attempts = 12;                                  // retries allowed; 0 = retry forever
    unsigned jitter_percent = 20;  // 0..100: the delay is cut by up to this share, never lengthened

    bool operator==(const backoff_params&) const = default;
};

// The sleep before retry number `attempt` (counted from 0): base * 2^attempt, saturating instead of
// overflowing, capped at `max` when max > 0, then reduced by a pseudo-random share in
// [0, jitter_percent%) drawn from (seed, attempt) alone. Same inputs, same delay; never above the
// cap nor below (100 - jitter_percent)% of the un-jittered value. jitter_percent above 100 counts
// as 100. Negative base or max count as 0.
[[nodiscard]] std::chrono::nanoseconds backoff_delay(
    unsigned attempt, const backoff_params& params, std::uint64_t seed
);

// True when retry number `attempt` (counted from 0) is allowed: attempts == 0 or attempt < attempts.
[[nodiscard]] bool should_retry(unsigned attempt, const backoff_params& params);

}  // namespace kvship::engine
