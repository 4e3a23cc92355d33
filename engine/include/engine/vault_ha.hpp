// Georedundant Vault as a sans-I/O decision: which DC is the primary, what the local DC's kvship
// does with Vault's HA lock (`<path>core/lock`), and when a promotion may finish.
//
// The primary is *designated*, never guessed: every DC keeps a small record (the designation,
// JSON in the KV, see apps/consul-replicate/vault_ha.hpp) and the record with the highest epoch
// wins. A promotion writes epoch+1 naming the new primary in phase `promoting`; it becomes
// `primary` only after the old primary fenced its Vault (or the operator forced it) and the new
// primary applied everything the old one committed up to the fence. With no record anywhere the
// first DC of the priority order is the primary (the bootstrap: set replication up before
// `vault operator init`).
//
// Roles of the local DC under the effective record E:
//  * primary       E.primary == local and E is `primary`: hold no proxy lock (the local Vault takes
//                  the real one), replicate nothing in.
//  * taking_over   E.primary == local and E is `promoting`: keep the proxy lock, keep replicating
//                  from E.from (the drain); when the old primary's fence is seen (or E.force) and
//                  the pairs applied up to its fence index, write E as `primary`. The proxy lock is
//                  released only once the local record says `primary` (a crash in between never
//                  re-takes the lock from the Vault that already holds it).
//  * handing_over  E.from == local and E is `promoting`: fence the local Vault (hold the proxy
//                  lock, taking it from a Vault that holds it), then acknowledge with the fence
//                  index in the local record; replicate nothing in.
//  * follower      otherwise: hold the proxy lock with the primary's lock value, replicate from the
//                  claimant (E.primary, or E.from while E is promoting).
//
// Split brain (two DCs with an active Vault, e.g. a partition with automatic failover, or an
// operator's mistake) ends by the same rule: once the records meet, every DC but the effective
// primary fences its Vault. Ties of epoch go to the DC earlier in the priority order.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace kvship::engine {

struct ha_record
{
    enum class phase
    {
        primary,
        promoting,
    };

    std::uint64_t epoch = 0;
    std::string primary;
    phase stage = phase::primary;
    std::string from;   // promoting: the primary being replaced
    bool force = false;  // promoting: finish without the old primary's fence (it cannot be reached)
    std::string reason;  // "bootstrap", "promote", "failover"
    // Written by `from` into its own record: the ModifyIndex of its fenced lock key, an index of
    // its KV the new primary must have applied before it finishes the promotion. 0: not fenced yet.
    std::uint64_t fence_index = 0;

    bool operator==(const ha_record&) const = default;
};

[[nodiscard]] std::string_view to_string(ha_record::phase p);
// "epoch 3: primary dc2", "epoch 4: promoting dc1 (from dc2, fenced at 812)".
[[nodiscard]] std::string describe(const ha_record& r);

// One DC's designation as the local kvship read it: unreachable, or reachable with or without
// a record.
struct ha_dc_view
{
    bool reachable = false;
    std::optional<ha_record> record;
};

// Orders records: higher epoch; then `primary` over `promoting`; then a fenced promotion over
// an unfenced one; then the primary earlier in `dcs`. True when `a` wins over `b`.
[[nodiscard]] bool ha_record_wins(const ha_record& a, const ha_record& b, const std::vector<std::string>& dcs);

// The effective record over every reachable view; the bootstrap record (epoch 0, dcs[0]) when
// there is none. `dcs` must not be empty.
[[nodiscard]] ha_record effective_record(
    const std::vector<std::string>& dcs, const std::map<std::string, ha_dc_view>& views
);

// A split brain as the records show it: the reachable DCs whose own record names themselves the
// primary (phase `primary`; a DC without a record goes by the bootstrap, so the first DC of `dcs`
// claims and the others do not), in priority order. Two or more: each of them let its Vault be
// active (a partition with automatic failover, a forced promotion while the old primary was cut
// off, an operator's mistake); the effective record decides who stays. A promotion in progress
// never shows as one: the old primary's record turns `promoting` (its fence) before the new
// primary's turns `primary`.
[[nodiscard]] std::vector<std::string> self_claimed_primaries(
    const std::vector<std::string>& dcs, const std::map<std::string, ha_dc_view>& views
);

enum class ha_role
{
    primary,
    taking_over,
    handing_over,
    follower,
};

[[nodiscard]] std::string_view to_string(ha_role r);

// What the local kvship knows besides the records.
struct ha_local
{
    std::string dc;
    bool proxy_held = false;            // the lock key is held by our proxy session
    std::uint64_t proxy_index = 0;      // its ModifyIndex while held
    std::optional<std::uint64_t> applied;  // the pairs' applied source index while they read from the claimant
};

struct ha_decision
{
    ha_record effective;
    ha_role role = ha_role::follower;
    std::string claimant;      // the DC whose data is the truth right now (the gate follows it)
    bool hold_proxy = true;    // take (or keep) the proxy lock
    bool release_proxy = false;  // release it (primary only)
    std::optional<ha_record> write_local;  // the record the local DC should hold, when it differs
    std::string waiting;       // what a promotion waits for (readyz), empty otherwise
};

[[nodiscard]] ha_decision decide_ha(
    const std::vector<std::string>& dcs,
    const std::map<std::string, ha_dc_view>& views,
    const ha_local& local
);

// A promotion of `target` from the effective record `current`: the record to write (epoch+1,
// promoting, from the current primary), or an error text (unknown DC, already the primary).
struct ha_promotion
{
    std::optional<ha_record> record;
    std::string error;   // when not promoting
    bool already = false;  // target already is the primary: nothing to do, not an error
};

[[nodiscard]] ha_promotion plan_promotion(
    const std::vector<std::string>& dcs, const ha_record& current, std::string_view target, bool force,
    std::string reason
);

// Automatic failover (`failover_after`): the primary DC unreachable or without an active Vault,
// seen on every poll for `after`, makes the first DC of the priority order, among those the local
// DC can reach (itself included) other than the primary, promote itself (forced: the old primary
// cannot fence). Disabled when `after` is zero.
class failover_timer
{
public:
    using time = std::chrono::nanoseconds;

    explicit failover_timer(time after) : after_(after) {}

    // One poll: `primary_ok` false when the effective primary's DC could not be read or has no
    // active Vault. Returns true when the local DC should promote itself now.
    bool observe(time now, const std::vector<std::string>& dcs, const ha_record& effective,
                 std::string_view local_dc, const std::map<std::string, ha_dc_view>& views, bool primary_ok);

    // Since when the primary has looked down (nullopt: it looks fine).
    [[nodiscard]] std::optional<time> down_since() const { return down_since_; }

private:
    time after_;
    std::optional<time> down_since_;
    std::uint64_t epoch_ = 0;
    std::string primary_;
};

}  // namespace kvship::engine
