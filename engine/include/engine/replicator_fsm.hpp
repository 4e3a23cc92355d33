// The replication loop for one pair as a sans-I/O state machine: resume(event) -> action (Redis style).
#pragma once

#include <engine/backoff.hpp>
#include <engine/batch.hpp>
#include <engine/compact.hpp>
#include <engine/guard.hpp>
#include <engine/index.hpp>
#include <engine/lost_found.hpp>
#include <engine/plan.hpp>
#include <engine/types.hpp>
#include <prefixes/rule.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <utility>
#include <variant>
#include <vector>

namespace kvship::engine {

struct replicator_config
{
    prefixes::rule rule;
    guard_params guard;
    batch_limits limits;  // one batch is one destination txn: the driver keeps these at what it learned
    // apply_batch hands out a whole stage of the round at once, for the driver to write concurrently:
    // the lost+found saves, then every other batch (the checkpoint's last). Off: one batch at a time.
    bool stage_batches = false;
    backoff_params backoff;
    std::uint64_t seed = 0;  // jitter seed, e.g. derived from the pair and the process
    bool once = false;       // -once: one successful round, then done
    // Streamed full rounds: every full read (index 0) reads the destination first, then takes the
    // source in chunks as it arrives and applies the puts of each chunk while the rest comes in
    // (see "Streamed full rounds" below).
    bool stream_full_reads = false;
    // Streamed full rounds hand out puts once this many are planned (the rest waits for more).
    std::size_t stream_batch = 512;
    // Streamed full rounds keep the listing's values (for a re-plan should the source turn out not
    // to be in key order) until they exceed this many bytes; past it the round keeps only keys and
    // value digests (compact.hpp), and a source found out of order after that is read again whole.
    std::size_t stream_keep_bytes = 8 * 1024 * 1024;
    // Pure encoder of the checkpoint value (transport's JSON codec). Without one, no checkpoint op
    // is written.
    std::function<std::string(const checkpoint&)> encode_checkpoint;
    // Gated runs: save what a round would destroy that never reached the source (lost_found.hpp),
    // and write SourceDatacenter/MirroredIndex into the checkpoint. nullopt: ungated, neither.
    std::optional<lost_found_config> lost_found;
    // Pure encoder of the .turn record (the driver's JSON codec); without one no record is written.
    std::function<std::string(const turn_record&)> encode_turn_record;
};

// What the driver reports back after performing the last action.
namespace event {

struct start
{
};

// A successful source read: a 404 is an empty snapshot carrying the X-Consul-Index.
struct source_read
{
    snapshot src;
};

// The destination listing (with values) and the checkpoint at rule.status_key (nullopt if absent).
struct destination_read
{
    snapshot dst;
    std::optional<checkpoint> prev;
    // ModifyIndex of the status key's entry (0 when absent): lost+found's bound C.
    std::uint64_t status_modify_index = 0;
};

// One source group read again after its blocking query woke: every entry whose key starts with
// `prefix` (an absolute source key prefix under the pair's source prefix), and the group read's
// X-Consul-Index. An empty `entries` is a successful read that found nothing (a 404), never an error.
struct group_listing
{
    std::string prefix;
    std::uint64_t index = 0;
    std::vector<kv_entry> entries;
};

// Answers read_source (index > 0) in grouped mode: the groups that changed since the last round,
// one listing per prefix (the driver keeps the newest when a group woke several times). The
// machine splices them into its source snapshot and plans only their key ranges.
struct source_delta
{
    std::vector<group_listing> groups;
};

// Answers read_source: the driver can no longer vouch for its group watches (a group or the root
// index went backwards, a watch failed, a periodic full check is due). Start over with a full
// read of source and destination.
struct source_reset
{
};

struct batch_applied
{
};

// Streamed full rounds: the next entries of the source listing, in listing order (Consul's: sorted
// by key). Answers stream_source or read_chunk.
struct source_chunk
{
    std::vector<kv_entry> entries;
};

// Streamed full rounds: the whole source listing arrived and was validated; `index` is its
// X-Consul-Index. Answers stream_source or read_chunk.
struct source_end
{
    std::uint64_t index = 0;
};

// Answers apply_puts: the batch was taken over by the driver (queued for writing, not yet
// committed). A queued write that fails is reported as `failed` in answer to a later action.
struct puts_queued
{
};

// The last action failed (connection, timeout, 5xx, 409 ...). `what` is for the round report.
struct failed
{
    std::string what;
};

// The sleep asked for has passed.
struct timer_fired
{
};

// Stop at the next step boundary (cancellation as a plain value).
struct stop
{
};

}  // namespace event

using replicator_event = std::variant<
    event::start,
    event::source_read,
    event::source_delta,
    event::source_reset,
    event::destination_read,
    event::batch_applied,
    event::source_chunk,
    event::source_end,
    event::puts_queued,
    event::failed,
    event::timer_fired,
    event::stop>;

// What the driver must do next; each action is answered by one event.
namespace action {

// GET /v1/kv/<source>?recurse&dc=..&index=<index>; index 0 = a non-blocking full read.
// Answer: source_read or failed.
struct read_source
{
    std::uint64_t index = 0;
};

// GET /v1/kv/<destination>?recurse plus GET of `status_key`. Answer: destination_read or failed.
// With `ranges` (destination key prefixes, sorted, disjoint: a grouped round), only entries under
// them are needed; the machine ignores any others.
struct read_destination
{
    std::string status_key;
    std::vector<std::string> ranges;
};

// PUT /v1/txn once per batch of `batches` (one, or with stage_batches a stage of the round:
// written in any order, except that a batch carrying the checkpoint goes after every other has
// committed). They point into the machine and stay valid until the next resume(). Answer:
// batch_applied once every one committed, or failed: each batch is atomic, and the batches that did
// commit are skipped by the retry's re-plan.
struct apply_batch
{
    const batch* ops = nullptr;  // batches.front()
    std::size_t number = 0;      // 0-based position of the first one in the round
    std::size_t count = 0;       // batches in the round
    std::span<const batch> batches;
};

// Streamed full rounds: read the destination listing and the checkpoint like read_destination (a
// full read: nothing known about the destination may be reused). Answer: destination_read or failed.
struct begin_stream
{
    std::string status_key;
};

// Streamed full rounds: start reading the whole source (index 0) as a stream. Answer: the first
// source_chunk, source_end or failed.
struct stream_source
{
};

// Streamed full rounds: answer with the stream's next source_chunk, source_end or failed.
struct read_chunk
{
};

// Streamed full rounds: write these puts (the machine gives them up; order among puts does not
// matter, each key appears once in a round). Answer: puts_queued (the driver may still be writing
// them) or failed. Every queued write must have committed before the round's next apply_batch is
// sent, so the checkpoint never gets ahead of the data.
struct apply_puts
{
    batch ops;
};

// Wait, then answer timer_fired (or stop).
struct sleep
{
    std::chrono::nanoseconds delay{0};
};

// Finished: `error` is set when retries ran out or a -once round could not complete.
struct done
{
    std::optional<std::string> error;
};

}  // namespace action

using replicator_action = std::variant<
    action::read_source,
    action::read_destination,
    action::apply_batch,
    action::begin_stream,
    action::stream_source,
    action::read_chunk,
    action::apply_puts,
    action::sleep,
    action::done>;

// What one round did, for logs and metrics; taken with take_report().
struct round_report
{
    std::uint64_t source_index = 0;
    std::size_t puts = 0;
    std::size_t deletes = 0;
    std::size_t batches = 0;
    std::size_t streamed_puts = 0;  // puts applied while the source was still arriving (in `puts`)
    plan_stats stats;
    std::vector<warning> warnings;
    std::optional<refusal> refused;        // the guard held deletes back
    std::optional<batch_error> batch_err;  // the plan could not be batched; nothing was applied
    bool checkpoint_written = false;
    // Lost+found (config.lost_found): set on each round that checked for unreplicated keys.
    std::optional<lost_found_threshold> lost_found;
    std::string lost_found_turn;   // the turn id of the saves
    std::size_t lost_found_saved = 0;  // entries saved before this round's destroying ops
};

// One pair's loop:
//   read source (blocking on the last index) -> on new data read destination + checkpoint ->
//   make_plan, guard_plan, make_batches -> apply batches in order (checkpoint in the last) ->
//   report -> read source again.
// Index rules follow next_wait_index (reset -> full re-read). New index with identical entries is
// no round. A failure is retried after backoff_delay(attempt) while should_retry(attempt): a
// failed source read repeats the read; a failed destination read or batch restarts the round at
// read_destination (batches are atomic, and the re-plan skips what already landed). The attempt
// counter resets after any success. Out of retries -> done{error}. stop -> done{} at once.
// Grouped rounds (a daemon watching source groups): once takes_deltas(), read_source may be answered
// with source_delta (the groups that changed) instead of source_read. The listings are spliced into
// the source snapshot and only their ranges are planned (read_destination carries the destination
// ranges); the guard judges the round against the whole managed destination. A group that turned
// empty, or more deletes than guard.min_keys, makes the machine start over with a full read
// (read_source{0}) before anything is deleted; so does source_reset. A driver that stops watching
// groups must answer source_reset (never a blocking full read on wait_index(), which may be ahead of
// changes a group watch had not delivered yet).
// Streamed full rounds (config.stream_full_reads): a full read becomes begin_stream (the
// destination and checkpoint) -> stream_source -> source_chunk... -> source_end. Each chunk is
// planned against the destination for puts only, and full batches of them go out as apply_puts
// while the source keeps arriving. Deletes, the guard (judged on the whole source and destination,
// as in a whole-snapshot round), the round's report and the checkpoint are decided at source_end;
// the remaining puts, the deletes and the checkpoint then go out as apply_batch (the checkpoint in
// the last). Puts written early are values of the one source snapshot being read, so a round that
// fails midway is simply retried. A source that arrives out of key order stops the early puts;
// the round then plans everything at the end. Within a streamed round, puts are batched in key
// order per chunk, so writes of one source transaction may land in different destination txns.
class replicator_fsm
{
public:
    explicit replicator_fsm(replicator_config config);

