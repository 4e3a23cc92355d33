#include <engine/groups.hpp>

#include <algorithm>
#include <iterator>
#include <optional>

namespace kvship::engine {

namespace {

// Bytes one entry adds to a `?recurse` answer: key, value (base64 is 4/3 of it) and the JSON around
// them (field names, indexes, flags).
std::uint64_t entry_weight(std::size_t key_size, std::size_t value_size)
{
    return key_size + (value_size * 4 + 2) / 3 + 96;
}

// What split_layout reads of an entry list: keys and value sizes by position.
struct listed_entries
{
    std::span<const kv_entry> entries;

    [[nodiscard]] std::size_t size() const { return entries.size(); }

    [[nodiscard]] std::string_view key(std::size_t i) const { return entries[i].key; }

    [[nodiscard]] std::size_t value_size(std::size_t i) const { return entries[i].value.size(); }
};

struct kept_entries
{
    const compact_entries& entries;

    [[nodiscard]] std::size_t size() const { return entries.size(); }

    [[nodiscard]] std::string_view key(std::size_t i) const { return entries.key(i); }

    [[nodiscard]] std::size_t value_size(std::size_t i) const { return entries[i].value_size; }
};

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

bool subtree_unselected(const prefixes::key_filter& filter, std::string_view prefix)
{
    for (auto const& e : filter.excludes)
        if (prefix.starts_with(e))
            return true;
    if (filter.includes.empty())
        return false;
    for (auto const& i : filter.includes)
        if (prefix.starts_with(i) || std::string_view(i).starts_with(prefix))
            return false;
    return true;
}

namespace {

template <class Entries>
source_layout split_layout_of(
    const Entries& entries,
    std::pair<std::size_t, std::size_t> range,
    std::string_view source_prefix,
    std::size_t max_watches,
    const prefixes::key_filter& filter
)
{
    auto const [first, last] = range;
    if (last - first < 2)
        return {};
    std::size_t const count = last - first;
    std::vector<std::uint64_t> cum(count + 1, 0);
    for (std::size_t i = 0; i < count; ++i)
        cum[i + 1] = cum[i] + entry_weight(entries.key(first + i).size(), entries.value_size(first + i));
    auto const rel = [&](std::size_t i) { return entries.key(first + i).substr(source_prefix.size()); };
    // A directory costs a names watch of its own: split one only when it holds more than a watch's share.
    std::uint64_t const share = cum.back() / max_watches;
    std::string scratch;
    auto const absolute = [&](std::string_view r) -> std::string_view {
        scratch.assign(source_prefix);
        scratch.append(r);
        return scratch;
    };
    std::vector<std::string> dropped;  // trie nodes left out because no key under them can be selected
    std::vector<std::string> dropping;

    // The children of `n` by the next character (nodes that only hold unselected keys left out and
    // counted in `dropping`), or nullopt when `n` may not be split.
    auto const children = [&](const node& n) -> std::optional<std::vector<node>> {
        dropping.clear();
        if (n.hi - n.lo < 2 || rel(n.lo).size() == n.rel.size())
            return std::nullopt;  // one key, or the node's prefix is itself a key (no child would cover it)
        std::vector<node> out;
        std::size_t const at = n.rel.size();
        std::size_t i = n.lo;
        while (i < n.hi) {
            auto const c = static_cast<unsigned char>(rel(i)[at]);
            // The first entry past `i` whose character at `at` is above `c` (they are sorted).
            std::size_t j = i;
            for (std::size_t len = n.hi - i; len > 0;) {
                std::size_t const half = len / 2;
                if (static_cast<unsigned char>(rel(j + half)[at]) <= c) {
                    j += half + 1;
                    len -= half + 1;
                } else {
                    len = half;
                }
            }
            node child;
            child.rel = n.rel;
            child.rel.push_back(static_cast<char>(c));
            child.lo = i;
            child.hi = j;
            child.bytes = cum[j] - cum[i];
            i = j;
            if (subtree_unselected(filter, absolute(child.rel))) {
                dropping.push_back(std::string(absolute(child.rel)));
                continue;
            }
            out.push_back(std::move(child));
        }
        return out;
    };

    std::vector<node> groups;
    std::vector<std::string> dirs{std::string(source_prefix)};
    groups.push_back(node{std::string{}, 0, count, cum.back(), false});
    for (;;) {
        auto heaviest = groups.end();
        for (auto it = groups.begin(); it != groups.end(); ++it)
            if (!it->final && (heaviest == groups.end() || it->bytes > heaviest->bytes))
                heaviest = it;
        if (heaviest == groups.end())
            break;
        // The root node ("") is the source prefix's own names watch; any other node ending in '/' is
        // a directory that the names watch of its parent lists as one name.
        bool const dir = !heaviest->rel.empty() && heaviest->rel.back() == '/';
        if (dir && heaviest->bytes <= share) {
            heaviest->final = true;
            continue;
        }
        auto kids = children(*heaviest);
        if (!kids) {
            heaviest->final = true;
            continue;
        }
        // Replacing the node by its children (and a names watch when it is a directory).
        std::size_t const after = groups.size() - 1 + kids->size() + dirs.size() + (dir ? 1 : 0);
        if (after > max_watches) {
            heaviest->final = true;
            continue;
        }
        if (dir)
            dirs.push_back(std::string(source_prefix) + heaviest->rel);
        dropped.insert(dropped.end(), dropping.begin(), dropping.end());
        auto const pos = heaviest - groups.begin();
        groups.erase(heaviest);
        groups.insert(
            groups.begin() + pos, std::make_move_iterator(kids->begin()), std::make_move_iterator(kids->end())
        );
    }
    source_layout out;
    out.groups.reserve(groups.size());
    for (auto const& g : groups) out.groups.push_back(std::string(source_prefix) + g.rel);
    std::sort(out.groups.begin(), out.groups.end());
    std::sort(dirs.begin(), dirs.end());
    out.dirs = std::move(dirs);
    // A split directory left with a single group under it (its split stopped at the budget) and
    // nothing excluded costs a names watch for nothing: make it one group again, deepest first.
    for (bool again = true; again;) {
        again = false;
        for (auto d = out.dirs.rbegin(); d != out.dirs.rend(); ++d) {
            if (*d == source_prefix)
                continue;
            auto const [lo, hi] = std::equal_range(
                out.groups.begin(),
                out.groups.end(),
                *d,
                [n = d->size()](std::string_view a, std::string_view b) {
                    return a.substr(0, n) < b.substr(0, n);
                }
            );
            bool const subdir = d != out.dirs.rbegin() && std::prev(d)->starts_with(*d);
            bool const skips = std::any_of(dropped.begin(), dropped.end(), [&](const std::string& x) {
                return x.starts_with(*d);
            });
            if (hi - lo != 1 || subdir || skips)
                continue;
            *lo = *d;
            out.dirs.erase(std::next(d).base());
            again = true;
            break;
        }
    }
    if (out.groups.size() < 2 && (out.groups.empty() || dropped.empty()))
        return {};
    return out;
}

}  // namespace

source_layout split_layout(
    std::span<const kv_entry> entries,
    std::string_view source_prefix,
    std::size_t max_watches,
    const prefixes::key_filter& filter
)
{
    if (max_watches < 3 || subtree_unselected(filter, source_prefix))
        return {};
    return split_layout_of(
        listed_entries{entries}, prefix_range(entries, source_prefix), source_prefix, max_watches, filter
    );
}

source_layout split_kept_layout(
    const compact_entries& entries,
    std::string_view source_prefix,
    std::size_t max_watches,
    const prefixes::key_filter& filter
)
{
    if (max_watches < 3 || subtree_unselected(filter, source_prefix))
        return {};
    return split_layout_of(
        kept_entries{entries}, prefix_range(entries, source_prefix), source_prefix, max_watches, filter
    );
}

name_kind classify_name(
    const source_layout& layout,
    const prefixes::key_filter& filter,
    std::string_view dir,
    std::string_view name
)
{
    if (name != dir && std::binary_search(layout.dirs.begin(), layout.dirs.end(), name))
        return name_kind::covered;  // a split directory: its own names watch looks inside
    if (is_covered(layout.groups, name) || subtree_unselected(filter, name))
        return name_kind::covered;
    // `name == dir` is the directory's own key (a folder marker): no group can hold it alone.
    if (name == dir || contains_group(layout.groups, name) || contains_group(layout.dirs, name))
        return name_kind::overlaps;
    return name_kind::fresh;
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
