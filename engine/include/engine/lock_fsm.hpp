// The -lock lock (`consul lock`'s protocol on one key) as a sans-I/O machine. Its decisions live here;
// the driver (apps/consul-replicate/lock.cpp) performs the one I/O call each step asks for.
//
// Three lanes run at once, each a loop of resume(lane, now, answer) -> next action:
//  * main: create a session (failures back off 250 ms doubling up to `retry`); standby: block on the
//    key (`?wait=`, `&index=` of the last read), held by another session -> block on it, free ->
//    `PUT ?acquire=<id>&flags=<lock flag>`; false -> read again: held by someone -> block on it, else
//    a lock-delay is in force -> retry after `retry`; a read or acquire error -> again after 1 s from
//    index 0; a key with other flags is not a lock (state failed). Held: wait until stopped, lost,
//    the session is gone or the monitor ended. Lost: stop the other lanes, release and destroy the
//    session (unless it is gone), back to standby with a new session. Stop: stop the other lanes,
//    then, if held, `?release` and cleanup (`DELETE ?cas=` when the flags match and nobody holds the
//    key), then destroy the session (state stopped; a failed lock stays failed).
//  * renew: from the session's creation until it ends, renew every TTL/2, following the TTL the
//    server returns; after an error every 1 s until a whole TTL passed since the last renewal; a 404
//    or a whole TTL ends the session (held -> lost; standby -> a new session).
//  * monitor: while held, a consistent blocking read on the key (`monitor_wait`); the key missing,
//    released or held by another session = lost; errors that transport calls retryable are retried
//    `monitor_retries` times in a row, 1 s apart, any other error = lost.
// stop() and lose() come from outside. Every call returns a lock_step: the resumed lane's next
// action, the log lines and state changes to publish, the lanes to start, and the lanes whose pending
// request, sleep or wait the driver must interrupt now (they then answer with `failed` or
// timer_fired{interrupted}). Main is cut short only in standby (its requests and pauses) or while it
// waits; releasing, cleaning up and destroying the session always run to their answer.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace kvship::engine {

// Monotonic time since any fixed origin (the driver passes steady_clock time, tests small numbers).
using lock_time = std::chrono::nanoseconds;

struct lock_params
{
    std::string key;  // the lock key, e.g. "app/.lock"
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

enum class lock_lane
{
    main,
    renew,
    monitor,
};

[[nodiscard]] std::string_view to_string(lock_lane l);

struct lock_lanes
{
    bool main = false;
    bool renew = false;
    bool monitor = false;

    [[nodiscard]] bool any() const { return main || renew || monitor; }

    bool operator==(const lock_lanes&) const = default;
};

// What a read of the lock key found.
struct lock_key_entry
{
    std::uint64_t flags = 0;
    std::string session;  // empty: not held
    std::uint64_t modify_index = 0;

    bool operator==(const lock_key_entry&) const = default;
};

// The driver's answers.
namespace lock_events {

// The first resume of a lane (main: from run(); renew, monitor: once a step started them).
struct start
{
};

struct session_created
{
    std::string id;
};

// A read of the key: X-Consul-Index and the entry (nullopt: 404).
struct key_read
{
    std::uint64_t index = 0;
    std::optional<lock_key_entry> entry;
};

// Consul's true/false to PUT ?acquire / ?release, DELETE ?cas= and session destroy.
struct answered
{
    bool value = false;
};

// A renewal's answer: the session's TTL as the server returned it (Go duration text).
struct renewed
{
    std::string ttl;
};

// The request failed (also when interrupted). `not_found`: a 404; `retryable`: transport's
// is_retryable().
struct failed
{
    std::string what;
    bool not_found = false;
    bool retryable = false;
};

// A sleep passed, or a sleep or wait was interrupted.
struct timer_fired
{
    bool interrupted = false;
};

}  // namespace lock_events

using lock_event = std::variant<
    lock_events::start,
    lock_events::session_created,
    lock_events::key_read,
    lock_events::answered,
    lock_events::renewed,
    lock_events::failed,
    lock_events::timer_fired>;

// What a lane does next; each is answered by one event.
namespace lock_actions {

// PUT /v1/session/create {"Name","TTL","Behavior"[,"LockDelay"]} (empty lock_delay: not sent).
// Answer: session_created or failed.
struct create_session
{
    std::string name;
    std::string ttl;
    std::string behavior;
    std::string lock_delay;

