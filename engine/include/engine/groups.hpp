// Source groups: disjoint key prefixes that split one pair's source prefix so that a change can be
// read back by watching (and re-reading) only the group it falls in. Pure; the driver runs one
// blocking `?recurse` per group plus one `?keys&separator=/` per split directory (the source prefix
// and deeper ones) that finds names outside every group.
#pragma once

#include <engine/compact.hpp>
#include <engine/types.hpp>
#include <prefixes/filter.hpp>

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace kvship::engine {

// The half-open index range [first, second) of the entries whose key starts with `prefix`.
// `entries` must be sorted by key (sort_entries()).
[[nodiscard]] std::pair<std::size_t, std::size_t> prefix_range(
    std::span<const kv_entry> entries, std::string_view prefix
);

// How one pair's source is watched in groups (DRIVER.md "Grouped watching"):
//  * `groups`: sorted, prefix-free absolute key prefixes, each read with a blocking `?recurse`;
//  * `dirs`: sorted directories, each with a blocking names watch `GET <dir>?keys&separator=/` that
//    spots names no group covers. The source prefix is always one (the root watch); the others end
//    in '/' and are directories that were split because they held more than one watch's share.
// Every key under the source prefix is either unselected by the filter (never read where a group
// boundary allows it), or under exactly one group, or its name in the deepest dir above it is listed
// by that dir's names watch and classified `fresh`/`overlaps` (see classify_name): no key can change
// unseen. A group's part relative to the deepest dir above it holds no '/' except as its last
// character, no group is a prefix of a dir, and groups never overlap.
struct source_layout
{
    std::vector<std::string> groups;
    std::vector<std::string> dirs;

    // Blocking queries the layout costs: one per group and one per dir.
    [[nodiscard]] std::size_t watches() const noexcept { return groups.size() + dirs.size(); }

    [[nodiscard]] bool empty() const noexcept { return groups.empty(); }

    bool operator==(const source_layout&) const = default;
};

// Splits the sorted `entries` under `source_prefix` into a layout of at most `max_watches` watches
// (groups + dirs, the root watch included). Built over a character-level trie of the names relative
// to the prefix, always splitting the node with the most bytes (key + value + per-entry JSON
// overhead, counting unselected keys too since a read returns them) while the count allows, so 256
// sibling directories d000/..d255/ become d00, d01, ... d25 or finer. A node that is a directory
// ("x/") is split only when it holds more than the per-watch share (all bytes / max_watches); it then
// becomes a dir of its own (its names watch costs one more). Trie nodes whose every possible key is
// unselected by `filter` (an exclude is a prefix of them) are dropped: no group reads them. A node
// whose prefix is itself a key, or that holds one key, is not split.
// Returns an empty layout when the source is better read whole: fewer than two groups and nothing
// left out, or max_watches < 3.
[[nodiscard]] source_layout split_layout(
    std::span<const kv_entry> entries,
    std::string_view source_prefix,
    std::size_t max_watches,
    const prefixes::key_filter& filter = {}
);

// The same over the kept (compact) source snapshot: value sizes are kept, so the layout is the same.
[[nodiscard]] source_layout split_kept_layout(
    const compact_entries& entries,
    std::string_view source_prefix,
    std::size_t max_watches,
    const prefixes::key_filter& filter = {}
);

// split_layout(entries, ...) for the kept snapshot (a template, so that `split_layout({}, ...)`
// still means an empty entry list).
template <std::same_as<compact_entries> Entries>
[[nodiscard]] source_layout split_layout(
    const Entries& entries,
    std::string_view source_prefix,
    std::size_t max_watches,
    const prefixes::key_filter& filter = {}
)
{
    return split_kept_layout(entries, source_prefix, max_watches, filter);
}

// True when no key that starts with `prefix` can be selected by `filter`: an exclude is a prefix of
// it, or there are includes and none can match a key under it.
[[nodiscard]] bool subtree_unselected(const prefixes::key_filter& filter, std::string_view prefix);

enum class name_kind
{
    covered,   // a group covers every key under it, it is a dir of the layout, or it is unselected
    fresh,     // no group covers it and it overlaps none: it can become a group of its own
    overlaps,  // it is a prefix of a group or dir (or the dir's own key): regroup after a full read
};

// What a name listed by the names watch of `dir` (one of layout.dirs) means for the layout.
[[nodiscard]] name_kind classify_name(
    const source_layout& layout,
    const prefixes::key_filter& filter,
    std::string_view dir,
    std::string_view name
);

// The names in `names` (absolute keys or directory names as `?keys&separator=/` lists them) that
// no group in `groups` (sorted, disjoint) is a prefix of, in input order.
[[nodiscard]] std::vector<std::string> uncovered_names(
    const std::vector<std::string>& groups, const std::vector<std::string>& names
);

// True when some group of the sorted, disjoint `groups` is a prefix of `key`.
[[nodiscard]] bool is_covered(const std::vector<std::string>& groups, std::string_view key);

// True when `name` is a prefix of some string of the sorted `groups` (a new name that would
// overlap existing groups: the driver regroups after a full read instead).
[[nodiscard]] bool contains_group(const std::vector<std::string>& groups, std::string_view name);

// Replaces the entries of `entries` (sorted) whose key starts with `prefix` by `replacement`
// (sorted here; entries not under `prefix` are dropped). Returns false, changing nothing, when the
// range already holds exactly these entries (same keys, values, flags, ModifyIndexes, sessions).
bool splice_group(std::vector<kv_entry>& entries, std::string_view prefix, std::vector<kv_entry> replacement);

}  // namespace kvship::engine
