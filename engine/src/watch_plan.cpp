#include <engine/watch_plan.hpp>

#include <algorithm>

namespace kvship::engine {

bool grouping_wanted(const watch_policy& policy, const compact_snapshot* source, bool takes_deltas, bool blocked)
{
    if (policy.source_watches < 3 || policy.dry_run || policy.quiescence || blocked || !takes_deltas || !source)
        return false;
    if (source->entries.size() >= policy.min_keys)
        return true;
    std::size_t bytes = 0;
    for (auto const& e : source->entries) bytes += e.key.size() + e.value_size;
    return bytes >= policy.min_bytes;
}

std::size_t layout_watches(std::size_t budget)
{
    std::size_t const room = std::max<std::size_t>(1, budget > 0 ? (budget - 1) / 8 : 0);
    return std::max<std::size_t>(3, budget > room ? budget - room : 0);
}

watch_plan plan_watches(
    const compact_entries& entries,
    std::string_view source_prefix,
    std::size_t budget,
    const prefixes::key_filter& filter
)
{
    watch_plan out;
    out.layout = split_layout(entries, source_prefix, layout_watches(budget), filter);
    out.group_index.reserve(out.layout.groups.size());
    for (auto const& g : out.layout.groups) {
        auto const [lo, hi] = prefix_range(entries, g);
        std::uint64_t index = 1;
        for (std::size_t i = lo; i < hi; ++i) index = std::max(index, entries[i].modify_index);
        out.group_index.push_back(index);
    }
    return out;
}

names_verdict judge_names(
    const source_layout& layout,
    const prefixes::key_filter& filter,
    std::string_view dir,
    std::vector<std::string> names,
    std::size_t budget
)
{
    names_verdict out;
    for (auto& n : names) {
        auto const kind = classify_name(layout, filter, dir, n);
        if (kind == name_kind::covered)
            continue;
        if (kind == name_kind::overlaps || !std::string_view(n).starts_with(dir)) {
            out.regroup = true;
            out.overlapping = std::move(n);
            out.fresh.clear();
            return out;
        }
        out.fresh.push_back(std::move(n));
    }
    if (!out.fresh.empty() && layout.watches() + out.fresh.size() > budget) {
        out.regroup = true;
        out.fresh.clear();
    }
    return out;
}

std::string_view to_string(full_read_reason r)
{
    switch (r) {
        case full_read_reason::startup:
            return "startup";
        case full_read_reason::retry:
            return "retry";
        case full_read_reason::index_reset:
            return "index_reset";
        case full_read_reason::regroup:
            return "regroup";
        case full_read_reason::refresh:
            return "refresh";
    }
    return "unknown";
}

full_read_reason reason_for_full_read(bool first_read, std::optional<full_read_reason> asked, bool failing)
{
    if (first_read)
        return full_read_reason::startup;
    if (asked)
        return *asked;
    return failing ? full_read_reason::retry : full_read_reason::index_reset;
}

watches_verdict judge_watches(const watches_view& v, watch_time now)
{
    watches_verdict out;
    if (v.failed) {
        out.what = watches_verdict::kind::full_read;
        out.reason = full_read_reason::retry;
        out.block_grouping = true;
    } else if (v.reset) {
        out.what = watches_verdict::kind::full_read;
        out.reason = *v.reset;
    } else if (v.pending) {
        out.what = watches_verdict::kind::deliver;
    } else if (v.refresh_at && now >= *v.refresh_at) {
        out.what = watches_verdict::kind::full_read;
        out.reason = full_read_reason::refresh;
    } else {
        out.wake_at = v.refresh_at;
    }
    return out;
}

wake_verdict judge_wake(std::uint64_t index, std::uint64_t got, watch_time took)
{
    wake_verdict out;
    out.index = std::max<std::uint64_t>(got, 1);
    if (out.index < index) {
        out.what = wake_verdict::kind::index_reset;
    } else if (out.index == index) {
        out.what = wake_verdict::kind::no_change;
        out.pause = took < fast_answer;
    }
    return out;
}

std::string_view to_string(wake_verdict::kind k)
{
    switch (k) {
        case wake_verdict::kind::changed:
            return "changed";
        case wake_verdict::kind::no_change:
            return "no_change";
        case wake_verdict::kind::index_reset:
            return "index_reset";
    }
    return "changed";
}

source_read_way choose_source_read(std::uint64_t index, bool watching, bool wanted)
{
    if (index == 0)
        return source_read_way::whole;
    if (watching)
        return wanted ? source_read_way::delta : source_read_way::regroup;
    return wanted ? source_read_way::start_watches : source_read_way::whole;
}

}  // namespace kvship::engine