    // Feeds the answer to the previous action (start first) and returns the next action. After
    // done, every call returns done again.
    [[nodiscard]] replicator_action resume(replicator_event ev);

    // The report of the last finished round, once; nullopt when none is pending.
    [[nodiscard]] std::optional<round_report> take_report();

    // The limits of the batches of rounds planned from now on (the driver learned them, or the fence
    // op's room changed).
    void set_limits(const batch_limits& limits) { config_.limits = limits; }

    // The newest source index the destination is known to mirror: the index of the last round that
    // finished cleanly (nothing refused, everything batched), or a newer one whose entries equal it
    // (no round needed: a read or group listings with a new index and the same data). 0 before the
    // first clean round, and again once the source's index went below it (a snapshot restore, a
    // tombstone reap), until the next clean round. The driver reports it as applied (kvship_applied_index).
    [[nodiscard]] std::uint64_t applied_index() const noexcept { return applied_; }

    // The index the next blocking read will send.
    [[nodiscard]] std::uint64_t wait_index() const noexcept { return index_; }

    // The source as last read (full read plus every group listing spliced in since), kept compact:
    // keys, value lengths and digests, no values; nullptr before the first full read.
    [[nodiscard]] const compact_snapshot* source() const noexcept { return src_ ? &*src_ : nullptr; }

