// The pair driver's side of grouped watching (DRIVER.md "Grouped watching"): whether to watch in groups
// (engine::grouping_wanted), starting and stopping a source_watcher, its next delta or full read.
#include "replicator_parts.hpp"

namespace kvship::replicate {

using namespace driver_detail;

bool pair_replicator::grouping_wanted(const engine::replicator_fsm& fsm) const
{
    return engine::grouping_wanted(watch_policy(params_), fsm.source(), fsm.takes_deltas(), group_blocked_);
}

bool pair_replicator::start_watches(const engine::replicator_fsm& fsm)
{
    auto s = watcher_settings(params_, [this](std::uint64_t got) { books_.group_read(got); });
    auto w = std::make_unique<source_watcher>(timer_->get_executor(), source_, std::move(s), log_, metrics_);
    if (!w->start(fsm.source()->entries, fsm.wait_index()))
        return false;
    watch_ = std::move(w);
    return true;
}

awaitable<void> pair_replicator::stop_watches()
{
    auto w = std::exchange(watch_, nullptr);
    if (!w)
        co_return;
    co_await w->stop();
}

awaitable<engine::replicator_event> pair_replicator::next_delta()
{
    auto next = watch_->next(destination_reader_.stale_at(), [this] { return stopping_; });
    auto step = co_await std::move(next);
    if (step.stop)
        co_return engine::event::stop{};
    if (step.delta)
        co_return std::move(*step.delta);
    group_blocked_ = group_blocked_ || step.verdict.block_grouping;
    next_full_reason_ = step.verdict.reason;
    co_await stop_watches();
    co_return engine::event::source_reset{};
}

}  // namespace kvship::replicate
