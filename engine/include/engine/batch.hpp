// Cutting a plan into /v1/txn requests within Consul's op-count and body-size limits.
#pragma once

#include <engine/plan.hpp>
#include <engine/types.hpp>

#include <fmt/format.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace kvship::engine {

// Server limits for one /v1/txn request (consul-api.md §7).
struct batch_limits
{
    std::size_t max_ops = 64;                  // 64 before Consul 1.14, 128 from 1.14 on
    std::size_t max_bytes = 512 * 1024;        // txn_max_req_len: JSON body bytes per request
    std::size_t max_value_bytes = 512 * 1024;  // kv_max_value_size: one decoded value
    // A put whose op alone is larger than max_bytes (a value near 512 KiB: its base64 is) becomes a
    // batch of its own sent as a plain KV PUT, which takes the raw value, instead of op_too_large.
    bool plain_put_oversized = false;

    bool operator==(const batch_limits&) const = default;
};

// Default limits for a server version: 128 ops from 1.14.0 on, 64 before (PR #14599).
[[nodiscard]] batch_limits limits_for_consul_version(unsigned major, unsigned minor);

enum class txn_verb
{
    set,         // KV "set": value and flags, no CAS; the destination entry's session is kept
    delete_key,  // KV "delete": a missing key is fine
};

// One KV operation of a /v1/txn body. `value` is raw bytes; transport base64-encodes it.
struct txn_op
{
    txn_verb verb = txn_verb::set;
    std::string key;
    std::string value;
    std::uint64_t flags = 0;

    bool operator==(const txn_op&) const = default;
};

// `sources[i]` for an op that belongs to no source transaction (a delete, the checkpoint).
inline constexpr std::uint64_t no_source = ~std::uint64_t{0};

// One request, a *batch*: the ops of one destination transaction in order, the estimated JSON body
// size, and whether it carries the checkpoint (only the last batch of a round does). `sources` has
// one entry per op: the source ModifyIndex of a put (the source transaction it came from), else
// no_source; a batch cut again (cut_ops) keeps each source transaction's ops together by it.
// `plain_put`: a single put too large for any transaction, sent as a KV PUT (plain_put_oversized).
struct batch
{
    std::vector<txn_op> ops;
    std::size_t estimated_bytes = 0;
    bool carries_checkpoint = false;
    std::vector<std::uint64_t> sources;
    bool plain_put = false;

    bool operator==(const batch&) const = default;
};

// Ops [from, to) of a batch (or of a round's batches laid end to end), sent as one /v1/txn, or
// (plain_put) one op sent as a plain KV PUT.
struct txn_piece
{
    std::size_t from = 0;
    std::size_t to = 0;
    bool plain_put = false;

    bool operator==(const txn_piece&) const = default;
};

enum class batch_errc
{
    invalid_limits,              // max_ops == 0, or max_bytes too small for even an empty op
    value_too_large,             // a value above max_value_bytes: Consul refuses it outright
    op_too_large,                // one op's encoded size exceeds max_bytes: no txn can carry it
    checkpoint_on_refused_plan,  // a refused plan must not advance the checkpoint
};

// Why a plan cannot be batched. `key` names the offending key, `bytes` its size (decoded value
// for value_too_large, estimated op bytes for op_too_large) and `limit` the bound it broke.
struct batch_error
{
    batch_errc code;
    std::string key;
    std::size_t bytes = 0;
    std::size_t limit = 0;
    std::string message;

    bool operator==(const batch_error&) const = default;
};

// Upper bound of everything in one encoded op except its key and value text, including the comma
// that separates it from the next: {"KV":{"Verb":"delete","Key":"","Value":"","Flags":<20 digits>}},
// with room to spare for field-order or spacing differences in the encoder.
inline constexpr std::size_t txn_op_overhead_bytes = 96;

// Bytes `[` and `]` of the body array.
inline constexpr std::size_t txn_body_overhead_bytes = 2;

