// The pair's grouped watching (source_watcher.hpp, DRIVER.md "Grouped watching").
#include "source_watcher.hpp"

#include "guarded.hpp"
#include "kv_convert.hpp"
#include "read_fresh.hpp"

#include <boost/asio/detached.hpp>

#include <algorithm>

namespace kvship::replicate {

using clock = std::chrono::steady_clock;

namespace {

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

engine::watch_time took_since(clock::time_point started)
{
    return std::chrono::duration_cast<engine::watch_time>(clock::now() - started);
}

}  // namespace

source_watcher::source_watcher(
    asio::any_io_executor ex,
    transport::consul_client& source,
    settings s,
    const logger& log,
    metrics_registry& metrics
)
    : ex_(std::move(ex)),
      source_(source),
      settings_(std::move(s)),
      log_(log),
      metrics_(metrics),
      s_(std::make_shared<state>(ex_))
{
}

bool source_watcher::start(const engine::compact_entries& entries, std::uint64_t index)
{
    auto const& prefix = settings_.prefix;
    auto plan = engine::plan_watches(entries, prefix, settings_.budget, *settings_.filter);
    if (plan.layout.empty()) {
        log_.debug("runner", "{}: the source cannot be split into groups; watching it whole", settings_.label);
        return false;
    }
    auto const& w = s_;
    // One names watch per split directory (the source prefix first), all from the full read's index.
    w->layout.dirs = plan.layout.dirs;
    for (auto const& dir : plan.layout.dirs) {
        std::size_t const slot = w->cancels.size();
        w->cancels.emplace_back();
        w->pauses.emplace_back(ex_);
        ++w->running;
        asio::co_spawn(ex_, watch_names(w, slot, dir, index), asio::detached);
    }
    for (std::size_t g = 0; g < plan.layout.groups.size(); ++g)
        add_group(w, std::move(plan.layout.groups[g]), plan.group_index[g]);
    log_.info(
        "runner",
        "{}: watching the source in {} groups ({} keys) plus the names of {} directories",
        settings_.label,
        w->layout.groups.size(),
        entries.size(),
        w->layout.dirs.size()
    );
    for (auto const& dir : w->layout.dirs)
        if (dir != prefix)
            log_.debug("runner", "{}: watching the names in {:?}", settings_.label, dir);
    return true;
}

void source_watcher::add_group(const std::shared_ptr<state>& w, std::string prefix, std::uint64_t index)
{
    std::size_t const slot = w->cancels.size();
    w->cancels.emplace_back();
    w->pauses.emplace_back(ex_);
    auto& groups = w->layout.groups;
    groups.insert(std::upper_bound(groups.begin(), groups.end(), prefix), prefix);
    metrics_.set(metric::source_watches, labels(), static_cast<double>(w->layout.watches()));
    ++w->running;
    asio::co_spawn(ex_, watch_group(w, slot, std::move(prefix), index), asio::detached);
}

awaitable<source_watcher::next_step> source_watcher::next(
    std::optional<clock::time_point> refresh_at, std::function<bool()> stopping
)
{
    auto const& w = s_;
    auto const since = [](clock::time_point t) {
        return std::chrono::duration_cast<engine::watch_time>(t.time_since_epoch());
    };
    for (;;) {
        next_step out;
        if (stopping()) {
            out.stop = true;
            co_return out;
        }
        // Grouped rounds plan only what changed; a periodic full round repairs the rest (keys edited
        // or added by hand at the destination).
        engine::watches_view v;
        v.failed = w->failure.has_value();
        v.reset = w->reset;
        v.pending = !w->pending.empty();
        if (refresh_at)
            v.refresh_at = since(*refresh_at);
        out.verdict = engine::judge_watches(v, since(clock::now()));
        if (out.verdict.what == engine::watches_verdict::kind::deliver) {
            out.delta.emplace();
            out.delta->groups.reserve(w->pending.size());
            for (auto& [prefix, listing] : w->pending) out.delta->groups.push_back(std::move(listing));
            w->pending.clear();
            co_return out;
        }
        if (out.verdict.what == engine::watches_verdict::kind::full_read) {
            if (auto const& f = w->failure) {
                metrics_.add(metric::errors, {{"pair", settings_.label}, {"kind", f->first}});
                log_.warn(
                    "view", "{}: a source watch failed ({}); starting over with a full read", settings_.label, f->second
                );
            } else if (w->reset) {
                log_.info(
                    "runner",
                    "{}: {}, starting over with a full read",
                    settings_.label,
                    *w->reset == engine::full_read_reason::index_reset ? "a source index went backwards"
                                                                        : "new names do not fit the watched groups"
                );
            }
            co_return out;
        }
        auto const& at = out.verdict.wake_at;
        w->wake.expires_at(at ? clock::time_point(std::chrono::duration_cast<clock::duration>(*at)) : clock::time_point::max());
        co_await w->wake.async_wait(nothrow_awaitable);
    }
}

awaitable<void> source_watcher::stop()
{
    auto const& w = s_;
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

awaitable<bool> source_watcher::pause_if(state& w, std::size_t slot, bool pause)
{
    if (pause) {
        w.pauses[slot].expires_after(engine::fast_answer);
        co_await w.pauses[slot].async_wait(nothrow_awaitable);
    }
    co_return !w.closing;
}

bool source_watcher::went_back(state& w, const engine::wake_verdict& v, bool count)
{
    if (count)
        metrics_.add(metric::wakeups, {{"pair", settings_.label}, {"result", std::string(engine::to_string(v.what))}});
    if (v.what != engine::wake_verdict::kind::index_reset)
        return false;
    w.reset = engine::full_read_reason::index_reset;
    return true;
}

awaitable<std::optional<transport::kv_listing>> source_watcher::read_group(
    state& w, std::size_t slot, const std::string& prefix, std::uint64_t index
)
{
    auto const& reads = settings_.reads;
    auto q = transport::read_query(reads, index);
    log_.trace("view", "kv.list({}): GET /v1/kv/{}?recurse&dc={}&index={}", settings_.label, prefix, q.dc, index);
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
        w.failure.emplace(std::string(error_kind(r.error(), "source_read")), r.error().what());
        co_return std::nullopt;
    }
    if (r->results_filtered) {
        w.failure.emplace("acl_denied", transport::filtered_listing_text(prefix, std::nullopt, "source"));
        co_return std::nullopt;
    }
    co_return std::move(*r);
}

awaitable<void> source_watcher::watch_group(
    std::shared_ptr<state> w, std::size_t slot, std::string prefix, std::uint64_t index
)
{
    watch_exit<state> const exit{w.get()};
    bool pause = false;
    while (!w->closing) {
        auto paused = pause_if(*w, slot, pause);
        if (!co_await std::move(paused))
            co_return;
        auto const started = clock::now();
        auto r = co_await read_group(*w, slot, prefix, index);
        if (!r)
            co_return;
        auto const v = engine::judge_wake(index, r->index, took_since(started));
        if (went_back(*w, v, true))
            co_return;
        pause = v.pause;
        if (v.what == engine::wake_verdict::kind::no_change)
            continue;
        log_.trace("view", "kv.list({}): group {:?} returned {} pairs", settings_.label, prefix, r->entries.size());
        index = v.index;
        if (settings_.index_seen)
            settings_.index_seen(v.index);
        w->pending[prefix] = engine::event::group_listing{prefix, v.index, to_snapshot(std::move(*r)).entries};
        w->wake.cancel();
    }
}

awaitable<void> source_watcher::watch_names(
    std::shared_ptr<state> w, std::size_t slot, std::string dir, std::uint64_t index
)
{
    // `GET <dir>?keys&separator=/` lists the names directly in `dir` (a few KB for hundreds of
    // directories) and blocks on the whole directory's index: it wakes on every change under it,
    // and a name that no group covers, that is not a split directory and not excluded is a key
    // outside every group (a group's part below its directory holds no '/' but a last one).
    watch_exit<state> const exit{w.get()};
    bool pause = false;
    while (!w->closing) {
        auto paused = pause_if(*w, slot, pause);
        if (!co_await std::move(paused))
            co_return;
        // A names listing is used as it comes, also from a `?stale` read past -max-stale (not re-read,
        // unlike a group's listing): each new name in it is read with read_group before it is used.
        auto const q = transport::read_query(settings_.reads, index);
        auto const started = clock::now();
        auto op = source_.keys(dir, std::string("/"), q);
        auto r = co_await guarded(&w->cancels[slot], std::move(op));
        if (w->closing)
            co_return;
        if (!r) {
            w->failure.emplace(std::string(error_kind(r.error(), "source_read")), r.error().what());
            co_return;
        }
        // A names watch's wake is not counted in kvship_source_wakeups_total (only its reset is).
        auto const v = engine::judge_wake(index, r->index, took_since(started));
        if (went_back(*w, v, v.what == engine::wake_verdict::kind::index_reset))
            co_return;
        pause = v.pause;
        if (v.what == engine::wake_verdict::kind::no_change)
            continue;
        index = v.index;
        auto verdict = engine::judge_names(w->layout, *settings_.filter, dir, std::move(r->keys), settings_.budget);
        if (verdict.regroup) {
            if (!verdict.overlapping.empty())
                log_.debug(
                    "runner", "{}: new source name {:?} overlaps the watched groups", settings_.label, verdict.overlapping
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
            log_.debug("runner", "{}: new source name {:?}: watching it as a group", settings_.label, n);
            w->pending[n] = engine::event::group_listing{n, at, to_snapshot(std::move(*l)).entries};
            add_group(w, n, at);
        }
        w->wake.cancel();
    }
}

}  // namespace kvship::replicate
