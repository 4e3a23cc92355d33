#include "replicator.hpp"
#include "guarded.hpp"

#include "lost_found.hpp"

#include "checkpoint_codec.hpp"

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/detached.hpp>
#include <engine/groups.hpp>

#include <algorithm>
#include <deque>
#include <stdexcept>
#include <map>
#include <replicate/duration.hpp>
#include <utility>

namespace kvship::replicate {

namespace {

using clock = std::chrono::steady_clock;

engine::snapshot to_snapshot(transport::kv_listing listing)
{
    engine::snapshot s;
    s.index = listing.index;
    s.entries.reserve(listing.entries.size());
    for (auto& e : listing.entries) {
        engine::kv_entry out;
        out.key = std::move(e.key);
        out.value = std::move(e.value).value_or(std::string{});
        out.flags = e.flags;
        out.modify_index = e.modify_index;
        if (!e.session.empty())
            out.session = std::move(e.session);
        s.entries.push_back(std::move(out));
    }
    engine::sort_entries(s.entries);
    return s;
}

transport::txn_op to_transport(const engine::txn_op& op)
{
    transport::txn_op out;
    if (op.verb == engine::txn_verb::set) {
        out.verb = transport::txn_verb::set;
        out.value = op.value;
        out.flags = op.flags;
    } else {
        out.verb = transport::txn_verb::delete_key;
    }
    out.key = op.key;
    return out;
}

// The error kind label for a transport error, or `fallback` (the phase).
std::string_view error_kind(const transport::consul_error& e, std::string_view fallback)
{
    using transport::errc;
    if (e == errc::forbidden)
        return "acl_denied";
    if (e == errc::timed_out)
        return "timeout";
    if (e == errc::no_leader)
        return "no_leader";
    if (e == errc::malformed_response || e == errc::missing_index)
        return "decode";
    return fallback;
}

std::string_view warning_text(engine::warning_kind k)
{
    using w = engine::warning_kind;
    switch (k) {
        case w::session_attached:
            return "has a session attached: value and flags copied, the session is not";
        case w::lock_flag:
            return "carries the lock flag value: copied as data, the lock is not";
        case w::semaphore_flag:
            return "carries the semaphore flag value: copied as data, the semaphore is not";
        case w::outside_source_prefix:
            return "is outside the source prefix: ignored";
        case w::outside_destination:
            return "is outside the destination prefix: ignored";
        case w::status_key_collision:
            return "maps onto a checkpoint key: not written";
        case w::duplicate_key:
            return "is listed twice: the first entry is used";
        case w::index_behind_checkpoint:
            return "source index is behind the checkpoint (snapshot restore, tombstone reap or another DC)";
        case w::checkpoint_mismatch:
            return "checkpoint names another source or destination";
        case w::replacement_character:
            return "holds U+FFFD, which is how Consul lists bytes that are not valid UTF-8: the key cannot be "
                   "read or written by that name, so it is not replicated (neither written nor deleted); "
                   "rename it to valid UTF-8 in the source";
    }
    return "warning";
}

double seconds_since(clock::time_point t)
{
    return std::chrono::duration<double>(clock::now() - t).count();
}

double unix_now()
{
    return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

}  // namespace

struct pair_replicator::watch_state
{
    explicit watch_state(asio::any_io_executor ex) : wake(std::move(ex)) {}

    engine::source_layout layout;  // the groups and the directories with a names watch
    std::map<std::string, engine::event::group_listing> pending;  // the newest listing per group
    std::optional<std::pair<std::string, std::string>> failure;   // (error kind, what)
    std::string reset_reason;
    std::deque<asio::cancellation_signal> cancels;  // one per watch (slot); a deque keeps addresses
    std::deque<asio::steady_timer> pauses;          // one per watch, for the fast no-change pause
    std::size_t running = 0;
    std::size_t budget = 0;
    bool closing = false;
    asio::steady_timer wake;  // the pair's loop waits on it; watches cancel it to wake the loop
};

struct pair_replicator::stream_state
{
    explicit stream_state(asio::any_io_executor ex, std::size_t window)
        : wake(ex), reader_wake(ex), write_busy(window, false), write_cancel(window)
    {
    }

    // Reader -> loop: decoded chunks, then the end (or an error), at most `max_chunks` waiting.
    std::deque<std::vector<engine::kv_entry>> chunks;
    std::size_t max_chunks = 4;
    std::optional<std::uint64_t> end_index;
    std::optional<std::pair<std::string, std::string>> read_failure;  // (error kind, what)
    transport::query_meta meta;
    bool reader_done = false;
    bool closing = false;
    asio::cancellation_signal reader_cancel;

    // Puts being written: a window of txns, as in apply_batch.
    struct finished_chunk
    {
        std::shared_ptr<const engine::batch> batch;
        chunk_outcome outcome;
    };
    std::vector<finished_chunk> finished;
    // Chunks to send again in smaller pieces (a 413), waiting for a free window slot.
    std::deque<std::pair<std::shared_ptr<const engine::batch>, chunk>> resend;
    std::size_t in_flight = 0;
    std::optional<std::pair<std::string, std::string>> write_failure;
    bool fenced = false;

