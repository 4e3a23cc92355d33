// A small HCL v1 reader: enough for consul-replicate config files. Supports `key = value`,
// `key { ... }`, `key = { ... }`, `key "label" { ... }` (read as key = { label = { ... } }),
// strings with escapes, heredocs (<<EOF; <<-EOF allows an indented end marker but keeps the
// body's indentation), integers, floats, booleans, lists, and `#`,
// `//` and `/* */` comments. Items may be separated by newlines or commas.
#include "value.hpp"

#include <fmt/format.h>

#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdlib>

namespace kvship::replicate::detail {

namespace {

bool is_ident_start(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

bool is_ident_char(char c)
{
    return is_ident_start(c) || (c >= '0' && c <= '9') || c == '-' || c == '.';
}

bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

void append_utf8(std::string& out, std::uint32_t cp)
{
    if (cp < 0x80) {
        out.push_back(static_cast<char>(cp));
    } else if (cp < 0x800) {
        out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
        out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else if (cp < 0x10000) {
        out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
        out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
        out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else {
        out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
        out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
        out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
        out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    }
}

class parser
{
public:
    explicit parser(std::string_view text) : s_(text) {}

    prefixes::result<node, std::string> parse_file()
    {
        node root;
        root.type = node::kind::object;
        if (!parse_items(root, /*closing=*/'\0'))
            return error_;
        return root;
    }

private:
    std::string_view s_;
    std::size_t pos_ = 0;
    std::string error_;
    int depth_ = 0;  // objects, lists and block labels open around pos_

    // Entered one level deeper (an object, a list, a block label); false past max_nesting.
    bool descend()
    {
        if (++depth_ > max_nesting)
            return fail(fmt::format("nested more than {} levels deep", max_nesting));
        return true;
    }
    bool ascend(bool ok)
    {
        --depth_;
        return ok;
    }

    bool fail(std::string_view what)
    {
        std::size_t line = 1;
        std::size_t col = 1;
        for (std::size_t i = 0; i < pos_ && i < s_.size(); ++i) {
            if (s_[i] == '\n') {
                ++line;
                col = 1;
            } else {
                ++col;
            }
        }
        error_ = fmt::format("HCL parse error at {}:{}: {}", line, col, what);
        return false;
    }

    bool at_end() const { return pos_ >= s_.size(); }

    char peek() const { return at_end() ? '\0' : s_[pos_]; }

    // Skips blanks, newlines and comments.
    bool skip_space()
    {
        while (!at_end()) {
            char const c = s_[pos_];
            if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
                ++pos_;
            } else if (c == '#' || (c == '/' && pos_ + 1 < s_.size() && s_[pos_ + 1] == '/')) {
                while (!at_end() && s_[pos_] != '\n') ++pos_;
            } else if (c == '/' && pos_ + 1 < s_.size() && s_[pos_ + 1] == '*') {
                auto const end = s_.find("*/", pos_ + 2);
                if (end == std::string_view::npos)
                    return fail("comment not terminated");
                pos_ = end + 2;
            } else {
                break;
            }
        }
        return true;
    }

    // items until `closing` ('}' for a block, '\0' for the end of the file)
    bool parse_items(node& obj, char closing)
    {
        for (;;) {
            if (!skip_space())
                return false;
            if (at_end()) {
                if (closing != '\0')
                    return fail(fmt::format("expected '{}' before the end of the file", closing));
                return true;
            }
            if (peek() == closing) {
                ++pos_;
                return true;
            }
            if (peek() == ',') {
                ++pos_;
                continue;
            }
            std::string key;
            if (!parse_key(key))
                return false;
            node value;
            if (!parse_item_value(value))
                return false;
            obj.members.push_back(member{std::move(key), std::move(value)});
        }
    }

    bool parse_key(std::string& key)
    {
        if (peek() == '"') {
            node n;
            if (!parse_string(n))
                return false;
            key = std::move(n.text);
            return true;
        }
        if (!is_ident_start(peek()))
            return fail(fmt::format("unexpected character '{}', expected a key", peek()));
        std::size_t const start = pos_;
        while (!at_end() && is_ident_char(s_[pos_])) ++pos_;
        key = std::string(s_.substr(start, pos_ - start));
        return true;
    }

    // After a key: `= value`, `{ ... }`, or `"label" ... { ... }`.
    bool parse_item_value(node& value)
    {
        if (!skip_space())
            return false;
        if (peek() == '=' || peek() == ':') {
            ++pos_;
            if (!skip_space())
                return false;
            return parse_value(value);
        }
        if (peek() == '{')
            return parse_value(value);
        if (peek() == '"' || is_ident_start(peek())) {
            std::string label;
            if (!parse_key(label))
                return false;
            node inner;
            if (!descend() || !ascend(parse_item_value(inner)))
                return false;
            if (inner.type != node::kind::object)
                return fail("expected '{' after a block label");
            value.type = node::kind::object;
            value.members.push_back(member{std::move(label), std::move(inner)});
            return true;
        }
        return fail(fmt::format("expected '=' or '{{' after a key, got '{}'", peek()));
    }

    bool parse_value(node& value)
    {
        char const c = peek();
        if (c == '"')
            return parse_string(value);
        if (c == '<' && s_.substr(pos_).starts_with("<<"))
            return parse_heredoc(value);
        if (c == '{') {
            ++pos_;
            value.type = node::kind::object;
            return descend() && ascend(parse_items(value, '}'));
        }
        if (c == '[')
            return descend() && ascend(parse_list(value));
        if (c == '-' || c == '+' || is_digit(c) || c == '.')
            return parse_number(value);
        if (is_ident_start(c)) {
            std::size_t const start = pos_;
            while (!at_end() && is_ident_char(s_[pos_])) ++pos_;
            std::string_view const word = s_.substr(start, pos_ - start);
            if (word == "true" || word == "false") {
                value.type = node::kind::boolean;
                value.boolean = word == "true";
                return true;
            }
            pos_ = start;
            return fail(fmt::format("unknown value '{}' (strings must be quoted)", word));
        }
        if (at_end())
            return fail("expected a value before the end of the file");
        return fail(fmt::format("unexpected character '{}', expected a value", c));
    }

    bool parse_list(node& value)
    {
        ++pos_;  // [
        value.type = node::kind::list;
        for (;;) {
            if (!skip_space())
                return false;
            if (at_end())
                return fail("list not terminated");
            if (peek() == ']') {
                ++pos_;
                return true;
            }
            node item;
            if (!parse_value(item))
                return false;
            value.items.push_back(std::move(item));
            if (!skip_space())
                return false;
            if (at_end())
                return fail("list not terminated");
            if (peek() == ',') {
                ++pos_;
            } else if (peek() != ']') {
                return fail("expected ',' or ']' in a list");
            }
        }
    }

    bool parse_number(node& value)
    {
        std::size_t const start = pos_;
        if (peek() == '-' || peek() == '+')
            ++pos_;
        bool is_float = false;
        if (s_.substr(pos_).starts_with("0x") || s_.substr(pos_).starts_with("0X")) {
            pos_ += 2;
            std::size_t const digits = pos_;
            while (!at_end() && std::isxdigit(static_cast<unsigned char>(s_[pos_]))) ++pos_;
            std::int64_t v = 0;
            auto const r = std::from_chars(s_.data() + digits, s_.data() + pos_, v, 16);
            if (r.ec != std::errc{} || digits == pos_)
                return fail("invalid hexadecimal number");
            value.type = node::kind::integer;
            value.integer = s_[start] == '-' ? -v : v;
            return true;
        }
        while (!at_end() && is_digit(s_[pos_])) ++pos_;
        if (peek() == '.') {
            is_float = true;
            ++pos_;
            while (!at_end() && is_digit(s_[pos_])) ++pos_;
        }
        if (peek() == 'e' || peek() == 'E') {
            is_float = true;
            ++pos_;
            if (peek() == '-' || peek() == '+')
                ++pos_;
            while (!at_end() && is_digit(s_[pos_])) ++pos_;
        }
        std::string const text(s_.substr(start, pos_ - start));
        if (is_float) {
            char* end = nullptr;
            double const d = std::strtod(text.c_str(), &end);
            if (end != text.c_str() + text.size() || !std::isfinite(d))
                return fail(fmt::format("invalid number '{}'", text));
            value.type = node::kind::floating;
            value.floating = d;
            return true;
        }
        std::string_view digits = text;
        if (!digits.empty() && digits.front() == '+')
            digits.remove_prefix(1);
        std::int64_t v = 0;
        auto const r = std::from_chars(digits.data(), digits.data() + digits.size(), v, 10);
        if (r.ec != std::errc{} || r.ptr != digits.data() + digits.size())
            return fail(fmt::format("invalid number '{}'", text));
        value.type = node::kind::integer;
        value.integer = v;
        return true;
    }

    bool parse_hex(std::size_t count, std::uint32_t& cp)
    {
        if (pos_ + count > s_.size())
            return fail("incomplete unicode escape");
        auto const r = std::from_chars(s_.data() + pos_, s_.data() + pos_ + count, cp, 16);
        if (r.ec != std::errc{} || r.ptr != s_.data() + pos_ + count)
            return fail("invalid unicode escape");
        pos_ += count;
        return true;
    }

    bool parse_string(node& value)
    {
        ++pos_;  // "
        value.type = node::kind::string;
        std::string& out = value.text;
        int interpolation_depth = 0;  // inside ${ ... }, quotes do not end the string
        for (;;) {
            if (at_end())
                return fail("string not terminated");
            char const c = s_[pos_++];
            if (c == '\n')
                return fail("newline in a string");
            if (c == '"' && interpolation_depth == 0)
                return true;
            if (c == '$' && peek() == '{') {
                ++interpolation_depth;
                out += "${";
                ++pos_;
                continue;
            }
            if (c == '}' && interpolation_depth > 0) {
                --interpolation_depth;
                out.push_back(c);
                continue;
            }
            if (c != '\\') {
                out.push_back(c);
                continue;
            }
            if (at_end())
                return fail("string not terminated");
            char const e = s_[pos_++];
            switch (e) {
                case 'n':
                    out.push_back('\n');
                    break;
                case 't':
                    out.push_back('\t');
                    break;
                case 'r':
                    out.push_back('\r');
                    break;
                case 'a':
                    out.push_back('\a');
                    break;
                case 'b':
                    out.push_back('\b');
                    break;
                case 'f':
                    out.push_back('\f');
                    break;
                case 'v':
                    out.push_back('\v');
                    break;
                case '"':
                case '\\':
                case '/':
                    out.push_back(e);
                    break;
                case 'u':
                case 'U': {
                    std::uint32_t cp = 0;
                    if (!parse_hex(e == 'u' ? 4 : 8, cp))
                        return false;
                    append_utf8(out, cp);
                    break;
                }
                default:
                    --pos_;
                    return fail(fmt::format("unknown escape '\\{}' in a string", e));
            }
        }
    }

    bool parse_heredoc(node& value)
    {
        pos_ += 2;  // <<
        bool indented = false;
        if (peek() == '-') {
            indented = true;
            ++pos_;
        }
        std::size_t const anchor_start = pos_;
        while (!at_end() && is_ident_char(s_[pos_])) ++pos_;
        std::string_view const anchor = s_.substr(anchor_start, pos_ - anchor_start);
        if (anchor.empty())
            return fail("heredoc without an anchor");
        if (peek() == '\r')
            ++pos_;
        if (peek() != '\n')
            return fail("heredoc anchor must end its line");
        ++pos_;
        value.type = node::kind::string;
        for (;;) {
            if (at_end())
                return fail(fmt::format("heredoc not terminated by {}", anchor));
            auto const eol = s_.find('\n', pos_);
            std::string_view line = s_.substr(pos_, eol == std::string_view::npos ? eol : eol - pos_);
            pos_ = eol == std::string_view::npos ? s_.size() : eol + 1;
            std::string_view trimmed = line;
            if (!trimmed.empty() && trimmed.back() == '\r')
                trimmed.remove_suffix(1);
            std::string_view check = trimmed;
            while (!check.empty() && (check.front() == ' ' || check.front() == '\t')) check.remove_prefix(1);
            if (check == anchor && (indented || check.size() == trimmed.size()))
                return true;
            value.text += line;
            value.text += '\n';
        }
    }
};

}  // namespace

prefixes::result<node, std::string> parse_hcl(std::string_view text)
{
    return parser(text).parse_file();
}

}  // namespace kvship::replicate::detail