    bool operator==(const create_session&) const = default;
};

// GET /v1/kv/<key>[?consistent][&index=][&wait=] (wait 0: not sent). Answer: key_read or failed.
struct read_key
{
    std::uint64_t index = 0;
    std::chrono::milliseconds wait{0};
    bool consistent = false;

    bool operator==(const read_key&) const = default;
};

// PUT /v1/kv/<key>?acquire=<session>&flags=<lock flag>, empty body. Answer: answered or failed.
struct acquire
{
    std::string session;

    bool operator==(const acquire&) const = default;
};

// PUT /v1/kv/<key>?release=<session>&flags=<lock flag>, empty body. Answer: answered or failed.
struct release
{
    std::string session;

    bool operator==(const release&) const = default;
};

// DELETE /v1/kv/<key>?cas=<cas>. Answer: answered or failed.
struct remove
{
    std::uint64_t cas = 0;

    bool operator==(const remove&) const = default;
};

// PUT /v1/session/renew/<session>. Answer: renewed or failed.
struct renew
{
    std::string session;

    bool operator==(const renew&) const = default;
};

// PUT /v1/session/destroy/<session>. Answer: answered or failed.
struct destroy_session
{
    std::string session;

    bool operator==(const destroy_session&) const = default;
};

// Answer: timer_fired (interrupted when the lane was interrupted first).
struct sleep
{
    std::chrono::milliseconds delay{0};

    bool operator==(const sleep&) const = default;
};

// Wait until interrupted. Answer: timer_fired.
struct wait
{
    bool operator==(const wait&) const = default;
};

// The lane ends. A renew or monitor driver then reports ended(lane) (also when it ended by an
// exception); main's done ends run().
struct done
{
    bool operator==(const done&) const = default;
};

}  // namespace lock_actions

using lock_action = std::variant<
    lock_actions::create_session,
    lock_actions::read_key,
    lock_actions::acquire,
    lock_actions::release,
    lock_actions::remove,
    lock_actions::renew,
    lock_actions::destroy_session,
    lock_actions::sleep,
    lock_actions::wait,
    lock_actions::done>;

enum class lock_log_level
{
    debug,
    info,
    warn,
    err,
};

// What the driver publishes, in order.
namespace lock_notes {

// A log line of component "lock".
struct log
{
    lock_log_level level = lock_log_level::info;
    std::string text;

    bool operator==(const log&) const = default;
};

// The lock was lost while held: kvship_lock_losses_total + 1.
struct loss
{
    bool operator==(const loss&) const = default;
};

// state() changed to `to` (kvship_lock_held, the on_change callback).
struct state
{
    lock_state to = lock_state::standby;

    bool operator==(const state&) const = default;
};

}  // namespace lock_notes

using lock_note = std::variant<lock_notes::log, lock_notes::loss, lock_notes::state>;

struct lock_step
{
    lock_action action = lock_actions::done{};  // the resumed lane's next (done for the other calls)
    std::vector<lock_note> notes;
    lock_lanes interrupt;  // interrupt these lanes' pending request, sleep or wait now
    lock_lanes start;      // start these lanes: resume them with lock_events::start
};

class lock_fsm
{
public:
    explicit lock_fsm(lock_params params);

    // Feeds a lane the answer to its last action (start first) at `now` (monotonic, never earlier
    // than a previous call's) and returns its next action. Throws std::logic_error on an answer the
    // lane cannot be waiting for (a driver bug).
    [[nodiscard]] lock_step resume(lock_lane lane, lock_time now, lock_event ev);

    // The renew or monitor lane's driver has finished.
    [[nodiscard]] lock_step ended(lock_lane lane);

    // Graceful end: let the lock go (release, cleanup, destroy), then main is done.
    [[nodiscard]] lock_step stop();

    // The lock counts as lost now (a fenced txn): while held, state() is lost when this returns.
    [[nodiscard]] lock_step lose(std::string why);

    [[nodiscard]] lock_state state() const { return state_; }

    [[nodiscard]] bool held() const { return state_ == lock_state::held; }

