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

// One UTF-8 sequence at the start of s: (rune, length), or nullopt when invalid.
inline std::optional<std::pair<char32_t, std::size_t>> decode_utf8(std::string_view s)
{
    auto const b = [&](std::size_t i) { return static_cast<unsigned char>(s[i]); };
    if (s.empty()) {
        return std::nullopt;
    }
    unsigned char const c0 = b(0);
    std::size_t len = 0;
    char32_t r = 0;
    char32_t min = 0;
    if (c0 < 0x80) {
        return std::pair<char32_t, std::size_t>{c0, 1};
    }
    if ((c0 & 0xE0) == 0xC0) {
        len = 2;
        r = c0 & 0x1Fu;
        min = 0x80;
    } else if ((c0 & 0xF0) == 0xE0) {
        len = 3;
        r = c0 & 0x0Fu;
        min = 0x800;
    } else if ((c0 & 0xF8) == 0xF0) {
        len = 4;
        r = c0 & 0x07u;
        min = 0x10000;
    } else {
        return std::nullopt;
    }
    if (s.size() < len) {
        return std::nullopt;
    }
    for (std::size_t i = 1; i < len; ++i) {
        if ((b(i) & 0xC0) != 0x80) {
            return std::nullopt;
        }
        r = (r << 6) | (b(i) & 0x3Fu);
    }
    if (r < min || r > 0x10FFFF || (r >= 0xD800 && r <= 0xDFFF)) {
        return std::nullopt;
    }
    return std::pair<char32_t, std::size_t>{r, len};
}

// An approximation of Go's unicode.IsPrint for non-ASCII runes: format and control runes are not.
inline bool go_printable(char32_t r)
{
    if (r >= 0x80 && r < 0xA0) {
        return false;
    }
    switch (r) {
        case 0xA0:  // no-break space: IsPrint allows only U+0020 among spaces
        case 0xAD:
        case 0x2028:
        case 0x2029:
        case 0xFEFF:
            return false;
        default:
            break;
    }
    if ((r >= 0x200B && r <= 0x200F) || (r >= 0x202A && r <= 0x202E) || (r >= 0x2060 && r <= 0x206F) ||
        (r >= 0xFFF9 && r <= 0xFFFB) || (r >= 0xE000 && r <= 0xF8FF) || (r & 0xFFFE) == 0xFFFE) {
        return false;
    }
    return true;
}

}  // namespace kvship::kvsim::detail