// Standard padded base64 length of n bytes: 4 * ceil(n / 3).
[[nodiscard]] constexpr std::size_t base64_length(std::size_t n)
{
    return (n + 2) / 3 * 4;
}

// An upper bound of `text` as the inside of a JSON string: `"` and `\` count 2; control bytes and
// `<` `>` `&` count 6 (\u00XX, as Go escapes them); every byte >= 0x80 counts 3 (an invalid byte
// may become U+FFFD; valid sequences are shorter than that bound).
[[nodiscard]] std::size_t json_string_bound(std::string_view text);

// Upper bound of one op's encoded size, separator included.
[[nodiscard]] std::size_t estimate_op_bytes(const txn_op& op);

// Upper bound of a whole body holding `ops`.
[[nodiscard]] std::size_t estimate_body_bytes(std::span<const txn_op> ops);

// The one cutting rule (make_batches uses it, and the driver when a txn comes back too large): ops
// in order into pieces within limits.max_ops ops and limits.max_bytes estimated body bytes, greedy,
// except that a run of ops with the same source (not no_source) starts a new piece when that makes
// the whole run fit in one; a run larger than a piece is split in order. An op too large for any
// piece on its own becomes a plain_put piece of one op. `sources` is empty (every op on its own) or
// as long as `ops`. Pieces cover [0, ops.size()) in order; none for no ops.
[[nodiscard]] std::vector<txn_piece> cut_ops(
    std::span<const txn_op> ops, std::span<const std::uint64_t> sources, const batch_limits& limits
);

// Splits a plan into txn batches, each within limits.max_ops ops and limits.max_bytes estimated
// body bytes, cut by cut_ops:
//  * puts first, ordered by source ModifyIndex then key; puts that share a source ModifyIndex
//    (one source transaction) go in one batch when they fit in one, starting a new batch if
//    needed; a group larger than a batch is split in order;
//  * then deletes, by key;
//  * then `checkpoint_op` (when given) in the last batch, which is the only one with
//    carries_checkpoint; if the last batch has no room it goes alone in a new one. The driver must
//    send batches in order and stop at the first failure, so the checkpoint is written only after
//    every data op, and data and checkpoint never disagree.
// An empty plan gives one batch holding only the checkpoint op, or none without one.
// Errors (nothing is silently skipped): invalid_limits, value_too_large, op_too_large (names the
// first offending key in batch order; a put with limits.plain_put_oversized becomes a plain_put
// batch instead), checkpoint_on_refused_plan (p.refused set and a checkpoint
// op given).
// How make_batches cuts puts: keeping each source transaction's together where they fit, or
// greedily (a streamed round's chunks, which hold only parts of source transactions anyway: keeping
// those parts together would only leave txns part-empty).
enum class put_grouping
{
    source_txns,
    none,
};

[[nodiscard]] result<std::vector<batch>, batch_error> make_batches(
    plan p,
    const batch_limits& limits,
    std::optional<txn_op> checkpoint_op = std::nullopt,
    put_grouping grouping = put_grouping::source_txns
);

[[nodiscard]] std::string_view to_string(txn_verb verb);

}  // namespace kvship::engine

template <>
struct fmt::formatter<kvship::engine::txn_op>
{
    constexpr auto parse(format_parse_context& ctx) { return ctx.begin(); }

    template <class FormatContext>
    auto format(const kvship::engine::txn_op& op, FormatContext& ctx) const
    {
        return fmt::format_to(
            ctx.out(),
            "{}{{key={:?} value_bytes={} flags={}}}",
            kvship::engine::to_string(op.verb),
            op.key,
            op.value.size(),
            op.flags
        );
    }
};

template <>
struct fmt::formatter<kvship::engine::batch_error>
{
    constexpr auto parse(format_parse_context& ctx) { return ctx.begin(); }

    template <class FormatContext>
    auto format(const kvship::engine::batch_error& e, FormatContext& ctx) const
    {
        return fmt::format_to(ctx.out(), "{}", e.message);
    }
};
