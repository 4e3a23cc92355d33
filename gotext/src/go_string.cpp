#include <gotext/go_string.hpp>

#include <algorithm>

#include <fmt/format.h>

#include <cstddef>

namespace kvship::gotext {

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

// An approximation of Go's unicode.IsPrint for the runes that matter in keys and ids: C1 controls, the
// spaces other than U+0020, format characters, private use and non-characters are not printable.
bool go_printable(char32_t r)
{
    if (r >= 0x80 && r < 0xA0) {
        return false;
    }
    switch (r) {
        case 0xA0:
        case 0xAD:
        case 0x2028:
        case 0x2029:
        case 0xFEFF:
            return false;
        default:
            break;
    }
    return !(
        (r >= 0x200B && r <= 0x200F) || (r >= 0x202A && r <= 0x202E) || (r >= 0x2060 && r <= 0x206F) ||
        (r >= 0xFFF9 && r <= 0xFFFB) || (r >= 0xE000 && r <= 0xF8FF) || (r & 0xFFFE) == 0xFFFE
    );
}

enum class syntax
{
    quote,  // strconv.Quote
    json,   // encoding/json
};

// The escape both syntaxes write for an ASCII byte, or nullptr: the short forms, where strconv.Quote
// has more of them than encoding/json (which writes \b \f \a \v as \u00NN).
char const* short_escape(unsigned char c, syntax s)
{
    switch (c) {
        case '"':
            return "\\\"";
        case '\\':
            return "\\\\";
        case '\n':
            return "\\n";
        case '\r':
            return "\\r";
        case '\t':
            return "\\t";
        default:
            break;
    }
    if (s == syntax::json)
        return nullptr;
    switch (c) {
        case '\a':
            return "\\a";
        case '\b':
            return "\\b";
        case '\f':
            return "\\f";
        case '\v':
            return "\\v";
        default:
            return nullptr;
    }
}

void append_escaped(std::string& out, std::string_view text, syntax s)
{
    bool const json = s == syntax::json;
    out.push_back('"');
    for (std::size_t i = 0; i < text.size();) {
        auto const c = static_cast<unsigned char>(text[i]);
        if (c < 0x80) {
            if (char const* e = short_escape(c, s))
                out += e;
            else if (json && (c < 0x20 || c == '<' || c == '>' || c == '&'))
                out += fmt::format("\\u{:04x}", c);
            else if (!json && (c < 0x20 || c == 0x7F))
                out += fmt::format("\\x{:02x}", c);
            else
                out.push_back(static_cast<char>(c));
            ++i;
            continue;
        }
        char32_t rune = 0;
        std::size_t const n = utf8_length(text, i, rune);
        if (n == 0) {
            out += json ? std::string("\\ufffd") : fmt::format("\\x{:02x}", c);
            ++i;
            continue;
        }
        if (json ? (rune == 0x2028 || rune == 0x2029) : !go_printable(rune)) {
            out += rune <= 0xFFFF ? fmt::format("\\u{:04x}", static_cast<unsigned>(rune))
                                  : fmt::format("\\U{:08x}", static_cast<unsigned>(rune));
        } else {
            out.append(text.substr(i, n));
        }
        i += n;
    }
    out.push_back('"');
}

}  // namespace

std::string go_quote(std::string_view text)
{
    std::string out;
    out.reserve(text.size() + 2);
    append_escaped(out, text, syntax::quote);
    return out;
}

void append_go_json_string(std::string& out, std::string_view s)
{
    append_escaped(out, s, syntax::json);
}

bool json_field_name_equal(std::string_view key, std::string_view field)
{
    auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; };
    return key.size() == field.size() &&
           std::equal(key.begin(), key.end(), field.begin(), [&](char a, char b) { return lower(a) == lower(b); });
}

}  // namespace kvship::gotext
