#include "kv_convert.hpp"

#include <string>
#include <utility>

namespace kvship::replicate {

std::vector<engine::kv_entry> to_engine_entries(std::vector<transport::kv_entry> entries)
{
    std::vector<engine::kv_entry> out;
    out.reserve(entries.size());
    for (auto& e : entries) {
        engine::kv_entry x;
        x.key = std::move(e.key);
        x.value = std::move(e.value).value_or(std::string{});
        x.flags = e.flags;
        x.modify_index = e.modify_index;
        if (!e.session.empty())
            x.session = std::move(e.session);
        out.push_back(std::move(x));
    }
    return out;
}

engine::snapshot to_snapshot(transport::kv_listing listing)
{
    engine::snapshot s;
    s.index = listing.index;
    s.entries = to_engine_entries(std::move(listing.entries));
    engine::sort_entries(s.entries);
    return s;
}

}  // namespace kvship::replicate
