#include <engine/types.hpp>

#include <algorithm>

namespace kvship::engine {

void sort_entries(std::vector<kv_entry>& entries)
{
    // Consul's listings come sorted with unique keys: check that in one pass before sorting.
    if (std::adjacent_find(entries.begin(), entries.end(), [](const kv_entry& a, const kv_entry& b) {
            return a.key >= b.key;
        }) == entries.end())
        return;
    std::stable_sort(entries.begin(), entries.end(), [](const kv_entry& a, const kv_entry& b) {
        return a.key < b.key;
    });
    entries.erase(
        std::unique(
            entries.begin(),
            entries.end(),
            [](const kv_entry& a, const kv_entry& b) { return a.key == b.key; }
        ),
        entries.end()
    );
}

bool same_entries(const snapshot& a, const snapshot& b)
{
    return a.entries == b.entries;
}

}  // namespace kvship::engine
