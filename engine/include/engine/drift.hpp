// The drift report (`consul-replicate -diff`): what differs between a pair's source and destination,
// decided purely with the same mapping, filters and protected keys as replication (make_plan).
#pragma once

#include <engine/types.hpp>
#include <prefixes/rule.hpp>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace kvship::engine {

enum class drift_kind
{
    only_in_source,       // a selected source key whose destination key is missing
    only_in_destination,  // a managed destination key no selected source key maps to
    different,            // both sides have the key; value and/or flags differ
};

[[nodiscard]] std::string_view to_string(drift_kind kind);

// One difference. Values are never carried (they may be secrets): only their sizes.
struct drift_item
{
    drift_kind kind = drift_kind::only_in_source;
    std::string source_key;
    std::string destination_key;
    bool value_differs = false;  // different only
    bool flags_differ = false;   // different only
    std::uint64_t source_flags = 0;
    std::uint64_t destination_flags = 0;
    std::size_t source_bytes = 0;
    std::size_t destination_bytes = 0;

    bool operator==(const drift_item&) const = default;
};

struct drift_totals
{
    std::size_t only_in_source = 0;
    std::size_t only_in_destination = 0;
    std::size_t different = 0;
    std::size_t source_keys = 0;       // selected source keys compared
    std::size_t destination_keys = 0;  // managed destination keys compared
    std::size_t excluded = 0;          // source keys left out by the filters

    [[nodiscard]] std::size_t differences() const { return only_in_source + only_in_destination + different; }

    bool operator==(const drift_totals&) const = default;
};

// Compares one pair's source, fed in listing order (Consul's: sorted by key) chunk by chunk, with
// the pair's whole destination listing. Each chunk is planned with make_plan against the slice of
// the destination its keys cover; the plan's puts are the keys missing or different at the
// destination, its deletes the keys only there. So excluded keys, checkpoints (the status dir) and
// other pairs' nested destinations are left out exactly as replication leaves them alone. Memory:
// the destination listing plus one chunk.
class drift_scan
{
public:
    // `destination`: a `?recurse` listing of rule.spec.destination (any order; sorted here).
    drift_scan(prefixes::rule rule, std::vector<kv_entry> destination);

    // The differences up to the last source key of `chunk`, sorted by destination key. An error
    // (nothing returned) when a source key is not after every key fed before: a listing out of key
    // order cannot be compared in one pass.
    [[nodiscard]] result<std::vector<drift_item>, std::string> feed(std::span<const kv_entry> chunk);

    // After the last chunk: the destination keys past the last source key (only in destination).
    [[nodiscard]] std::vector<drift_item> finish();

    [[nodiscard]] const drift_totals& totals() const { return totals_; }

    [[nodiscard]] const prefixes::rule& rule() const { return rule_; }

private:
    std::vector<drift_item> compare(std::span<const kv_entry> src, std::size_t dst_end);

    prefixes::rule rule_;
    std::vector<kv_entry> dst_;
    std::size_t next_dst_ = 0;  // first destination entry not compared yet
    std::optional<std::string> last_source_;
    drift_totals totals_;
};

// Report lines. `pair` names the pair ("src@dc:dest").
//   text: `<pair>: only in source: <src key> (missing at <dest key>)`,
//         `<pair>: only in destination: <dest key>`,
//         `<pair>: value differs: <dest key> (source N bytes, destination M bytes)`,
//         `<pair>: flags differ: <dest key> (source F, destination G)`,
//         `<pair>: value and flags differ: <dest key> (...)`
//   json: one object per line, {"pair","kind","source_key","destination_key", ...}
[[nodiscard]] std::string format_drift_text(std::string_view pair, const drift_item& item);
[[nodiscard]] std::string format_drift_json(std::string_view pair, const drift_item& item);

// The pair's closing line: `<pair>: no differences (N source keys, M destination keys compared)` or
// `<pair>: K differences (a only in source, b only in destination, c different; N source keys, ...)`;
// json: {"pair":..,"kind":"summary","differences":K,...}.
[[nodiscard]] std::string format_drift_summary_text(std::string_view pair, const drift_totals& t);
[[nodiscard]] std::string format_drift_summary_json(std::string_view pair, const drift_totals& t);

// A JSON string literal (quotes included) for any bytes: control characters, quote and backslash
// escaped, bytes that are not UTF-8 as \u00XX of the byte (keys are UTF-8 in practice).
[[nodiscard]] std::string json_quote(std::string_view s);

}  // namespace kvship::engine
