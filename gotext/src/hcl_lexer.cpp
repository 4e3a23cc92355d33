#include <gotext/hcl_lexer.hpp>

namespace kvship::gotext {

namespace {

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

}  // namespace

std::pair<std::size_t, std::size_t> hcl_line_col(std::string_view text, std::size_t pos)
{
    std::size_t line = 1;
    std::size_t col = 1;
    for (std::size_t i = 0; i < pos && i < text.size(); ++i) {
        if (text[i] == '\n') {
            ++line;
            col = 1;
        } else {
            ++col;
        }
    }
    return {line, col};
}

hcl_lex_error hcl_lexer::skip_space()
{
    while (!at_end()) {
        char const c = text_[pos_];
        if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
            ++pos_;
        } else if (c == '#' || (c == '/' && peek(1) == '/')) {
            while (!at_end() && text_[pos_] != '\n') ++pos_;
        } else if (c == '/' && peek(1) == '*') {
            auto const end = text_.find("*/", pos_ + 2);
            if (end == std::string_view::npos)
                return hcl_lex_error::comment_not_terminated;
            pos_ = end + 2;
        } else {
            break;
        }
    }
    return hcl_lex_error::none;
}

std::string_view hcl_lexer::identifier()
{
    std::size_t const start = pos_;
    while (!at_end() && is_ident_char(text_[pos_])) ++pos_;
    return text_.substr(start, pos_ - start);
}

hcl_lex_error hcl_lexer::hex(std::size_t count, std::uint32_t& cp)
{
    if (pos_ + count > text_.size())
        return hcl_lex_error::incomplete_unicode_escape;
    std::uint32_t v = 0;
    for (std::size_t i = 0; i < count; ++i) {
        char const h = text_[pos_ + i];
        v <<= 4;
        if (h >= '0' && h <= '9') {
            v |= static_cast<std::uint32_t>(h - '0');
        } else if (h >= 'a' && h <= 'f') {
            v |= static_cast<std::uint32_t>(h - 'a' + 10);
        } else if (h >= 'A' && h <= 'F') {
            v |= static_cast<std::uint32_t>(h - 'A' + 10);
        } else {
            return hcl_lex_error::invalid_unicode_escape;
        }
    }
    pos_ += count;
    cp = v;
    return hcl_lex_error::none;
}

hcl_lex_error hcl_lexer::string_literal(std::string& out, hcl_string_rules rules)
{
    ++pos_;  // "
    int interpolation_depth = 0;  // inside ${ ... }, quotes do not end the string
    for (;;) {
        if (at_end())
            return hcl_lex_error::string_not_terminated;
        char const c = text_[pos_++];
        if (c == '\n')
            return hcl_lex_error::newline_in_string;
        if (c == '"' && interpolation_depth == 0)
            return hcl_lex_error::none;
        if (rules.interpolation && c == '$' && peek() == '{') {
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
            return hcl_lex_error::string_not_terminated;
        char const e = text_[pos_++];
        switch (e) {
            case 'n':
                out.push_back('\n');
                continue;
            case 't':
                out.push_back('\t');
                continue;
            case 'r':
                out.push_back('\r');
                continue;
            case 'b':
                out.push_back('\b');
                continue;
            case 'f':
                out.push_back('\f');
                continue;
            case '"':
            case '\\':
            case '/':
                out.push_back(e);
                continue;
            case 'u': {
                std::uint32_t cp = 0;
                if (auto const err = hex(4, cp); err != hcl_lex_error::none)
                    return err;
                if (rules.surrogate_pairs && cp >= 0xD800 && cp < 0xDC00 && peek() == '\\' && peek(1) == 'u') {
                    pos_ += 2;
                    std::uint32_t lo = 0;
                    if (hex(4, lo) != hcl_lex_error::none || lo < 0xDC00 || lo > 0xDFFF)
                        return hcl_lex_error::bad_surrogate_pair;
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                }
                append_utf8(out, cp);
                continue;
            }
            default:
                break;
        }
        if (rules.go_escapes) {
            switch (e) {
                case 'a':
                    out.push_back('\a');
                    continue;
                case 'v':
                    out.push_back('\v');
                    continue;
                case 'U': {
                    std::uint32_t cp = 0;
                    if (auto const err = hex(8, cp); err != hcl_lex_error::none)
                        return err;
                    append_utf8(out, cp);
                    continue;
                }
                default:
                    break;
            }
        }
        --pos_;
        return hcl_lex_error::unknown_escape;
    }
}

}  // namespace kvship::gotext
