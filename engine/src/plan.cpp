#include <engine/plan.hpp>
#include <prefixes/key_map.hpp>

#include <iterator>

#include <algorithm>
#include <map>
#include <string_view>

namespace kvship::engine {

namespace {

// An entry seen through its key relative to the pair's prefix. Every source key starts with the
// source prefix and every destination key with the destination prefix, so ordering by this suffix
// is ordering by destination key, and the two sides merge without building mapped strings.
struct side_entry
{
    std::string_view suffix;
    const kv_entry* entry;
};

// Sorts by suffix (skipped when already sorted, the usual case) and drops duplicate keys, keeping
// the first in input order and reporting the rest.
void sort_side(std::vector<side_entry>& side, std::vector<warning>& warnings)
{
    auto const by_suffix = [](const side_entry& a, const side_entry& b) { return a.suffix < b.suffix; };
    if (!std::is_sorted(side.begin(), side.end(), by_suffix))
        std::stable_sort(side.begin(), side.end(), by_suffix);
    auto out = side.begin();
    for (auto it = side.begin(); it != side.end(); ++it) {
        if (out != side.begin() && std::prev(out)->suffix == it->suffix) {
            warnings.push_back({warning_kind::duplicate_key, it->entry->key});
            continue;
        }
        *out++ = *it;
    }
    side.erase(out, side.end());
}

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
    return make_plan(src.entries, src.index, dst.entries, rule, prev);
}

plan make_plan(
    std::span<const kv_entry> src,
    std::uint64_t src_index,
    std::span<const kv_entry> dst,
    const prefixes::rule& rule,
    const checkpoint& prev,
    bool with_puts
)
{
    plan p;
    std::string_view const source = rule.spec.source;
    std::string_view const destination = rule.spec.destination;

    // Selected source entries.
    std::vector<side_entry> want;
    want.reserve(src.size());
    for (auto const& e : src) {
        std::string_view const key = e.key;
        if (!key.starts_with(source)) {
            p.warnings.push_back({warning_kind::outside_source_prefix, e.key});
            continue;
        }
        std::string_view const suffix = key.substr(source.size());
        ++p.stats.source_keys;
        if (!prefixes::is_selected(rule.filter, key)) {
            ++p.stats.filtered;
            continue;
        }
        if (prefixes::is_protected(rule, destination, suffix)) {
            ++p.stats.protected_keys;
            if (prefixes::is_status_key(rule, destination, suffix))
                p.warnings.push_back({warning_kind::status_key_collision, std::string(destination) + std::string(suffix)});
            continue;
        }
        want.push_back({suffix, &e});
    }
    std::size_t const before_dedupe = want.size();
    sort_side(want, p.warnings);
    // A duplicate was counted as a source key above; count each key once.
    p.stats.source_keys -= before_dedupe - want.size();
    p.stats.selected_keys = want.size();

    // Destination entries this pair manages.
    std::vector<side_entry> have;
    have.reserve(dst.size());
    for (auto const& e : dst) {
        std::string_view const key = e.key;
        if (prefixes::is_protected(rule, key)) {
            ++p.stats.protected_keys;
            continue;
        }
        if (!key.starts_with(destination)) {
            p.warnings.push_back({warning_kind::outside_destination, e.key});
            continue;
        }
        std::string_view const suffix = key.substr(destination.size());
        if (!prefixes::is_selected(rule.filter, source, suffix))
            continue;
        have.push_back({suffix, &e});
    }
    sort_side(have, p.warnings);
    p.stats.destination_keys = have.size();

    // Merge the two sorted sides.
    auto w = want.begin();
    auto h = have.begin();
    auto const emit_put = [&](const side_entry& s) {
        auto const& e = *s.entry;
        if (!with_puts && e.flags != lock_flag_value && e.flags != semaphore_flag_value &&
            !(e.session && !e.session->empty()))
            return;  // no op and no warning: skip building the key
        std::string key;
        key.reserve(destination.size() + s.suffix.size());
        key.append(destination);
        key.append(s.suffix);
        warn_about_locks(*s.entry, key, p.warnings);
        if (with_puts)
            p.puts.push_back(put_op{std::move(key), s.entry->value, s.entry->flags, s.entry->modify_index});
    };
    while (w != want.end() || h != have.end()) {
        if (h == have.end() || (w != want.end() && w->suffix < h->suffix)) {
            emit_put(*w++);
        } else if (w == want.end() || h->suffix < w->suffix) {
            p.deletes.push_back(delete_op{h->entry->key});
            ++h;
        } else {
            if (w->entry->value == h->entry->value && w->entry->flags == h->entry->flags)
                ++p.stats.unchanged;
            else
                emit_put(*w);
            ++w;
            ++h;
        }
    }

    if (prev.last_replicated > src_index)
        p.warnings.push_back({warning_kind::index_behind_checkpoint, {}});
    bool const prev_named = !prev.source.empty() || !prev.destination.empty();
    if (prev_named && (prev.source != source || prev.destination != destination))
        p.warnings.push_back({warning_kind::checkpoint_mismatch, {}});

    std::stable_sort(p.warnings.begin(), p.warnings.end(), [](const warning& a, const warning& b) {
        if (a.key != b.key)
            return a.key < b.key;
        return a.kind < b.kind;
    });
    p.next_checkpoint = checkpoint{src_index, rule.spec.source, rule.spec.destination};
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
