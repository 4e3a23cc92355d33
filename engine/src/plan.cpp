#include <engine/plan.hpp>
#include <prefixes/key_map.hpp>

#include <algorithm>
#include <iterator>
#include <map>
#include <stdexcept>
#include <string_view>

namespace kvship::engine {

namespace {

// One side of the merge: positions of entries in the side's input, each seen through its key
// relative to the pair's prefix (`suffix(at)`). Every source key starts with the source prefix and
// every destination key with the destination prefix, so ordering by this suffix is ordering by
// destination key, and the two sides merge without building mapped strings. Four bytes an entry:
// a million-key source costs 4 MB here.
using side = std::vector<std::uint32_t>;

// Sorts by suffix (skipped when already sorted, the usual case) and drops duplicate keys, keeping
// the first in input order and reporting the rest (`prefix` + suffix is the key).
template <class Suffix>
void sort_side(side& entries, const Suffix& suffix, std::string_view prefix, std::vector<warning>& warnings)
{
    auto const by_suffix = [&](std::uint32_t a, std::uint32_t b) { return suffix(a) < suffix(b); };
    if (!std::is_sorted(entries.begin(), entries.end(), by_suffix))
        std::stable_sort(entries.begin(), entries.end(), by_suffix);
    auto out = entries.begin();
    for (auto it = entries.begin(); it != entries.end(); ++it) {
        if (out != entries.begin() && suffix(*std::prev(out)) == suffix(*it)) {
            std::string key(prefix);
            key.append(suffix(*it));
            warnings.push_back({warning_kind::duplicate_key, std::move(key)});
            continue;
        }
        *out++ = *it;
    }
    entries.erase(out, entries.end());
}

// Consul's listings are Go JSON, which writes each byte of a key that is not valid UTF-8 as U+FFFD (EF BF
// BD). Such a key cannot be read, written or deleted by the name listed (it names another key, or
// several source keys list as one), so the pair leaves every key holding U+FFFD alone, on both sides.
bool has_replacement_character(std::string_view key)
{
    return key.find("\xEF\xBF\xBD") != std::string_view::npos;
}

void warn_about_locks(
    std::uint64_t flags, bool has_session, const std::string& destination_key, std::vector<warning>& out
)
{
    // consul-replicate logs these for every key it writes; its lock and semaphore messages were
    // swapped, ours are not.
    if (flags == lock_flag_value)
        out.push_back({warning_kind::lock_flag, destination_key});
    if (flags == semaphore_flag_value)
        out.push_back({warning_kind::semaphore_flag, destination_key});
    if (has_session)
        out.push_back({warning_kind::session_attached, destination_key});
}

// The source side as make_plan_of reads it: listed entries (with values: puts can be built) ...
struct listed_source
{
    std::span<const kv_entry> entries;

    [[nodiscard]] std::size_t size() const { return entries.size(); }

    [[nodiscard]] std::string_view key(std::size_t i) const { return entries[i].key; }

    [[nodiscard]] std::uint64_t flags(std::size_t i) const { return entries[i].flags; }

    [[nodiscard]] bool has_session(std::size_t i) const
    {
        return entries[i].session && !entries[i].session->empty();
    }

    [[nodiscard]] bool same_value(std::size_t i, const kv_entry& d) const
    {
        return entries[i].value == d.value && entries[i].flags == d.flags;
    }

    [[nodiscard]] put_op put(std::size_t i, std::string key) const
    {
        return put_op{std::move(key), entries[i].value, entries[i].flags, entries[i].modify_index};
    }
};

// ... or the kept snapshot (digests, no values: never asked for puts).
struct kept_source
{
    const compact_entries& entries;

    [[nodiscard]] std::size_t size() const { return entries.size(); }

    [[nodiscard]] std::string_view key(std::size_t i) const { return entries.key(i); }

    [[nodiscard]] std::uint64_t flags(std::size_t i) const { return entries[i].flags; }

    [[nodiscard]] bool has_session(std::size_t i) const
    {
        auto const* s = entries[i].session;
        return s != nullptr && !s->empty();
    }

