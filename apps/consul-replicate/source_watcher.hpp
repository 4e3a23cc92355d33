// A pair's grouped watching (DRIVER.md "Grouped watching"): one blocking `?recurse` per source group
// plus a `?keys&separator=/` names watch per split directory, all concurrent, each with the stale
// re-read. engine::watch_plan decides the layout (plan_watches), what a names listing means
// (judge_names) and what each blocking answer means (judge_wake); this class runs the watches and
// keeps what they report until the pair's loop takes it (the loop judges it with judge_watches).
#pragma once

#include "logger.hpp"
#include "metrics.hpp"

#include <engine/replicator_fsm.hpp>
#include <engine/groups.hpp>
#include <engine/watch_plan.hpp>
#include <prefixes/filter.hpp>
#include <transport/consul_client.hpp>
#include <transport/consul_request.hpp>

#include <boost/asio/cancellation_signal.hpp>

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace kvship::replicate {

class source_watcher
{
public:
    struct settings
    {
        std::string label;                  // the pair's: the `pair` metrics label and log context
        std::string prefix;                 // the source prefix
        const prefixes::key_filter* filter = nullptr;  // the pair's -exclude filter (outlives the watcher)
        std::size_t budget = 0;             // concurrent blocking queries for the pair
        transport::read_settings reads;     // ?dc, -max-stale, the blocking wait
        // A group listing at an index above the last one seen (the pair's source index and lag).
        std::function<void(std::uint64_t)> index_seen;
    };

    // `source`, `log` and `metrics` must outlive the watcher; stop() must be awaited before it is destroyed.
    source_watcher(
        asio::any_io_executor ex,
        transport::consul_client& source,
        settings s,
        const logger& log,
        metrics_registry& metrics
    );

    // Starts the watches over the full read's `entries`, each group from its first index and the
    // names watches from `index`. False when the source cannot be split into groups (nothing runs).
    bool start(const engine::compact_entries& entries, std::uint64_t index);

    // What the watches' reports mean for the pair's next round (engine::judge_watches): the newest
    // listing per group as one delta; or a full read (`verdict.reason`; a failed watch is counted in
    // kvship_errors_total and logged); or `stop` once `stopping()`. Waits for a report until
    // `refresh_at`, when the known destination goes stale (a full round then repairs it).
    struct next_step
    {
        std::optional<engine::event::source_delta> delta;
        engine::watches_verdict verdict;
        bool stop = false;
    };

    awaitable<next_step> next(
        std::optional<std::chrono::steady_clock::time_point> refresh_at, std::function<bool()> stopping
    );
    // Ends a wait in next() at once.
    void wake() { s_->wake.cancel(); }
    // Ends every watch and waits until each has ended.
    awaitable<void> stop();

private:
    struct state
    {
        explicit state(asio::any_io_executor ex) : wake(std::move(ex)) {}

        engine::source_layout layout;  // the groups and the directories with a names watch
        std::map<std::string, engine::event::group_listing> pending;  // the newest listing per group
        std::optional<std::pair<std::string, std::string>> failure;   // (error kind, what)
        std::optional<engine::full_read_reason> reset;  // a watch ended: index_reset or regroup
        std::deque<asio::cancellation_signal> cancels;  // one per watch (slot); a deque keeps addresses
        std::deque<asio::steady_timer> pauses;          // one per watch, for the fast no-change pause
        std::size_t running = 0;
        bool closing = false;
        asio::steady_timer wake;  // the pair's loop waits on it; watches cancel it to wake the loop
    };

    awaitable<void> watch_group(std::shared_ptr<state> w, std::size_t slot, std::string prefix, std::uint64_t index);
    awaitable<void> watch_names(std::shared_ptr<state> w, std::size_t slot, std::string dir, std::uint64_t index);
    // One read of a group (blocking past `index` > 0) with the stale re-read. nullopt when the watches
    // are closing, or when the read failed or was filtered by ACLs (the failure is recorded).
    awaitable<std::optional<transport::kv_listing>> read_group(
        state& w, std::size_t slot, const std::string& prefix, std::uint64_t index
    );
    void add_group(const std::shared_ptr<state>& w, std::string prefix, std::uint64_t index);
    // A blocking answer's verdict, counted as a wakeup; an index_reset ends the watches (true: stop).
    bool went_back(state& w, const engine::wake_verdict& v, bool count);
    // Before a watch's next read: the fast no-change pause. False when the watches are closing.
    awaitable<bool> pause_if(state& w, std::size_t slot, bool pause);

    label_set labels() const { return {{"pair", settings_.label}}; }

    asio::any_io_executor ex_;
    transport::consul_client& source_;
    settings settings_;
    const logger& log_;
    metrics_registry& metrics_;
    std::shared_ptr<state> s_;
};

}  // namespace kvship::replicate
