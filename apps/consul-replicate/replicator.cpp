#include "replicator_parts.hpp"

namespace kvship::replicate {

namespace driver_detail {
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

}  // namespace driver_detail

using namespace driver_detail;

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
      log_(log),
      metrics_(metrics),
      plan_out_(plan_out),
      writer_(
          destination,
          destination_writer::settings{params_.label, params_.write_window, params_.fence, params_.on_fenced},
          limit,
          log,
          metrics,
          destination_writer::hooks{
              [this](const engine::batch& b, std::size_t from, std::size_t to) { count_applied(b, from, to); },
              [this] { abort(); },
              [this] { return stopping_; }}
      ),
      destination_reader_(
          destination,
          destination_reader::settings{
              params_.label,
              params_.fsm.rule.spec.destination,
              params_.fsm.rule.status_key,
              params_.destination_refresh,
              params_.known_destination_bytes,
              !params_.dry_run && !params_.fsm.once},
          read_cancel_,
          log,
          metrics
      )
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
        watch_->wake();
    if (stream_)
        stream_->read->wake();
}

void pair_replicator::abort()
{
    request_stop();
    writer_.abort();
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
    for (;;) {
        if (stopping_)
            ev = engine::event::stop{};
        if (!params_.retry_enabled) {
            if (auto* f = std::get_if<engine::event::failed>(&ev)) {
                status_.finished = true;
                co_return f->what;
            }
        }
        fsm.set_limits(writer_.limits(params_.fsm.limits.max_value_bytes));  // a 413 taught a limit, or the fence op's room changed
        auto act = fsm.resume(std::move(ev));
        if (auto rep = fsm.take_report())
            on_report(*rep);
        if (fsm.applied_index() > applied_index_) {
            // A new source index whose entries equal the last round's: nothing to apply, the
            // destination already mirrors that index.
            applied_index_ = fsm.applied_index();
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
            if (rs->index > 0 && watch_ && !(fsm.takes_deltas() && grouping_wanted(fsm))) {
                // The machine cannot take deltas (a refused or failed round): the watches may hold
                // changes it has not seen, so start over with a full read.
                co_await stop_watches();
                next_full_reason_ = engine::full_read_reason::regroup;
                ev = engine::event::source_reset{};
            } else if (rs->index > 0 && (watch_ || (grouping_wanted(fsm) && start_watches(fsm)))) {
                auto step = next_delta();
                ev = co_await std::move(step);
            } else {
                co_await stop_watches();
                auto step = read_source(rs->index);
                ev = co_await std::move(step);
                if (rs->index > 0)
                    group_blocked_ = false;
            }
        } else if (std::holds_alternative<engine::action::begin_stream>(act)) {
            co_await stop_watches();
            begin_full_read();
            auto step = read_destination({});
            ev = co_await std::move(step);
        } else if (std::holds_alternative<engine::action::stream_source>(act)) {
            start_stream();
            auto step = next_stream_event();
            ev = co_await std::move(step);
        } else if (std::holds_alternative<engine::action::read_chunk>(act)) {
            auto step = next_stream_event();
            ev = co_await std::move(step);
        } else if (auto* ap = std::get_if<engine::action::apply_puts>(&act)) {
            auto step = queue_puts(std::move(ap->ops));
            ev = co_await std::move(step);
        } else if (auto* rd = std::get_if<engine::action::read_destination>(&act)) {
            auto step = read_destination(rd->ranges);
            ev = co_await std::move(step);
        } else if (auto* ab = std::get_if<engine::action::apply_batch>(&act)) {
            auto step = apply_batch(ab->batches, ab->number, ab->count);
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
    destination_reader_.forget();
    return engine::event::failed{std::move(what)};
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
