// Refusing two-way replication: every running replicator publishes what it copies (registry.hpp in
// apps/consul-replicate); this decides, purely, whether two of them copy overlapping prefixes towards each
// other, the master-master setup that flaps (README "Georedundant Vault").
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace kvship::engine {

// One pair as published: source_dc:source -> (the replicator's datacenter):destination. A gated
// replicator publishes an empty source_dc: it reads from whichever other DC is the primary.
struct published_pair
{
    std::string source_dc;
    std::string source;
    std::string destination;

    bool operator==(const published_pair&) const = default;
};

// One running replicator's entry: who (id, host, pid), where it writes (datacenter), how.
struct published_replicator
{
    std::string id;
    std::string host;
    std::int64_t pid = 0;
    std::string datacenter;
    bool gated = false;
    std::vector<published_pair> pairs;

    bool operator==(const published_replicator&) const = default;
};

// Two KV prefixes overlap when some key starts with both: one is a string prefix of the other
// (Consul's prefixes are plain strings, so "app" overlaps "application" and "app/x"). Excludes are not
// taken into account: the check is conservative.
[[nodiscard]] bool prefixes_overlap(std::string_view a, std::string_view b);

// True when replicator `r`'s pair `p` may read from datacenter `dc`: its source DC, or for a gated
// replicator any DC but its own.
[[nodiscard]] bool reads_from(const published_replicator& r, const published_pair& p, std::string_view dc);

struct two_way_conflict
{
    published_replicator other;
    published_pair mine;
    published_pair theirs;
    std::string message;  // names both replicators (host, pid, DC, pairs)

    bool operator==(const two_way_conflict&) const = default;
};

// The first replicator of `others` that copies towards `self` what `self` copies towards it: a pair
// `mine` of self (reading DC Y, writing self.datacenter X) and a pair `theirs` of a replicator in Y
// (reading X, writing Y) where theirs reads what mine writes (prefixes_overlap(mine.destination,
// theirs.source)) and mine reads what theirs writes (prefixes_overlap(theirs.destination, mine.source)).
// Allowed, so never reported: both gated (the gate makes replication one-way), entries of self.datacenter
// (standbys, or other pairs into the same DC) and self's own id.
[[nodiscard]] std::optional<two_way_conflict> find_two_way(
    const published_replicator& self, std::span<const published_replicator> others
);

// "host h pid 12 in dc1 (gated: no; dc2:app/ -> dc1:backup/, ...)".
[[nodiscard]] std::string describe(const published_replicator& r);

}  // namespace kvship::engine
