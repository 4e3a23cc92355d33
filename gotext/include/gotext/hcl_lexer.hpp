// The lexical layer of HCL v1, the HashiCorp config language: blanks and comments, identifiers and
// quoted strings, over a cursor into the text. The readers built on it (consul-replicate's config
// files, the sim's ACL rules) keep their own grammar and error texts; errors here are values.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>

namespace kvship::gotext {

// Objects, lists and block labels nest at most this deep in an HCL (or JSON) reader: real files nest a
// few levels, and the bound keeps hostile input from overflowing the stack.
inline constexpr std::size_t hcl_max_nesting = 64;

enum class hcl_lex_error
{
    none,
    comment_not_terminated,     // a `/*` without `*/`; pos at the `/*`
    string_not_terminated,      // the end of the text inside a string; pos at the end
    newline_in_string,          // pos just past the newline
    unknown_escape,             // pos at the letter after the backslash
    incomplete_unicode_escape,  // \u or \U too close to the end; pos at the first hex digit
    invalid_unicode_escape,     // \u or \U with a non-hex digit; pos at the first hex digit
    bad_surrogate_pair,         // with surrogate_pairs: a high surrogate, `\u`, and no low surrogate
};

// What a quoted string may hold beyond JSON's escapes (\" \\ \/ \b \f \n \r \t \uXXXX).
struct hcl_string_rules
{
    bool interpolation = true;     // inside `${ ... }` a quote does not end the string (kept verbatim)
    bool go_escapes = true;        // also \a, \v and \UXXXXXXXX
    bool surrogate_pairs = false;  // \uD83D\uDE00 is one rune (JSON's rule) instead of two
};

// 1-based line and column (in bytes) of `pos` in `text`.
[[nodiscard]] std::pair<std::size_t, std::size_t> hcl_line_col(std::string_view text, std::size_t pos);

class hcl_lexer
{
public:
    explicit hcl_lexer(std::string_view text) : text_(text) {}

    [[nodiscard]] std::string_view text() const { return text_; }
    [[nodiscard]] std::size_t pos() const { return pos_; }
    [[nodiscard]] bool at_end() const { return pos_ >= text_.size(); }
    // The byte `ahead` bytes past pos; '\0' past the end.
    [[nodiscard]] char peek(std::size_t ahead = 0) const
    {
        return pos_ + ahead < text_.size() ? text_[pos_ + ahead] : '\0';
    }
    [[nodiscard]] bool starts_with(std::string_view s) const { return text_.substr(pos_).starts_with(s); }
    void advance(std::size_t n = 1) { pos_ += n; }
    void seek(std::size_t pos) { pos_ = pos; }

    // Letters and `_` start an identifier; digits, `-` and `.` may follow.
    [[nodiscard]] static bool is_ident_start(char c)
    {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
    }
    [[nodiscard]] static bool is_ident_char(char c)
    {
        return is_ident_start(c) || (c >= '0' && c <= '9') || c == '-' || c == '.';
    }

    // Skips blanks, newlines and `#`, `//` and `/* */` comments.
    [[nodiscard]] hcl_lex_error skip_space();
    // Consumes the run of identifier characters at pos (empty when there is none).
    std::string_view identifier();
    // At the opening quote: consumes the string and appends its value to `out`.
    [[nodiscard]] hcl_lex_error string_literal(std::string& out, hcl_string_rules rules);

private:
    // Reads `count` hex digits at pos into cp.
    [[nodiscard]] hcl_lex_error hex(std::size_t count, std::uint32_t& cp);

    std::string_view text_;
    std::size_t pos_ = 0;
};

}  // namespace kvship::gotext
