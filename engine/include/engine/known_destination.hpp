// What a pair knows of its destination between full reads: the last listing, patched with every op
// committed since, so that a grouped round plans without reading the destination again.
#pragma once

#include <engine/batch.hpp>
#include <engine/types.hpp>

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace kvship::engine {

// Keyed by key, so patching costs O(log n) per op and a view O(log n + its entries), whatever the
// destination's size (a sorted vector cost O(n) per inserted key: with the prefix growing by 2,000
// keys a second, a quarter of the replicator's CPU went to moving entries).
class known_destination
{
public:
    // `listing`: the destination prefix as read (entries sorted by key, unique); `destination`: the
    // pair's destination prefix (sets outside it are not kept); `status_key`: the pair's checkpoint.
    known_destination(snapshot listing, std::string destination, std::string status_key);

    // Ops committed, in commit order. A set under the destination prefix inserts the key or replaces
    // its value and flags (a KV set keeps the entry's session); a delete erases it. Returns the value of
    // the last set of the status key among them, if any (the caller decodes the checkpoint).
    std::optional<std::string> apply(std::span<const txn_op> ops);

    // The entries under `ranges` (sorted, disjoint key prefixes), sorted by key; all of them when
    // `ranges` is empty. The snapshot's index is the listing's.
    [[nodiscard]] snapshot view(const std::vector<std::string>& ranges) const;

    [[nodiscard]] std::size_t size() const noexcept { return entries_.size(); }
    [[nodiscard]] std::uint64_t index() const noexcept { return index_; }
    // About what the entries take in memory: keys (held twice), values, sessions and a fixed cost per
    // entry for the map's node and the strings (the driver drops the entries past a budget).
    [[nodiscard]] std::size_t bytes() const noexcept { return bytes_; }

    static constexpr std::size_t entry_overhead = 160;
    // What bytes() would be for these entries.
    [[nodiscard]] static std::size_t cost(const kv_entry& e) noexcept;
    [[nodiscard]] static std::size_t cost(std::span<const kv_entry> entries) noexcept;

private:
    std::uint64_t index_ = 0;
    std::size_t bytes_ = 0;
    std::string destination_;
    std::string status_key_;
    std::map<std::string, kv_entry, std::less<>> entries_;
};

// How a round gets its view of the destination (apps/consul-replicate/destination_reader.cpp):
//  * known:  what is known since the last whole read is fresh and its entries are kept: their view;
//  * ranges: fresh, the entries not kept (too big), a grouped round: read each of its ranges;
//  * whole:  nothing known, or stale, or a whole round over entries not kept: read the prefix and the
//            status key again; `refresh` when something was known but went stale (counted in
//            kvship_full_syncs_total{reason="refresh"}).
struct destination_read_plan
{
    enum class way
    {
        known,
        ranges,
        whole,
    };

    way how = way::whole;
    bool refresh = false;

    bool operator==(const destination_read_plan&) const = default;
};

[[nodiscard]] destination_read_plan plan_destination_read(bool known, bool fresh, bool entries_kept, bool whole_round);

}  // namespace kvship::engine
