#include <engine/backoff.hpp>

#include <catch2/catch.hpp>

#include <chrono>
#include <limits>
#include <set>

using namespace kvship::engine;
using namespace std::chrono_literals;

TEST_CASE("backoff_delay without jitter is consul-replicate's schedule", "[engine]")
{
    backoff_params const p{.jitter_percent = 0};
    // compat §1.1: 0.25, 0.5, 1, 2, 4, 8, 16, 32, 60, 60, 60, 60 s, about 5 min in total
    std::chrono::nanoseconds const expected[] = {250ms, 500ms, 1s, 2s, 4s, 8s, 16s, 32s, 60s, 60s, 60s, 60s};
    std::chrono::nanoseconds total{0};
    for (unsigned attempt = 0; attempt < 12; ++attempt) {
        CAPTURE(attempt);
        CHECK(backoff_delay(attempt, p, 1) == expected[attempt]);
        total += backoff_delay(attempt, p, 1);
    }
    CHECK(total == 303750ms);
}

TEST_CASE("backoff_delay jitter is bounded, seeded and never exceeds the cap", "[engine]")
{
    backoff_params const p{};  // 20% jitter
    std::set<std::chrono::nanoseconds::rep> distinct;
    for (std::uint64_t seed = 0; seed < 200; ++seed) {
        for (unsigned attempt = 0; attempt < 16; ++attempt) {
            auto const plain = backoff_delay(attempt, backoff_params{.jitter_percent = 0}, seed);
            auto const d = backoff_delay(attempt, p, seed);
            CAPTURE(seed, attempt);
            CHECK(d <= plain);
            CHECK(d * 100 >= plain * 80);
            CHECK(d <= 1min);
            CHECK(d == backoff_delay(attempt, p, seed));  // same seed, same delay
            if (attempt == 3)
                distinct.insert(d.count());
        }
    }
    CHECK(distinct.size() > 150);  // the seed matters
}

TEST_CASE("backoff_delay edge cases", "[engine]")
{
    // no cap: grows until it saturates, never wraps
    backoff_params const uncapped{.max = 0ns, .jitter_percent = 0};
    CHECK(backoff_delay(10, uncapped, 0) == 256s);
    CHECK(backoff_delay(200, uncapped, 0) == std::chrono::nanoseconds::max());
    CHECK(backoff_delay(200, backoff_params{.max = 0ns}, 5) <= std::chrono::nanoseconds::max());

    // huge attempt numbers with a cap stay at the cap
    CHECK(
        backoff_delay(std::numeric_limits<unsigned>::max(), backoff_params{.jitter_percent = 0}, 0) == 1min
    );

    // -retry=<dur>: base == max gives a constant backoff
    backoff_params const constant{.base = 5s, .max = 5s, .jitter_percent = 0};
    CHECK(backoff_delay(0, constant, 0) == 5s);
    CHECK(backoff_delay(7, constant, 0) == 5s);

    // zero or negative base: no wait
    CHECK(backoff_delay(3, backoff_params{.base = 0ns}, 9) == 0ns);
    CHECK(backoff_delay(3, backoff_params{.base = -5ns}, 9) == 0ns);

    // jitter above 100% counts as 100%
    auto const d = backoff_delay(2, backoff_params{.jitter_percent = 500}, 3);
    CHECK(d >= 0ns);
    CHECK(d <= 1s);
}

TEST_CASE("should_retry counts attempts; 0 means forever", "[engine]")
{
    backoff_params const p{};
    CHECK(should_retry(0, p));
    CHECK(should_retry(11, p));
    CHECK_FALSE(should_retry(12, p));
    backoff_params const forever{.attempts = 0};
    CHECK(should_retry(1'000'000, forever));
}
