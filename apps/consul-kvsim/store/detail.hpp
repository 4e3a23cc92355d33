// Internals shared by the store's translation units. Not part of the interface.
#pragma once

#include "store/store.hpp"

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>

namespace kvship::kvsim::detail {

// Entries sit in a std::set ordered by key; fields other than the key may change in place.
inline kv_entry& mut(kv_entry const& e)
{
    return const_cast<kv_entry&>(e);
}

inline void unindex(
    std::map<std::string, std::set<std::string, std::less<>>, std::less<>>& idx,
    std::string_view owner,
    std::string_view key
)
{
    auto it = idx.find(owner);
    if (it == idx.end()) {
        return;
    }
    if (auto k = it->second.find(key); k != it->second.end()) {
        it->second.erase(k);
    }
    if (it->second.empty()) {
        idx.erase(it);
    }
}

inline kv_entry make_entry(
    std::string key, std::optional<std::string> value, std::uint64_t flags, std::string session = {}
)
{
    kv_entry e;
    e.key = std::move(key);
    e.value = std::move(value);
    e.flags = flags;
    e.session = std::move(session);
    return e;
}

// Consul's DirEntry.Equal: LockIndex, Key, Flags, Value bytes (nil == empty) and Session.
inline bool same_entry(kv_entry const& a, kv_entry const& b)
{
    std::string_view const av = a.value ? std::string_view(*a.value) : std::string_view();
    std::string_view const bv = b.value ? std::string_view(*b.value) : std::string_view();
    return a.lock_index == b.lock_index && a.key == b.key && a.flags == b.flags && av == bv &&
           a.session == b.session;
}

// Rounds t up to a multiple of g (measured from the clock's epoch).
inline time_point round_up(time_point t, nanos g)
{
    auto const gc = g.count();
    if (gc <= 0) {
        return t;
    }
    auto const c = t.time_since_epoch().count();
    auto q = c / gc;
    if (q * gc < c) {
        ++q;
    }
    return time_point(std::chrono::duration_cast<time_point::duration>(nanos(q * gc)));
}

// The smallest string greater than every string that starts with p; nullopt when none (all 0xFF).
inline std::optional<std::string> prefix_successor(std::string p)
{
    while (!p.empty()) {
        auto const c = static_cast<unsigned char>(p.back());
        if (c != 0xFF) {
            p.back() = static_cast<char>(c + 1);
            return p;
        }
        p.pop_back();
    }
    return std::nullopt;
}

}  // namespace kvship::kvsim::detail
