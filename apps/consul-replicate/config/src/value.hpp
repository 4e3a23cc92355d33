// The document tree both config readers (JSON, HCL) produce and the decoder walks. Private.
#pragma once

#include <gotext/hcl_lexer.hpp>
#include <prefixes/result.hpp>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace kvship::replicate::detail {

struct member;

// One value. Objects keep their members in document order, duplicates included (HCL repeats a
// block key once per block; the decoder decides what a repeat means).
struct node
{
    enum class kind
    {
        null,
        boolean,
        integer,
        floating,
        string,
        list,
        object,
    };

    kind type = kind::null;
    bool boolean = false;
    std::int64_t integer = 0;
    double floating = 0;
    std::string text;
    std::vector<node> items;
    std::vector<member> members;
};

struct member
{
    std::string key;
    node value;
};

// How deep objects, lists and block labels may nest in a config file. A real one nests four or five
// levels; a bound keeps a hostile file from overflowing the stack (of the readers, of the decoder
// walking the tree, of the tree's destructor) and gets a clear error instead.
inline constexpr int max_nesting = static_cast<int>(gotext::hcl_max_nesting);

// Reads JSON (RFC 8259) into a node; on failure a message with the byte offset.
[[nodiscard]] prefixes::result<node, std::string> parse_json(std::string_view text);

// Reads the HCL v1 subset described in config_file.hpp; on failure a message with line:column.
[[nodiscard]] prefixes::result<node, std::string> parse_hcl(std::string_view text);

}  // namespace kvship::replicate::detail
