#include <engine/plan.hpp>
#include <prefixes/key_map.hpp>

#include <algorithm>
#include <map>
#include <set>
#include <string_view>

namespace kvship::engine {

namespace {

using key_index = std::map<std::string, const kv_entry*, std::less<>>;

void warn_about_locks(const kv_entry& e, const std::string& destination_key, std::vector<warning>& out)
{
    // consul-replicate logs these for every key it writes; its lock and semaphore messages were
    // swapped, ours are not.
    if (e.flags == lock_flag_value)
        out.push_back({warning_kind::lock_flag, destination_key});
    if (e.flags == semaphore_flag_value)
        out.push_back({warning_kind::semaphore_flag, destination_key});
    if (e.session && !e.session->empty())
        out.push_back({warning_kind::session_attached, destination_key});
}

}  // namespace

plan make_plan(const snapshot& src, const snapshot& dst, const prefixes::rule& rule, const checkpoint& prev)
{
    plan p;
    auto const& spec = rule.spec;

    // Selected source entries, by destination key.
    key_index desired;
    std::set<std::string_view> seen;
    for (auto const& e : src.entries) {
        if (!seen.insert(e.key).second) {
            p.warnings.push_back({warning_kind::duplicate_key, e.key});
            continue;
        }
        auto destination_key = prefixes::map_key(spec, e.key);
        if (!destination_key) {
            p.warnings.push_back({warning_kind::outside_source_prefix, e.key});
            continue;
        }
        ++p.stats.source_keys;
        if (!prefixes::is_selected(rule.filter, e.key)) {
            ++p.stats.filtered;
            continue;
        }
        if (prefixes::is_protected(rule, *destination_key)) {
            ++p.stats.protected_keys;
            if (prefixes::is_status_key(rule, *destination_key))
                p.warnings.push_back({warning_kind::status_key_collision, *destination_key});
            continue;
        }
        ++p.stats.selected_keys;
        desired.emplace(std::move(*destination_key), &e);
    }

    // Destination entries this pair manages.
    key_index current;
    seen.clear();
    for (auto const& e : dst.entries) {
        if (!seen.insert(e.key).second) {
            p.warnings.push_back({warning_kind::duplicate_key, e.key});
            continue;
        }
        if (prefixes::is_protected(rule, e.key)) {
            ++p.stats.protected_keys;
            continue;
        }
        auto source_key = prefixes::unmap_key(spec, e.key);
        if (!source_key) {
            p.warnings.push_back({warning_kind::outside_destination, e.key});
            continue;
        }
        if (!prefixes::is_selected(rule.filter, *source_key))
            continue;
        ++p.stats.destination_keys;
        current.emplace(e.key, &e);
    }

    for (auto const& [key, want] : desired) {
        auto const it = current.find(key);
        if (it != current.end() && it->second->value == want->value && it->second->flags == want->flags) {
            ++p.stats.unchanged;
            continue;
        }
        warn_about_locks(*want, key, p.warnings);
        p.puts.push_back(put_op{key, want->value, want->flags, want->modify_index});
    }
    for (auto const& [key, have] : current) {
        if (desired.find(key) == desired.end())
            p.deletes.push_back(delete_op{key});
    }

    if (prev.last_replicated > src.index)
        p.warnings.push_back({warning_kind::index_behind_checkpoint, {}});
    bool const prev_named = !prev.source.empty() || !prev.destination.empty();
    if (prev_named && (prev.source != spec.source || prev.destination != spec.destination))
        p.warnings.push_back({warning_kind::checkpoint_mismatch, {}});

    std::stable_sort(p.warnings.begin(), p.warnings.end(), [](const warning& a, const warning& b) {
        if (a.key != b.key)
            return a.key < b.key;
        return a.kind < b.kind;
    });
    p.next_checkpoint = checkpoint{src.index, spec.source, spec.destination};
    return p;
}

snapshot apply_plan(const snapshot& dst, const plan& p, std::uint64_t new_index)
{
    std::map<std::string, kv_entry, std::less<>> state;
    for (auto const& e : dst.entries) state.emplace(e.key, e);
    for (auto const& d : p.deletes) state.erase(d.key);
    for (auto const& put : p.puts) {
        auto [it, inserted] = state.try_emplace(put.key);
        kv_entry& e = it->second;
        if (inserted)
            e.key = put.key;
        e.value = put.value;
        e.flags = put.flags;
        e.modify_index = new_index;
    }
    snapshot out;
    out.index = new_index;
    out.entries.reserve(state.size());
    for (auto& [key, e] : state) out.entries.push_back(std::move(e));
    return out;
}

bool has_changes(const plan& p)
{
    return !p.puts.empty() || !p.deletes.empty();
}

std::string_view to_string(warning_kind kind)
{
    switch (kind) {
        case warning_kind::session_attached:
            return "session_attached";
        case warning_kind::lock_flag:
            return "lock_flag";
        case warning_kind::semaphore_flag:
            return "semaphore_flag";
        case warning_kind::outside_source_prefix:
            return "outside_source_prefix";
        case warning_kind::outside_destination:
            return "outside_destination";
        case warning_kind::status_key_collision:
            return "status_key_collision";
        case warning_kind::duplicate_key:
            return "duplicate_key";
        case warning_kind::index_behind_checkpoint:
            return "index_behind_checkpoint";
        case warning_kind::checkpoint_mismatch:
            return "checkpoint_mismatch";
    }
    return "unknown";
}

std::string_view to_string(refusal_reason reason)
{
    switch (reason) {
        case refusal_reason::empty_source:
            return "empty_source";
        case refusal_reason::mass_delete:
            return "mass_delete";
    }
    return "unknown";
}

}  // namespace kvship::engine
