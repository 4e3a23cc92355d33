// A small HCL v1 reader: enough for consul-replicate config files. Supports `key = value`,
// `key { ... }`, `key = { ... }`, `key "label" { ... }` (read as key = { label = { ... } }),
// strings with escapes, heredocs (<<EOF; <<-EOF allows an indented end marker but keeps the
// body's indentation), integers, floats, booleans, lists, and `#`,
// `//` and `/* */` comments. Items may be separated by newlines or commas. The lexing (blanks,
// comments, identifiers, strings) is gotext's HCL lexer, shared with the sim's ACL rules.
#include "value.hpp"

#include <gotext/hcl_lexer.hpp>

#include <fmt/format.h>

#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdlib>

namespace kvship::replicate::detail {

namespace {

bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

class parser
{
public:
    explicit parser(std::string_view text) : s_(text), lx_(text) {}

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
    gotext::hcl_lexer lx_;
    std::string error_;
    int depth_ = 0;  // objects, lists and block labels open around the lexer's position

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
        auto const [line, col] = gotext::hcl_line_col(s_, lx_.pos());
        error_ = fmt::format("HCL parse error at {}:{}: {}", line, col, what);
        return false;
    }

    bool at_end() const { return lx_.at_end(); }

    char peek() const { return lx_.peek(); }

    // Skips blanks, newlines and comments.
    bool skip_space()
    {
        if (lx_.skip_space() != gotext::hcl_lex_error::none)
            return fail("comment not terminated");
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
                lx_.advance();
                return true;
            }
            if (peek() == ',') {
                lx_.advance();
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
        if (!gotext::hcl_lexer::is_ident_start(peek()))
            return fail(fmt::format("unexpected character '{}', expected a key", peek()));
        key = std::string(lx_.identifier());
        return true;
    }

    // After a key: `= value`, `{ ... }`, or `"label" ... { ... }`.
    bool parse_item_value(node& value)
    {
        if (!skip_space())
            return false;
        if (peek() == '=' || peek() == ':') {
            lx_.advance();
            if (!skip_space())
                return false;
            return parse_value(value);
        }
        if (peek() == '{')
            return parse_value(value);
        if (peek() == '"' || gotext::hcl_lexer::is_ident_start(peek())) {
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
        if (c == '<' && lx_.starts_with("<<"))
            return parse_heredoc(value);
        if (c == '{') {
            lx_.advance();
            value.type = node::kind::object;
            return descend() && ascend(parse_items(value, '}'));
        }
        if (c == '[')
            return descend() && ascend(parse_list(value));
        if (c == '-' || c == '+' || is_digit(c) || c == '.')
            return parse_number(value);
        if (gotext::hcl_lexer::is_ident_start(c)) {
            std::size_t const start = lx_.pos();
            std::string_view const word = lx_.identifier();
            if (word == "true" || word == "false") {
                value.type = node::kind::boolean;
                value.boolean = word == "true";
                return true;
            }
            lx_.seek(start);
            return fail(fmt::format("unknown value '{}' (strings must be quoted)", word));
        }
        if (at_end())
            return fail("expected a value before the end of the file");
        return fail(fmt::format("unexpected character '{}', expected a value", c));
    }

    bool parse_list(node& value)
    {
        lx_.advance();  // [
        value.type = node::kind::list;
        for (;;) {
            if (!skip_space())
                return false;
            if (at_end())
                return fail("list not terminated");
            if (peek() == ']') {
                lx_.advance();
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
                lx_.advance();
            } else if (peek() != ']') {
                return fail("expected ',' or ']' in a list");
            }
        }
    }

    bool parse_number(node& value)
    {
        std::size_t const start = lx_.pos();
        if (peek() == '-' || peek() == '+')
            lx_.advance();
        bool is_float = false;
        if (lx_.starts_with("0x") || lx_.starts_with("0X")) {
            lx_.advance(2);
            std::size_t const digits = lx_.pos();
            while (!at_end() && std::isxdigit(static_cast<unsigned char>(lx_.peek()))) lx_.advance();
            std::int64_t v = 0;
            auto const r = std::from_chars(s_.data() + digits, s_.data() + lx_.pos(), v, 16);
            if (r.ec != std::errc{} || digits == lx_.pos())
                return fail("invalid hexadecimal number");
            value.type = node::kind::integer;
            value.integer = s_[start] == '-' ? -v : v;
            return true;
        }
        while (!at_end() && is_digit(lx_.peek())) lx_.advance();
        if (peek() == '.') {
            is_float = true;
            lx_.advance();
            while (!at_end() && is_digit(lx_.peek())) lx_.advance();
        }
        if (peek() == 'e' || peek() == 'E') {
            is_float = true;
            lx_.advance();
            if (peek() == '-' || peek() == '+')
                lx_.advance();
            while (!at_end() && is_digit(lx_.peek())) lx_.advance();
        }
        std::string const text(s_.substr(start, lx_.pos() - start));
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

    bool parse_string(node& value)
    {
        value.type = node::kind::string;
        switch (lx_.string_literal(value.text, {})) {
            case gotext::hcl_lex_error::none:
                return true;
            case gotext::hcl_lex_error::newline_in_string:
                return fail("newline in a string");
            case gotext::hcl_lex_error::incomplete_unicode_escape:
                return fail("incomplete unicode escape");
            case gotext::hcl_lex_error::invalid_unicode_escape:
                return fail("invalid unicode escape");
            case gotext::hcl_lex_error::unknown_escape:
                return fail(fmt::format("unknown escape '\\{}' in a string", peek()));
            default:
                return fail("string not terminated");
        }
    }

    bool parse_heredoc(node& value)
    {
        lx_.advance(2);  // <<
        bool indented = false;
        if (peek() == '-') {
            indented = true;
            lx_.advance();
        }
        std::string_view const anchor = lx_.identifier();
        if (anchor.empty())
            return fail("heredoc without an anchor");
        if (peek() == '\r')
            lx_.advance();
        if (peek() != '\n')
            return fail("heredoc anchor must end its line");
        lx_.advance();
        value.type = node::kind::string;
        for (;;) {
            if (at_end())
                return fail(fmt::format("heredoc not terminated by {}", anchor));
            auto const eol = s_.find('\n', lx_.pos());
            std::string_view line = s_.substr(lx_.pos(), eol == std::string_view::npos ? eol : eol - lx_.pos());
            lx_.seek(eol == std::string_view::npos ? s_.size() : eol + 1);
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
