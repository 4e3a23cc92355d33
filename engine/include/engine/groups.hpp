// Source groups: disjoint key prefixes that split one pair's source prefix so that a change can be
// read back by watching (and re-reading) only the group it falls in. Pure; the driver runs one
// blocking `?recurse` per group plus one root `?keys&separator=/` that finds names outside every
// group.
#pragma once

#include <engine/types.hpp>

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

// Splits the sorted `entries` under `source_prefix` into at most `max_groups` groups: absolute key
// prefixes (source_prefix + a relative part), sorted, none a prefix of another, together covering
// every entry. Built over a character-level trie of the relative names, always splitting the group
// with the most bytes (key + value + per-entry JSON overhead) while the count allows, so 256
// sibling directories d000/..d255/ become d00, d01, ... d25 or finer.
// The relative part of a group never holds a '/' except as its last character: then a name listed
// by `GET <source_prefix>?keys&separator=/` (a top-level name) is covered by a group exactly when
// every key under it is (see uncovered_names). A group whose prefix is itself a key is not split.
// Returns an empty vector when no split into at least two groups exists (one key, one top-level
// name that is a directory, or max_groups < 2).
[[nodiscard]] std::vector<std::string> split_groups(
    std::span<const kv_entry> entries, std::string_view source_prefix, std::size_t max_groups
);

// The names in `names` (absolute keys or directory names as `?keys&separator=/` lists them) that
// no group in `groups` (sorted, disjoint) is a prefix of, in input order.
[[nodiscard]] std::vector<std::string> uncovered_names(
    const std::vector<std::string>& groups, const std::vector<std::string>& names
);

// True when some group of the sorted, disjoint `groups` is a prefix of `key`.
[[nodiscard]] bool is_covered(const std::vector<std::string>& groups, std::string_view key);

// True when `name` is a prefix of some group of the sorted `groups` (a new name that would
// overlap existing groups: the driver regroups after a full read instead).
[[nodiscard]] bool contains_group(const std::vector<std::string>& groups, std::string_view name);

// Replaces the entries of `entries` (sorted) whose key starts with `prefix` by `replacement`
// (sorted here; entries not under `prefix` are dropped). Returns false, changing nothing, when the
// range already holds exactly these entries (same keys, values, flags, ModifyIndexes, sessions).
bool splice_group(std::vector<kv_entry>& entries, std::string_view prefix, std::vector<kv_entry> replacement);

}  // namespace kvship::engine
