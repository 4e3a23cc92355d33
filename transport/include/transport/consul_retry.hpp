// Retries with exponential backoff, jitter and a cap: a pure `backoff` sequence (deterministic for
// a given seed) and with_retry(), which re-runs an operation while its error is_retryable().
// Only reads are retried (consul-replicate's -consul-retry*); writes never are.
#pragma once

#include <transport/asio.hpp>
#include <transport/consul_error.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>

namespace kvship::transport {

// consul-replicate's -consul-retry, -consul-retry-attempts, -consul-retry-backoff and
// -consul-retry-max-backoff, plus jitter: retry n (from 0) sleeps
//   min(backoff * 2^n, max_backoff) * (1 - jitter * u),  u uniform in [0, 1)
// so a sleep is never above the cap. max_attempts = 0 retries forever; max_backoff = 0 means no
// cap. seed = 0 asks the client for a random seed; tests pass a fixed one.
struct retry_params
{
    bool enabled = true;
    unsigned max_attempts = 12;
    std::chrono::milliseconds backoff{250};
    std::chrono::milliseconds max_backoff{std::chrono::minutes(1)};
    double jitter = 0.2;
    std::uint64_t seed = 0;
};

class backoff
{
public:
    backoff(retry_params params, std::uint64_t seed);

    // The sleep before the next retry, or nullopt when retries are off or used up.
    [[nodiscard]] std::optional<std::chrono::milliseconds> next();
    // Back to retry 0 (after a success).
    void reset() { attempt_ = 0; }
    // Retries handed out since the last reset.
    [[nodiscard]] unsigned attempt() const { return attempt_; }

private:
    retry_params params_;
    std::uint64_t state_;
    unsigned attempt_ = 0;
};

// Told about each retry before its sleep: the retry number (from 1), the sleep, and the error.
using retry_observer = std::function<void(unsigned, std::chrono::milliseconds, consul_error const&)>;

// Runs `attempt()` (a callable returning awaitable<consul_result<T>>) until it succeeds, fails with
// an error that is not retryable, or the backoff runs out; returns the last result. A cancellation
// during a sleep returns errc::cancelled. The sleeps use the calling coroutine's executor. With
// `may_retry`, a failed attempt is retried only while it returns true.
template <class Attempt>
auto with_retry(retry_params params, std::uint64_t seed, Attempt attempt, retry_observer observe = {},
                std::function<bool()> may_retry = {}) -> decltype(attempt())
{
    backoff delays(params, seed);
    for (;;) {
        auto r = co_await attempt();
        if (r || !is_retryable(r.error()) || (may_retry && !may_retry())) {
            co_return r;
        }
        auto const delay = delays.next();
        if (!delay) {
            co_return r;
        }
        if (observe) {
            observe(delays.attempt(), *delay, r.error());
        }
        asio::steady_timer timer(co_await asio::this_coro::executor, *delay);
        auto [ec] = co_await timer.async_wait(nothrow_awaitable);
        if (ec) {
            co_return consul_error{errc::cancelled, 0, "cancelled while waiting to retry: " + r.error().what()};
        }
    }
}

}  // namespace kvship::transport
