// Include/exclude filters on source keys (`-exclude vault/sys/expire`), matched as consul-replicate does.
#pragma once

#include <prefixes/result.hpp>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace kvship::prefixes {

// Excludes are consul-replicate's: global, and matched with a plain string-prefix test (Go
// strings.HasPrefix) against the FULL source key, e.g. `vault/sys/expire`, never `sys/expire`.
// Includes are a kvship extension with the same matching: when any are given, only source keys that
// start with one of them are managed. A key that is not selected is neither written nor deleted.
struct key_filter
{
    std::vector<std::string> excludes;
    std::vector<std::string> includes;

    bool operator==(const key_filter&) const = default;
};

// True when some exclude is a prefix of source_key. An empty exclude string matches every key
// (consul-replicate accepts one from a config block).
[[nodiscard]] bool is_excluded(const key_filter& filter, std::string_view source_key);

// The first exclude (in configuration order) that matches, for log lines such as
// `key "k" has prefix "e", excluding`.
[[nodiscard]] std::optional<std::string_view> matching_exclude(
    const key_filter& filter, std::string_view source_key
);

// True when there are no includes or some include is a prefix of source_key.
[[nodiscard]] bool is_included(const key_filter& filter, std::string_view source_key);

// is_included && !is_excluded: the key belongs to the replicated set.
[[nodiscard]] bool is_selected(const key_filter& filter, std::string_view source_key);

// The same tests on a key given in two parts, head + tail (e.g. source prefix + relative key).
[[nodiscard]] bool is_excluded(const key_filter& filter, std::string_view head, std::string_view tail);

[[nodiscard]] bool is_included(const key_filter& filter, std::string_view head, std::string_view tail);

[[nodiscard]] bool is_selected(const key_filter& filter, std::string_view head, std::string_view tail);

struct filter_error
{
    std::string message;

    bool operator==(const filter_error&) const = default;
};

// Validates one `-exclude` value as consul-replicate does: blank -> `missing exclude`; anything
// else is kept verbatim (no trimming, a leading `/` is kept).
[[nodiscard]] result<std::string, filter_error> parse_exclude(std::string_view text);

}  // namespace kvship::prefixes
