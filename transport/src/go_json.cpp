#include <transport/go_json.hpp>

#include <fmt/format.h>

#include <cstdint>

namespace kvship::transport {

namespace {

// Length of the valid UTF-8 sequence at s[i], or 0 when it is not one (Go's utf8.DecodeRuneInString).
std::size_t utf8_sequence(std::string_view s, std::size_t i, std::uint32_t& rune)
{
    auto const b0 = static_cast<unsigned char>(s[i]);
    auto cont = [&](std::size_t k) -> int {
        if (i + k >= s.size())
            return -1;
        auto const b = static_cast<unsigned char>(s[i + k]);
        return (b & 0xC0) == 0x80 ? (b & 0x3F) : -1;
    };
    if (b0 >= 0xC2 && b0 <= 0xDF) {
        int const c1 = cont(1);
        if (c1 < 0)
            return 0;
        rune = ((b0 & 0x1Fu) << 6) | static_cast<std::uint32_t>(c1);
        return 2;
    }
    if (b0 >= 0xE0 && b0 <= 0xEF) {
        int const c1 = cont(1);
        int const c2 = cont(2);
        if (c1 < 0 || c2 < 0)
            return 0;
        rune = ((b0 & 0x0Fu) << 12) | (static_cast<std::uint32_t>(c1) << 6) | static_cast<std::uint32_t>(c2);
        if (rune < 0x800 || (rune >= 0xD800 && rune <= 0xDFFF))
            return 0;
        return 3;
    }
    if (b0 >= 0xF0 && b0 <= 0xF4) {
        int const c1 = cont(1);
        int const c2 = cont(2);
        int const c3 = cont(3);
        if (c1 < 0 || c2 < 0 || c3 < 0)
            return 0;
        rune = ((b0 & 0x07u) << 18) | (static_cast<std::uint32_t>(c1) << 12) |
               (static_cast<std::uint32_t>(c2) << 6) | static_cast<std::uint32_t>(c3);
        if (rune < 0x10000 || rune > 0x10FFFF)
            return 0;
        return 4;
    }
    return 0;
}

}  // namespace

void append_go_json_string(std::string& out, std::string_view s)
{
    out.push_back('"');
    for (std::size_t i = 0; i < s.size();) {
        auto const c = static_cast<unsigned char>(s[i]);
        if (c < 0x80) {
            switch (c) {
                case '"':
                    out += "\\\"";
                    break;
                case '\\':
                    out += "\\\\";
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
                default:
                    if (c < 0x20 || c == '<' || c == '>' || c == '&')
                        out += fmt::format("\\u{:04x}", c);
                    else
                        out.push_back(static_cast<char>(c));
            }
            ++i;
            continue;
        }
        std::uint32_t rune = 0;
        std::size_t const n = utf8_sequence(s, i, rune);
        if (n == 0) {
            out += "\\ufffd";
            ++i;
            continue;
        }
        if (rune == 0x2028 || rune == 0x2029)
            out += fmt::format("\\u{:04x}", rune);
        else
            out.append(s.substr(i, n));
        i += n;
    }
    out.push_back('"');
}

}  // namespace kvship::transport
