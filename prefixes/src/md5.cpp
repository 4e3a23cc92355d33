// RFC 1321 MD5, kept small: consul-replicate derives status key names from it.
#include <prefixes/status_key.hpp>

#include <cstddef>

namespace kvship::prefixes {

namespace {

constexpr std::array<std::uint32_t, 64> k_table = {
    0xd76aa478, 0xe8c7b756, 0x242070db, 0xc1bdceee, 0xf57c0faf, 0x4787c62a, 0xa8304613, 0xfd469501,
    0x698098d8, 0x8b44f7af, 0xffff5bb1, 0x895cd7be, 0x6b901122, 0xfd987193, 0xa679438e, 0x49b40821,
    0xf61e2562, 0xc040b340, 0x265e5a51, 0xe9b6c7aa, 0xd62f105d, 0x02441453, 0xd8a1e681, 0xe7d3fbc8,
    0x21e1cde6, 0xc33707d6, 0xf4d50d87, 0x455a14ed, 0xa9e3e905, 0xfcefa3f8, 0x676f02d9, 0x8d2a4c8a,
    0xfffa3942, 0x8771f681, 0x6d9d6122, 0xfde5380c, 0xa4beea44, 0x4bdecfa9, 0xf6bb4b60, 0xbebfbc70,
    0x289b7ec6, 0xeaa127fa, 0xd4ef3085, 0x04881d05, 0xd9d4d039, 0xe6db99e5, 0x1fa27cf8, 0xc4ac5665,
    0xf4292244, 0x432aff97, 0xab9423a7, 0xfc93a039, 0x655b59c3, 0x8f0ccc92, 0xffeff47d, 0x85845dd1,
    0x6fa87e4f, 0xfe2ce6e0, 0xa3014314, 0x4e0811a1, 0xf7537e82, 0xbd3af235, 0x2ad7d2bb, 0xeb86d391,
};

constexpr std::array<std::uint32_t, 64> shifts = {
    7,  12, 17, 22, 7,  12, 17, 22, 7,  12, 17, 22, 7,  12, 17, 22, 5,  9,  14, 20, 5,  9,
    14, 20, 5,  9,  14, 20, 5,  9,  14, 20, 4,  11, 16, 23, 4,  11, 16, 23, 4,  11, 16, 23,
    4,  11, 16, 23, 6,  10, 15, 21, 6,  10, 15, 21, 6,  10, 15, 21, 6,  10, 15, 21,
};

std::uint32_t rotl(std::uint32_t x, std::uint32_t n)
{
    return (x << n) | (x >> (32U - n));
}

void process_block(std::array<std::uint32_t, 4>& state, const std::uint8_t* block)
{
    std::array<std::uint32_t, 16> m{};
    for (std::size_t i = 0; i < 16; ++i) {
        m[i] = static_cast<std::uint32_t>(block[i * 4]) |
               (static_cast<std::uint32_t>(block[i * 4 + 1]) << 8U) |
               (static_cast<std::uint32_t>(block[i * 4 + 2]) << 16U) |
               (static_cast<std::uint32_t>(block[i * 4 + 3]) << 24U);
    }
    std::uint32_t a = state[0];
    std::uint32_t b = state[1];
    std::uint32_t c = state[2];
    std::uint32_t d = state[3];
    for (std::size_t i = 0; i < 64; ++i) {
        std::uint32_t f = 0;
        std::size_t g = 0;
        if (i < 16) {
            f = (b & c) | (~b & d);
            g = i;
        } else if (i < 32) {
            f = (d & b) | (~d & c);
            g = (5 * i + 1) % 16;
        } else if (i < 48) {
            f = b ^ c ^ d;
            g = (3 * i + 5) % 16;
        } else {
            f = c ^ (b | ~d);
            g = (7 * i) % 16;
        }
        std::uint32_t const next = b + rotl(a + f + k_table[i] + m[g], shifts[i]);
        a = d;
        d = c;
        c = b;
        b = next;
    }
    state[0] += a;
    state[1] += b;
    state[2] += c;
    state[3] += d;
}

}  // namespace

std::array<std::uint8_t, 16> md5(std::string_view data)
{
    std::array<std::uint32_t, 4> state = {0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476};
    auto const* bytes = reinterpret_cast<const std::uint8_t*>(data.data());
    std::size_t const full = data.size() / 64;
    for (std::size_t i = 0; i < full; ++i) process_block(state, bytes + i * 64);

    // Tail: the remaining bytes, 0x80, zero padding, then the bit length (little-endian), in 1 or 2 blocks.
    std::array<std::uint8_t, 128> tail{};
    std::size_t const rest = data.size() - full * 64;
    for (std::size_t i = 0; i < rest; ++i) tail[i] = bytes[full * 64 + i];
    tail[rest] = 0x80;
    std::size_t const tail_len = rest < 56 ? 64 : 128;
    std::uint64_t const bit_len = static_cast<std::uint64_t>(data.size()) * 8U;
    for (std::size_t i = 0; i < 8; ++i)
        tail[tail_len - 8 + i] = static_cast<std::uint8_t>(bit_len >> (8U * i));
    for (std::size_t off = 0; off < tail_len; off += 64) process_block(state, tail.data() + off);

    std::array<std::uint8_t, 16> digest{};
    for (std::size_t i = 0; i < 4; ++i) {
        for (std::size_t j = 0; j < 4; ++j)
            digest[i * 4 + j] = static_cast<std::uint8_t>(state[i] >> (8U * j));
    }
    return digest;
}

std::string md5_hex(std::string_view data)
{
    static constexpr char digits[] = "0123456789abcdef";
    std::string out;
    out.reserve(32);
    for (std::uint8_t const b : md5(data)) {
        out.push_back(digits[b >> 4U]);
        out.push_back(digits[b & 0x0FU]);
    }
    return out;
}

}  // namespace kvship::prefixes
