// A pair's whole-prefix source read (source_reader.hpp).
#include "source_reader.hpp"

#include "guarded.hpp"
#include "kv_convert.hpp"
#include "read_fresh.hpp"

#include <engine/quiescence.hpp>

namespace kvship::replicate {

using clock = std::chrono::steady_clock;

source_reader::source_reader(
    transport::consul_client& source, settings s, asio::cancellation_signal& cancel, const logger& log
)
    : source_(source), settings_(std::move(s)), cancel_(cancel), log_(log)
{
}

awaitable<source_reader::result> source_reader::read(std::uint64_t index)
{
    auto const& prefix = settings_.prefix;
    auto const& reads = settings_.reads;
    auto q = transport::read_query(reads, index);
    log_.trace(
        "view",
        "kv.list({}): GET /v1/kv/{}?recurse&dc={}&index={}{}",
        settings_.label,
        prefix,
        q.dc,
        index,
        q.mode == transport::consistency::stale ? "&stale" : ""
    );

    auto read = read_fresh(
        &cancel_,
        reads,
        q,
        [&](const transport::query_options& o) { return source_.list(prefix, o); },
        [&](const transport::kv_listing& stale) {
            log_.debug(
                "view",
                "{}: stale read is {} ms behind the leader, re-reading consistently",
                settings_.label,
                stale.last_contact.count()
            );
            return true;
        }
    );
    auto r = co_await std::move(read);
    if (!r) {
        result out;
        out.kind = std::string(error_kind(r.error(), "source_read"));
        out.what = r.error().what();
        out.error = r.error();
        co_return out;
    }
    if (r->results_filtered) {
        // A partial listing must never drive deletes: the keys the token cannot see would go.
        result out;
        out.kind = "acl_denied";
        out.what = transport::filtered_listing_text(prefix, q.dc, "source");
        co_return out;
    }
    if (index > 0 && r->index > index && settings_.wait_min.count() > 0 && settings_.wait_max.count() > 0) {
        // -wait min:max (consul-replicate's quiescence): keep reading while changes keep coming, until
        // the source has been quiet for `min` or `max` has passed since the first change.
        log_.info("runner", "{}: quiescence timers starting", settings_.label);
        auto const now = [] {
            return std::chrono::duration_cast<engine::quiescence::time>(clock::now().time_since_epoch());
        };
        engine::quiescence const quiet(settings_.wait_min, settings_.wait_max, now());
        for (auto step = quiet.start(now());;) {
            if (step.what == engine::quiescence::verdict::max_fired)
                log_.info("runner", "{}: quiescence maxTimer fired", settings_.label);
            if (step.what == engine::quiescence::verdict::min_fired)
                log_.info("runner", "{}: quiescence minTimer fired", settings_.label);
            if (step.what != engine::quiescence::verdict::read)
                break;
            transport::query_options more_q = q;
            more_q.index = r->index;
            more_q.wait = step.wait;
            auto quiet_op = source_.list(prefix, more_q);
            auto more = co_await guarded(&cancel_, std::move(quiet_op));
            if (settings_.stopping()) {
                result out;
                out.stopped = true;
                co_return out;
            }
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
    log_.trace("view", "kv.list({}): returned {} pairs", settings_.label, r->entries.size());
    result out;
    out.listing = std::move(*r);
    co_return out;
}

}  // namespace kvship::replicate
