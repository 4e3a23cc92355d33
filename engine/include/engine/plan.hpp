// The replication plan for one pair: which destination keys to write and delete, decided purely.
#pragma once

#include <engine/compact.hpp>
#include <engine/types.hpp>
#include <prefixes/rule.hpp>

#include <fmt/format.h>

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace kvship::engine {

// Write `value`/`flags` at destination `key`. `source_index` is the source entry's ModifyIndex,
// used to keep writes of one source transaction in one destination transaction. Sessions are
// never copied.
struct put_op
{
    std::string key;
    std::string value;
    std::uint64_t flags = 0;
    std::uint64_t source_index = 0;

    bool operator==(const put_op&) const = default;
};

struct delete_op
{
    std::string key;

    bool operator==(const delete_op&) const = default;
};

enum class warning_kind
{
    session_attached,         // source key held by a session: value and flags copied, session not
    lock_flag,                // source flags == consul/api LockFlagValue
    semaphore_flag,           // source flags == consul/api SemaphoreFlagValue
    outside_source_prefix,    // a source entry not under the source prefix: ignored
    outside_destination,      // a destination entry not under the destination prefix: ignored
    status_key_collision,     // a source key maps onto a checkpoint/protected key: not written
    duplicate_key,            // a key listed twice in one snapshot: the first one is used
    index_behind_checkpoint,  // source index < checkpoint.last_replicated (restore, reap or other DC)
    checkpoint_mismatch,      // checkpoint names another source/destination (hand edit or hash clash)
    replacement_character,    // a key with U+FFFD, as Consul lists bytes that are not UTF-8: not managed
};

// Something worth logging, returned as data (the engine never logs). `key` is the destination key
// when there is one (the source key for outside_source_prefix), empty for pair-wide warnings.
struct warning
{
    warning_kind kind;
    std::string key;

    bool operator==(const warning&) const = default;
    auto operator<=>(const warning&) const = default;
};

// Counters for metrics and the delete guard.
struct plan_stats
{
    std::size_t source_keys = 0;       // source entries under the source prefix
    std::size_t selected_keys = 0;     // ... of which pass the filters and are not protected
    std::size_t destination_keys = 0;  // destination keys this pair manages (the guard's base)
    std::size_t unchanged = 0;         // selected keys whose destination already has the value and flags
    std::size_t filtered = 0;          // source keys left out by exclude/include
    std::size_t unreadable = 0;        // keys left out on either side for U+FFFD (replacement_character)
    std::size_t protected_keys = 0;    // source or destination keys skipped as protected

    bool operator==(const plan_stats&) const = default;
};

enum class refusal_reason
{
    empty_source,  // the source has no selected keys but the plan would delete destination keys
    mass_delete,   // the plan would delete more than the allowed share of the destination
};

// Why the delete guard held a plan back (see guard.hpp). Returned as data.
struct refusal
{
    refusal_reason reason;
    std::size_t deletes = 0;           // deletes that were withheld
    std::size_t destination_keys = 0;  // managed destination keys at the time
    std::string message;

    bool operator==(const refusal&) const = default;
};

// What to do for one pair in one round. puts and deletes are sorted by key and never touch the
// status key or a protected prefix. next_checkpoint is the record to write after every op has
// been applied; it is nullopt when the guard refused the plan (nothing proves the destination
// mirrors the source, so the checkpoint must not advance).
struct plan
{
    std::vector<put_op> puts;
    std::vector<delete_op> deletes;
    std::vector<warning> warnings;
    std::optional<checkpoint> next_checkpoint;
    plan_stats stats;
    std::optional<refusal> refused;

    bool operator==(const plan&) const = default;
};

// Decides the writes that make the destination mirror the source for one pair:
//  * every source key under rule.spec.source that passes rule.filter maps to
//    destination + (key minus the source prefix) (leading prefix only);
//  * put when the destination lacks the key or differs in value or flags (values are compared,
//    so an unchanged key is never rewritten, and a key edited at the destination is repaired);
//  * delete destination keys under rule.spec.destination that no selected source key maps to;
//  * a key whose source form is not selected (excluded, or not included) is neither written nor
//    deleted; the status key and protected prefixes are never written or deleted;
//  * next_checkpoint = {src.index, rule.spec.source, rule.spec.destination}.
// `dst` must carry values (a `?recurse` listing of the destination prefix), not just keys.
// `prev` is the checkpoint read from the destination (default-constructed when absent); it only
// produces warnings, since the plan compares values rather than trusting ModifyIndexes.
// Deterministic: same input, same plan; no clock, no randomness. The guard is applied separately.
[[nodiscard]] plan make_plan(
    const snapshot& src, const snapshot& dst, const prefixes::rule& rule, const checkpoint& prev
);

// The same over plain entry ranges (e.g. one source group and the destination keys it maps to);
// `src_index` is the index the checkpoint records. Without `with_puts`, `puts` stays empty (a
// streamed round has planned them already; they number stats.selected_keys - stats.unchanged)
// and everything else is the same.
[[nodiscard]] plan make_plan(
    std::span<const kv_entry> src,
    std::uint64_t src_index,
    std::span<const kv_entry> dst,
    const prefixes::rule& rule,
    const checkpoint& prev,
    bool with_puts = true
);

// The same over the kept (compact) source snapshot, always without puts: a source value is known
// only by its length and digest, which decide stats.unchanged (never whether a put is made; see
// value_digest). For the end of a streamed round, whose puts were planned from the listing itself.
[[nodiscard]] plan make_plan(
    const compact_entries& src,
    std::uint64_t src_index,
    std::span<const kv_entry> dst,
    const prefixes::rule& rule,
    const checkpoint& prev
);

// Applies a plan's puts and deletes to `dst` entries, as Consul would (puts keep the destination
// entry's session; modify indexes are set to `new_index`). Pure; for tests, dry runs and the
// simulator. The result is sorted by key.
[[nodiscard]] snapshot apply_plan(const snapshot& dst, const plan& p, std::uint64_t new_index);

// True when the plan has no put and no delete (the checkpoint may still need writing).
[[nodiscard]] bool has_changes(const plan& p);

[[nodiscard]] std::string_view to_string(warning_kind kind);

[[nodiscard]] std::string_view to_string(refusal_reason reason);

}  // namespace kvship::engine

