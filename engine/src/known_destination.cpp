#include <engine/known_destination.hpp>

#include <utility>

namespace kvship::engine {

std::size_t known_destination::cost(const kv_entry& e) noexcept
{
    return entry_overhead + 2 * e.key.size() + e.value.size() + (e.session ? e.session->size() : 0);
}

std::size_t known_destination::cost(std::span<const kv_entry> entries) noexcept
{
    std::size_t n = 0;
    for (auto const& e : entries) n += cost(e);
    return n;
}

known_destination::known_destination(snapshot listing, std::string destination, std::string status_key)
    : index_(listing.index), destination_(std::move(destination)), status_key_(std::move(status_key))
{
    for (auto& e : listing.entries) {
        std::string key = e.key;
        auto const [it, inserted] = entries_.try_emplace(std::move(key));
        if (!inserted)
            bytes_ -= cost(it->second);
        it->second = std::move(e);
        bytes_ += cost(it->second);
    }
}

std::optional<std::string> known_destination::apply(std::span<const txn_op> ops)
{
    std::optional<std::string> status;
    for (auto const& op : ops) {
        if (op.verb != txn_verb::set) {
            auto const it = entries_.find(op.key);
            if (it != entries_.end()) {
                bytes_ -= cost(it->second);
                entries_.erase(it);
            }
            continue;
        }
        if (op.key == status_key_)
            status = op.value;
        if (!std::string_view(op.key).starts_with(destination_))
            continue;
        auto const it = entries_.lower_bound(op.key);
        if (it != entries_.end() && it->first == op.key) {
            bytes_ -= cost(it->second);
            it->second.value = op.value;
            it->second.flags = op.flags;
            bytes_ += cost(it->second);
            continue;
        }
        kv_entry e;
        e.key = op.key;
        e.value = op.value;
        e.flags = op.flags;
        bytes_ += cost(e);
        entries_.emplace_hint(it, op.key, std::move(e));
    }
    return status;
}

snapshot known_destination::view(const std::vector<std::string>& ranges) const
{
    snapshot out;
    out.index = index_;
    if (ranges.empty()) {
        out.entries.reserve(entries_.size());
        for (auto const& [key, e] : entries_) out.entries.push_back(e);
        return out;
    }
    for (auto const& r : ranges) {
        for (auto it = entries_.lower_bound(r); it != entries_.end() && it->first.starts_with(r); ++it)
            out.entries.push_back(it->second);
    }
    return out;
}

destination_read_plan plan_destination_read(bool known, bool fresh, bool entries_kept, bool whole_round)
{
    using w = destination_read_plan::way;
    if (known && fresh && entries_kept)
        return {w::known, false};
    if (known && fresh && !whole_round)
        return {w::ranges, false};
    return {w::whole, known && !fresh};
}

}  // namespace kvship::engine
