// The pair driver's grouped watching (DRIVER.md "Grouped watching"): one blocking read per group, a names
// watch per split directory; engine::watch_plan decides when to group and what new names mean.
#include "replicator_parts.hpp"

namespace kvship::replicate {

using namespace driver_detail;

// ---- Grouped watching (DRIVER.md "Grouped watching") ----

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
    auto const& entries = fsm.source()->entries;
    auto const& prefix = params_.fsm.rule.spec.source;
    auto plan = engine::plan_watches(entries, prefix, params_.source_watches, params_.fsm.rule.filter);
    if (plan.layout.empty()) {
        log_.debug("runner", "{}: the source cannot be split into groups; watching it whole", params_.label);
        return false;
    }
    auto w = std::make_shared<watch_state>(timer_->get_executor());
    w->budget = params_.source_watches;
    watch_ = w;
    // One names watch per split directory (the source prefix first), all from the full read's index.
    w->layout.dirs = plan.layout.dirs;
    for (auto const& dir : plan.layout.dirs) {
        std::size_t const slot = w->cancels.size();
        w->cancels.emplace_back();
        w->pauses.emplace_back(timer_->get_executor());
        ++w->running;
        asio::co_spawn(timer_->get_executor(), watch_names(w, slot, dir, fsm.wait_index()), asio::detached);
    }
    for (std::size_t g = 0; g < plan.layout.groups.size(); ++g)
        add_group(w, std::move(plan.layout.groups[g]), plan.group_index[g]);
    log_.info(
        "runner",
        "{}: watching the source in {} groups ({} keys) plus the names of {} directories",
        params_.label,
        w->layout.groups.size(),
        entries.size(),
        w->layout.dirs.size()
    );
    for (auto const& dir : w->layout.dirs)
        if (dir != prefix)
            log_.debug("runner", "{}: watching the names in {:?}", params_.label, dir);
    return true;
}

void pair_replicator::add_group(const std::shared_ptr<watch_state>& w, std::string prefix, std::uint64_t index)
{
    std::size_t const slot = w->cancels.size();
    w->cancels.emplace_back();
    w->pauses.emplace_back(timer_->get_executor());
    auto& groups = w->layout.groups;
    groups.insert(std::upper_bound(groups.begin(), groups.end(), prefix), prefix);
    metrics_.set(metric::source_watches, labels(), static_cast<double>(w->layout.watches()));
    ++w->running;
    asio::co_spawn(timer_->get_executor(), watch_group(w, slot, std::move(prefix), index), asio::detached);
}

awaitable<void> pair_replicator::stop_watches()
{
    auto w = std::exchange(watch_, nullptr);
    if (!w)
        co_return;
    metrics_.set(metric::source_watches, labels(), 0);
    w->closing = true;
    for (auto& c : w->cancels) c.emit(asio::cancellation_type::terminal);
    for (auto& t : w->pauses) t.cancel();
    // The watches point at this object: wait until every one has ended.
    while (w->running > 0) {
        w->wake.expires_at(clock::time_point::max());
        co_await w->wake.async_wait(nothrow_awaitable);
    }
}

awaitable<engine::replicator_event> pair_replicator::next_delta()
{
    auto w = watch_;
    auto const since = [](clock::time_point t) {
        return std::chrono::duration_cast<engine::watch_time>(t.time_since_epoch());
    };
    for (;;) {
        if (stopping_)
            co_return engine::event::stop{};
        // Grouped rounds plan only what changed; a periodic full round repairs the rest (keys edited
        // or added by hand at the destination).
        engine::watches_view v;
        v.failed = w->failure.has_value();
        v.reset = w->reset;
        v.pending = !w->pending.empty();
        if (known_)
            v.refresh_at = since(known_->read_at + params_.destination_refresh);
        auto const verdict = engine::judge_watches(v, since(clock::now()));
        if (verdict.what == engine::watches_verdict::kind::deliver) {
            engine::event::source_delta d;
            d.groups.reserve(w->pending.size());
            for (auto& [prefix, listing] : w->pending) d.groups.push_back(std::move(listing));
            w->pending.clear();
            co_return d;
        }
        if (verdict.what == engine::watches_verdict::kind::full_read) {
            if (w->failure) {
                auto const& [kind, what] = *w->failure;
                metrics_.add(metric::errors, labels("kind", kind));
                log_.warn(
                    "view", "{}: a source watch failed ({}); starting over with a full read", params_.label, what
                );
            } else if (w->reset) {
                log_.info(
                    "runner",
                    "{}: {}, starting over with a full read",
                    params_.label,
                    *w->reset == engine::full_read_reason::index_reset ? "a source index went backwards"
                                                                        : "new names do not fit the watched groups"
                );
            }
            group_blocked_ = group_blocked_ || verdict.block_grouping;
            next_full_reason_ = verdict.reason;
            co_await stop_watches();
            co_return engine::event::source_reset{};
        }
        w->wake.expires_at(
            verdict.wake_at ? clock::time_point(std::chrono::duration_cast<clock::duration>(*verdict.wake_at))
                            : clock::time_point::max()
        );
        co_await w->wake.async_wait(nothrow_awaitable);
    }
}

namespace {

// A watch's failed read: the pair starts over with a full read.
template <class W>
void watch_failed(W& w, const transport::consul_error& e)
{
    w.failure.emplace(std::string(error_kind(e, "source_read")), e.what());
}

// Decrements the running count and wakes the pair's loop when a watch ends, however it ends.
template <class W>
struct watch_exit
{
    W* w;

