// JSON helpers shared by the API's codecs (codec.cpp, catalog_codec.cpp): Go-compatible string escaping,
// compact or pretty rendering, and a member reader with encoding/json's semantics and error texts. Internal.
#pragma once

#include "store/store.hpp"

#include <gotext/base64.hpp>
#include <gotext/go_string.hpp>

#include <fmt/format.h>
#include <rapidjson/document.h>
#include <rapidjson/error/error.h>
#include <rapidjson/prettywriter.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <cctype>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace kvship::kvsim::api::json_detail {

namespace rj = rapidjson;

// No kParseFullPrecisionFlag: RapidJSON 1.1's full-precision path reads a zero mantissa with a large
// exponent (`0e41`) as garbage (-1.9e230; Go reads 0) after __builtin_clzll(0) (found by test/fuzz).
inline constexpr unsigned parse_flags = rj::kParseIterativeFlag | rj::kParseStopWhenDoneFlag;

// ---------------------------------------------------------------- writing

// Go's encoding/json escapes <, >, &, U+2028 and U+2029 and replaces invalid UTF-8 with U+FFFD.
inline bool needs_go_escaping(std::string_view s)
{
    for (char const ch : s) {
        auto const c = static_cast<unsigned char>(ch);
        if (c >= 0x80 || c == '<' || c == '>' || c == '&') {
            return true;
        }
    }
    return false;
}

// True when `s` cannot be written between quotes as it is (anything JSON or Go would escape).
inline bool needs_escaping(std::string_view s)
{
    for (char const ch : s) {
        auto const c = static_cast<unsigned char>(ch);
        if (c < 0x20 || c >= 0x80 || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&') {
            return true;
        }
    }
    return false;
}

inline std::string go_json_literal(std::string_view s)
{
    std::string out;
    out.reserve(s.size() + 8);
    gotext::append_go_json_string(out, s);
    return out;
}

template <class W>
void put_string(W& w, std::string_view s)
{
    if (needs_go_escaping(s)) {
        auto const lit = go_json_literal(s);
        w.RawValue(lit.data(), lit.size(), rj::kStringType);
    } else {
        w.String(s.data(), static_cast<rj::SizeType>(s.size()));
    }
}

template <class W>
void put_key(W& w, std::string_view k)
{
    w.Key(k.data(), static_cast<rj::SizeType>(k.size()));
}

template <class W>
void put_base64(W& w, std::string_view bytes)
{
    std::string lit;
    lit.reserve(gotext::base64_size(bytes.size()) + 2);
    lit.push_back('"');
    lit += gotext::base64_encode(bytes);
    lit.push_back('"');
    w.RawValue(lit.data(), lit.size(), rj::kStringType);
}

// Runs `fn(writer)` with a compact or a pretty (4 spaces, trailing newline: Go's MarshalIndent) writer.
template <class Fn>
inline std::string render(bool pretty, Fn const& fn)
{
    rj::StringBuffer buf;
    if (pretty) {
        rj::PrettyWriter<rj::StringBuffer> w(buf);
        w.SetIndent(' ', 4);
        fn(w);
        std::string out(buf.GetString(), buf.GetSize());
        out.push_back('\n');
        return out;
    }
    rj::Writer<rj::StringBuffer> w(buf);
    fn(w);
    return {buf.GetString(), buf.GetSize()};
}

// ---------------------------------------------------------------- reading

inline bool iequals(std::string_view a, std::string_view b)
{
    if (a.size() != b.size()) {
        return false;
    }
    for (std::size_t i = 0; i < a.size(); ++i) {
        auto const x = static_cast<unsigned char>(a[i]);
        auto const y = static_cast<unsigned char>(b[i]);
        if (std::tolower(x) != std::tolower(y)) {
            return false;
        }
    }
    return true;
}

inline std::string_view name_of(rj::Value const& m)
{
    return {m.GetString(), m.GetStringLength()};
}

inline std::string_view string_of(rj::Value const& v)
{
    return {v.GetString(), v.GetStringLength()};
}

// How Go's decoder names a JSON value in "cannot unmarshal <kind> into ...".
inline std::string kind_of(rj::Value const& v)
{
    if (v.IsString()) {
        return "string";
    }
    if (v.IsBool()) {
        return "bool";
    }
    if (v.IsArray()) {
        return "array";
    }
    if (v.IsObject()) {
        return "object";
    }
    if (v.IsUint64()) {
        return fmt::format("number {}", v.GetUint64());
    }
    if (v.IsInt64()) {
        return fmt::format("number {}", v.GetInt64());
    }
    if (v.IsNumber()) {
        return fmt::format("number {}", v.GetDouble());
    }
    return "null";
}

