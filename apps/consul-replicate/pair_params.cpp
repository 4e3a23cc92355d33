#include "pair_params.hpp"

namespace kvship::replicate {

transport::read_settings source_reads(const pair_params& p)
{
    return {.dc = p.source_dc, .max_stale = p.max_stale, .wait = p.blocking_wait};
}

destination_writer::settings writer_settings(const pair_params& p, std::FILE* plan_out)
{
    return {p.label, p.write_window, p.fence, p.on_fenced, p.dry_run, plan_out, p.fsm.rule.status_key};
}

destination_reader::settings destination_settings(const pair_params& p)
{
    return {
        p.label,
        p.fsm.rule.spec.destination,
        p.fsm.rule.status_key,
        p.destination_refresh,
        p.known_destination_bytes,
        !p.dry_run && !p.fsm.once};
}

source_reader::settings source_settings(const pair_params& p, std::function<bool()> stopping)
{
    return {p.label, p.fsm.rule.spec.source, source_reads(p), p.wait_min, p.wait_max, std::move(stopping)};
}

source_stream::settings stream_settings(const pair_params& p)
{
    source_stream::settings s;
    s.label = p.label;
    s.prefix = p.fsm.rule.spec.source;
    s.reads = source_reads(p);
    return s;
}

source_watcher::settings watcher_settings(const pair_params& p, std::function<void(std::uint64_t)> index_seen)
{
    return {p.label, p.fsm.rule.spec.source, &p.fsm.rule.filter, p.source_watches, source_reads(p), std::move(index_seen)};
}

engine::watch_policy watch_policy(const pair_params& p)
{
    engine::watch_policy policy;
    policy.source_watches = p.source_watches;
    policy.min_keys = p.group_min_keys;
    policy.min_bytes = p.group_min_bytes;
    policy.dry_run = p.dry_run;
    policy.quiescence = p.wait_min.count() > 0 && p.wait_max.count() > 0;
    return policy;
}

}  // namespace kvship::replicate