    // True when a pending read_source may be answered with source_delta: a daemon whose last round
    // finished cleanly (not refused, nothing failed to batch), so the managed destination key count
    // the guard needs is known. Otherwise a delta makes the machine start over with a full read.
    [[nodiscard]] bool takes_deltas() const noexcept
    {
        return !config_.once && src_ && round_done_ && managed_known_ && state_ == state::reading_source;
    }

private:
    enum class state
    {
        idle,
        reading_source,
        reading_destination,
        applying,
        stream_destination,  // begin_stream sent
        streaming,           // stream_source / read_chunk / apply_puts sent
        sleeping,
        finished,
    };

    enum class retry_target
    {
        source,
        destination,
    };

    replicator_action on_source(snapshot src);
    replicator_action on_delta(std::vector<event::group_listing> groups);
    replicator_action start_over();
    plan make_round_plan(const snapshot& dst, const checkpoint& previous, bool with_puts = true);
    [[nodiscard]] std::size_t selected_count(std::size_t lo, std::size_t hi) const;
    replicator_action on_destination(
        snapshot dst, const std::optional<checkpoint>& prev, std::uint64_t status_modify_index
    );
    replicator_action on_failure(std::string what);
    replicator_action next_batch_or_finish();
    replicator_action finish_round();
    replicator_action finish(std::optional<std::string> error);
    replicator_action read_source();
    replicator_action read_destination();
    replicator_action on_stream_destination(
        snapshot dst, std::optional<checkpoint> prev, std::uint64_t status_modify_index
    );
    replicator_action on_chunk(std::vector<kv_entry> entries);
    replicator_action on_stream_end(std::uint64_t index);
    replicator_action next_stream_action();
    replicator_action plan_and_apply(
        const snapshot& dst,
        const std::optional<checkpoint>& prev,
        std::vector<put_op>* streamed_rest,
        std::size_t streamed
    );
    void reset_stream();
    [[nodiscard]] bool lost_found_active() const noexcept { return config_.lost_found && !lost_found_done_; }
    std::pair<std::vector<lost_found_save>, std::optional<txn_op>> plan_saves(
        const plan& p, const snapshot& dst, const std::optional<checkpoint>& prev
    );

