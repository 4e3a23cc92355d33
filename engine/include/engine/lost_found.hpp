// Lost+found: destination keys a gated round would delete or overwrite although they never reached
// the DC now followed (writes acknowledged in this DC while it was the primary) are saved first,
// under a prefix outside every replicated one, in txns committed before the ops that destroy them.
#pragma once

#include <engine/batch.hpp>
#include <engine/plan.hpp>
#include <engine/types.hpp>
#include <prefixes/rule.hpp>

#include <cstdint>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace kvship::engine {

inline constexpr std::string_view default_lost_found_prefix = "service/kvship/lost+found/";

// Name of the per-turn record under `<prefix><turn>/`.
inline constexpr std::string_view turn_record_name = ".turn";

// What a gated pair knows about the DCs (set by the driver before the pair starts).
struct lost_found_config
{
    std::string prefix;     // ends in '/', outside every replicated destination prefix
    std::string local_dc;   // this DC: the old primary, whose unreplicated writes are saved
    std::string source_dc;  // the DC followed now: the new primary
    // The source DC's own status record at this pair's status key (read with ?dc=<source_dc>):
    // nullopt when missing or unreadable, `source_record_note` then says why (for the log).
    std::optional<checkpoint> source_record;
    std::string source_record_note;
    std::string time;  // UTC time text for the .turn record (the engine has no clock)

    bool operator==(const lost_found_config&) const = default;
};

// Which keys are saved: every managed destination key that a round deletes or overwrites and whose
// ModifyIndex is above `index`.
struct lost_found_threshold
{
    std::uint64_t index = 0;
    bool precise = false;                   // the source's record bounded it (rule "source_checkpoint")
    std::uint64_t source_replicated = 0;    // L: the source had mirrored this DC up to here (precise)
    std::uint64_t local_checkpoint = 0;     // C: this DC last finished a round from the source here
    std::string rule;                       // "source_checkpoint" or "all_unreplicated"
    std::string note;                       // why, for the log

    bool operator==(const lost_found_threshold&) const = default;
};

// The rule. Two bounds, the higher wins; keys at or below either one are not lost:
//  * C: the ModifyIndex of this DC's own status record (`status_modify_index`) when that record
//    names `cfg.source_dc` as SourceDatacenter: the last round from the source committed there, data
//    and checkpoint in one txn, so every managed key at or below C is a copy of the source's data.
//    Otherwise 0 (absent, a record of consul-replicate, or another direction).
//  * L: the source's own record, when it names `cfg.local_dc` as SourceDatacenter and carries a
//    MirroredIndex: the source mirrored this DC's prefix up to L (this DC's index space), so keys
//    at or below L reached it and its later deletes or overwrites of them are legitimate. Ignored
//    (rule all_unreplicated) when missing, unreadable, about another DC, or above `dst_index` (this
//    DC's index space was reset: the bound cannot be trusted).
[[nodiscard]] lost_found_threshold decide_threshold(
    const lost_found_config& cfg,
    const std::optional<checkpoint>& dst_prev,
    std::uint64_t status_modify_index,
    std::uint64_t dst_index
);

// The turn id: "<status ModifyIndex>-<local>-to-<source>". It is the same for every attempt of one
// turn (the status record moves only when the turn's first round has committed), so a restarted
// process writes the same entries again.
[[nodiscard]] std::string lost_found_turn_id(const lost_found_config& cfg, std::uint64_t status_modify_index);

// `<prefix><turn>/<original key>`: where the original key's value and flags are saved.
[[nodiscard]] std::string lost_found_key(std::string_view prefix, std::string_view turn, std::string_view original);

// The original key of a lost+found entry key of `turn`; nullopt when `key` is not one (the record).
[[nodiscard]] std::optional<std::string> original_of(
    std::string_view prefix, std::string_view turn, std::string_view key
);

// True when some managed destination key (under rule.spec.destination, not protected) has a
// ModifyIndex above `threshold`: only then can a round lose anything. `dst` in any order.
[[nodiscard]] bool has_unreplicated(
    std::span<const kv_entry> dst, const prefixes::rule& rule, std::uint64_t threshold
);

// The per-turn record (its JSON is the driver's codec).
struct turn_record
{
    std::string turn;
    std::string old_primary;
    std::string new_primary;
    std::string time;
    std::string rule;
    std::optional<std::uint64_t> source_replicated;  // L when the rule used it
    std::uint64_t local_checkpoint = 0;               // C
    std::size_t count = 0;                            // entries saved by the attempt that wrote it

    bool operator==(const turn_record&) const = default;
};

// The saves of one round: a `set` of lost_found_key(...) with the destination entry's value and
// flags for every key that `p` deletes or overwrites (a put of a key `dst` holds) whose ModifyIndex
// is above `threshold`, except the originals in `already_saved`. Sorted by original key.
// `dst` sorted by key (unique keys).
struct lost_found_save
{
    std::string original_key;
    std::uint64_t modify_index = 0;
    txn_op op;

    bool operator==(const lost_found_save&) const = default;
};

[[nodiscard]] std::vector<lost_found_save> lost_found_saves(
    const plan& p,
    std::span<const kv_entry> dst,
    std::uint64_t threshold,
    std::string_view prefix,
    std::string_view turn,
    const std::set<std::string>& already_saved = {}
);

// Puts the saves (and `record_op`, the .turn record, first) in batches of their own in front of
// `round`: the driver sends batches in order and a batch only after the previous one committed
// whole, so no key is deleted or overwritten before its copy is committed, however the driver cuts
// batches into txns. Nothing changes when `saves` is empty. Errors as make_batches (a value no txn
// can carry); then nothing of the round may be applied.
[[nodiscard]] result<std::vector<batch>, batch_error> prepend_saves(
    std::vector<batch> round,
    const std::vector<lost_found_save>& saves,
    std::optional<txn_op> record_op,
    const batch_limits& limits
);

}  // namespace kvship::engine
