// The source snapshot as the replicator keeps it between rounds: keys in a shared arena, and per key a
// 128-bit digest and the length of the value instead of the value itself (about 48 bytes plus the key).
#pragma once

#include <engine/types.hpp>

#include <cstddef>
#include <cstdint>
#include <deque>
#include <iterator>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace kvship::engine {

// A 128-bit digest of a value (MurmurHash3's x64 128-bit function, seed 0). Not cryptographic and
// only ever compared within one process. Where a digest stands for a value, the value's length, the
// flags and the ModifyIndex are compared exactly next to it, so an unseen change would need another
// value of the same length under the same ModifyIndex whose digest collides (2^-128 for data nobody
// crafts against this function; Consul gives every write a new ModifyIndex anyway). A put is never
// decided on a digest: puts compare the source value itself with the destination's.
struct value_digest
{
    std::uint64_t lo = 0;
    std::uint64_t hi = 0;

    bool operator==(const value_digest&) const = default;
};

[[nodiscard]] value_digest digest_value(std::string_view value) noexcept;

// One kept entry, as a view into its compact_entries (valid until that container changes).
struct compact_entry
{
    std::string_view key;
    std::uint64_t flags = 0;
    std::uint64_t modify_index = 0;
    std::size_t value_size = 0;
    value_digest digest;
    const std::string* session = nullptr;  // nullptr: none

    // Value and flags equal to `e`'s (the plan's "unchanged" test), by length and digest.
    [[nodiscard]] bool same_value(const kv_entry& e) const noexcept
    {
        return flags == e.flags && value_size == e.value.size() && digest == digest_value(e.value);
    }
};

// Same key, value (by length and digest), flags, ModifyIndex and session.
[[nodiscard]] bool operator==(const compact_entry& a, const kv_entry& b) noexcept;
[[nodiscard]] bool operator==(const compact_entry& a, const compact_entry& b) noexcept;

// Entries sorted by key (the caller keeps them sorted: push_back in key order, or splice). Keys live
// in fixed-size blocks that never move, and the per-entry records in a deque, so growing to a
// million entries never copies what is already held (a vector would briefly hold twice its size).
// Sessions are rare and kept in a side map. Move-only.
class compact_entries
{
public:
    class iterator
    {
    public:
        using iterator_category = std::random_access_iterator_tag;
        using value_type = compact_entry;
        using difference_type = std::ptrdiff_t;
        using pointer = void;
        using reference = compact_entry;

        iterator() = default;

        iterator(const compact_entries* c, std::size_t i) : c_(c), i_(i) {}

        compact_entry operator*() const { return (*c_)[i_]; }

        compact_entry operator[](difference_type n) const { return (*c_)[i_ + static_cast<std::size_t>(n)]; }

        iterator& operator++()
        {
            ++i_;
            return *this;
        }

        iterator operator++(int)
        {
            auto t = *this;
            ++i_;
            return t;
        }

        iterator& operator--()
        {
            --i_;
            return *this;
        }

        iterator operator--(int)
        {
            auto t = *this;
            --i_;
            return t;
        }

        iterator& operator+=(difference_type n)
        {
            i_ += static_cast<std::size_t>(n);
            return *this;
        }

        iterator& operator-=(difference_type n)
        {
            i_ -= static_cast<std::size_t>(n);
            return *this;
        }

        friend iterator operator+(iterator a, difference_type n) { return a += n; }

        friend iterator operator+(difference_type n, iterator a) { return a += n; }

        friend iterator operator-(iterator a, difference_type n) { return a -= n; }

        friend difference_type operator-(const iterator& a, const iterator& b)
        {
            return static_cast<difference_type>(a.i_) - static_cast<difference_type>(b.i_);
        }

        friend bool operator==(const iterator& a, const iterator& b) { return a.i_ == b.i_; }

        friend auto operator<=>(const iterator& a, const iterator& b) { return a.i_ <=> b.i_; }

    private:
        const compact_entries* c_ = nullptr;
        std::size_t i_ = 0;
    };

    compact_entries() = default;
    compact_entries(const compact_entries&) = delete;
    compact_entries& operator=(const compact_entries&) = delete;
    compact_entries(compact_entries&&) noexcept = default;
    compact_entries& operator=(compact_entries&&) noexcept = default;
    ~compact_entries() = default;

    [[nodiscard]] std::size_t size() const noexcept { return slots_.size(); }

    [[nodiscard]] bool empty() const noexcept { return slots_.empty(); }

    [[nodiscard]] compact_entry operator[](std::size_t i) const;

    [[nodiscard]] std::string_view key(std::size_t i) const noexcept
    {
        return {slots_[i].key, slots_[i].key_size};
    }

    [[nodiscard]] compact_entry back() const { return (*this)[size() - 1]; }

    [[nodiscard]] iterator begin() const { return {this, 0}; }

    [[nodiscard]] iterator end() const { return {this, size()}; }

    // Appends `e` (its key must sort after the last one's).
    void push_back(const kv_entry& e);
    void append(std::span<const kv_entry> entries);
    void clear();

    // Replaces the entries in [lo, hi) by `replacement` (sorted, each key belonging at that place).
    void replace(std::size_t lo, std::size_t hi, std::span<const kv_entry> replacement);

    // Heap bytes held (records, key blocks, sessions), for tests and metrics.
    [[nodiscard]] std::size_t heap_bytes() const noexcept;

private:
    struct slot
    {
        const char* key = nullptr;
        std::uint32_t key_size = 0;
        std::uint32_t value_size = 0;
        std::uint64_t flags = 0;
        std::uint64_t modify_index = 0;
        value_digest digest;
    };

    slot make_slot(const kv_entry& e);
    const char* store_key(std::string_view key);
    void collect_garbage();

    std::deque<slot> slots_;
    std::vector<std::unique_ptr<char[]>> blocks_;
    std::vector<std::size_t> block_sizes_;
    std::size_t block_used_ = 0;                                // bytes used in the last block
    std::size_t key_bytes_ = 0;                                 // bytes of the live keys
    std::size_t stored_bytes_ = 0;                              // bytes in all blocks, live or replaced
    std::map<std::string, std::string, std::less<>> sessions_;  // key -> session
};

// A kept source snapshot: the X-Consul-Index of the read and its entries, sorted by key.
struct compact_snapshot
{
    std::uint64_t index = 0;
    compact_entries entries;
};

// compact_entries of a sorted, duplicate-free `entries` (sort_entries() gives that).
[[nodiscard]] compact_entries compact(std::span<const kv_entry> entries);

// The compact form of the same test as same_entries(snapshot, snapshot): same keys, values (by
// length and digest), flags, ModifyIndexes and sessions; the read's index is ignored.
[[nodiscard]] bool same_entries(const compact_entries& a, std::span<const kv_entry> b);
[[nodiscard]] bool same_entries(const compact_entries& a, const compact_entries& b);

// The half-open index range of the entries whose key starts with `prefix`.
[[nodiscard]] std::pair<std::size_t, std::size_t> prefix_range(
    const compact_entries& entries, std::string_view prefix
);

// splice_group() over kept entries: replaces those under `prefix` by `replacement` (sorted by key
// with unique keys, every key under `prefix`). Returns false, changing nothing, when the range
// already holds exactly these entries (compared as same_entries does).
bool splice_group(compact_entries& entries, std::string_view prefix, std::span<const kv_entry> replacement);

}  // namespace kvship::engine
