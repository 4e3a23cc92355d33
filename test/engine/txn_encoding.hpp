// A reference /v1/txn body encoder for tests only (the product encoder lives in transport): Go-style
// JSON string escaping and standard base64, to check that batch size estimates are upper bounds.
#pragma once

#include <engine/batch.hpp>

#include <fmt/format.h>

#include <span>
#include <string>
#include <string_view>

namespace kvship::engine::test {

inline std::string base64(std::string_view in)
{
    static constexpr char table[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string out;
    std::size_t i = 0;
    for (; i + 3 <= in.size(); i += 3) {
        unsigned const n = (static_cast<unsigned char>(in[i]) << 16U) |
                           (static_cast<unsigned char>(in[i + 1]) << 8U) |
                           static_cast<unsigned char>(in[i + 2]);
        out += table[(n >> 18U) & 63U];
        out += table[(n >> 12U) & 63U];
        out += table[(n >> 6U) & 63U];
        out += table[n & 63U];
    }
    if (std::size_t const rest = in.size() - i; rest > 0) {
        unsigned n = static_cast<unsigned>(static_cast<unsigned char>(in[i])) << 16U;
        if (rest == 2)
            n |= static_cast<unsigned>(static_cast<unsigned char>(in[i + 1])) << 8U;
        out += table[(n >> 18U) & 63U];
        out += table[(n >> 12U) & 63U];
        out += rest == 2 ? table[(n >> 6U) & 63U] : '=';
        out += '=';
    }
    return out;
}

// Go encoding/json string escaping; every byte >= 0x80 is treated as invalid (-> \ufffd, 3 bytes),
// the longest thing Go can emit for it.
inline std::string json_string(std::string_view in)
{
    std::string out = "\"";
    for (char const ch : in) {
        auto const c = static_cast<unsigned char>(ch);
        if (c == '"' || c == '\\') {
            out += '\\';
            out += ch;
        } else if (c == '\n') {
            out += "\\n";
        } else if (c == '\r') {
            out += "\\r";
        } else if (c == '\t') {
            out += "\\t";
        } else if (c < 0x20 || c == '<' || c == '>' || c == '&') {
            out += fmt::format("\\u{:04x}", c);
        } else if (c >= 0x80) {
            out += "\xef\xbf\xbd";
        } else {
            out += ch;
        }
    }
    out += '"';
    return out;
}

inline std::string encode_body(std::span<const txn_op> ops)
{
    std::string out = "[";
    for (std::size_t i = 0; i < ops.size(); ++i) {
        auto const& op = ops[i];
        if (i > 0)
            out += ',';
        out += fmt::format(
            R"({{"KV":{{"Verb":"{}","Key":{},"Value":{},"Flags":{}}}}})",
            to_string(op.verb),
            json_string(op.key),
            json_string(base64(op.value)),
            op.flags
        );
    }
    out += ']';
    return out;
}

}  // namespace kvship::engine::test
