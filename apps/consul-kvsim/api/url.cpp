#include "api/url.hpp"

#include "store/store.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <limits>

namespace kvship::kvsim::api {

namespace {

int hex_value(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

std::optional<std::string> unescape(std::string_view s, bool plus_is_space)
{
    std::string out;
    out.reserve(s.size());
    for (std::size_t i = 0; i < s.size(); ++i) {
        char const c = s[i];
        if (c == '%') {
            if (i + 2 >= s.size()) {
                return std::nullopt;
            }
            int const hi = hex_value(s[i + 1]);
            int const lo = hex_value(s[i + 2]);
            if (hi < 0 || lo < 0) {
                return std::nullopt;
            }
            out.push_back(static_cast<char>(hi * 16 + lo));
            i += 2;
        } else if (c == '+' && plus_is_space) {
            out.push_back(' ');
        } else {
            out.push_back(c);
        }
    }
    return out;
}

bool is_unreserved(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_' || c == '.' || c == '~';
}

void append_percent(std::string& out, unsigned char c)
{
    constexpr char digits[] = "0123456789ABCDEF";
    out.push_back('%');
    out.push_back(digits[c >> 4]);
    out.push_back(digits[c & 15]);
}

}  // namespace

std::pair<char32_t, std::size_t> decode_rune(std::string_view s, std::size_t i)
{
    auto const b0 = static_cast<unsigned char>(s[i]);
    if (b0 < 0x80) {
        return {b0, 1};
    }
    auto cont = [&](std::size_t k) -> int {
        if (i + k >= s.size()) {
            return -1;
        }
        auto const b = static_cast<unsigned char>(s[i + k]);
        return (b & 0xC0) == 0x80 ? (b & 0x3F) : -1;
    };
    if (b0 >= 0xC2 && b0 <= 0xDF) {
        int const c1 = cont(1);
        if (c1 >= 0) {
            return {static_cast<char32_t>(((b0 & 0x1F) << 6) | c1), 2};
        }
    } else if (b0 >= 0xE0 && b0 <= 0xEF) {
        int const c1 = cont(1);
        int const c2 = cont(2);
        if (c1 >= 0 && c2 >= 0) {
            auto const r = static_cast<char32_t>(((b0 & 0x0F) << 12) | (c1 << 6) | c2);
            if (r >= 0x800 && (r < 0xD800 || r > 0xDFFF)) {
                return {r, 3};
            }
        }
    } else if (b0 >= 0xF0 && b0 <= 0xF4) {
        int const c1 = cont(1);
        int const c2 = cont(2);
        int const c3 = cont(3);
        if (c1 >= 0 && c2 >= 0 && c3 >= 0) {
            auto const r = static_cast<char32_t>(((b0 & 0x07) << 18) | (c1 << 12) | (c2 << 6) | c3);
            if (r >= 0x10000 && r <= 0x10FFFF) {
                return {r, 4};
            }
        }
    }
    return {0xFFFD, 1};
}

namespace {

// unicode.IsPrint, closely enough: control, format, separator (other than ' '), private-use and
// non-character code points are not printable.
bool is_print_rune(char32_t r)
{
    if (r < 0x20 || (r >= 0x7F && r <= 0xA0) || r == 0xAD) {
        return false;
    }
    if (r < 0x0600) {
        return true;
    }
    if ((r >= 0x0600 && r <= 0x0605) || r == 0x061C || r == 0x06DD || r == 0x070F || r == 0x180E ||
        r == 0x1680) {
        return false;
    }
    if ((r >= 0x2000 && r <= 0x200F) || (r >= 0x2028 && r <= 0x202F) || (r >= 0x205F && r <= 0x206F) ||
        r == 0x3000) {
        return false;
    }
    if ((r >= 0xD800 && r <= 0xF8FF) || r == 0xFEFF || (r >= 0xFFF0 && r <= 0xFFFB) || r == 0xFFFE ||
        r == 0xFFFF) {
        return false;
    }
    if ((r >= 0xE0000 && r <= 0xE0FFF) || r >= 0xF0000) {
        return false;
    }
    return true;
}

}  // namespace

query_params query_params::parse(std::string_view raw)
{
    query_params q;
    while (!raw.empty()) {
        auto const amp = raw.find('&');
        std::string_view part = raw.substr(0, amp);
        raw = amp == std::string_view::npos ? std::string_view{} : raw.substr(amp + 1);
        if (part.empty() || part.find(';') != std::string_view::npos) {
            continue;
        }
        auto const eq = part.find('=');
        auto key = query_unescape(part.substr(0, eq));
        if (!key) {
            continue;
        }
        auto value = query_unescape(eq == std::string_view::npos ? std::string_view{} : part.substr(eq + 1));
        if (!value) {
            continue;
        }
        q.values_[std::move(*key)].push_back(std::move(*value));
    }
    return q;
}

std::string query_params::get(std::string_view key) const
{
    auto const it = values_.find(key);
    if (it == values_.end() || it->second.empty()) {
        return {};
    }
    return it->second.front();
}

std::vector<std::string> query_params::all(std::string_view key) const
{
    auto const it = values_.find(key);
    return it == values_.end() ? std::vector<std::string>{} : it->second;
}

std::string query_params::encode() const
{
    std::string out;
    for (auto const& [key, values] : values_) {
        auto const k = query_escape(key);
        for (auto const& v : values) {
            if (!out.empty()) {
                out.push_back('&');
            }
            out += k;
            out.push_back('=');
            out += query_escape(v);
        }
    }
    return out;
}

std::optional<request_target> split_target(std::string_view target)
{
    if (target.empty()) {
        return std::nullopt;
    }
    if (target.front() != '/') {
        // absolute-form: scheme://authority/path?query
        auto const scheme_end = target.find("://");
        if (scheme_end == std::string_view::npos) {
            return std::nullopt;
        }
        auto const path_start = target.find('/', scheme_end + 3);
        if (path_start == std::string_view::npos) {
            auto const q = target.find('?', scheme_end + 3);
            request_target out{"/", {}};
            if (q != std::string_view::npos) {
                out.raw_query = std::string(target.substr(q + 1));
            }
            return out;
        }
        target = target.substr(path_start);
    }
    auto const q = target.find('?');
    auto path = path_unescape(target.substr(0, q));
    if (!path) {
        return std::nullopt;
    }
    request_target out{std::move(*path), {}};
    if (q != std::string_view::npos) {
        out.raw_query = std::string(target.substr(q + 1));
    }
    return out;
}

std::optional<std::string> path_unescape(std::string_view s)
{
    return unescape(s, false);
}

std::optional<std::string> query_unescape(std::string_view s)
{
    return unescape(s, true);
}

std::string query_escape(std::string_view s)
{
    std::string out;
    out.reserve(s.size());
    for (char const ch : s) {
        auto const c = static_cast<unsigned char>(ch);
        if (is_unreserved(c)) {
            out.push_back(ch);
        } else if (c == ' ') {
            out.push_back('+');
        } else {
            append_percent(out, c);
        }
    }
    return out;
}

std::string path_escape(std::string_view s)
{
    std::string out;
    out.reserve(s.size());
    for (char const ch : s) {
        auto const c = static_cast<unsigned char>(ch);
        bool const keep = is_unreserved(c) || c == '$' || c == '&' || c == '+' || c == ',' || c == '/' ||
                          c == ':' || c == ';' || c == '=' || c == '@';
        if (keep) {
            out.push_back(ch);
        } else {
            append_percent(out, c);
        }
    }
    return out;
}

std::string clean_path(std::string_view p)
{
    if (p.empty()) {
        return "/";
    }
    std::string in;
    if (p.front() != '/') {
        in = "/";
    }
    in += p;
    // path.Clean on a rooted path: split into elements, drop "" and ".", let ".." pop.
    std::vector<std::string_view> parts;
    std::string_view rest = in;
    while (!rest.empty()) {
        auto const slash = rest.find('/');
        std::string_view const elem = rest.substr(0, slash);
        rest = slash == std::string_view::npos ? std::string_view{} : rest.substr(slash + 1);
        if (elem.empty() || elem == ".") {
            continue;
        }
        if (elem == "..") {
            if (!parts.empty()) {
                parts.pop_back();
            }
            continue;
        }
        parts.push_back(elem);
    }
    std::string out;
    for (auto const& elem : parts) {
        out.push_back('/');
        out += elem;
    }
    if (out.empty()) {
        out = "/";
    }
    if (in.back() == '/' && out != "/") {
        out.push_back('/');
    }
    return out;
}

bool is_printable_path(std::string_view path)
{
    for (std::size_t i = 0; i < path.size();) {
        auto const [r, n] = decode_rune(path, i);
        if (!is_print_rune(r)) {
            return false;
        }
        i += n;
    }
    return true;
}

std::variant<std::uint64_t, std::string> parse_uint_go(std::string_view s)
{
    auto syntax = [&] { return fmt::format("strconv.ParseUint: parsing {}: invalid syntax", go_quote(s)); };
    if (s.empty()) {
        return syntax();
    }
    std::uint64_t n = 0;
    constexpr auto max = std::numeric_limits<std::uint64_t>::max();
    for (char const c : s) {
        if (c < '0' || c > '9') {
            return syntax();
        }
        auto const d = static_cast<std::uint64_t>(c - '0');
        if (n > (max - d) / 10) {
            return fmt::format("strconv.ParseUint: parsing {}: value out of range", go_quote(s));
        }
        n = n * 10 + d;
    }
    return n;
}

}  // namespace kvship::kvsim::api
