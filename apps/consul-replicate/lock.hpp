// -lock: a `consul lock`-compatible session lock on <prefix>/.lock in the local DC, so that one
// replicator per DC writes (consul-api.md §9). The manager contends, holds, renews and monitors the
// lock on the app's io_context; the app starts pairs only while it is held, and every destination
// txn carries fence_op() so that a write after a loss is refused by Consul itself.
//
// Every decision (the HTTP sequence, consul lock's, with its retries, log lines and state changes) is
// engine::lock_fsm's (engine/lock_fsm.hpp, unit-tested in test/engine/lock_fsm_test.cpp); this driver
// runs its three lanes (main, renew, monitor) as coroutines, performs the one call each step asks
// for, and publishes the step's log lines, metrics and state changes.
#pragma once

#include "logger.hpp"
#include "metrics.hpp"

#include <engine/lock_fsm.hpp>
#include <transport/consul_client.hpp>

#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/steady_timer.hpp>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>

namespace kvship::replicate {

// key: lock_key(prefix); the rest as consul lock's defaults (see engine::lock_params).
using lock_params = engine::lock_params;
// standby, held, lost, failed (error() says why), stopped; engine::to_string names them.
using lock_state = engine::lock_state;

class lock_manager
{
public:
    // `client` talks to the local agent; it, `log` and `metrics` must outlive run().
    lock_manager(
        asio::any_io_executor ex,
        transport::consul_client& client,
        lock_params params,
        const logger& log,
        metrics_registry& metrics
    );

    // Contends, holds, re-contends after a loss; returns after stop() (once the lock is released
    // and the session destroyed) or when the lock failed for good.
    awaitable<void> run();

    // Graceful end: run() releases the lock, cleans the key up and destroys the session.
    void stop();
    // The lock counts as lost now (a fenced txn): held() turns false before this returns.
    void lose(std::string why);

    // Called (synchronously) on every state change; it must not call back into the manager.
    void on_change(std::function<void()> fn) { on_change_ = std::move(fn); }

    [[nodiscard]] lock_state state() const { return fsm_.state(); }

    [[nodiscard]] bool held() const { return fsm_.held(); }

    // Counts acquisitions: a holding period is identified by the value while held.
    [[nodiscard]] std::uint64_t holds() const { return fsm_.holds(); }

    [[nodiscard]] const std::string& key() const { return fsm_.params().key; }

    [[nodiscard]] const std::string& error() const { return fsm_.error(); }

    // The `check-session` op on the lock key with the current session; nullopt unless held.
    [[nodiscard]] std::optional<transport::txn_op> fence_op() const;

private:
    // One lane's I/O: the signal that cancels its request, the timer of its sleeps and waits.
    struct lane_io
    {
        explicit lane_io(asio::any_io_executor ex) : timer(std::move(ex)) {}

        asio::cancellation_signal cancel;
        asio::steady_timer timer;
    };

    awaitable<void> drive(engine::lock_lane lane);
    awaitable<engine::lock_event> perform(engine::lock_action a, lane_io& io);
    engine::lock_action apply(engine::lock_step step);
    void spawn(engine::lock_lane lane);
    lane_io& io(engine::lock_lane lane);

    asio::any_io_executor ex_;
    transport::consul_client& client_;
    const logger& log_;
    metrics_registry& metrics_;
    std::function<void()> on_change_;
    engine::lock_fsm fsm_;
    lane_io main_;
    lane_io renew_;
    lane_io monitor_;
};

}  // namespace kvship::replicate
