// -lock: a `consul lock`-compatible session lock on <prefix>/.lock in the local DC, so that one
// replicator per DC writes (consul-api.md §9). The manager contends, holds, renews and monitors the
// lock on the app's io_context; the app starts pairs only while it is held, and every destination
// txn carries fence_op() so that a write after a loss is refused by Consul itself.
//
// The HTTP sequence is consul lock's: session create {"Name","TTL","Behavior":"release"[,"LockDelay"]},
// renew every TTL/2 (following the TTL the server returns; on errors every 1 s until a whole TTL
// passed; 404 ends it), standby GETs blocking on the key, `PUT ?acquire=<id>&flags=<lock flag>` with
// an empty body (false: block while another session holds the key, else a lock-delay is in force:
// retry after 5 s), a monitor blocking on the key (missing key or another Session = lost), and on a
// graceful stop `?release`, cleanup (`DELETE ?cas=` when the flags match and nobody holds it) and
// session destroy.
#pragma once

#include "logger.hpp"
#include "metrics.hpp"

#include <transport/consul_client.hpp>

#include <boost/asio/cancellation_signal.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>

namespace kvship::replicate {

struct lock_params
{
    std::string key;  // lock_key(prefix)
    std::string session_name;
    std::chrono::nanoseconds ttl{std::chrono::seconds(15)};
    std::optional<std::chrono::nanoseconds> lock_delay;               // nullopt: not sent
    std::chrono::milliseconds wait{std::chrono::seconds(15)};         // standby blocking GET (LockWaitTime)
    std::chrono::milliseconds retry{std::chrono::seconds(5)};         // after acquire=false, no holder
    std::chrono::milliseconds monitor_wait{std::chrono::minutes(5)};  // the server default
    unsigned monitor_retries = 3;  // transient monitor errors in a row before the lock counts as lost
};

enum class lock_state
{
    standby,  // contending (a session exists or is being created; another holder may have the key)
    held,
    lost,     // just lost: letting the old session go, then back to standby
    failed,   // cannot ever be acquired (the key is not a lock key); error() says why
    stopped,  // stop() finished: released, cleaned up, session destroyed
};

[[nodiscard]] std::string_view to_string(lock_state s);

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

    // Called (synchronously) on every state change.
    void on_change(std::function<void()> fn) { on_change_ = std::move(fn); }

    [[nodiscard]] lock_state state() const { return state_; }

    [[nodiscard]] bool held() const { return state_ == lock_state::held; }

    // Counts acquisitions: a holding period is identified by the value while held.
    [[nodiscard]] std::uint64_t holds() const { return holds_; }

    [[nodiscard]] const std::string& key() const { return params_.key; }

    [[nodiscard]] const std::string& error() const { return error_; }

    // The `check-session` op on the lock key with the current session; nullopt unless held.
    [[nodiscard]] std::optional<transport::txn_op> fence_op() const;

private:
    enum class contend_result
    {
        acquired,
        session_gone,
        stopping,
        conflict,
    };

    awaitable<contend_result> contend();
    awaitable<bool> create_session();
    awaitable<void> renew_loop(std::string id, std::chrono::nanoseconds ttl);
    awaitable<void> monitor_loop(std::string id);
    awaitable<void> let_go(bool was_held, bool cleanup);
    awaitable<void> join_tasks();
    awaitable<bool> pause(std::chrono::milliseconds d);  // false: interrupted
    awaitable<void> wait_wake();
    void set_state(lock_state s);
    void declare_lost(const std::string& why);
    void wake();

    asio::any_io_executor ex_;
    transport::consul_client& client_;
    lock_params params_;
    const logger& log_;
    metrics_registry& metrics_;
    std::function<void()> on_change_;

    lock_state state_ = lock_state::standby;
    std::uint64_t holds_ = 0;
    std::string error_;
    std::string session_;
    bool stopping_ = false;
    std::optional<std::string> lost_;          // lose() or the monitor
    std::optional<std::string> session_gone_;  // the renewer gave up

    asio::steady_timer wake_;
    asio::steady_timer sleep_;
    asio::steady_timer renew_timer_;
    asio::steady_timer monitor_timer_;
    asio::cancellation_signal read_cancel_;
    asio::cancellation_signal renew_cancel_;
    asio::cancellation_signal monitor_cancel_;
    bool renew_running_ = false;
    bool monitor_running_ = false;
    bool renew_stop_ = false;
    bool monitor_stop_ = false;
};

}  // namespace kvship::replicate