inline std::string type_error(rj::Value const& v, std::string_view where, std::string_view go_type)
{
    if (where.empty()) {
        return fmt::format("json: cannot unmarshal {} into Go value of type {}", kind_of(v), go_type);
    }
    return fmt::format(
        "json: cannot unmarshal {} into Go struct field {} of type {}", kind_of(v), where, go_type
    );
}

// Go's json syntax errors, approximately: the texts clients see after "Failed to parse body: ".
inline std::string syntax_error(rj::Document const& doc, std::string_view body)
{
    auto const code = doc.GetParseError();
    std::size_t const at = doc.GetErrorOffset();
    if (code == rj::kParseErrorDocumentEmpty) {
        return "EOF";
    }
    if (at >= body.size()) {
        return "unexpected EOF";
    }
    auto const c = static_cast<unsigned char>(body[at]);
    std::string const shown =
        c >= 0x20 && c < 0x7F ? fmt::format("'{}'", static_cast<char>(c)) : fmt::format("'\\x{:02x}'", c);
    std::string_view where;
    switch (code) {
        case rj::kParseErrorObjectMissName:
            where = "looking for beginning of object key string";
            break;
        case rj::kParseErrorObjectMissColon:
            where = "after object key";
            break;
        case rj::kParseErrorObjectMissCommaOrCurlyBracket:
            where = "after object key:value pair";
            break;
        case rj::kParseErrorArrayMissCommaOrSquareBracket:
            where = "after array element";
            break;
        case rj::kParseErrorStringEscapeInvalid:
        case rj::kParseErrorStringUnicodeEscapeInvalidHex:
        case rj::kParseErrorStringUnicodeSurrogateInvalid:
            where = "in string escape code";
            break;
        case rj::kParseErrorStringInvalidEncoding:
        case rj::kParseErrorStringMissQuotationMark:
            where = "in string literal";
            break;
        case rj::kParseErrorNumberTooBig:
        case rj::kParseErrorNumberMissFraction:
        case rj::kParseErrorNumberMissExponent:
            where = "in numeric literal";
            break;
        default:
            where = "looking for beginning of value";
            break;
    }
    return fmt::format("invalid character {} {}", shown, where);
}

inline std::optional<rj::Document> parse_document(std::string_view body, std::string& error)
{
    rj::Document doc;
    doc.Parse<parse_flags>(body.data(), body.size());
    if (doc.HasParseError()) {
        error = syntax_error(doc, body);
        return std::nullopt;
    }
    return doc;
}

// Go's "illegal base64 data at input byte N": the first offending byte, roughly.
inline std::string base64_error(std::string_view text)
{
    constexpr std::string_view alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::size_t at = text.size() - text.size() % 4;
    for (std::size_t i = 0; i < text.size(); ++i) {
        char const c = text[i];
        if (c == '=') {
            continue;
        }
        if (alphabet.find(c) == std::string_view::npos || (i > 0 && text[i - 1] == '=')) {
            at = i;
            break;
        }
    }
    return fmt::format("illegal base64 data at input byte {}", at);
}

// One member-wise pass with Go's semantics: case-insensitive names, first error wins, unknown names
// reported when `strict`.
struct field_reader
{
    std::string error;

    void fail(std::string e)
    {
        if (error.empty()) {
            error = std::move(e);
        }
    }

    void read_string(rj::Value const& v, std::string& out, std::string_view where)
    {
        if (v.IsNull()) {
            return;
        }
        if (!v.IsString()) {
            fail(type_error(v, where, "string"));
            return;
        }
        out.assign(v.GetString(), v.GetStringLength());
    }

    void read_uint64(rj::Value const& v, std::uint64_t& out, std::string_view where)
    {
        if (v.IsNull()) {
            return;
        }
        if (!v.IsUint64()) {
            fail(type_error(v, where, "uint64"));
            return;
        }
        out = v.GetUint64();
    }

    void read_bool(rj::Value const& v, bool& out, std::string_view where)
    {
        if (v.IsNull()) {
            return;
        }
        if (!v.IsBool()) {
            fail(type_error(v, where, "bool"));
            return;
        }
        out = v.GetBool();
    }

    // nullopt for JSON null (Go's nil slice).
    void read_strings(
        rj::Value const& v, std::optional<std::vector<std::string>>& out, std::string_view where
    )
    {
        if (v.IsNull()) {
            out = std::nullopt;
            return;
        }
        if (!v.IsArray()) {
            fail(type_error(v, where, "[]string"));
            return;
        }
        std::vector<std::string> list;
        for (auto const& item : v.GetArray()) {
            if (!item.IsString()) {
                fail(type_error(item, where, "string"));
                continue;
            }
            list.emplace_back(item.GetString(), item.GetStringLength());
        }
        out = std::move(list);
    }
};

}  // namespace kvship::kvsim::api::json_detail