    [[nodiscard]] bool same_value(std::size_t i, const kv_entry& d) const { return entries[i].same_value(d); }

    [[nodiscard]] put_op put(std::size_t, std::string) const
    {
        throw std::logic_error("make_plan: a compact source has no values to put");
    }
};

template <class Source>
plan make_plan_of(
    const Source& src,
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
    if (src.size() > UINT32_MAX || dst.size() > UINT32_MAX)
        throw std::length_error("make_plan: more than 2^32 entries on one side");
    auto const src_suffix = [&](std::uint32_t i) { return src.key(i).substr(source.size()); };
    auto const dst_suffix = [&](std::uint32_t i) {
        return std::string_view(dst[i].key).substr(destination.size());
    };

    // Selected source entries.
    side want;
    want.reserve(src.size());
    for (std::size_t i = 0; i < src.size(); ++i) {
        std::string_view const key = src.key(i);
        if (!key.starts_with(source)) {
            p.warnings.push_back({warning_kind::outside_source_prefix, std::string(key)});
            continue;
        }
        std::string_view const suffix = key.substr(source.size());
        ++p.stats.source_keys;
        if (has_replacement_character(key)) {
            ++p.stats.unreadable;
            p.warnings.push_back({warning_kind::replacement_character, std::string(key)});
            continue;
        }
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
        want.push_back(static_cast<std::uint32_t>(i));
    }
    std::size_t const before_dedupe = want.size();
    sort_side(want, src_suffix, source, p.warnings);
    // A duplicate was counted as a source key above; count each key once.
    p.stats.source_keys -= before_dedupe - want.size();
    p.stats.selected_keys = want.size();

    // Destination entries this pair manages.
    side have;
    have.reserve(dst.size());
    for (std::size_t i = 0; i < dst.size(); ++i) {
        std::string_view const key = dst[i].key;
        if (prefixes::is_protected(rule, key)) {
            ++p.stats.protected_keys;
            continue;
        }
        if (!key.starts_with(destination)) {
            p.warnings.push_back({warning_kind::outside_destination, dst[i].key});
            continue;
        }
        std::string_view const suffix = key.substr(destination.size());
        if (!prefixes::is_selected(rule.filter, source, suffix))
            continue;
        if (has_replacement_character(key)) {
            // Never deleted by name either: the DELETE would go to another key (or none).
            ++p.stats.unreadable;
            p.warnings.push_back({warning_kind::replacement_character, dst[i].key});
            continue;
        }
        have.push_back(static_cast<std::uint32_t>(i));
    }
    sort_side(have, dst_suffix, destination, p.warnings);
    p.stats.destination_keys = have.size();

    // Merge the two sorted sides.
    auto w = want.begin();
    auto h = have.begin();
    auto const emit_put = [&](std::uint32_t at) {
        std::uint64_t const flags = src.flags(at);
        bool const session = src.has_session(at);
        if (!with_puts && flags != lock_flag_value && flags != semaphore_flag_value && !session)
            return;  // no op and no warning: skip building the key
        std::string_view const suffix = src_suffix(at);
        std::string key;
        key.reserve(destination.size() + suffix.size());
        key.append(destination);
        key.append(suffix);
        warn_about_locks(flags, session, key, p.warnings);
        if (with_puts)
            p.puts.push_back(src.put(at, std::move(key)));
    };
    while (w != want.end() || h != have.end()) {
        if (h == have.end() || (w != want.end() && src_suffix(*w) < dst_suffix(*h))) {
            emit_put(*w++);
        } else if (w == want.end() || dst_suffix(*h) < src_suffix(*w)) {
            p.deletes.push_back(delete_op{dst[*h].key});
            ++h;
        } else {
            if (src.same_value(*w, dst[*h]))
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
    return make_plan_of(listed_source{src}, src_index, dst, rule, prev, with_puts);
}

plan make_plan(
    const compact_entries& src,
    std::uint64_t src_index,
    std::span<const kv_entry> dst,
    const prefixes::rule& rule,
    const checkpoint& prev
)
{
    return make_plan_of(kept_source{src}, src_index, dst, rule, prev, false);
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
        case warning_kind::replacement_character:
            return "replacement_character";
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