    ~watch_exit()
    {
        --w->running;
        w->wake.cancel();
    }
};

// A blocking read that came back at once with nothing new is followed by a short pause, so a
// watch does not spin. Returns false when the watches are closing.
template <class W>
awaitable<bool> pause_if_fast(W& w, std::size_t slot, bool fast)
{
    if (fast) {
        w.pauses[slot].expires_after(std::chrono::milliseconds(100));
        co_await w.pauses[slot].async_wait(nothrow_awaitable);
    }
    co_return !w.closing;
}

}  // namespace

bool pair_replicator::watch_went_back(watch_state& w, std::uint64_t got, std::uint64_t index)
{
    if (got >= index)
        return false;
    metrics_.add(metric::wakeups, labels("result", "index_reset"));
    w.reset = engine::full_read_reason::index_reset;
    return true;
}

awaitable<std::optional<transport::kv_listing>> pair_replicator::read_group(
    watch_state& w, std::size_t slot, const std::string& prefix, std::uint64_t index
)
{
    auto const reads = source_reads();
    auto q = transport::read_query(reads, index);
    log_.trace("view", "kv.list({}): GET /v1/kv/{}?recurse&dc={}&index={}", params_.label, prefix, q.dc, index);
    auto read = read_fresh(
        &w.cancels[slot],
        reads,
        q,
        [&](const transport::query_options& o) { return source_.list(prefix, o); },
        [&](const transport::kv_listing&) { return !w.closing; }
    );
    auto r = co_await std::move(read);
    if (w.closing)
        co_return std::nullopt;
    if (!r) {
        watch_failed(w, r.error());
        co_return std::nullopt;
    }
    if (r->results_filtered) {
        w.failure.emplace("acl_denied", transport::filtered_listing_text(prefix, std::nullopt, "source"));
        co_return std::nullopt;
    }
    co_return std::move(*r);
}

awaitable<void> pair_replicator::watch_group(
    std::shared_ptr<watch_state> w, std::size_t slot, std::string prefix, std::uint64_t index
)
{
    watch_exit<watch_state> const exit{w.get()};
    bool fast = false;
    while (!w->closing) {
        auto pause = pause_if_fast(*w, slot, fast);
        if (!co_await std::move(pause))
            co_return;
        auto const started = clock::now();
        auto r = co_await read_group(*w, slot, prefix, index);
        if (!r)
            co_return;
        std::uint64_t const got = std::max<std::uint64_t>(r->index, 1);
        if (watch_went_back(*w, got, index))
            co_return;
        if (got == index) {
            metrics_.add(metric::wakeups, labels("result", "no_change"));
            fast = clock::now() - started < std::chrono::milliseconds(100);
            continue;
        }
        fast = false;
        metrics_.add(metric::wakeups, labels("result", "changed"));
        log_.trace("view", "kv.list({}): group {:?} returned {} pairs", params_.label, prefix, r->entries.size());
        index = got;
        if (got > source_index_) {
            source_index_ = got;
            metrics_.set(metric::source_index, labels(), static_cast<double>(got));
        }
        note_seen(got);
        w->pending[prefix] = engine::event::group_listing{prefix, got, to_snapshot(std::move(*r)).entries};
        w->wake.cancel();
    }
}

awaitable<void> pair_replicator::watch_names(
    std::shared_ptr<watch_state> w, std::size_t slot, std::string dir, std::uint64_t index
)
{
    // `GET <dir>?keys&separator=/` lists the names directly in `dir` (a few KB for hundreds of
    // directories) and blocks on the whole directory's index: it wakes on every change under it,
    // and a name that no group covers, that is not a split directory and not excluded is a key
    // outside every group (a group's part below its directory holds no '/' but a last one).
    watch_exit<watch_state> const exit{w.get()};
    bool fast = false;
    while (!w->closing) {
        auto pause = pause_if_fast(*w, slot, fast);
        if (!co_await std::move(pause))
            co_return;
        // A names listing is used as it comes, also from a `?stale` read past -max-stale (not re-read,
        // unlike a group's listing): each new name in it is read with read_group before it is used.
        auto const q = transport::read_query(source_reads(), index);
        auto const started = clock::now();
        auto op = source_.keys(dir, std::string("/"), q);
        auto r = co_await guarded(&w->cancels[slot], std::move(op));
        if (w->closing)
            co_return;
        if (!r) {
            watch_failed(*w, r.error());
            co_return;
        }
        std::uint64_t const got = std::max<std::uint64_t>(r->index, 1);
        if (watch_went_back(*w, got, index))
            co_return;
        if (got == index) {
            fast = clock::now() - started < std::chrono::milliseconds(100);
            continue;
        }
        fast = false;
        index = got;
        auto verdict = engine::judge_names(w->layout, params_.fsm.rule.filter, dir, std::move(r->keys), w->budget);
        if (verdict.regroup) {
            if (!verdict.overlapping.empty())
                log_.debug(
                    "runner", "{}: new source name {:?} overlaps the watched groups", params_.label, verdict.overlapping
                );
            w->reset = engine::full_read_reason::regroup;
            co_return;
        }
        if (verdict.fresh.empty())
            continue;
        for (auto& n : verdict.fresh) {
            // Read the new name once (not blocking), hand it over as a group listing, and watch it
            // from that listing's index: nothing written after the read is missed.
            auto l = co_await read_group(*w, slot, n, 0);
            if (!l)
                co_return;
            std::uint64_t const at = std::max<std::uint64_t>(l->index, 1);
            log_.debug("runner", "{}: new source name {:?}: watching it as a group", params_.label, n);
            w->pending[n] = engine::event::group_listing{n, at, to_snapshot(std::move(*l)).entries};
            add_group(w, n, at);
        }
        w->wake.cancel();
    }
}

}  // namespace kvship::replicate
