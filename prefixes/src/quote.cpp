#include <prefixes/quote.hpp>

#include <fmt/format.h>

#include <cstddef>

namespace kvship::prefixes {

namespace {

// Length of the valid UTF-8 sequence starting at s[i], or 0 when it is not valid (overlong,
// surrogate, truncated or above U+10FFFF), as Go's utf8.DecodeRuneInString decides.
std::size_t utf8_length(std::string_view s, std::size_t i, char32_t& rune)
{
    auto const b0 = static_cast<unsigned char>(s[i]);
    auto cont = [&](std::size_t k) -> int {
        if (i + k >= s.size())
            return -1;
        auto const b = static_cast<unsigned char>(s[i + k]);
        return (b & 0xC0U) == 0x80U ? static_cast<int>(b & 0x3FU) : -1;
    };
    if (b0 >= 0xC2 && b0 <= 0xDF) {
        int const c1 = cont(1);
        if (c1 < 0)
            return 0;
        rune = static_cast<char32_t>(((b0 & 0x1FU) << 6) | static_cast<unsigned>(c1));
        return 2;
    }
    if (b0 >= 0xE0 && b0 <= 0xEF) {
        int const c1 = cont(1);
        int const c2 = cont(2);
        if (c1 < 0 || c2 < 0)
            return 0;
        char32_t const r = static_cast<char32_t>(
            ((b0 & 0x0FU) << 12) | (static_cast<unsigned>(c1) << 6) | static_cast<unsigned>(c2)
        );
        if (r < 0x800 || (r >= 0xD800 && r <= 0xDFFF))
            return 0;
        rune = r;
        return 3;
    }
    if (b0 >= 0xF0 && b0 <= 0xF4) {
        int const c1 = cont(1);
        int const c2 = cont(2);
        int const c3 = cont(3);
        if (c1 < 0 || c2 < 0 || c3 < 0)
            return 0;
        char32_t const r = static_cast<char32_t>(
            ((b0 & 0x07U) << 18) | (static_cast<unsigned>(c1) << 12) | (static_cast<unsigned>(c2) << 6) |
            static_cast<unsigned>(c3)
        );
        if (r < 0x10000 || r > 0x10FFFF)
            return 0;
        rune = r;
        return 4;
    }
    return 0;
}

}  // namespace

std::string go_quote(std::string_view text)
{
    std::string out;
    out.reserve(text.size() + 2);
    out.push_back('"');
    for (std::size_t i = 0; i < text.size();) {
        auto const c = static_cast<unsigned char>(text[i]);
        if (c < 0x80) {
            switch (c) {
                case '"':
                    out += "\\\"";
                    break;
                case '\\':
                    out += "\\\\";
                    break;
                case '\a':
                    out += "\\a";
                    break;
                case '\b':
                    out += "\\b";
                    break;
                case '\f':
                    out += "\\f";
                    break;
                case '\n':
                    out += "\\n";
                    break;
                case '\r':
                    out += "\\r";
                    break;
                case '\t':
                    out += "\\t";
                    break;
                case '\v':
                    out += "\\v";
                    break;
                default:
                    if (c < 0x20 || c == 0x7F)
                        out += fmt::format("\\x{:02x}", c);
                    else
                        out.push_back(static_cast<char>(c));
            }
            ++i;
            continue;
        }
        char32_t rune = 0;
        std::size_t const n = utf8_length(text, i, rune);
        if (n == 0) {
            out += fmt::format("\\x{:02x}", c);
            ++i;
        } else if (rune >= 0x80 && rune <= 0x9F) {
            out += fmt::format("\\u{:04x}", static_cast<unsigned>(rune));
            i += n;
        } else {
            out.append(text.substr(i, n));
            i += n;
        }
    }
    out.push_back('"');
    return out;
}

}  // namespace kvship::prefixes
