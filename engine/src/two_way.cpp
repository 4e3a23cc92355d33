#include <engine/two_way.hpp>

#include <fmt/format.h>

namespace kvship::engine {

bool prefixes_overlap(std::string_view a, std::string_view b)
{
    return a.starts_with(b) || b.starts_with(a);
}

bool reads_from(const published_replicator& r, const published_pair& p, std::string_view dc)
{
    if (r.gated)
        return dc != r.datacenter;
    return p.source_dc == dc;
}

std::string describe(const published_replicator& r)
{
    std::string pairs;
    for (auto const& p : r.pairs) {
        if (!pairs.empty())
            pairs += ", ";
        pairs += fmt::format(
            "{}:{} -> {}:{}", p.source_dc.empty() ? "<primary>" : p.source_dc, p.source, r.datacenter, p.destination
        );
    }
    return fmt::format(
        "host {} pid {} in {} ({}{}{})", r.host, r.pid, r.datacenter, r.gated ? "gated" : "ungated", pairs.empty() ? "" : ": ", pairs
    );
}

std::optional<two_way_conflict> find_two_way(
    const published_replicator& self, std::span<const published_replicator> others
)
{
    for (auto const& other : others) {
        if (other.id == self.id || other.datacenter == self.datacenter || (self.gated && other.gated))
            continue;
        for (auto const& mine : self.pairs) {
            if (!reads_from(self, mine, other.datacenter))
                continue;
            for (auto const& theirs : other.pairs) {
                if (!reads_from(other, theirs, self.datacenter))
                    continue;
                if (!prefixes_overlap(mine.destination, theirs.source) ||
                    !prefixes_overlap(theirs.destination, mine.source))
                    continue;
                two_way_conflict c{other, mine, theirs, {}};
                c.message = fmt::format(
                    "two-way replication refused: this replicator, {}, and the replicator {} copy overlapping "
                    "prefixes towards each other ({}:{} -> {}:{} and {}:{} -> {}:{}), so each would undo the "
                    "other's writes and deletes (the flapping of master-master replication). Replicate one way, "
                    "use -gate on both sides, or make the prefixes disjoint",
                    describe(self),
                    describe(other),
                    other.datacenter,
                    mine.source,
                    self.datacenter,
                    mine.destination,
                    self.datacenter,
                    theirs.source,
                    other.datacenter,
                    theirs.destination
                );
                return c;
            }
        }
    }
    return std::nullopt;
}

}  // namespace kvship::engine
