// The pair driver's reads: the whole source (with -wait quiescence), the destination and its ranges.
#include "replicator_parts.hpp"

namespace kvship::replicate {

using namespace driver_detail;

void pair_replicator::begin_full_read()
{
    // A full read: at start, after the index went backwards, or when retrying one. The
    // destination is read again too.
    auto const reason =
        engine::reason_for_full_read(first_read_, std::exchange(next_full_reason_, std::nullopt), books_.failures() > 0);
    if (!first_read_ && reason == engine::full_read_reason::index_reset)
        log_.info("runner", "{}: source index went backwards, starting over with a full read", params_.label);
    metrics_.add(metric::full_syncs, labels("reason", engine::to_string(reason)));
    first_read_ = false;
    destination_reader_.forget();
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
        auto pause = sleep(engine::fast_answer);
        auto paused = co_await std::move(pause);
        if (std::holds_alternative<engine::event::stop>(paused))
            co_return engine::event::stop{};
    }
    auto const read_started = clock::now();
    auto const reads = source_reads();
    auto q = transport::read_query(reads, index);
    log_.trace(
        "view",
        "kv.list({}): GET /v1/kv/{}?recurse&dc={}&index={}{}",
        params_.label,
        prefix,
        q.dc,
        index,
        q.mode == transport::consistency::stale ? "&stale" : ""
    );

    auto read = read_fresh(
        &read_cancel_,
        reads,
        q,
        [&](const transport::query_options& o) { return source_.list(prefix, o); },
        [&](const transport::kv_listing& stale) {
            log_.debug(
                "view",
                "{}: stale read is {} ms behind the leader, re-reading consistently",
                params_.label,
                stale.last_contact.count()
            );
            return true;
        }
    );
    auto r = co_await std::move(read);
    if (!r)
        co_return read_failed(r.error(), "source_read");
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
        auto const now = [] {
            return std::chrono::duration_cast<engine::quiescence::time>(clock::now().time_since_epoch());
        };
        engine::quiescence const quiet(params_.wait_min, params_.wait_max, now());
        for (auto step = quiet.start(now());;) {
            if (step.what == engine::quiescence::verdict::max_fired)
                log_.info("runner", "{}: quiescence maxTimer fired", params_.label);
            if (step.what == engine::quiescence::verdict::min_fired)
                log_.info("runner", "{}: quiescence minTimer fired", params_.label);
            if (step.what != engine::quiescence::verdict::read)
                break;
            transport::query_options more_q = q;
            more_q.index = r->index;
            more_q.wait = step.wait;
            auto quiet_op = source_.list(prefix, more_q);
            auto more = co_await guarded(&read_cancel_, std::move(quiet_op));
            if (stopping_)
                co_return engine::event::stop{};
            using answer = engine::quiescence::answer;
            answer const a = !more || more->results_filtered ? answer::failed
                             : more->index == r->index       ? answer::same
                             : more->index < r->index        ? answer::went_back
                                                             : answer::advanced;
            if (a == answer::advanced || a == answer::went_back)
                r = std::move(more);
            step = quiet.answered(a, now());
        }
    }
    log_.trace("view", "kv.list({}): returned {} pairs", params_.label, r->entries.size());

    auto const wake = engine::judge_wake(index, r->index, clock::now() - read_started);
    std::uint64_t const got = wake.index;
    if (index > 0) {
        metrics_.add(metric::wakeups, labels("result", engine::to_string(wake.what)));
        fast_no_change_ = wake.pause;
    }
    if (index == 0)
        metrics_.observe(metric::full_read_duration, labels(), seconds_since(read_started));
    books_.source_read(r->known_leader, r->last_contact, got);
    co_return engine::event::source_read{to_snapshot(std::move(*r))};
}

transport::read_settings pair_replicator::source_reads() const
{
    return {.dc = params_.source_dc, .max_stale = params_.max_stale, .wait = params_.blocking_wait};
}

engine::replicator_event pair_replicator::read_failed(const transport::consul_error& e, std::string_view kind)
{
    if (stopping_)
        return engine::event::stop{};
    return fail(error_kind(e, kind), e.what());
}

awaitable<engine::replicator_event> pair_replicator::read_destination(std::vector<std::string> ranges)
{
    auto read = destination_reader_.read(std::move(ranges));
    auto r = co_await std::move(read);
    if (r.read) {
        if (r.whole)
            books_.destination_read();
        co_return std::move(*r.read);
    }
    if (r.error && stopping_)
        co_return engine::event::stop{};
    co_return fail(r.kind, std::move(r.what));
}

}  // namespace kvship::replicate
