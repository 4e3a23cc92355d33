// A pair's bookkeeping (pair_books.hpp).
#include "pair_books.hpp"

#include "lost_found.hpp"

#include <fmt/format.h>

#include <utility>

namespace kvship::replicate {

using clock = std::chrono::steady_clock;

namespace {

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

pair_books::pair_books(
    std::string label, const engine::replicator_config& config, bool dry_run, const logger& log, metrics_registry& metrics
)
    : label_(std::move(label)), config_(config), dry_run_(dry_run), log_(log), metrics_(metrics)
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

void pair_books::freeze()
{
    metrics_.set(metric::lag_index, labels(), 0);
    metrics_.set(metric::lag_seconds, labels(), 0);
}

void pair_books::source_read(bool known_leader, std::chrono::milliseconds last_contact, std::uint64_t got)
{
    metrics_.set(metric::source_known_leader, labels(), known_leader ? 1 : 0);
    metrics_.set(metric::source_last_contact, labels(), std::chrono::duration<double>(last_contact).count());
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
}

void pair_books::group_read(std::uint64_t got)
{
    if (got > source_index_) {
        source_index_ = got;
        metrics_.set(metric::source_index, labels(), static_cast<double>(got));
    }
    note_seen(got);
}

void pair_books::applied(std::uint64_t index)
{
    if (index <= applied_index_)
        return;
    applied_index_ = index;
    metrics_.set(metric::applied_index, labels(), static_cast<double>(applied_index_));
    mark_applied(applied_index_);
}

void pair_books::failed(std::string_view kind, const std::string& what)
{
    metrics_.add(metric::errors, labels("kind", kind));
    status_.failing = true;
    status_.last_error = what;
    ++failures_;
    last_failure_ = fmt::format("{}: {}", label_, what);
}

void pair_books::succeeded()
{
    status_.failing = false;
    failures_ = 0;
}

void pair_books::note_seen(std::uint64_t index)
{
    seen_.seen(index, applied_index_, clock::now());
    behind_since_ = seen_.oldest();
}

std::optional<std::chrono::steady_clock::time_point> pair_books::mark_applied(std::uint64_t index)
{
    auto oldest = seen_.applied(index);
    behind_since_ = seen_.oldest();
    return oldest;
}

void pair_books::committed(const engine::batch& b, std::size_t from, std::size_t to)
{
    auto const& status_key = config_.rule.status_key;
    std::size_t puts = 0;
    std::size_t deletes = 0;
    std::size_t bytes = 0;
    std::size_t saved = 0;
    for (std::size_t k = from; k < to; ++k) {
        auto const& op = b.ops[k];
        if (op.key == status_key)
            continue;
        if (config_.lost_found && op.key.starts_with(config_.lost_found->prefix)) {
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
}

void pair_books::round(const engine::round_report& r)
{
    auto const l = labels();
    metrics_.add(metric::rounds, l);
    metrics_.set(metric::source_keys, l, static_cast<double>(r.stats.source_keys));
    metrics_.set(metric::destination_keys, l, static_cast<double>(r.stats.destination_keys));
    for (auto const& w : r.warnings) {
        if (w.key.empty())
            log_.warn("runner", "{}: {}", label_, warning_text(w.kind));
        else
            log_.warn("runner", "{}: key {:?} {}", label_, w.key, warning_text(w.kind));
    }
    if (r.lost_found) {
        auto const& t = *r.lost_found;
        auto const& lf = *config_.lost_found;
        std::size_t const saved = std::exchange(lost_found_committed_, 0);
        if (saved > 0) {
            log_.warn(
                "runner",
                "{}: lost+found: saved {} keys that {} would have deleted or overwritten and that never "
                "reached {}, under {}{}/ (rule {}: {})",
                label_,
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
                label_,
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
                label_,
                r.refused->deletes,
                r.refused->destination_keys,
                r.refused->message
            );
        status_.paused = true;
        last_refusal_ = text;
    } else {
        if (status_.paused)
            log_.info("runner", "{}: delete guard released", label_);
        status_.paused = false;
        last_refusal_.clear();
        metrics_.set(metric::paused, l, 0);
    }
    if (r.batch_err) {
        ok = false;
        metrics_.add(metric::errors, labels("kind", "batch"));
        log_.err("runner", "{}: {}", label_, r.batch_err->message);
        status_.last_error = r.batch_err->message;
    }
    if (ok) {
        applied_index_ = r.source_index;
        // Source change seen -> applied: from the read that returned the oldest change this round
        // applied to now, when the round's last txn has committed. The initial sync is a copy, not
        // a change, and is left out.
        auto const oldest = mark_applied(applied_index_);
        if (oldest && status_.initial_sync_done && !dry_run_ && r.puts + r.deletes > 0)
            metrics_.observe(metric::replication_latency, l, seconds_since(*oldest));
        metrics_.set(metric::applied_index, l, static_cast<double>(applied_index_));
        metrics_.set(metric::last_success, l, unix_now());
        status_.initial_sync_done = true;
        status_.failing = false;
    }
    std::size_t const puts = r.puts;
    if (dry_run_) {
        log_.info(
            "runner", "{}: dry run: would replicate {} updates, {} deletes", label_, puts, r.deletes
        );
    } else if (puts + r.deletes > 0 && !r.batch_err) {  // a refused plan applied nothing
        log_.info("runner", "replicated {} updates, {} deletes", puts, r.deletes);
    }
    log_.debug(
        "runner",
        "{}: round index={} puts={} deletes={} batches={} unchanged={} filtered={} checkpoint={}",
        label_,
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
