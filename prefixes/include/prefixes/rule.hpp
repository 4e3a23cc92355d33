// A pair's complete replication rule (spec + filters + protected destination keys), as the engine uses it.
#pragma once

#include <prefixes/filter.hpp>
#include <prefixes/prefix_spec.hpp>

#include <string>
#include <string_view>
#include <vector>

namespace kvship::prefixes {

// Everything the pure engine needs to know about one pair.
//  * status_key: this pair's checkpoint key (status_key()); the plan never writes or deletes it.
//  * status_prefix: the status dir plus `/`; every pair's checkpoint lives there, so no pair writes
//    or deletes under it (consul-replicate deleted other pairs' checkpoints when a destination
//    contained the status dir).
//  * protected_prefixes: destinations of other pairs nested inside this one (`app` vs `app2`,
//    compat §3.6, where consul-replicate lost data): the more specific pair owns those keys, so
//    this pair neither writes nor deletes them.
struct rule
{
    prefix_spec spec;
    key_filter filter;
    std::string status_key;
    std::string status_prefix;
    std::vector<std::string> protected_prefixes;

    bool operator==(const rule&) const = default;
};

// The rule for one pair on its own: status key and status prefix from status_dir, nothing nested.
[[nodiscard]] rule make_rule(prefix_spec spec, key_filter filter, std::string_view status_dir);

// Rules for all configured pairs (same order). On top of make_rule, each pair protects every other
// pair's destination that starts with its own and is longer, so the more specific pair owns it.
[[nodiscard]] std::vector<rule> make_rules(
    const std::vector<prefix_spec>& specs, const key_filter& filter, std::string_view status_dir
);

// True when destination_key is a checkpoint: the status key or anything under status_prefix.
[[nodiscard]] bool is_status_key(const rule& r, std::string_view destination_key);

// True when this pair must neither write nor delete destination_key: a checkpoint, or a key under
// one of protected_prefixes.
[[nodiscard]] bool is_protected(const rule& r, std::string_view destination_key);

// The same tests on a destination key given in two parts, head + tail.
[[nodiscard]] bool is_status_key(const rule& r, std::string_view head, std::string_view tail);

[[nodiscard]] bool is_protected(const rule& r, std::string_view head, std::string_view tail);

// Configuration problems between pairs that consul-replicate silently accepted, one message each,
// e.g. two pairs writing the same destination prefix (they would delete each other's keys).
// Empty when the set is consistent.
[[nodiscard]] std::vector<std::string> check_pairs(const std::vector<prefix_spec>& specs);

}  // namespace kvship::prefixes
