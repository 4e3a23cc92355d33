// Group commit, modelling Raft's batching (-commit-latency D): a write waits for the next commit, at most
// D after the first write of its batch; every write that arrives meanwhile is applied in the same commit,
// in arrival order. With D = 0 each write is applied at once, without suspending.
#pragma once

#include <transport/asio.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

namespace kvship::kvsim::api {

class committer
{
public:
    committer(asio::any_io_executor ex, std::chrono::nanoseconds latency);

    // Applies `apply` in the next commit and returns after that commit. `apply` may refer to the caller's
    // frame: the caller is suspended here until it has run. Cancellation is not supported (stop() ends
    // every wait by committing at once).
    awaitable<void> commit(std::function<void()> apply);

    // Called after each commit (persistence flush, timers).
    void on_commit(std::function<void()> fn) { on_commit_ = std::move(fn); }

    // Commits the open batch now; later writes are applied at once.
    void stop();

    [[nodiscard]] std::uint64_t commits() const { return commits_; }

    [[nodiscard]] std::uint64_t writes() const { return writes_; }

private:
    struct batch
    {
        explicit batch(asio::any_io_executor ex) : timer(std::move(ex)) {}

        asio::steady_timer timer;
        std::vector<std::function<void()>> ops;
        bool done = false;
    };

    void run(batch& b);

    asio::any_io_executor ex_;
    std::chrono::nanoseconds latency_;
    std::shared_ptr<batch> open_;
    std::function<void()> on_commit_;
    bool stopped_ = false;
    std::uint64_t commits_ = 0;
    std::uint64_t writes_ = 0;
};

}  // namespace kvship::kvsim::api
