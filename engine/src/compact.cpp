#include <engine/compact.hpp>

#include <algorithm>
#include <cstring>
#include <stdexcept>

namespace kvship::engine {

namespace {

constexpr std::size_t block_size = 256 * 1024;

std::uint64_t rotl(std::uint64_t x, int r) noexcept
{
    return (x << r) | (x >> (64 - r));
}

std::uint64_t fmix(std::uint64_t k) noexcept
{
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdULL;
    k ^= k >> 33;
    k *= 0xc4ceb9fe1a85ec53ULL;
    k ^= k >> 33;
    return k;
}

std::uint64_t load64(const unsigned char* p) noexcept
{
    std::uint64_t v = 0;
    std::memcpy(&v, p, sizeof v);
    return v;
}

}  // namespace

value_digest digest_value(std::string_view value) noexcept
{
    auto const* p = reinterpret_cast<const unsigned char*>(value.data());
    std::size_t const len = value.size();
    std::uint64_t h1 = 0;
    std::uint64_t h2 = 0;
    constexpr std::uint64_t c1 = 0x87c37b91114253d5ULL;
    constexpr std::uint64_t c2 = 0x4cf5ad432745937fULL;
    std::size_t const blocks = len / 16;
    for (std::size_t i = 0; i < blocks; ++i) {
        std::uint64_t k1 = load64(p + i * 16);
        std::uint64_t k2 = load64(p + i * 16 + 8);
        k1 *= c1;
        k1 = rotl(k1, 31);
        k1 *= c2;
        h1 ^= k1;
        h1 = rotl(h1, 27);
        h1 += h2;
        h1 = h1 * 5 + 0x52dce729;
        k2 *= c2;
        k2 = rotl(k2, 33);
        k2 *= c1;
        h2 ^= k2;
        h2 = rotl(h2, 31);
        h2 += h1;
        h2 = h2 * 5 + 0x38495ab5;
    }
    auto const* tail = p + blocks * 16;
    std::size_t const rest = len & 15;
    std::uint64_t k1 = 0;
    std::uint64_t k2 = 0;
    for (std::size_t i = 0; i < rest; ++i) {
        if (i < 8)
            k1 ^= std::uint64_t{tail[i]} << (8 * i);
        else
            k2 ^= std::uint64_t{tail[i]} << (8 * (i - 8));
    }
    if (rest > 8) {
        k2 *= c2;
        k2 = rotl(k2, 33);
        k2 *= c1;
        h2 ^= k2;
    }
    if (rest > 0) {
        k1 *= c1;
        k1 = rotl(k1, 31);
        k1 *= c2;
        h1 ^= k1;
    }
    h1 ^= len;
    h2 ^= len;
    h1 += h2;
    h2 += h1;
    h1 = fmix(h1);
    h2 = fmix(h2);
    h1 += h2;
    h2 += h1;
    return {h1, h2};
}

bool operator==(const compact_entry& a, const kv_entry& b) noexcept
{
    if (a.key != b.key || a.modify_index != b.modify_index || !a.same_value(b))
        return false;
    if (a.session == nullptr || !b.session)
        return a.session == nullptr && !b.session;
    return *a.session == *b.session;
}

bool operator==(const compact_entry& a, const compact_entry& b) noexcept
{
    if (a.key != b.key || a.modify_index != b.modify_index || a.flags != b.flags ||
        a.value_size != b.value_size || a.digest != b.digest)
        return false;
    if (a.session == nullptr || b.session == nullptr)
        return a.session == b.session;
    return *a.session == *b.session;
}

compact_entry compact_entries::operator[](std::size_t i) const
{
    auto const& s = slots_[i];
    compact_entry out;
    out.key = std::string_view(s.key, s.key_size);
    out.flags = s.flags;
    out.modify_index = s.modify_index;
    out.value_size = s.value_size;
    out.digest = s.digest;
    if (!sessions_.empty()) {
        auto const it = sessions_.find(out.key);
        if (it != sessions_.end())
            out.session = &it->second;
    }
    return out;
}

const char* compact_entries::store_key(std::string_view key)
{
    if (key.empty())
        return "";
    if (blocks_.empty() || block_sizes_.back() - block_used_ < key.size()) {
        std::size_t const n = std::max(block_size, key.size());
        blocks_.push_back(std::make_unique<char[]>(n));
        block_sizes_.push_back(n);
        block_used_ = 0;
    }
    char* at = blocks_.back().get() + block_used_;
    std::memcpy(at, key.data(), key.size());
    block_used_ += key.size();
    stored_bytes_ += key.size();
    key_bytes_ += key.size();
    return at;
}

compact_entries::slot compact_entries::make_slot(const kv_entry& e)
{
    if (e.key.size() > UINT32_MAX || e.value.size() > UINT32_MAX)
        throw std::length_error("compact_entries: key or value longer than 4 GiB");
    slot s;
    s.key = store_key(e.key);
    s.key_size = static_cast<std::uint32_t>(e.key.size());
    s.value_size = static_cast<std::uint32_t>(e.value.size());
    s.flags = e.flags;
    s.modify_index = e.modify_index;
    s.digest = digest_value(e.value);
    if (e.session)
        sessions_.insert_or_assign(e.key, *e.session);
    return s;
}

void compact_entries::push_back(const kv_entry& e)
{
    slots_.push_back(make_slot(e));
}

void compact_entries::append(std::span<const kv_entry> entries)
{
    for (auto const& e : entries) push_back(e);
}

void compact_entries::clear()
{
    slots_.clear();
    blocks_.clear();
    block_sizes_.clear();
    block_used_ = 0;
    key_bytes_ = 0;
    stored_bytes_ = 0;
    sessions_.clear();
}

void compact_entries::replace(std::size_t lo, std::size_t hi, std::span<const kv_entry> replacement)
{
    for (std::size_t i = lo; i < hi; ++i) {
        key_bytes_ -= slots_[i].key_size;
        if (!sessions_.empty())
            sessions_.erase(std::string(key(i)));
    }
    std::vector<slot> added;
    added.reserve(replacement.size());
    for (auto const& e : replacement) added.push_back(make_slot(e));
    std::size_t const common = std::min(hi - lo, added.size());
    std::copy(
        added.begin(),
        added.begin() + static_cast<std::ptrdiff_t>(common),
        slots_.begin() + static_cast<std::ptrdiff_t>(lo)
    );
    auto const at = slots_.begin() + static_cast<std::ptrdiff_t>(lo + common);
    if (added.size() > common)
        slots_.insert(at, added.begin() + static_cast<std::ptrdiff_t>(common), added.end());
    else
        slots_.erase(at, slots_.begin() + static_cast<std::ptrdiff_t>(hi));
    collect_garbage();
}

void compact_entries::collect_garbage()
{
    // Replaced keys stay in their blocks until they outweigh the live ones: then every live key
    // moves to new blocks (a splice of one group costs its own keys, not the whole snapshot).
    std::size_t const garbage = stored_bytes_ - key_bytes_;
    if (garbage < block_size || garbage < key_bytes_)
        return;
    auto old = std::move(blocks_);
    blocks_.clear();
    block_sizes_.clear();
    block_used_ = 0;
    key_bytes_ = 0;
    stored_bytes_ = 0;
    for (auto& s : slots_) s.key = store_key(std::string_view(s.key, s.key_size));
}

std::size_t compact_entries::heap_bytes() const noexcept
{
    std::size_t n = slots_.size() * sizeof(slot);
    for (auto const b : block_sizes_) n += b;
    for (auto const& [k, v] : sessions_) n += k.capacity() + v.capacity() + 64;
    return n;
}

compact_entries compact(std::span<const kv_entry> entries)
{
    compact_entries out;
    out.append(entries);
    return out;
}

bool same_entries(const compact_entries& a, std::span<const kv_entry> b)
{
    if (a.size() != b.size())
        return false;
    for (std::size_t i = 0; i < b.size(); ++i)
        if (!(a[i] == b[i]))
            return false;
    return true;
}

bool same_entries(const compact_entries& a, const compact_entries& b)
{
    if (a.size() != b.size())
        return false;
    for (std::size_t i = 0; i < b.size(); ++i)
        if (!(a[i] == b[i]))
            return false;
    return true;
}

std::pair<std::size_t, std::size_t> prefix_range(const compact_entries& entries, std::string_view prefix)
{
    std::size_t lo = 0;
    std::size_t n = entries.size();
    while (n > 0) {
        std::size_t const half = n / 2;
        if (entries.key(lo + half) < prefix) {
            lo += half + 1;
            n -= half + 1;
        } else {
            n = half;
        }
    }
    std::size_t hi = lo;
    n = entries.size() - lo;
    while (n > 0) {
        std::size_t const half = n / 2;
        if (entries.key(hi + half).starts_with(prefix)) {
            hi += half + 1;
            n -= half + 1;
        } else {
            n = half;
        }
    }
    return {lo, hi};
}

bool splice_group(compact_entries& entries, std::string_view prefix, std::span<const kv_entry> replacement)
{
    auto const [lo, hi] = prefix_range(entries, prefix);
    if (hi - lo == replacement.size()) {
        bool same = true;
        for (std::size_t i = 0; same && i < replacement.size(); ++i) same = entries[lo + i] == replacement[i];
        if (same)
            return false;
    }
    entries.replace(lo, hi, replacement);
    return true;
}

}  // namespace kvship::engine