    // Acquisitions so far: a holding period is identified by the value while held.
    [[nodiscard]] std::uint64_t holds() const { return holds_; }

    // The current session id (empty: none).
    [[nodiscard]] const std::string& session() const { return session_; }

    [[nodiscard]] const lock_params& params() const { return params_; }

    // Why the lock failed (state failed).
    [[nodiscard]] const std::string& error() const { return error_; }

    // The renew or monitor lane was started and has not ended yet.
    [[nodiscard]] bool running(lock_lane lane) const;

private:
    enum class main_point
    {
        init,
        creating,        // create_session sent
        create_backoff,  // sleeping after a failed create
        contend_read,    // standby read sent
        contend_pause,   // sleeping 1 s after a failed read or acquire
        acquiring,       // acquire sent
        rechecking,      // read sent after acquire=false
        retry_pause,     // sleeping `retry` (lock-delay)
        holding,         // waiting while held
        joining,         // waiting for renew and monitor to end
        releasing,
        cleanup_read,
        cleanup_remove,
        destroying,
        finished,
    };

    // What the main lane is winding down for (join and let-go continue by it).
    enum class ending
    {
        none,
        session_gone,  // standby: the renewer gave up; a new session follows
        lost,
        shutdown,
    };

    enum class side_point
    {
        idle,
        init,
        sleeping,
        requesting,
        finished,
    };

    lock_action resume_main(lock_time now, lock_event& ev);
    lock_action resume_renew(lock_time now, lock_event& ev);
    lock_action resume_monitor(lock_event& ev);

    lock_action loop_top();
    lock_action contend_top();
    lock_action on_create(lock_time now, lock_event& ev);
    lock_action on_contend_read(lock_event& ev);
    lock_action on_acquire(lock_event& ev);
    lock_action on_recheck(lock_event& ev);
    lock_action on_let_go(lock_event& ev);
    lock_action pause(std::chrono::milliseconds d, main_point point);
    lock_action after_pause(main_point point, bool slept);
    lock_action hold();
    lock_action held_check();
    lock_action session_gone();
    lock_action shutdown();
    lock_action join();
    lock_action join_check();
    lock_action let_go(bool was_held, bool cleanup);
    lock_action destroy();
    lock_action after_let_go();
    lock_action after_lost();
    lock_action finish();

    lock_action renew_gone(std::string why);
    lock_action monitor_lost(std::string why);
    lock_action read_monitor();

    void start_renew(lock_time now);
    void start_monitor();
    void log(lock_log_level level, std::string text);
    void set_state(lock_state s);
    void declare_lost(const std::string& why);
    // Main is in a request or sleep that stop() and a gone session cut short.
    [[nodiscard]] bool main_abortable() const;
    // Main waits for a change (held, or for the other lanes to end).
    [[nodiscard]] bool main_waiting() const;
    lock_step take(lock_action a);

    lock_params params_;
    lock_step out_;  // the step being built

    lock_state state_ = lock_state::standby;
    std::uint64_t holds_ = 0;
    std::string error_;
    std::string session_;
    bool stopping_ = false;
    std::optional<std::string> lost_;          // lose() or the monitor
    std::optional<std::string> session_gone_;  // the renewer gave up

    // main
    main_point main_ = main_point::init;
    ending ending_ = ending::none;
    std::chrono::milliseconds backoff_{250};
    std::uint64_t index_ = 0;       // the standby read's index
    std::string announced_holder_;  // the holder last logged in this contention
    bool gone_at_loss_ = false;
    bool was_held_ = false;  // shutdown: the lock was held when the stop began
    bool cleanup_ = false;

    // renew
    side_point renew_ = side_point::idle;
    bool renew_running_ = false;
    bool renew_stop_ = false;
    std::string renew_id_;
    std::chrono::nanoseconds renew_ttl_{0};
    std::chrono::milliseconds renew_wait_{0};
    lock_time renew_last_{0};

    // monitor
    side_point monitor_ = side_point::idle;
    bool monitor_running_ = false;
    bool monitor_stop_ = false;
    std::string monitor_id_;
    std::uint64_t monitor_index_ = 0;
    unsigned monitor_retries_ = 0;
};

}  // namespace kvship::engine