template <>
struct fmt::formatter<kvship::engine::put_op>
{
    constexpr auto parse(format_parse_context& ctx) { return ctx.begin(); }

    template <class FormatContext>
    auto format(const kvship::engine::put_op& op, FormatContext& ctx) const
    {
        return fmt::format_to(
            ctx.out(),
            "put{{key={:?} value={:?} flags={} source_index={}}}",
            op.key,
            op.value,
            op.flags,
            op.source_index
        );
    }
};

template <>
struct fmt::formatter<kvship::engine::delete_op>
{
    constexpr auto parse(format_parse_context& ctx) { return ctx.begin(); }

    template <class FormatContext>
    auto format(const kvship::engine::delete_op& op, FormatContext& ctx) const
    {
        return fmt::format_to(ctx.out(), "delete{{key={:?}}}", op.key);
    }
};

template <>
struct fmt::formatter<kvship::engine::warning>
{
    constexpr auto parse(format_parse_context& ctx) { return ctx.begin(); }

    template <class FormatContext>
    auto format(const kvship::engine::warning& w, FormatContext& ctx) const
    {
        return fmt::format_to(ctx.out(), "{}({:?})", kvship::engine::to_string(w.kind), w.key);
    }
};

template <>
struct fmt::formatter<kvship::engine::refusal>
{
    constexpr auto parse(format_parse_context& ctx) { return ctx.begin(); }

    template <class FormatContext>
    auto format(const kvship::engine::refusal& r, FormatContext& ctx) const
    {
        return fmt::format_to(ctx.out(), "refused({}): {}", kvship::engine::to_string(r.reason), r.message);
    }
};

template <>
struct fmt::formatter<kvship::engine::plan>
{
    constexpr auto parse(format_parse_context& ctx) { return ctx.begin(); }

    template <class FormatContext>
    auto format(const kvship::engine::plan& p, FormatContext& ctx) const
    {
        auto out = fmt::format_to(ctx.out(), "plan{{puts=[");
        for (std::size_t i = 0; i < p.puts.size(); ++i)
            out = fmt::format_to(out, "{}{}", i == 0 ? "" : ", ", p.puts[i]);
        out = fmt::format_to(out, "] deletes=[");
        for (std::size_t i = 0; i < p.deletes.size(); ++i)
            out = fmt::format_to(out, "{}{:?}", i == 0 ? "" : ", ", p.deletes[i].key);
        out = fmt::format_to(out, "] warnings=[");
        for (std::size_t i = 0; i < p.warnings.size(); ++i)
            out = fmt::format_to(out, "{}{}", i == 0 ? "" : ", ", p.warnings[i]);
        out = fmt::format_to(out, "]");
        if (p.next_checkpoint)
            out = fmt::format_to(out, " next={}", *p.next_checkpoint);
        if (p.refused)
            out = fmt::format_to(out, " {}", *p.refused);
        return fmt::format_to(out, "}}");
    }
};