    asio::steady_timer wake;         // the loop waits on it; the reader and the txns wake it
    asio::steady_timer reader_wake;  // the reader waits on it while the queue is full
    std::vector<bool> write_busy;
    std::deque<asio::cancellation_signal> write_cancel;  // one per window slot
};

pair_replicator::pair_replicator(
    transport::consul_client& source,
    transport::consul_client& destination,
    pair_params params,
    txn_limit& limit,
    const logger& log,
    metrics_registry& metrics,
    std::FILE* plan_out
)
    : source_(source),
      destination_(destination),
      params_(std::move(params)),
      limit_(limit),
      log_(log),
      metrics_(metrics),
      plan_out_(plan_out),
      write_cancel_(std::max<std::size_t>(1, params_.write_window))
{
    auto const l = labels();
    metrics_.set(metric::paused, l, 0);
    metrics_.add(metric::keys_put, l, 0);
    metrics_.add(metric::keys_deleted, l, 0);
    metrics_.add(metric::bytes_written, l, 0);
    metrics_.add(metric::rounds, l, 0);
    for (std::string_view r : {"ok", "rolled_back", "error"})
        metrics_.add(metric::txn, labels("result", r), 0);
    for (std::string_view g : {"empty_source", "mass_delete"})
        metrics_.add(metric::guard_trips, labels("guard", g), 0);
    metrics_.set(metric::applied_index, l, 0);
    metrics_.set(metric::source_index, l, 0);
    metrics_.set(metric::source_watches, l, 0);
    for (auto h : {metric::replication_latency, metric::txn_duration, metric::full_read_duration})
        metrics_.touch_histogram(h, l);
    // Computed at scrape time so that they keep growing while a pair is stuck.
    metrics_.set_callback(metric::lag_index, l, [this] {
        return source_index_ > applied_index_ ? static_cast<double>(source_index_ - applied_index_) : 0.0;
    });
    metrics_.set_callback(metric::lag_seconds, l, [this] {
        if (!behind_since_)
            return 0.0;
        return std::chrono::duration<double>(clock::now() - *behind_since_).count();
    });
}

void pair_replicator::request_stop()
{
    stopping_ = true;
    read_cancel_.emit(asio::cancellation_type::terminal);
    if (timer_)
        timer_->cancel();
    if (watch_)
        watch_->wake.cancel();
    if (stream_)
        stream_->wake.cancel();
}

void pair_replicator::abort()
{
    request_stop();
    for (auto& sig : write_cancel_) sig.emit(asio::cancellation_type::terminal);
    if (stream_)
        for (auto& sig : stream_->write_cancel) sig.emit(asio::cancellation_type::terminal);
}

awaitable<std::optional<std::string>> pair_replicator::run()
{
    auto ex = co_await asio::this_coro::executor;
    timer_.emplace(ex);

    // The callbacks point at this object; once run() ends, freeze them as plain values.
    struct freeze_lag
    {
        pair_replicator* self;

        ~freeze_lag()
        {
            self->metrics_.set(metric::lag_index, self->labels(), 0);
            self->metrics_.set(metric::lag_seconds, self->labels(), 0);
        }
    } const freeze{this};

    if (params_.fsm.lost_found && !params_.dry_run) {
        // A gated pair: the source's own record bounds what a turn must save (lost_found.hpp).
        auto load = load_source_record(source_, *params_.fsm.lost_found, params_.fsm.rule.status_key);
        (void)co_await guarded(&read_cancel_, std::move(load));
        if (stopping_) {
            status_.finished = true;
            co_return std::nullopt;
        }
    }
    engine::replicator_fsm fsm(params_.fsm);
    engine::replicator_event ev = engine::event::start{};
    bool last_was_new_source = false;
    for (;;) {
        if (stopping_)
            ev = engine::event::stop{};
        if (!params_.retry_enabled) {
            if (auto* f = std::get_if<engine::event::failed>(&ev)) {
                status_.finished = true;
                co_return f->what;
            }
        }
        bool const was_source = std::holds_alternative<engine::event::source_read>(ev) ||
                                std::holds_alternative<engine::event::source_delta>(ev) ||
                                std::holds_alternative<engine::event::source_end>(ev);
        auto act = fsm.resume(std::move(ev));
        if (auto rep = fsm.take_report())
            on_report(*rep);

        // A new source index whose entries equal the last round's: nothing to apply, the
        // destination already mirrors that index.
        if (was_source && last_was_new_source && last_round_ok_ &&
            std::holds_alternative<engine::action::read_source>(act)) {
            applied_index_ = std::max(applied_index_, source_index_);
            metrics_.set(metric::applied_index, labels(), static_cast<double>(applied_index_));
            mark_applied(applied_index_);
        }

        if (auto* done = std::get_if<engine::action::done>(&act)) {
            co_await close_stream();
            co_await stop_watches();
            status_.finished = true;
            co_return done->error;
        }
        if (auto* rs = std::get_if<engine::action::read_source>(&act)) {
            auto const before = source_index_;
            if (rs->index > 0 && watch_ && !(fsm.takes_deltas() && grouping_wanted(fsm))) {
                // The machine cannot take deltas (a refused or failed round): the watches may hold
                // changes it has not seen, so start over with a full read.
                co_await stop_watches();
                next_full_reason_ = "regroup";
                ev = engine::event::source_reset{};
            } else if (rs->index > 0 && (watch_ || (grouping_wanted(fsm) && start_watches(fsm)))) {
                auto step = next_delta();
                ev = co_await std::move(step);
                last_was_new_source = std::holds_alternative<engine::event::source_delta>(ev);
            } else {
                co_await stop_watches();
                auto step = read_source(rs->index);
                ev = co_await std::move(step);
                last_was_new_source = source_index_ != before;
                if (rs->index > 0)
                    group_blocked_ = false;
            }
        } else if (auto* bs = std::get_if<engine::action::begin_stream>(&act)) {
            co_await stop_watches();
            begin_full_read();
            auto step = read_destination(bs->status_key, {});
            ev = co_await std::move(step);
        } else if (std::holds_alternative<engine::action::stream_source>(act)) {
            start_stream();
            auto step = next_stream_event();
            ev = co_await std::move(step);
            last_was_new_source = true;
        } else if (std::holds_alternative<engine::action::read_chunk>(act)) {
            auto step = next_stream_event();
            ev = co_await std::move(step);
            last_was_new_source = true;
        } else if (auto* ap = std::get_if<engine::action::apply_puts>(&act)) {
            auto step = queue_puts(std::move(ap->ops));
            ev = co_await std::move(step);
        } else if (auto* rd = std::get_if<engine::action::read_destination>(&act)) {
            auto step = read_destination(rd->status_key, rd->ranges);
            ev = co_await std::move(step);
        } else if (auto* ab = std::get_if<engine::action::apply_batch>(&act)) {
            auto step = apply_batch(ab->ops, ab->number, ab->count);
            ev = co_await std::move(step);
        } else if (auto* sl = std::get_if<engine::action::sleep>(&act)) {
            auto const ms = std::chrono::duration_cast<std::chrono::milliseconds>(sl->delay);
            log_.warn(
                "view", "{} (retry attempt {} after \"{}\")", last_failure_, failures_, format_go_duration(ms)
            );
            auto step = sleep(sl->delay);
            ev = co_await std::move(step);
        }
    }
}

engine::replicator_event pair_replicator::fail(std::string_view kind, std::string what)
{
    metrics_.add(metric::errors, labels("kind", kind));
    status_.failing = true;
    status_.last_error = what;
    ++failures_;
    last_failure_ = fmt::format("{}: {}", params_.label, what);
    // After a failure nothing is known for sure about the destination (a timed-out txn may have
    // committed): read it again.
    known_.reset();
    return engine::event::failed{std::move(what)};
}

void pair_replicator::begin_full_read()
{
    // A full read: at start, after the index went backwards, or when retrying one. The
    // destination is read again too.
    std::string const reason = first_read_                  ? std::string("startup")
                               : !next_full_reason_.empty() ? next_full_reason_
                               : failures_ > 0              ? std::string("retry")
                                                            : std::string("index_reset");
    next_full_reason_.clear();
    if (!first_read_ && reason == "index_reset")
        log_.info("runner", "{}: source index went backwards, starting over with a full read", params_.label);
    metrics_.add(metric::full_syncs, labels("reason", reason));
    first_read_ = false;
    known_.reset();
}

awaitable<engine::replicator_event> pair_replicator::read_source(std::uint64_t index)
{
    auto const& prefix = params_.fsm.rule.spec.source;
    if (index == 0)
        begin_full_read();
    if (index > 0 && fast_no_change_) {
        // A blocking read that came back at once with nothing new: do not spin on a server that
        // answers early (consul-template waits too).
        fast_no_change_ = false;
        auto pause = sleep(std::chrono::milliseconds(100));
        auto paused = co_await std::move(pause);
        if (std::holds_alternative<engine::event::stop>(paused))
            co_return engine::event::stop{};
    }
    auto const read_started = clock::now();
    transport::query_options q;
    q.dc = params_.source_dc;
    q.index = index;
    if (index > 0)
        q.wait = params_.blocking_wait;
    bool const stale = params_.max_stale.count() > 0;
    q.mode = stale ? transport::consistency::stale : transport::consistency::default_mode;
    log_.trace(
        "view",
        "kv.list({}): GET /v1/kv/{}?recurse&dc={}&index={}{}",
        params_.label,
        prefix,
        q.dc,
        index,
        stale ? "&stale" : ""
    );

    auto first = source_.list(prefix, q);
    auto r = co_await guarded(&read_cancel_, std::move(first));
    if (r && stale && r->last_contact > params_.max_stale) {
        log_.debug(
            "view",
            "{}: stale read is {} ms behind the leader, re-reading consistently",
            params_.label,
            r->last_contact.count()
        );
        q.mode = transport::consistency::default_mode;
        auto again = source_.list(prefix, q);
        r = co_await guarded(&read_cancel_, std::move(again));
    }
    if (!r) {
        if (stopping_)
            co_return engine::event::stop{};
        co_return fail(error_kind(r.error(), "source_read"), r.error().what());
    }
    if (r->results_filtered) {
        // A partial listing must never drive deletes: the keys the token cannot see would go.
        co_return fail(
            "acl_denied",
            transport::filtered_listing_text(prefix, q.dc, "source")
        );
    }
    if (index > 0 && r->index > index && params_.wait_min.count() > 0 && params_.wait_max.count() > 0) {
        // -wait min:max (consul-replicate's quiescence): keep reading while changes keep coming, until
        // the source has been quiet for `min` or `max` has passed since the first change.
        log_.info("runner", "{}: quiescence timers starting", params_.label);
        auto const max_deadline = clock::now() + params_.wait_max;
        for (;;) {
            auto const now = clock::now();
            if (now >= max_deadline) {
                log_.info("runner", "{}: quiescence maxTimer fired", params_.label);
                break;
            }
            auto const until = std::min(now + params_.wait_min, max_deadline);
            transport::query_options quiet = q;
            quiet.index = r->index;
            quiet.wait = std::max(
                std::chrono::milliseconds(1), std::chrono::ceil<std::chrono::milliseconds>(until - now)
            );
            auto quiet_op = source_.list(prefix, quiet);
            auto more = co_await guarded(&read_cancel_, std::move(quiet_op));
            if (stopping_)
                co_return engine::event::stop{};
            if (!more || more->results_filtered)
                break;  // act on what was read; the next read reports the problem
            if (more->index == r->index) {
                log_.info("runner", "{}: quiescence minTimer fired", params_.label);
                break;
            }
            bool const reset = more->index < r->index;
            r = std::move(more);
            if (reset)
                break;
        }
    }
    metrics_.set(metric::source_known_leader, labels(), r->known_leader ? 1 : 0);
    metrics_.set(
        metric::source_last_contact, labels(), std::chrono::duration<double>(r->last_contact).count()
    );
    log_.trace("view", "kv.list({}): returned {} pairs", params_.label, r->entries.size());

    std::uint64_t const got = std::max<std::uint64_t>(r->index, 1);
    std::string_view wake = "changed";
    if (index > 0 && got < index)
        wake = "index_reset";
    else if (index > 0 && got == index)
        wake = "no_change";
    if (index > 0) {
        metrics_.add(metric::wakeups, labels("result", wake));
        fast_no_change_ = wake == "no_change" && clock::now() - read_started < std::chrono::milliseconds(100);
    }
    if (index == 0)
        metrics_.observe(metric::full_read_duration, labels(), seconds_since(read_started));
    source_index_ = got;
    metrics_.set(metric::source_index, labels(), static_cast<double>(got));
    if (got < applied_index_) {
        // A restore or reap: what counts from now on is the new index line.
        applied_index_ = 0;
        seen_.clear();
    }
    note_seen(got);
    status_.failing = false;
    failures_ = 0;
    co_return engine::event::source_read{to_snapshot(std::move(*r))};
}

// ---- Grouped watching (DRIVER.md "Grouped watching") ----

bool pair_replicator::grouping_wanted(const engine::replicator_fsm& fsm) const
{
    if (params_.source_watches < 3 || params_.dry_run || group_blocked_ || !fsm.takes_deltas())
        return false;
    if (params_.wait_min.count() > 0 && params_.wait_max.count() > 0)
        return false;  // -wait's quiescence works on whole-prefix reads
    auto const* src = fsm.source();
    if (src->entries.size() >= params_.group_min_keys)
        return true;
    std::size_t bytes = 0;
    for (auto const& e : src->entries) bytes += e.key.size() + e.value_size;
    return bytes >= params_.group_min_bytes;
}

bool pair_replicator::start_watches(const engine::replicator_fsm& fsm)
{
    auto const& entries = fsm.source()->entries;
    auto const& prefix = params_.fsm.rule.spec.source;
    // Leave room for names that appear later (each becomes a group of its own).
    std::size_t const budget = params_.source_watches;
    std::size_t const max_watches =
        std::max<std::size_t>(3, budget - std::max<std::size_t>(1, (budget - 1) / 8));
    auto layout = engine::split_layout(entries, prefix, max_watches, params_.fsm.rule.filter);
    if (layout.empty()) {
        log_.debug("runner", "{}: the source cannot be split into groups; watching it whole", params_.label);
        return false;
    }
    auto w = std::make_shared<watch_state>(timer_->get_executor());
    w->budget = budget;
    watch_ = w;
    // One names watch per split directory (the source prefix first), all from the full read's index.
    w->layout.dirs = layout.dirs;
    for (auto const& dir : layout.dirs) {
        std::size_t const slot = w->cancels.size();
        w->cancels.emplace_back();
        w->pauses.emplace_back(timer_->get_executor());
        ++w->running;
        asio::co_spawn(timer_->get_executor(), watch_names(w, slot, dir, fsm.wait_index()), asio::detached);
    }
    for (auto& g : layout.groups) {
        // A group's own index is at least its newest entry's ModifyIndex (higher with tombstones:
        // then its first blocking read returns at once and finds nothing new).
        auto const [lo, hi] = engine::prefix_range(entries, g);
        std::uint64_t index = 1;
        for (std::size_t i = lo; i < hi; ++i) index = std::max(index, entries[i].modify_index);
        add_group(w, std::move(g), index);
    }
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
    for (;;) {
        if (stopping_)
            co_return engine::event::stop{};
        if (w->failure) {
            auto [kind, what] = *w->failure;
            metrics_.add(metric::errors, labels("kind", kind));
            log_.warn("view", "{}: a source watch failed ({}); starting over with a full read", params_.label, what);
            group_blocked_ = true;
            next_full_reason_ = "retry";
            co_await stop_watches();
            co_return engine::event::source_reset{};
        }
        if (!w->reset_reason.empty()) {
            bool const reset = w->reset_reason == "index_reset";
            log_.info(
                "runner",
                "{}: {}, starting over with a full read",
                params_.label,
                reset ? "a source index went backwards" : "new names do not fit the watched groups"
            );
            next_full_reason_ = reset ? "index_reset" : "regroup";
            co_await stop_watches();
            co_return engine::event::source_reset{};
        }
        if (!w->pending.empty()) {
            engine::event::source_delta d;
            d.groups.reserve(w->pending.size());
            for (auto& [prefix, listing] : w->pending) d.groups.push_back(std::move(listing));
            w->pending.clear();
            co_return d;
        }
        // Grouped rounds plan only what changed; a periodic full round repairs the rest (keys
        // edited or added by hand at the destination).
        auto const refresh_at = known_ ? known_->read_at + params_.destination_refresh : clock::time_point::max();
        if (clock::now() >= refresh_at) {
            next_full_reason_ = "refresh";
            co_await stop_watches();
            co_return engine::event::source_reset{};
        }
        w->wake.expires_at(refresh_at);
        co_await w->wake.async_wait(nothrow_awaitable);
    }
}

awaitable<transport::consul_result<transport::kv_listing>> pair_replicator::read_group(
    watch_state& w, std::size_t slot, const std::string& prefix, std::uint64_t index
)
{
    transport::query_options q;
    q.dc = params_.source_dc;
    q.index = index;
    if (index > 0)
        q.wait = params_.blocking_wait;
    bool const stale = params_.max_stale.count() > 0;
    q.mode = stale ? transport::consistency::stale : transport::consistency::default_mode;
    log_.trace("view", "kv.list({}): GET /v1/kv/{}?recurse&dc={}&index={}", params_.label, prefix, q.dc, index);
    auto first = source_.list(prefix, q);
    auto r = co_await guarded(&w.cancels[slot], std::move(first));
    if (r && stale && r->last_contact > params_.max_stale && !w.closing) {
        q.mode = transport::consistency::default_mode;
        auto again = source_.list(prefix, q);
        r = co_await guarded(&w.cancels[slot], std::move(again));
    }
    co_return r;
}

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

enum class watch_wake
{
    index_reset,  // the index went backwards: the pair starts over with a full read
    no_change,
    changed,
};

watch_wake classify_watch_wake(std::uint64_t got, std::uint64_t index)
{
    if (got < index)
        return watch_wake::index_reset;
    return got == index ? watch_wake::no_change : watch_wake::changed;
}

}  // namespace

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
        if (w->closing)
            co_return;
        if (!r) {
            w->failure.emplace(std::string(error_kind(r.error(), "source_read")), r.error().what());
            co_return;
        }
        if (r->results_filtered) {
            w->failure.emplace(
                "acl_denied",
                transport::filtered_listing_text(prefix, std::nullopt, "source")
            );
            co_return;
        }
        std::uint64_t const got = std::max<std::uint64_t>(r->index, 1);
        auto const wake = classify_watch_wake(got, index);
        if (wake == watch_wake::index_reset) {
            metrics_.add(metric::wakeups, labels("result", "index_reset"));
            w->reset_reason = "index_reset";
            co_return;
        }
        if (wake == watch_wake::no_change) {
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
    auto const& filter = params_.fsm.rule.filter;
    bool const stale = params_.max_stale.count() > 0;
    bool fast = false;
    while (!w->closing) {
        auto pause = pause_if_fast(*w, slot, fast);
        if (!co_await std::move(pause))
            co_return;
        transport::query_options q;
        q.dc = params_.source_dc;
        q.index = index;
        q.wait = params_.blocking_wait;
        q.mode = stale ? transport::consistency::stale : transport::consistency::default_mode;
        auto const started = clock::now();
        auto op = source_.keys(dir, std::string("/"), q);
        auto r = co_await guarded(&w->cancels[slot], std::move(op));
        if (w->closing)
            co_return;
        if (!r) {
            w->failure.emplace(std::string(error_kind(r.error(), "source_read")), r.error().what());
            co_return;
        }
        std::uint64_t const got = std::max<std::uint64_t>(r->index, 1);
        auto const wake = classify_watch_wake(got, index);
        if (wake == watch_wake::index_reset) {
            metrics_.add(metric::wakeups, labels("result", "index_reset"));
            w->reset_reason = "index_reset";
            co_return;
        }
        if (wake == watch_wake::no_change) {
            fast = clock::now() - started < std::chrono::milliseconds(100);
            continue;
        }
        fast = false;
        index = got;
        std::vector<std::string> fresh;
        for (auto& n : r->keys) {
            auto const kind = engine::classify_name(w->layout, filter, dir, n);
            if (kind == engine::name_kind::covered)
                continue;
            if (kind == engine::name_kind::overlaps || !n.starts_with(dir)) {
                log_.debug(
                    "runner", "{}: new source name {:?} overlaps the watched groups", params_.label, n
                );
                w->reset_reason = "regroup";
                co_return;
            }
            fresh.push_back(std::move(n));
        }
        if (fresh.empty())
            continue;
        if (w->layout.watches() + fresh.size() > w->budget) {
            w->reset_reason = "regroup";
            co_return;
        }
        for (auto& n : fresh) {
            // Read the new name once (not blocking), hand it over as a group listing, and watch it
            // from that listing's index: nothing written after the read is missed.
            auto l = co_await read_group(*w, slot, n, 0);
            if (w->closing)
                co_return;
            if (!l) {
                w->failure.emplace(std::string(error_kind(l.error(), "source_read")), l.error().what());
                co_return;
            }
            if (l->results_filtered) {
                w->failure.emplace("acl_denied", transport::filtered_listing_text(n, std::nullopt, "source"));
                co_return;
            }
            std::uint64_t const at = std::max<std::uint64_t>(l->index, 1);
            log_.debug("runner", "{}: new source name {:?}: watching it as a group", params_.label, n);
            w->pending[n] = engine::event::group_listing{n, at, to_snapshot(std::move(*l)).entries};
            add_group(w, n, at);
        }
        w->wake.cancel();
    }
}

// ---- Streamed full rounds (DRIVER.md "Streamed full rounds") ----


namespace {

std::vector<engine::kv_entry> to_engine_entries(std::vector<transport::kv_entry> entries)
{
    std::vector<engine::kv_entry> out;
    out.reserve(entries.size());
    for (auto& e : entries) {
        engine::kv_entry x;
        x.key = std::move(e.key);
        x.value = std::move(e.value).value_or(std::string{});
        x.flags = e.flags;
        x.modify_index = e.modify_index;
        if (!e.session.empty())
            x.session = std::move(e.session);
        out.push_back(std::move(x));
    }
    return out;
}

}  // namespace

void pair_replicator::start_stream()
{
    auto ex = timer_->get_executor();
    auto s = std::make_shared<stream_state>(ex, std::max<std::size_t>(1, params_.write_window));
    stream_ = s;
    asio::co_spawn(
        ex, stream_reader(s), asio::bind_cancellation_slot(s->reader_cancel.slot(), asio::detached)
    );
}

awaitable<void> pair_replicator::stream_reader(std::shared_ptr<stream_state> s)
{
    // Whatever happens, the loop must learn that the reader has ended.
    struct done_guard
    {
        stream_state& s;

        ~done_guard()
        {
            if (!s.end_index && !s.read_failure)
                s.read_failure.emplace("source_read", "the streamed source read was abandoned");
            s.reader_done = true;
            s.wake.cancel();
        }
    } const guard{*s};
    // A cancelled read returns its error like any other failure (no exception at the next co_await).
    co_await asio::this_coro::throw_if_cancelled(false);
    auto const read_started = clock::now();
    auto const& prefix = params_.fsm.rule.spec.source;
    transport::query_options q;
    q.dc = params_.source_dc;
    bool const stale = params_.max_stale.count() > 0;
    q.mode = stale ? transport::consistency::stale : transport::consistency::default_mode;
    bool filtered = false;
    bool too_stale = false;
    bool delivered = false;
    auto sink = [this, s, &filtered, &too_stale, &delivered, &q](
                    const transport::query_meta& meta, std::vector<transport::kv_entry> entries
                ) -> awaitable<std::optional<transport::consul_error>> {
        if (!delivered && q.mode == transport::consistency::stale && meta.last_contact > params_.max_stale) {
            // Too far behind the leader: nothing was taken yet, read again consistently.
            too_stale = true;
            co_return transport::consul_error{
                transport::make_error_code(transport::errc::cancelled), 200, "stale read too far behind"};
        }
        delivered = true;
        if (meta.results_filtered) {
            // A partial listing must never drive deletes; no put of it goes out either.
            filtered = true;
            co_return transport::filtered_by_acls_error();
        }
        s->chunks.push_back(to_engine_entries(std::move(entries)));
        s->wake.cancel();
        // Back-pressure: the body waits in the socket while the loop is behind.
        while (!s->closing && s->chunks.size() >= s->max_chunks) {
            s->reader_wake.expires_at(clock::time_point::max());
            co_await s->reader_wake.async_wait(nothrow_awaitable);
        }
        if (s->closing)
            co_return transport::consul_error{
                transport::make_error_code(transport::errc::cancelled), 0, "the streamed round was abandoned"};
        co_return std::nullopt;
    };
    log_.trace(
        "view",
        "kv.list({}): GET /v1/kv/{}?recurse&dc={}{} (streamed)",
        params_.label,
        prefix,
        q.dc,
        stale ? "&stale" : ""
    );
    auto op = source_.list_stream(prefix, q, sink, 1000);
    auto r = co_await std::move(op);
    if (stale && !delivered && (too_stale || (r && r->last_contact > params_.max_stale))) {
        log_.debug("view", "{}: stale read is behind the leader, re-reading consistently", params_.label);
        q.mode = transport::consistency::default_mode;
        auto again = source_.list_stream(prefix, q, sink, 1000);
        r = co_await std::move(again);
    }
    if (filtered || (r && r->results_filtered)) {
        s->read_failure.emplace(
            "acl_denied",
            transport::filtered_listing_text(prefix, q.dc, "source")
        );
    } else if (!r) {
        s->read_failure.emplace(std::string(error_kind(r.error(), "source_read")), r.error().what());
    } else {
        s->meta.index = r->index;
        s->meta.known_leader = r->known_leader;
        s->meta.last_contact = r->last_contact;
        s->end_index = r->index;
        metrics_.observe(metric::full_read_duration, labels(), seconds_since(read_started));
    }
}

void pair_replicator::spawn_stream_chunk(
    const std::shared_ptr<stream_state>& s, std::shared_ptr<const engine::batch> b, chunk c
)
{
    std::size_t slot = 0;
    while (slot < s->write_busy.size() && s->write_busy[slot]) ++slot;
    if (slot == s->write_busy.size())
        throw std::logic_error("spawn_stream_chunk: no free txn slot");  // callers check in_flight first
    s->write_busy[slot] = true;
    ++s->in_flight;
    auto task = send_chunk(b.get(), c);
    asio::co_spawn(
        timer_->get_executor(),
        std::move(task),
        asio::bind_cancellation_slot(
            s->write_cancel[slot].slot(),
            [s, b, slot](std::exception_ptr e, chunk_outcome o) {
                if (e)
                    o.error = transport::consul_error{
                        transport::make_error_code(transport::errc::cancelled), 0, "txn task failed"};
                s->write_busy[slot] = false;
                --s->in_flight;
                s->finished.push_back({b, std::move(o)});
                s->wake.cancel();
            }
        )
    );
}

void pair_replicator::take_stream_outcomes(stream_state& s)
{
    auto done = std::move(s.finished);
    s.finished.clear();
    for (auto& f : done) {
        std::deque<chunk> retry;
        judge_outcome(*f.batch, f.outcome, retry, s.write_failure, s.fenced);
        // A txn the server found too large goes again in smaller pieces, as window slots free up.
        for (auto const& c : retry) s.resend.emplace_back(f.batch, c);
    }
    auto self = stream_;
    while (!s.resend.empty() && s.in_flight < s.write_busy.size()) {
        if (s.write_failure || s.fenced || stopping_ || !self)
            break;
        auto [b, c] = std::move(s.resend.front());
        s.resend.pop_front();
        spawn_stream_chunk(self, std::move(b), c);
    }
}

// Waits for the stream's next wake-up (a chunk, the end, a finished txn).
awaitable<void> pair_replicator::wait_stream(stream_state& s)
{
    s.wake.expires_at(clock::time_point::max());
    co_await s.wake.async_wait(nothrow_awaitable);
}

awaitable<void> pair_replicator::close_stream()
{
    auto s = std::exchange(stream_, nullptr);
    if (!s)
        co_return;
    s->closing = true;
    s->reader_wake.cancel();
    if (!s->reader_done)
        s->reader_cancel.emit(asio::cancellation_type::terminal);
    // In-flight txns finish (abort() cancels them).
    // The reader and the txns point at this object: wait until every one has ended. Txns are
    // atomic; what committed is counted (and kept in the known destination).
    while (!s->reader_done || s->in_flight > 0) {
        co_await wait_stream(*s);
        auto const keep = std::move(s->finished);
        s->finished.clear();
        for (auto f : keep) {
            std::deque<chunk> ignored;
            judge_outcome(*f.batch, f.outcome, ignored, s->write_failure, s->fenced);
        }
    }
}

awaitable<engine::replicator_event> pair_replicator::queue_puts(engine::batch b)
{
    auto s = stream_;
    auto const shared = std::make_shared<const engine::batch>(std::move(b));
    for (auto const& c : make_chunks(*shared, 0, shared->ops.size())) {
        for (;;) {
            take_stream_outcomes(*s);
            if (stopping_ || s->fenced || s->write_failure) {
                auto step = next_stream_event();  // reports the failure or the stop
                co_return co_await std::move(step);
            }
            if (s->in_flight < s->write_busy.size())
                break;
            co_await wait_stream(*s);
        }
        spawn_stream_chunk(s, shared, c);
    }
    co_return engine::event::puts_queued{};
}

awaitable<engine::replicator_event> pair_replicator::next_stream_event()
{
    auto s = stream_;
    for (;;) {
        take_stream_outcomes(*s);
        if (stopping_ || s->fenced) {
            co_await close_stream();
            co_return engine::event::stop{};
        }
        if (s->write_failure) {
            auto const f = *s->write_failure;
            co_await close_stream();
            co_return fail(f.first, f.second);
        }
        if (!s->chunks.empty()) {
            auto entries = std::move(s->chunks.front());
            s->chunks.pop_front();
            s->reader_wake.cancel();
            co_return engine::event::source_chunk{std::move(entries)};
        }
        if (s->reader_done && s->read_failure) {
            auto const f = *s->read_failure;
            co_await close_stream();
            co_return fail(f.first, f.second);
        }
        if (s->reader_done && s->in_flight == 0 && s->resend.empty()) {
            // The whole listing arrived and every put written so far has committed: the machine
            // may now decide deletes and the checkpoint.
            auto const meta = s->meta;
            co_await close_stream();
            if (s->write_failure)
                co_return fail(s->write_failure->first, s->write_failure->second);
            metrics_.set(metric::source_known_leader, labels(), meta.known_leader ? 1 : 0);
            metrics_.set(
                metric::source_last_contact,
                labels(),
                std::chrono::duration<double>(meta.last_contact).count()
            );
            std::uint64_t const got = std::max<std::uint64_t>(meta.index, 1);
            log_.trace("view", "kv.list({}): streamed, index {}", params_.label, got);
            source_index_ = got;
            metrics_.set(metric::source_index, labels(), static_cast<double>(got));
            if (got < applied_index_) {
                applied_index_ = 0;
                seen_.clear();
            }
            note_seen(got);
            status_.failing = false;
            failures_ = 0;
            co_return engine::event::source_end{meta.index};
        }
        co_await wait_stream(*s);
    }
}

void pair_replicator::note_committed(std::span<const engine::txn_op> ops)
{
    if (!known_)
        return;
    std::optional<std::string> status;
    if (known_->entries) {
        status = known_->entries->apply(ops);
        if (known_->entries->bytes() > params_.known_destination_bytes) {
            log_.debug(
                "runner",
                "{}: the known destination passed {} bytes ({} keys): grouped rounds read their ranges from now on",
                params_.label,
                params_.known_destination_bytes,
                known_->entries->size()
            );
            known_->entries.reset();
        }
    } else {
        for (auto const& op : ops)
            if (op.verb == engine::txn_verb::set && op.key == params_.fsm.rule.status_key)
                status = op.value;
    }
    if (status) {
        if (auto c = decode_checkpoint(*status))
            known_->prev = std::move(*c);
    }
}

awaitable<engine::replicator_event> pair_replicator::read_ranges(const std::vector<std::string>& ranges)
{
    // The checkpoint is known; the entries under each range are read (the driver's own writes have
    // committed before a round starts, so each listing shows them).
    engine::snapshot dst;
    transport::query_options const q;
    for (auto const& r : ranges) {
        auto list_op = destination_.list(r, q);
        auto listing = co_await guarded(&read_cancel_, std::move(list_op));
        if (!listing) {
            if (stopping_)
                co_return engine::event::stop{};
            co_return fail(error_kind(listing.error(), "destination_read"), listing.error().what());
        }
        dst.index = std::max(dst.index, listing->index);
        auto part = to_snapshot(std::move(*listing));
        std::move(part.entries.begin(), part.entries.end(), std::back_inserter(dst.entries));
    }
    co_return engine::event::destination_read{std::move(dst), known_->prev, known_->status_index};
}

awaitable<engine::replicator_event> pair_replicator::read_destination(
    std::string status_key, std::vector<std::string> ranges
)
{
    bool const fresh = known_ && clock::now() - known_->read_at < params_.destination_refresh;
    if (fresh && known_->entries)
        co_return engine::event::destination_read{known_->entries->view(ranges), known_->prev, known_->status_index};
    if (fresh && !ranges.empty()) {
        auto step = read_ranges(ranges);
        co_return co_await std::move(step);
    }
    // A whole round over a destination too big to keep reads it again (not a refresh).
    if (known_ && !fresh)
        metrics_.add(metric::full_syncs, labels("reason", "refresh"));
    known_.reset();

    auto const& dest = params_.fsm.rule.spec.destination;
    transport::query_options const q;
    auto list_op = destination_.list(dest, q);
    auto listing = co_await guarded(&read_cancel_, std::move(list_op));
    if (!listing) {
        if (stopping_)
            co_return engine::event::stop{};
        co_return fail(error_kind(listing.error(), "destination_read"), listing.error().what());
    }
    auto get_op = destination_.get(status_key, q);
    auto status = co_await guarded(&read_cancel_, std::move(get_op));
    if (!status) {
        if (stopping_)
            co_return engine::event::stop{};
        co_return fail(error_kind(status.error(), "checkpoint"), status.error().what());
    }
    std::optional<engine::checkpoint> prev;
    std::uint64_t const status_index = status->entry ? status->entry->modify_index : 0;
    if (status->entry) {
        auto c = decode_checkpoint(status->entry->value.value_or(std::string{}));
        if (!c)
            co_return fail("checkpoint", fmt::format("status key {:?}: {}", status_key, c.error()));
        prev = std::move(*c);
    }
    auto dst = to_snapshot(std::move(*listing));
    metrics_.set(metric::destination_keys, labels(), static_cast<double>(dst.entries.size()));
    status_.failing = false;
    if (params_.dry_run || params_.fsm.once) {
        // Nothing is written in a dry run, so the listing must be read again every round; -once
        // ends after this round.
        co_return engine::event::destination_read{std::move(dst), std::move(prev), status_index};
    }
    known_state k;
    k.prev = prev;
    k.read_at = clock::now();
    k.status_index = status_index;
    if (engine::known_destination::cost(dst.entries) > params_.known_destination_bytes) {
        // Too big to keep: grouped rounds will read their ranges.
        known_ = std::move(k);
        co_return engine::event::destination_read{std::move(dst), std::move(prev), status_index};
    }
    k.entries.emplace(std::move(dst), dest, params_.fsm.rule.status_key);
    auto out = k.entries->view(ranges);
    known_ = std::move(k);
    co_return engine::event::destination_read{std::move(out), std::move(prev), status_index};
}

void pair_replicator::print_batch(const engine::batch& b) const
{
    if (plan_out_ == nullptr)
        return;
    std::string out;
    for (auto const& op : b.ops) {
        if (op.key == params_.fsm.rule.status_key)
            out += fmt::format("dry-run {}: checkpoint {:?}\n", params_.label, op.key);
        else if (op.verb == engine::txn_verb::set)
            out += fmt::format(
                "dry-run {}: put {:?} ({} bytes, flags {})\n",
                params_.label,
                op.key,
                op.value.size(),
                op.flags
            );
        else
            out += fmt::format("dry-run {}: delete {:?}\n", params_.label, op.key);
    }
    std::fwrite(out.data(), 1, out.size(), plan_out_);
    std::fflush(plan_out_);
}

std::vector<pair_replicator::chunk> pair_replicator::make_chunks(
    const engine::batch& b, std::size_t from, std::size_t to
) const
{
    // Greedy: as many ops as the learned op and byte limits allow. One op too big for any txn (a
    // value near 512 KiB, whose base64 is larger than the txn body limit) goes as a plain PUT,
    // which takes the raw value. With -lock every txn also carries the fence op first: room is
    // left for one op and its bytes.
    std::size_t fence_ops = 0;
    std::size_t fence_bytes = 0;
    if (params_.fence) {
        fence_ops = 1;
        if (auto f = params_.fence())
            fence_bytes = engine::txn_op_overhead_bytes + engine::json_string_bound(f->key) +
                          engine::json_string_bound(f->session) + 16;  // "Session":"" and a comma
    }
    std::vector<chunk> out;
    std::size_t const cap =
        std::max<std::size_t>(1, limit_.max_ops > fence_ops ? limit_.max_ops - fence_ops : 1);
    std::size_t pos = from;
    while (pos < to) {
        std::size_t bytes = engine::txn_body_overhead_bytes + fence_bytes;
        std::size_t end = pos;
        while (end < to && end - pos < cap) {
            std::size_t const op_bytes = engine::estimate_op_bytes(b.ops[end]);
            if (bytes + op_bytes > limit_.max_bytes)
                break;
            bytes += op_bytes;
            ++end;
        }
        if (end == pos) {
            out.push_back(chunk{pos, pos + 1, true});
            ++pos;
        } else {
            out.push_back(chunk{pos, end, false});
            pos = end;
        }
    }
    return out;
}

namespace {

// "op i ("key"): what; ..." for a rolled-back txn; `key_of(i)` names op i.
template <class KeyOf>
std::string describe_txn_errors(const std::vector<transport::txn_error_item>& errors, KeyOf key_of)
{
    std::string why;
    for (auto const& err : errors) {
        if (!why.empty())
            why += "; ";
        why += fmt::format("op {} ({:?}): {}", err.op_index, key_of(err.op_index), err.what);
        if (why.size() > 400) {
            why += "; ...";
            break;
        }
    }
    return why;
}

}  // namespace

awaitable<pair_replicator::chunk_outcome> pair_replicator::send_chunk(const engine::batch* b, chunk c)
{
    chunk_outcome out;
    out.c = c;
    auto const started = clock::now();
    std::optional<transport::txn_op> fence;
    if (params_.fence) {
        fence = params_.fence();
        if (!fence) {
            out.unheld = true;
            co_return out;
        }
    }
    std::string const local_dc;
    if (c.plain_put) {
        auto const& op = b->ops[c.from];
        if (op.verb != engine::txn_verb::set) {
            out.error = transport::consul_error{
                transport::make_error_code(transport::errc::request_too_large),
                0,
                fmt::format("delete of {:?} does not fit in a transaction", op.key)};
            co_return out;
        }
        if (fence) {
            // A value too large for any txn cannot carry the fence op: check the lock in a one-op
            // txn first. This one case is check-then-write, not atomic: a loss between the check
            // and the PUT is not caught (the window is one round trip).
            std::vector<transport::txn_op> check{*fence};
            auto check_op = destination_.txn(std::move(check), local_dc);
            auto checked = co_await std::move(check_op);
            out.sent_ops = 1;
            if (!checked) {
                out.error = checked.error();
                co_return out;
            }
            if (!checked->committed) {
                out.fenced = true;
                out.rolled_back = fmt::format(
                    "lock check before PUT {:?} refused: {}",
                    op.key,
                    describe_txn_errors(
                        checked->errors, [&](std::size_t) { return std::string_view(fence->key); }
                    )
                );
                co_return out;
            }
        }
        transport::put_options opts;
        opts.flags = op.flags;
        auto put_op = destination_.put(op.key, op.value, opts);
        auto r = co_await std::move(put_op);
        if (!r)
            out.error = r.error();
        else if (!*r)
            out.rolled_back = fmt::format("PUT {:?} answered false", op.key);
    } else {
        std::size_t const offset = fence ? 1 : 0;
        std::vector<transport::txn_op> ops;
        ops.reserve(c.to - c.from + offset);
        if (fence)
            ops.push_back(*fence);
        for (std::size_t k = c.from; k < c.to; ++k) ops.push_back(to_transport(b->ops[k]));
        out.sent_ops = ops.size();
        auto txn_op = destination_.txn(std::move(ops), local_dc);
        auto r = co_await std::move(txn_op);
        if (!r) {
            out.error = r.error();
        } else if (!r->committed) {
            auto key_of = [&](std::size_t i) {
                if (i < offset)
                    return std::string_view(fence->key);
                auto const idx = c.from + i - offset;
                return idx < c.to ? std::string_view(b->ops[idx].key) : std::string_view{};
            };
            for (auto const& err : r->errors) out.fenced = out.fenced || (fence && err.op_index == 0);
            out.rolled_back = fmt::format(
                "transaction rolled back{}: {}",
                out.fenced ? " by the lock check (the lock is no longer held by this process)" : "",
                describe_txn_errors(r->errors, key_of)
            );
        }
    }
    out.took = std::chrono::duration_cast<std::chrono::milliseconds>(clock::now() - started);
    metrics_.observe(metric::txn_duration, labels(), seconds_since(started));
    co_return out;
}

void pair_replicator::judge_outcome(
    const engine::batch& b,
    chunk_outcome& o,
    std::deque<chunk>& retry,
    std::optional<std::pair<std::string, std::string>>& failure,
    bool& fenced
)
{
    std::size_t const n = o.c.to - o.c.from;
    if (o.unheld || o.fenced) {
        if (o.fenced) {
            metrics_.add(metric::txn, labels("result", "rolled_back"));
            metrics_.add(metric::fenced_batches, {});
            log_.err("runner", "{}: {}", params_.label, o.rolled_back.value_or("fenced"));
        }
        if (!fenced) {
            fenced = true;
            abort();  // stop at once: nothing more is sent, in-flight txns are aborted
            if (o.fenced && params_.on_fenced)
                params_.on_fenced();
        }
        return;
    }
    if (o.error) {
        auto const& e = *o.error;
        // The op count the server saw includes the fence op.
        std::size_t const sent_ops = std::max(n, o.sent_ops);
        if (e == transport::errc::too_many_operations && n > 1) {
            std::size_t const learned =
                e.limit > 0 && e.limit < sent_ops ? static_cast<std::size_t>(e.limit) : sent_ops / 2;
            if (learned < limit_.max_ops) {
                limit_.max_ops = learned;
                log_.info("runner", "destination allows at most {} operations per transaction", learned);
            }
            metrics_.add(metric::txn, labels("result", "too_large"));
            auto again = make_chunks(b, o.c.from, o.c.to);
            retry.insert(retry.end(), again.begin(), again.end());
            return;
        }
        if (e == transport::errc::request_too_large && n > 1) {
            if (e.limit > 0 && e.limit < limit_.max_bytes) {
                limit_.max_bytes = static_cast<std::size_t>(e.limit);
                log_.info("runner", "destination allows at most {} bytes per transaction", e.limit);
                auto again = make_chunks(b, o.c.from, o.c.to);
                retry.insert(retry.end(), again.begin(), again.end());
            } else {
                std::size_t const mid = o.c.from + n / 2;
                retry.push_back(chunk{o.c.from, mid, false});
                retry.push_back(chunk{mid, o.c.to, false});
            }
            metrics_.add(metric::txn, labels("result", "too_large"));
            return;
        }
        metrics_.add(metric::txn, labels("result", "error"));
        if (!failure && !(stopping_ && e == transport::errc::cancelled))
            failure.emplace(std::string(error_kind(e, "dest_write")), e.what());
        return;
    }
    if (o.rolled_back) {
        metrics_.add(metric::txn, labels("result", "rolled_back"));
        if (!failure)
            failure.emplace("dest_write", std::move(*o.rolled_back));
        return;
    }
    metrics_.add(metric::txn, labels("result", "ok"));
    count_applied(b, o.c.from, o.c.to);
}

awaitable<engine::replicator_event> pair_replicator::apply_batch(
    const engine::batch* b, std::size_t number, std::size_t count
)
{
    if (params_.dry_run) {
        print_batch(*b);
        co_return engine::event::batch_applied{};
    }
    // Up to write_window chunks in flight at once (order among data ops does not matter: each
    // key appears once in a round); engine::txn_window decides what goes next, holds the checkpoint's
    // chunk until every other chunk has committed (the checkpoint never gets ahead of the data), and
    // says whether every op committed.
    std::size_t const n_ops = b->ops.size();
    engine::txn_window window(make_chunks(*b, 0, n_ops), n_ops, b->carries_checkpoint, write_cancel_.size());
    std::vector<chunk_outcome> finished;
    std::vector<bool> slot_busy(write_cancel_.size(), false);
    std::optional<std::pair<std::string, std::string>> failure;  // (kind, what)
    bool fenced = false;  // the lock is gone: stop at once, not a failure to retry
    auto ex = co_await asio::this_coro::executor;
    if (!apply_wake_)
        apply_wake_.emplace(ex);

    for (;;) {
        // Every outcome first: a chunk the server refused as too large goes again in pieces, and
        // those must be queued before the window picks what to send (else the checkpoint's chunk
        // could go out while they wait).
        auto done = std::move(finished);
        finished.clear();
        for (auto& o : done) {
            std::deque<chunk> retry;
            judge_outcome(*b, o, retry, failure, fenced);
            if (!retry.empty()) {
                window.split(o.c, std::vector<chunk>(retry.begin(), retry.end()));
            } else if (!o.error && !o.rolled_back && !o.unheld && !o.fenced) {
                window.committed(o.c);
                log_.trace(
                    "runner",
                    "{}: batch {}/{} ops {}..{} of {} took_ms={}",
                    params_.label,
                    number + 1,
                    count,
                    o.c.from,
                    o.c.to,
                    n_ops,
                    o.took.count()
                );
            } else {
                window.failed(o.c);
            }
        }
        if (failure || fenced || stopping_)
            window.stop();
        while (auto c = window.next()) {
            std::size_t slot = 0;
            while (slot_busy[slot]) ++slot;  // the window has room, so a slot is free
            slot_busy[slot] = true;
            auto task = send_chunk(b, *c);
            asio::co_spawn(
                ex,
                std::move(task),
                asio::bind_cancellation_slot(
                    write_cancel_[slot].slot(),
                    [this, &finished, &slot_busy, slot, c = *c](std::exception_ptr e, chunk_outcome o) {
                        if (e) {
                            o = chunk_outcome{};
                            o.c = c;
                            o.error = transport::consul_error{
                                transport::make_error_code(transport::errc::cancelled), 0, "txn task failed"};
                        }
                        slot_busy[slot] = false;
                        finished.push_back(std::move(o));
                        apply_wake_->cancel();
                    }
                )
            );
        }
        if (window.idle() && finished.empty())
            break;
        if (finished.empty()) {
            apply_wake_->expires_at(clock::time_point::max());
            co_await apply_wake_->async_wait(nothrow_awaitable);
        }
    }
    if (fenced)
        co_return engine::event::stop{};
    if (failure)
        co_return fail(failure->first, std::move(failure->second));
    if (!window.complete()) {
        if (stopping_)
            co_return engine::event::stop{};
        // Not reachable by the window's rules; if it ever is, the round is retried, never reported
        // (nor checkpointed) as applied.
        co_return fail(
            "dest_write",
            fmt::format(
                "batch {}/{}: {} of {} operations committed and nothing left to send (a bug: please report it)",
                number + 1,
                count,
                window.committed_ops(),
                n_ops
            )
        );
    }
    status_.failing = false;
    failures_ = 0;
    co_return engine::event::batch_applied{};
}

void pair_replicator::count_applied(const engine::batch& b, std::size_t from, std::size_t to)
{
    auto const& status_key = params_.fsm.rule.status_key;
    std::size_t puts = 0;
    std::size_t deletes = 0;
    std::size_t bytes = 0;
    std::size_t saved = 0;
    for (std::size_t k = from; k < to; ++k) {
        auto const& op = b.ops[k];
        if (op.key == status_key)
            continue;
        if (params_.fsm.lost_found && op.key.starts_with(params_.fsm.lost_found->prefix)) {
            // A lost+found save (or its .turn record): not replication, counted on its own.
            if (!op.key.ends_with(engine::turn_record_name))
                ++saved;
            continue;
        }
        if (op.verb == engine::txn_verb::set) {
            ++puts;
            bytes += op.value.size();
            log_.debug("runner", "updated key {:?}", op.key);
        } else {
            ++deletes;
            log_.debug("runner", "deleted {:?}", op.key);
        }
    }
    if (saved > 0) {
        metrics_.add(lost_found_entries_metric, labels(), static_cast<double>(saved));
        lost_found_committed_ += saved;
    }
    metrics_.add(metric::keys_put, labels(), static_cast<double>(puts));
    metrics_.add(metric::keys_deleted, labels(), static_cast<double>(deletes));
    metrics_.add(metric::bytes_written, labels(), static_cast<double>(bytes));
    note_committed(std::span<const engine::txn_op>(b.ops).subspan(from, to - from));
}

awaitable<engine::replicator_event> pair_replicator::sleep(std::chrono::nanoseconds delay)
{
    if (stopping_)
        co_return engine::event::stop{};
    timer_->expires_after(delay);
    auto [ec] = co_await timer_->async_wait(nothrow_awaitable);
    if (ec || stopping_)
        co_return engine::event::stop{};
    co_return engine::event::timer_fired{};
}

void pair_replicator::note_seen(std::uint64_t index)
{
    seen_.seen(index, applied_index_, clock::now());
    behind_since_ = seen_.oldest();
}

std::optional<std::chrono::steady_clock::time_point> pair_replicator::mark_applied(std::uint64_t index)
{
    auto oldest = seen_.applied(index);
    behind_since_ = seen_.oldest();
    return oldest;
}

void pair_replicator::on_report(const engine::round_report& r)
{
    auto const l = labels();
    metrics_.add(metric::rounds, l);
    metrics_.set(metric::source_keys, l, static_cast<double>(r.stats.source_keys));
    metrics_.set(metric::destination_keys, l, static_cast<double>(r.stats.destination_keys));
    for (auto const& w : r.warnings) {
        if (w.key.empty())
            log_.warn("runner", "{}: {}", params_.label, warning_text(w.kind));
        else
            log_.warn("runner", "{}: key {:?} {}", params_.label, w.key, warning_text(w.kind));
    }
    if (r.lost_found) {
        auto const& t = *r.lost_found;
        auto const& lf = *params_.fsm.lost_found;
        std::size_t const saved = std::exchange(lost_found_committed_, 0);
        if (saved > 0) {
            log_.warn(
                "runner",
                "{}: lost+found: saved {} keys that {} would have deleted or overwritten and that never "
                "reached {}, under {}{}/ (rule {}: {})",
                params_.label,
                saved,
                r.batch_err ? "this round" : "the turn",
                lf.source_dc,
                lf.prefix,
                r.lost_found_turn,
                t.rule,
                t.note
            );
        } else if (!lost_found_logged_ && !r.refused) {
            log_.info(
                "runner",
                "{}: lost+found: nothing to save from {} (rule {}: keys above index {} are saved; {})",
                params_.label,
                lf.local_dc,
                t.rule,
                t.index,
                t.note
            );
        }
        if (saved > 0 || !r.refused)
            lost_found_logged_ = true;
    }
    bool ok = true;
    if (r.refused) {
        ok = false;
        metrics_.add(metric::guard_trips, labels("guard", engine::to_string(r.refused->reason)));
        metrics_.set(metric::paused, l, 1);
        // Once per distinct refusal: a daemon re-plans on every source change.
        auto const text = fmt::format("{}", *r.refused);
        if (!status_.paused || text != last_refusal_ || log_.enabled(log_level::debug))
            log_.err(
                "runner",
                "{}: delete guard refused {} of {} destination keys: {}",
                params_.label,
                r.refused->deletes,
                r.refused->destination_keys,
                r.refused->message
            );
        status_.paused = true;
        last_refusal_ = text;
    } else {
        if (status_.paused)
            log_.info("runner", "{}: delete guard released", params_.label);
        status_.paused = false;
        last_refusal_.clear();
        metrics_.set(metric::paused, l, 0);
    }
    if (r.batch_err) {
        ok = false;
        metrics_.add(metric::errors, labels("kind", "batch"));
        log_.err("runner", "{}: {}", params_.label, r.batch_err->message);
        status_.last_error = r.batch_err->message;
    }
    if (ok) {
        applied_index_ = r.source_index;
        // Source change seen -> applied: from the read that returned the oldest change this round
        // applied to now, when the round's last txn has committed. The initial sync is a copy, not
        // a change, and is left out.
        auto const oldest = mark_applied(applied_index_);
        if (oldest && status_.initial_sync_done && !params_.dry_run && r.puts + r.deletes > 0)
            metrics_.observe(metric::replication_latency, l, seconds_since(*oldest));
        metrics_.set(metric::applied_index, l, static_cast<double>(applied_index_));
        metrics_.set(metric::last_success, l, unix_now());
        status_.initial_sync_done = true;
        status_.failing = false;
    }
    last_round_ok_ = ok;
    std::size_t const puts = r.puts;
    if (params_.dry_run) {
        log_.info(
            "runner", "{}: dry run: would replicate {} updates, {} deletes", params_.label, puts, r.deletes
        );
    } else if (puts + r.deletes > 0 && !r.batch_err) {  // a refused plan applied nothing
        log_.info("runner", "replicated {} updates, {} deletes", puts, r.deletes);
    }
    log_.debug(
        "runner",
        "{}: round index={} puts={} deletes={} batches={} unchanged={} filtered={} checkpoint={}",
        params_.label,
        r.source_index,
        puts,
        r.deletes,
        r.batches,
        r.stats.unchanged,
        r.stats.filtered,
        r.checkpoint_written
    );
}

}  // namespace kvship::replicate
