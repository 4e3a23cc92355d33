#include <gotext/base64.hpp>

#include <array>
#include <cstdint>

namespace kvship::gotext {

namespace {

constexpr char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

constexpr std::array<std::int8_t, 256> make_reverse()
{
    std::array<std::int8_t, 256> r{};
    for (auto& v : r) {
        v = -1;
    }
    for (int i = 0; i < 64; ++i) {
        r[static_cast<unsigned char>(alphabet[i])] = static_cast<std::int8_t>(i);
    }
    return r;
}

constexpr auto reverse = make_reverse();

}  // namespace

std::string base64_encode(std::string_view bytes)
{
    std::string out;
    out.resize(base64_size(bytes.size()));
    auto const* in = reinterpret_cast<unsigned char const*>(bytes.data());
    std::size_t const n = bytes.size();
    std::size_t o = 0;
    std::size_t i = 0;
    for (; i + 3 <= n; i += 3) {
        std::uint32_t const v = (std::uint32_t{in[i]} << 16) | (std::uint32_t{in[i + 1]} << 8) | in[i + 2];
        out[o++] = alphabet[(v >> 18) & 63];
        out[o++] = alphabet[(v >> 12) & 63];
        out[o++] = alphabet[(v >> 6) & 63];
        out[o++] = alphabet[v & 63];
    }
    if (i < n) {
        std::uint32_t v = std::uint32_t{in[i]} << 16;
        if (i + 1 < n) {
            v |= std::uint32_t{in[i + 1]} << 8;
        }
        out[o++] = alphabet[(v >> 18) & 63];
        out[o++] = alphabet[(v >> 12) & 63];
        out[o++] = i + 1 < n ? alphabet[(v >> 6) & 63] : '=';
        out[o++] = '=';
    }
    return out;
}

std::optional<std::string> base64_decode(std::string_view text)
{
    if (text.size() % 4 != 0) {
        return std::nullopt;
    }
    std::string out;
    out.reserve(text.size() / 4 * 3);
    for (std::size_t i = 0; i < text.size(); i += 4) {
        bool const last = i + 4 == text.size();
        int pad = 0;
        std::uint32_t v = 0;
        for (std::size_t j = 0; j < 4; ++j) {
            char const c = text[i + j];
            if (c == '=') {
                // Padding only at the end, only in the last two places, and never followed by data.
                if (!last || j < 2) {
                    return std::nullopt;
                }
                ++pad;
                v <<= 6;
                continue;
            }
            if (pad > 0) {
                return std::nullopt;
            }
            auto const d = reverse[static_cast<unsigned char>(c)];
            if (d < 0) {
                return std::nullopt;
            }
            v = (v << 6) | static_cast<std::uint32_t>(d);
        }
        out.push_back(static_cast<char>((v >> 16) & 0xff));
        if (pad < 2) {
            out.push_back(static_cast<char>((v >> 8) & 0xff));
        }
        if (pad < 1) {
            out.push_back(static_cast<char>(v & 0xff));
        }
    }
    return out;
}

}  // namespace kvship::gotext
