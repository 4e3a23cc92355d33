#include <gotext/go_duration.hpp>

#include <cstdint>

namespace kvship::gotext {
namespace {

// time.quote: printable ASCII verbatim (with \" and \\), every other byte as \xNN.
std::string time_quote(std::string_view s)
{
    static constexpr char hex[] = "0123456789abcdef";
    std::string out;
    out.reserve(s.size() + 2);
    out.push_back('"');
    for (char ch : s) {
        auto const c = static_cast<unsigned char>(ch);
        if (c >= 0x80 || c < 0x20) {
            out += "\\x";
            out.push_back(hex[c >> 4]);
            out.push_back(hex[c & 0xF]);
        } else {
            if (c == '"' || c == '\\') {
                out.push_back('\\');
            }
            out.push_back(ch);
        }
    }
    out.push_back('"');
    return out;
}

constexpr std::uint64_t max_magnitude = std::uint64_t{1} << 63;

std::optional<std::uint64_t> unit_of(std::string_view u)
{
    if (u == "ns") {
        return 1;
    }
    if (u == "us" || u == "\xC2\xB5s" || u == "\xCE\xBCs") {
        return 1'000;
    }
    if (u == "ms") {
        return 1'000'000;
    }
    if (u == "s") {
        return 1'000'000'000;
    }
    if (u == "m") {
        return 60'000'000'000;
    }
    if (u == "h") {
        return 3'600'000'000'000;
    }
    return std::nullopt;
}

bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

}  // namespace

std::variant<std::chrono::nanoseconds, std::string> parse_go_duration_or_error(std::string_view const orig)
{
    auto invalid = [&] { return std::string("time: invalid duration ") + time_quote(orig); };
    std::string_view s = orig;
    bool neg = false;
    if (!s.empty() && (s.front() == '-' || s.front() == '+')) {
        neg = s.front() == '-';
        s.remove_prefix(1);
    }
    if (s == "0") {
        return std::chrono::nanoseconds{0};
    }
    if (s.empty()) {
        return invalid();
    }
    std::uint64_t d = 0;
    while (!s.empty()) {
        if (!(s.front() == '.' || is_digit(s.front()))) {
            return invalid();
        }
        // leadingInt
        std::uint64_t v = 0;
        std::size_t i = 0;
        for (; i < s.size() && is_digit(s[i]); ++i) {
            if (v > max_magnitude / 10) {
                return invalid();
            }
            v = v * 10 + static_cast<std::uint64_t>(s[i] - '0');
            if (v > max_magnitude) {
                return invalid();
            }
        }
        bool const pre = i != 0;
        s.remove_prefix(i);
        // leadingFraction
        std::uint64_t f = 0;
        double scale = 1;
        bool post = false;
        if (!s.empty() && s.front() == '.') {
            s.remove_prefix(1);
            std::size_t j = 0;
            bool overflow = false;
            for (; j < s.size() && is_digit(s[j]); ++j) {
                if (overflow) {
                    continue;
                }
                if (f > (max_magnitude - 1) / 10) {
                    overflow = true;
                    continue;
                }
                std::uint64_t const y = f * 10 + static_cast<std::uint64_t>(s[j] - '0');
                if (y > max_magnitude) {
                    overflow = true;
                    continue;
                }
                f = y;
                scale *= 10;
            }
            post = j != 0;
            s.remove_prefix(j);
        }
        if (!pre && !post) {
            return invalid();
        }
        std::size_t u = 0;
        while (u < s.size() && s[u] != '.' && !is_digit(s[u])) {
            ++u;
        }
        if (u == 0) {
            return std::string("time: missing unit in duration ") + time_quote(orig);
        }
        std::string_view const unit_text = s.substr(0, u);
        s.remove_prefix(u);
        auto const unit = unit_of(unit_text);
        if (!unit) {
            return std::string("time: unknown unit ") + time_quote(unit_text) + " in duration " +
                   time_quote(orig);
        }
        if (v > max_magnitude / *unit) {
            return invalid();
        }
        v *= *unit;
        if (f > 0) {
            v += static_cast<std::uint64_t>(static_cast<double>(f) * (static_cast<double>(*unit) / scale));
            if (v > max_magnitude) {
                return invalid();
            }
        }
        d += v;
        if (d > max_magnitude) {
            return invalid();
        }
    }
    if (neg) {
        if (d == max_magnitude) {
            return std::chrono::nanoseconds{INT64_MIN};
        }
        return std::chrono::nanoseconds{-static_cast<std::int64_t>(d)};
    }
    if (d > max_magnitude - 1) {
        return invalid();
    }
    return std::chrono::nanoseconds{static_cast<std::int64_t>(d)};
}

std::optional<std::chrono::nanoseconds> parse_go_duration(std::string_view text)
{
    auto r = parse_go_duration_or_error(text);
    if (auto const* d = std::get_if<std::chrono::nanoseconds>(&r)) {
        return *d;
    }
    return std::nullopt;
}

namespace {

// fmtFrac: the fraction of v/10^prec without trailing zeros (and without the dot when zero), prepended.
std::uint64_t fmt_frac(std::string& rev, std::uint64_t v, int prec)
{
    bool print = false;
    for (int i = 0; i < prec; ++i) {
        auto const digit = v % 10;
        print = print || digit != 0;
        if (print) {
            rev.push_back(static_cast<char>('0' + digit));
        }
        v /= 10;
    }
    if (print) {
        rev.push_back('.');
    }
    return v;
}

void fmt_int(std::string& rev, std::uint64_t v)
{
    if (v == 0) {
        rev.push_back('0');
        return;
    }
    while (v > 0) {
        rev.push_back(static_cast<char>('0' + v % 10));
        v /= 10;
    }
}

}  // namespace

std::string format_go_duration(std::chrono::nanoseconds d)
{
    std::int64_t const n = d.count();
    bool const neg = n < 0;
    std::uint64_t u = neg ? (~static_cast<std::uint64_t>(n) + 1) : static_cast<std::uint64_t>(n);
    std::string rev;  // built backwards, like Go's buffer
    if (u < 1'000'000'000) {
        int prec = 0;
        rev.push_back('s');
        if (u == 0) {
            return "0s";
        }
        if (u < 1'000) {
            prec = 0;
            rev.push_back('n');
        } else if (u < 1'000'000) {
            prec = 3;
            rev += "\xB5\xC2";  // U+00B5, reversed
        } else {
            prec = 6;
            rev.push_back('m');
        }
        u = fmt_frac(rev, u, prec);
        fmt_int(rev, u);
    } else {
        rev.push_back('s');
        u = fmt_frac(rev, u, 9);
        fmt_int(rev, u % 60);
        u /= 60;
        if (u > 0) {
            rev.push_back('m');
            fmt_int(rev, u % 60);
            u /= 60;
            if (u > 0) {
                rev.push_back('h');
                fmt_int(rev, u);
            }
        }
    }
    if (neg) {
        rev.push_back('-');
    }
    return {rev.rbegin(), rev.rend()};
}

}  // namespace kvship::gotext