    replicator_config config_;
    state state_ = state::idle;
    retry_target retry_ = retry_target::source;
    unsigned attempt_ = 0;
    std::uint64_t index_ = 0;
    std::optional<compact_snapshot> src_;
    // The values a round plans its puts from, held until the round ends (a retry plans again): the
    // whole listing of a whole-snapshot round (or of a streamed one that kept its values) ...
    std::optional<snapshot> round_src_;
    // ... or, in a grouped round, the listing of each changed group (sorted, by group prefix).
    std::map<std::string, std::vector<kv_entry>, std::less<>> round_groups_;
    // A streamed round could not be planned (out of order after its values were let go): the next
    // full read is a whole one.
    bool whole_read_next_ = false;
    std::vector<batch> batches_;
    std::size_t next_batch_ = 0;
    std::size_t stage_end_ = 0;  // the end of the batches the pending apply_batch handed out
    std::uint64_t applied_ = 0;  // applied_index()
    round_report current_;
    std::optional<round_report> report_;
    bool round_done_ = false;
    // Grouped rounds: the source group prefixes whose ranges this round plans (empty: a full round).
    std::vector<std::string> ranges_;
    // Managed destination keys after the last clean round (the delete guard's base in grouped
    // rounds), and what it becomes once the current round has been applied.
    std::size_t managed_ = 0;
    std::size_t next_managed_ = 0;
    bool managed_known_ = false;
    std::size_t ranges_managed_ = 0;  // managed destination keys in ranges_ before this round
    bool escalate_ = false;           // the current grouped plan must be checked by a full round

    // A streamed full round in progress.
    struct stream_round
    {
        // The source so far: the listing itself (arrival order) until it outgrows
        // config.stream_keep_bytes, then its compact form (values_dropped).
        std::vector<kv_entry> listed;
        std::size_t listed_bytes = 0;
        compact_entries kept;
        bool values_dropped = false;
        std::string last_key;  // of the last chunk, for the order check
        snapshot dst;
        std::optional<checkpoint> prev;
        std::uint64_t status_modify_index = 0;
        bool early_puts = true;         // chunks arrived in key order and batched cleanly so far
        std::vector<put_op> held;       // planned puts not yet handed out
        std::vector<batch> ready;       // full batches waiting to go out as apply_puts
        std::size_t streamed_puts = 0;  // puts handed out as apply_puts
    };

    std::optional<stream_round> stream_;

    // Lost+found (config.lost_found): the status key's ModifyIndex of the round being planned, the
    // index of the last whole source listing (the checkpoint's MirroredIndex), the originals whose
    // saves have committed, the leading batches of this round that are saves, and whether a clean
    // round with the checkpoint has committed (after it, every destroyed key is one this machine
    // wrote from the source).
    std::uint64_t status_index_ = 0;
    std::uint64_t mirrored_ = 0;
    std::set<std::string> saved_;
    std::vector<std::string> round_saves_;
    std::size_t save_batches_ = 0;
    bool lost_found_done_ = false;
};

}  // namespace kvship::engine
