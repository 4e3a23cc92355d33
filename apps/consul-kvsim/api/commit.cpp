#include "api/commit.hpp"

namespace kvship::kvsim::api {

committer::committer(asio::any_io_executor ex, std::chrono::nanoseconds latency)
    : ex_(std::move(ex)), latency_(latency)
{}

awaitable<void> committer::commit(std::function<void()> apply)
{
    if (latency_.count() <= 0 || stopped_) {
        ++commits_;
        ++writes_;
        apply();
        if (on_commit_) {
            on_commit_();
        }
        co_return;
    }
    if (!open_) {
        open_ = std::make_shared<batch>(ex_);
        open_->timer.expires_after(latency_);
    }
    auto b = open_;
    b->ops.push_back(std::move(apply));
    auto [ec] = co_await b->timer.async_wait(nothrow_awaitable);
    (void)ec;
    // The first writer of the batch to resume commits it for everyone.
    run(*b);
}

void committer::run(batch& b)
{
    if (b.done) {
        return;
    }
    b.done = true;
    if (open_.get() == &b) {
        open_.reset();
    }
    ++commits_;
    writes_ += b.ops.size();
    for (auto& op : b.ops) {
        op();
    }
    b.ops.clear();
    if (on_commit_) {
        on_commit_();
    }
}

void committer::stop()
{
    stopped_ = true;
    if (open_) {
        open_->timer.cancel();
    }
}

}  // namespace kvship::kvsim::api
