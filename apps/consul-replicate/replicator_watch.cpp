// The pair driver's side of grouped watching (DRIVER.md "Grouped watching"): whether to watch in groups
// (engine::grouping_wanted), starting and stopping a source_watcher, and what its reports mean for the
// round (engine::judge_watches).
#include "replicator_parts.hpp"

namespace kvship::replicate {

using namespace driver_detail;

bool pair_replicator::grouping_wanted(const engine::replicator_fsm& fsm) const
{
    engine::watch_policy policy;
    policy.source_watches = params_.source_watches;
    policy.min_keys = params_.group_min_keys;
    policy.min_bytes = params_.group_min_bytes;
    policy.dry_run = params_.dry_run;
    policy.quiescence = params_.wait_min.count() > 0 && params_.wait_max.count() > 0;
    return engine::grouping_wanted(policy, fsm.source(), fsm.takes_deltas(), group_blocked_);
}

bool pair_replicator::start_watches(const engine::replicator_fsm& fsm)
{
    source_watcher::settings s;
    s.label = params_.label;
    s.prefix = params_.fsm.rule.spec.source;
    s.filter = &params_.fsm.rule.filter;
    s.budget = params_.source_watches;
    s.reads = source_reads();
    s.index_seen = [this](std::uint64_t got) { books_.group_read(got); };
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
    auto& w = *watch_;
    auto const since = [](clock::time_point t) {
        return std::chrono::duration_cast<engine::watch_time>(t.time_since_epoch());
    };
    for (;;) {
        if (stopping_)
            co_return engine::event::stop{};
        // Grouped rounds plan only what changed; a periodic full round repairs the rest (keys edited
        // or added by hand at the destination).
        engine::watches_view v;
        v.failed = w.failed();
        v.reset = w.reset();
        v.pending = w.pending();
        if (auto const at = destination_reader_.stale_at())
            v.refresh_at = since(*at);
        auto const verdict = engine::judge_watches(v, since(clock::now()));
        if (verdict.what == engine::watches_verdict::kind::deliver)
            co_return w.take_delta();
        if (verdict.what == engine::watches_verdict::kind::full_read) {
            if (auto const& f = w.failure()) {
                metrics_.add(metric::errors, labels("kind", f->first));
                log_.warn(
                    "view", "{}: a source watch failed ({}); starting over with a full read", params_.label, f->second
                );
            } else if (auto const reset = w.reset()) {
                log_.info(
                    "runner",
                    "{}: {}, starting over with a full read",
                    params_.label,
                    *reset == engine::full_read_reason::index_reset ? "a source index went backwards"
                                                                     : "new names do not fit the watched groups"
                );
            }
            group_blocked_ = group_blocked_ || verdict.block_grouping;
            next_full_reason_ = verdict.reason;
            co_await stop_watches();
            co_return engine::event::source_reset{};
        }
        auto waited = w.wait(
            verdict.wake_at ? clock::time_point(std::chrono::duration_cast<clock::duration>(*verdict.wake_at))
                            : clock::time_point::max()
        );
        co_await std::move(waited);
    }
}

}  // namespace kvship::replicate
