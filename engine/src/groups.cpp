#include <engine/groups.hpp>

#include <algorithm>
#include <iterator>

namespace kvship::engine {

namespace {

// Bytes one entry adds to a `?recurse` answer: key, value (base64 is 4/3 of it) and the JSON around
// them (field names, indexes, flags).
std::uint64_t entry_weight(const kv_entry& e)
{
    return e.key.size() + (e.value.size() * 4 + 2) / 3 + 96;
}

struct node
{
    std::string rel;  // relative to the source prefix
    std::size_t lo = 0;
    std::size_t hi = 0;
    std::uint64_t bytes = 0;
    bool final = false;
};

}  // namespace

std::pair<std::size_t, std::size_t> prefix_range(std::span<const kv_entry> entries, std::string_view prefix)
{
    auto const lo =
        std::lower_bound(entries.begin(), entries.end(), prefix, [](const kv_entry& e, std::string_view p) {
            return std::string_view(e.key) < p;
        });
    auto const hi = std::partition_point(lo, entries.end(), [prefix](const kv_entry& e) {
        return std::string_view(e.key).starts_with(prefix);
    });
    return {static_cast<std::size_t>(lo - entries.begin()), static_cast<std::size_t>(hi - entries.begin())};
}

std::vector<std::string> split_groups(
    std::span<const kv_entry> entries, std::string_view source_prefix, std::size_t max_groups
)
{
    if (max_groups < 2)
        return {};
    auto const [first, last] = prefix_range(entries, source_prefix);
    if (last - first < 2)
        return {};
    auto const all = entries.subspan(first, last - first);
    std::vector<std::uint64_t> cum(all.size() + 1, 0);
    for (std::size_t i = 0; i < all.size(); ++i) cum[i + 1] = cum[i] + entry_weight(all[i]);
    auto const rel = [&](std::size_t i) { return std::string_view(all[i].key).substr(source_prefix.size()); };

    // The children of `n` by the next character, or nothing when `n` may not be split.
    auto const children = [&](const node& n) {
        std::vector<node> out;
        if (!n.rel.empty() && n.rel.back() == '/')
            return out;  // a directory name: the root watch could not see keys under a deeper split
        if (n.hi - n.lo < 2 || rel(n.lo).size() == n.rel.size())
            return out;  // one key, or the group's prefix is itself a key (no child would cover it)
        std::size_t const at = n.rel.size();
        std::size_t i = n.lo;
        while (i < n.hi) {
            auto const c = static_cast<unsigned char>(rel(i)[at]);
            auto const end = std::partition_point(
                all.begin() + static_cast<std::ptrdiff_t>(i),
                all.begin() + static_cast<std::ptrdiff_t>(n.hi),
                [&](const kv_entry& e) {
                    return static_cast<unsigned char>(std::string_view(e.key)[source_prefix.size() + at]) <=
                           c;
                }
            );
            auto const j = static_cast<std::size_t>(end - all.begin());
            node child;
            child.rel = n.rel;
            child.rel.push_back(static_cast<char>(c));
            child.lo = i;
            child.hi = j;
            child.bytes = cum[j] - cum[i];
            out.push_back(std::move(child));
            i = j;
        }
        return out;
    };

    std::vector<node> groups;
    groups.push_back(node{std::string{}, 0, all.size(), cum.back(), false});
    for (;;) {
        auto heaviest = groups.end();
        for (auto it = groups.begin(); it != groups.end(); ++it)
            if (!it->final && (heaviest == groups.end() || it->bytes > heaviest->bytes))
                heaviest = it;
        if (heaviest == groups.end())
            break;
        auto kids = children(*heaviest);
        if (kids.empty()) {
            heaviest->final = true;
            continue;
        }
        if (kids.size() == 1) {
            *heaviest = std::move(kids.front());
            continue;
        }
        if (groups.size() - 1 + kids.size() > max_groups) {
            heaviest->final = true;
            continue;
        }
        auto const pos = heaviest - groups.begin();
        groups.erase(heaviest);
        groups.insert(
            groups.begin() + pos, std::make_move_iterator(kids.begin()), std::make_move_iterator(kids.end())
        );
    }
    if (groups.size() < 2)
        return {};
    std::vector<std::string> out;
    out.reserve(groups.size());
    for (auto const& g : groups) out.push_back(std::string(source_prefix) + g.rel);
    std::sort(out.begin(), out.end());
    return out;
}

bool is_covered(const std::vector<std::string>& groups, std::string_view key)
{
    // Every string between a group G and a key that starts with G starts with G too, and no other
    // group starts with G, so the greatest group <= key is the only candidate.
    auto const it =
        std::upper_bound(groups.begin(), groups.end(), key, [](std::string_view k, const std::string& g) {
            return k < std::string_view(g);
        });
    return it != groups.begin() && key.starts_with(*std::prev(it));
}

std::vector<std::string> uncovered_names(
    const std::vector<std::string>& groups, const std::vector<std::string>& names
)
{
    std::vector<std::string> out;
    for (auto const& n : names)
        if (!is_covered(groups, n))
            out.push_back(n);
    return out;
}

bool contains_group(const std::vector<std::string>& groups, std::string_view name)
{
    auto const it =
        std::lower_bound(groups.begin(), groups.end(), name, [](const std::string& g, std::string_view n) {
            return std::string_view(g) < n;
        });
    return it != groups.end() && std::string_view(*it).starts_with(name);
}

bool splice_group(std::vector<kv_entry>& entries, std::string_view prefix, std::vector<kv_entry> replacement)
{
    std::erase_if(replacement, [prefix](const kv_entry& e) {
        return !std::string_view(e.key).starts_with(prefix);
    });
    sort_entries(replacement);
    auto const [lo, hi] = prefix_range(entries, prefix);
    auto const old_begin = entries.begin() + static_cast<std::ptrdiff_t>(lo);
    auto const old_end = entries.begin() + static_cast<std::ptrdiff_t>(hi);
    if (hi - lo == replacement.size() && std::equal(old_begin, old_end, replacement.begin()))
        return false;
    std::size_t const common = std::min(hi - lo, replacement.size());
    std::move(replacement.begin(), replacement.begin() + static_cast<std::ptrdiff_t>(common), old_begin);
    if (replacement.size() > common)
        entries.insert(
            old_begin + static_cast<std::ptrdiff_t>(common),
            std::make_move_iterator(replacement.begin() + static_cast<std::ptrdiff_t>(common)),
            std::make_move_iterator(replacement.end())
        );
    else
        entries.erase(old_begin + static_cast<std::ptrdiff_t>(common), old_end);
    return true;
}

}  // namespace kvship::engine
