#include <engine/lock_fsm.hpp>
#include <engine/types.hpp>
#include <gotext/go_duration.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <stdexcept>
#include <utility>

namespace kvship::engine {

namespace {

using std::chrono::milliseconds;

constexpr milliseconds one_second{1000};
constexpr milliseconds first_backoff{250};

namespace act = lock_actions;
namespace ev = lock_events;

std::string short_id(std::string_view id)
{
    return std::string(id.substr(0, 8));
}

milliseconds half(std::chrono::nanoseconds ttl)
{
    return std::chrono::duration_cast<milliseconds>(ttl / 2);
}

[[noreturn]] void unexpected(std::string_view lane, std::string_view where)
{
    throw std::logic_error(fmt::format("lock_fsm: unexpected answer in lane {} at {}", lane, where));
}

}  // namespace

std::string_view to_string(lock_state s)
{
    switch (s) {
        case lock_state::standby:
            return "standby";
        case lock_state::held:
            return "held";
        case lock_state::lost:
            return "lost";
        case lock_state::failed:
            return "failed";
        case lock_state::stopped:
            return "stopped";
    }
    return "unknown";
}

std::string_view to_string(lock_lane l)
{
    switch (l) {
        case lock_lane::main:
            return "main";
        case lock_lane::renew:
            return "renew";
        case lock_lane::monitor:
            return "monitor";
    }
    return "unknown";
}

lock_fsm::lock_fsm(lock_params params) : params_(std::move(params)) {}

bool lock_fsm::running(lock_lane lane) const
{
    switch (lane) {
        case lock_lane::main:
            return main_ != main_point::init && main_ != main_point::finished;
        case lock_lane::renew:
            return renew_running_;
        case lock_lane::monitor:
            return monitor_running_;
    }
    return false;
}

bool lock_fsm::main_abortable() const
{
    switch (main_) {
        case main_point::creating:
        case main_point::create_backoff:
        case main_point::contend_read:
        case main_point::contend_pause:
        case main_point::acquiring:
        case main_point::rechecking:
        case main_point::retry_pause:
            return true;
        default:
            return false;
    }
}

bool lock_fsm::main_waiting() const
{
    return main_ == main_point::holding || main_ == main_point::joining;
}

lock_step lock_fsm::take(lock_action a)
{
    lock_step s = std::move(out_);
    out_ = lock_step{};
    s.action = std::move(a);
    return s;
}

void lock_fsm::log(lock_log_level level, std::string text)
{
    out_.notes.emplace_back(lock_notes::log{level, std::move(text)});
}

void lock_fsm::set_state(lock_state s)
{
    if (s == state_)
        return;
    state_ = s;
    out_.notes.emplace_back(lock_notes::state{s});
}

void lock_fsm::declare_lost(const std::string& why)
{
    if (state_ != lock_state::held)
        return;
    out_.notes.emplace_back(lock_notes::loss{});
    log(lock_log_level::err,
        fmt::format("lost lock {:?}: {}; replication stops, back to standby", params_.key, why));
    set_state(lock_state::lost);
}

// ---- calls from outside ------------------------------------------------------------------------

lock_step lock_fsm::stop()
{
    stopping_ = true;
    if (main_abortable() || main_waiting())
        out_.interrupt.main = true;
    return take(act::done{});
}

lock_step lock_fsm::lose(std::string why)
{
    declare_lost(why);
    if (!lost_)
        lost_ = std::move(why);
    if (main_waiting())
        out_.interrupt.main = true;
    return take(act::done{});
}

lock_step lock_fsm::ended(lock_lane lane)
{
    if (lane == lock_lane::renew)
        renew_running_ = false;
    else if (lane == lock_lane::monitor)
        monitor_running_ = false;
    if (main_waiting())
        out_.interrupt.main = true;
    return take(act::done{});
}

lock_step lock_fsm::resume(lock_lane lane, lock_time now, lock_event e)
{
    switch (lane) {
        case lock_lane::main:
            return take(resume_main(now, e));
        case lock_lane::renew:
            return take(resume_renew(now, e));
        case lock_lane::monitor:
            return take(resume_monitor(e));
    }
    return take(act::done{});
}

// ---- main lane ---------------------------------------------------------------------------------

lock_action lock_fsm::resume_main(lock_time now, lock_event& e)
{
    auto* fired = std::get_if<ev::timer_fired>(&e);
    switch (main_) {
        case main_point::init:
            if (!std::holds_alternative<ev::start>(e))
                unexpected("main", "init");
            return loop_top();
        case main_point::creating:
            return on_create(now, e);
        case main_point::create_backoff:
        case main_point::contend_pause:
        case main_point::retry_pause:
            if (!fired)
                unexpected("main", "a pause");
            return after_pause(main_, !fired->interrupted && !stopping_ && !session_gone_);
        case main_point::contend_read:
            return on_contend_read(e);
        case main_point::acquiring:
            return on_acquire(e);
        case main_point::rechecking:
            return on_recheck(e);
        case main_point::holding:
        case main_point::joining:
            if (!fired)
                unexpected("main", "a wait");
            return main_ == main_point::holding ? held_check() : join_check();
        case main_point::releasing:
        case main_point::cleanup_read:
        case main_point::cleanup_remove:
        case main_point::destroying:
            return on_let_go(e);
        case main_point::finished:
            break;
    }
    return act::done{};
}

lock_action lock_fsm::on_create(lock_time now, lock_event& e)
{
    if (auto* created = std::get_if<ev::session_created>(&e)) {
        session_ = std::move(created->id);
        session_gone_.reset();
        log(lock_log_level::debug,
            fmt::format("created lock session {} (ttl {})", session_, gotext::format_go_duration(params_.ttl))
        );
        start_renew(now);
        backoff_ = first_backoff;
        index_ = 0;
        announced_holder_.clear();
        return contend_top();
    }
    auto* failure = std::get_if<ev::failed>(&e);
    if (!failure)
        unexpected("main", "creating");
    if (!stopping_)
        log(lock_log_level::warn, fmt::format("creating the lock session: {}", failure->what));
    return pause(backoff_, main_point::create_backoff);
}

lock_action lock_fsm::on_acquire(lock_event& e)
{
    if (stopping_)
        return shutdown();
    if (auto* failure = std::get_if<ev::failed>(&e)) {
        log(lock_log_level::warn, fmt::format("acquiring lock {:?}: {}", params_.key, failure->what));
        index_ = 0;
        return pause(one_second, main_point::contend_pause);
    }
    auto* a = std::get_if<ev::answered>(&e);
    if (!a)
        unexpected("main", "acquiring");
    if (a->value)
        return hold();
    // Why not? Held by another session: block on it; else a lock-delay is in force.
    index_ = 0;
    main_ = main_point::rechecking;
    return act::read_key{index_, params_.wait, false};
}

lock_action lock_fsm::on_recheck(lock_event& e)
{
    auto* r = std::get_if<ev::key_read>(&e);
    if (!r && !std::holds_alternative<ev::failed>(e))
        unexpected("main", "rechecking");
    if (r && r->entry && !r->entry->session.empty()) {
        index_ = r->index;
        return contend_top();
    }
    log(lock_log_level::debug,
        fmt::format(
            "lock {:?} is free but could not be acquired (lock-delay); retrying in {} ms",
            params_.key,
            params_.retry.count()
        ));
    return pause(params_.retry, main_point::retry_pause);
}

// Release, cleanup, destroy: each failure is logged and the next step goes ahead.
lock_action lock_fsm::on_let_go(lock_event& e)
{
    auto* failure = std::get_if<ev::failed>(&e);
    auto* answer = std::get_if<ev::answered>(&e);
    auto* read = std::get_if<ev::key_read>(&e);
    bool const expected =
        failure || (main_ == main_point::cleanup_read ? read != nullptr : answer != nullptr);
    if (!expected)
        unexpected("main", "letting go");
    switch (main_) {
        case main_point::releasing:
            if (failure)
                log(lock_log_level::warn, fmt::format("releasing lock {:?}: {}", params_.key, failure->what));
            else if (answer->value)
                log(lock_log_level::info, fmt::format("released lock {:?}", params_.key));
            if (!cleanup_)
                return destroy();
            // consul lock's Destroy: delete the key when nobody holds it and it is still a lock key.
            main_ = main_point::cleanup_read;
            return act::read_key{};
        case main_point::cleanup_read:
            if (read && read->entry && read->entry->flags == lock_flag_value &&
                read->entry->session.empty()) {
                main_ = main_point::cleanup_remove;
                return act::remove{read->entry->modify_index};
            }
            return destroy();
        case main_point::cleanup_remove:
            if (failure)
                log(lock_log_level::warn,
                    fmt::format("cleaning up lock key {:?}: {}", params_.key, failure->what));
            return destroy();
        default:  // destroying
            if (failure)
                log(lock_log_level::warn,
                    fmt::format("destroying lock session {}: {}", short_id(session_), failure->what));
            return after_let_go();
    }
}

lock_action lock_fsm::loop_top()
{
    if (stopping_)
        return shutdown();
    if (session_.empty()) {
        main_ = main_point::creating;
        act::create_session c;
        c.name = params_.session_name;
        c.ttl = gotext::format_go_duration(params_.ttl);
        c.behavior = "release";
        if (params_.lock_delay)
            c.lock_delay = gotext::format_go_duration(*params_.lock_delay);
        return c;
    }
    return contend_top();
}

lock_action lock_fsm::contend_top()
{
    if (stopping_)
        return shutdown();
    if (session_gone_)
        return session_gone();
    main_ = main_point::contend_read;
    return act::read_key{index_, params_.wait, false};
}

lock_action lock_fsm::on_contend_read(lock_event& e)
{
    if (stopping_)
        return shutdown();
    if (session_gone_)
        return session_gone();
    if (auto* failure = std::get_if<ev::failed>(&e)) {
        log(lock_log_level::warn, fmt::format("reading lock key {:?}: {}", params_.key, failure->what));
        index_ = 0;
        return pause(one_second, main_point::contend_pause);
    }
    auto* r = std::get_if<ev::key_read>(&e);
    if (!r)
        unexpected("main", "contend_read");
    auto const& entry = r->entry;
    if (entry && entry->flags != lock_flag_value) {
        error_ = fmt::format(
            "existing key {:?} (flags {}) does not match lock use: a consul lock key has flags {}; "
            "choose another -lock prefix or remove the key",
            params_.key,
            entry->flags,
            lock_flag_value
        );
        set_state(lock_state::failed);
        return shutdown();
    }
    if (entry && entry->session == session_)
        return hold();
    if (entry && !entry->session.empty()) {
        if (announced_holder_ != entry->session) {
            log(lock_log_level::info,
                fmt::format("lock {:?} is held by session {}; standing by", params_.key, entry->session));
            announced_holder_ = entry->session;
        }
        index_ = r->index;
        return contend_top();
    }
    main_ = main_point::acquiring;
    return act::acquire{session_};
}

// Sleeps unless stopping or the session is gone (then goes on at once, as a cut-short sleep).
lock_action lock_fsm::pause(milliseconds d, main_point point)
{
    if (stopping_ || session_gone_)
        return after_pause(point, false);
    main_ = point;
    return act::sleep{d};
}

lock_action lock_fsm::after_pause(main_point point, bool slept)
{
    if (point == main_point::create_backoff) {
        if (slept)
            backoff_ = std::min(backoff_ * 2, params_.retry);
        return loop_top();
    }
    return contend_top();
}

lock_action lock_fsm::session_gone()
{
    log(lock_log_level::warn, fmt::format("{}; creating a new session", *session_gone_));
    ending_ = ending::session_gone;
    return join();
}

lock_action lock_fsm::hold()
{
    lost_.reset();
    ++holds_;
    log(lock_log_level::info, fmt::format("acquired lock {:?} (session {})", params_.key, session_));
    set_state(lock_state::held);
    start_monitor();
    return held_check();
}

lock_action lock_fsm::held_check()
{
    if (!stopping_ && !lost_ && !session_gone_ && monitor_running_) {
        main_ = main_point::holding;
        return act::wait{};
    }
    if (stopping_ && state_ == lock_state::held)
        return shutdown();  // graceful: the shutdown releases
    std::string const why = lost_ ? *lost_ : session_gone_ ? *session_gone_ : "the monitor ended";
    declare_lost(why);
    gone_at_loss_ = session_gone_.has_value();
    ending_ = ending::lost;
    return join();
}

lock_action lock_fsm::shutdown()
{
    was_held_ = state_ == lock_state::held;
    ending_ = ending::shutdown;
    return join();
}

lock_action lock_fsm::join()
{
    renew_stop_ = true;
    monitor_stop_ = true;
    out_.interrupt.renew = renew_running_;
    out_.interrupt.monitor = monitor_running_;
    return join_check();
}

lock_action lock_fsm::join_check()
{
    if (renew_running_ || monitor_running_) {
        main_ = main_point::joining;
        return act::wait{};
    }
    switch (ending_) {
        case ending::session_gone:
            session_.clear();
            session_gone_.reset();
            ending_ = ending::none;
            return loop_top();
        case ending::lost:
            if (!gone_at_loss_)
                return let_go(true, false);  // release at once: no lock-delay for the next holder
            return after_lost();
        case ending::shutdown:
            return let_go(was_held_, was_held_);
        case ending::none:
            break;
    }
    return loop_top();
}

lock_action lock_fsm::let_go(bool was_held, bool cleanup)
{
    cleanup_ = cleanup;
    if (session_.empty())
        return after_let_go();
    if (!was_held)
        return destroy();
    main_ = main_point::releasing;
    return act::release{session_};
}

lock_action lock_fsm::destroy()
{
    main_ = main_point::destroying;
    return act::destroy_session{session_};
}

lock_action lock_fsm::after_let_go()
{
    if (ending_ == ending::lost)
        return after_lost();
    return finish();
}

lock_action lock_fsm::after_lost()
{
    session_.clear();
    session_gone_.reset();
    lost_.reset();
    ending_ = ending::none;
    if (!stopping_)
        set_state(lock_state::standby);
    return loop_top();
}

lock_action lock_fsm::finish()
{
    session_.clear();
    if (state_ != lock_state::failed)
        set_state(lock_state::stopped);
    ending_ = ending::none;
    main_ = main_point::finished;
    return act::done{};
}

// ---- renew lane --------------------------------------------------------------------------------

void lock_fsm::start_renew(lock_time now)
{
    renew_ = side_point::init;
    renew_running_ = true;
    renew_stop_ = false;
    renew_id_ = session_;
    renew_ttl_ = params_.ttl;
    renew_wait_ = half(renew_ttl_);
    renew_last_ = now;
    out_.start.renew = true;
}

lock_action lock_fsm::resume_renew(lock_time now, lock_event& e)
{
    switch (renew_) {
        case side_point::init:
            if (!std::holds_alternative<ev::start>(e))
                unexpected("renew", "init");
            renew_ = side_point::sleeping;
            return act::sleep{renew_wait_};

        case side_point::sleeping: {
            auto* fired = std::get_if<ev::timer_fired>(&e);
            if (!fired)
                unexpected("renew", "sleeping");
            if (fired->interrupted || renew_stop_) {
                renew_ = side_point::finished;
                return act::done{};
            }
            renew_ = side_point::requesting;
            return act::renew{renew_id_};
        }

        case side_point::requesting:
            if (renew_stop_) {
                renew_ = side_point::finished;
                return act::done{};
            }
            if (auto* failure = std::get_if<ev::failed>(&e)) {
                if (failure->not_found)
                    return renew_gone(fmt::format(
                        "lock session {} expired or was destroyed (renew answered 404)", renew_id_
                    ));
                log(lock_log_level::warn,
                    fmt::format(
                        "renewing lock session {}: {}; retrying in 1s", short_id(renew_id_), failure->what
                    ));
                renew_wait_ = one_second;
                if (now - renew_last_ > renew_ttl_)
                    return renew_gone(fmt::format(
                        "lock session {} could not be renewed for a whole TTL ({})",
                        renew_id_,
                        gotext::format_go_duration(renew_ttl_)
                    ));
                renew_ = side_point::sleeping;
                return act::sleep{renew_wait_};
            }
            if (auto* r = std::get_if<ev::renewed>(&e)) {
                if (auto server_ttl = gotext::parse_go_duration(r->ttl);
                    server_ttl && server_ttl->count() > 0)
                    renew_ttl_ = *server_ttl;
                renew_wait_ = half(renew_ttl_);
                renew_last_ = now;
                renew_ = side_point::sleeping;
                return act::sleep{renew_wait_};
            }
            unexpected("renew", "requesting");

        case side_point::idle:
        case side_point::finished:
            break;
    }
    return act::done{};
}

lock_action lock_fsm::renew_gone(std::string why)
{
    session_gone_ = std::move(why);
    if (main_abortable() || main_waiting())
        out_.interrupt.main = true;
    renew_ = side_point::finished;
    return act::done{};
}

// ---- monitor lane ------------------------------------------------------------------------------

void lock_fsm::start_monitor()
{
    monitor_ = side_point::init;
    monitor_running_ = true;
    monitor_stop_ = false;
    monitor_id_ = session_;
    monitor_index_ = 0;
    monitor_retries_ = params_.monitor_retries;
    out_.start.monitor = true;
}

lock_action lock_fsm::read_monitor()
{
    monitor_ = side_point::requesting;
    return act::read_key{monitor_index_, params_.monitor_wait, true};
}

lock_action lock_fsm::resume_monitor(lock_event& e)
{
    switch (monitor_) {
        case side_point::init:
            if (!std::holds_alternative<ev::start>(e))
                unexpected("monitor", "init");
            return read_monitor();

        case side_point::requesting: {
            if (monitor_stop_) {
                monitor_ = side_point::finished;
                return act::done{};
            }
            if (auto* failure = std::get_if<ev::failed>(&e)) {
                if (monitor_retries_ > 0 && failure->retryable) {
                    --monitor_retries_;
                    log(lock_log_level::warn,
                        fmt::format("watching lock {:?}: {}; retrying in 1s", params_.key, failure->what));
                    monitor_ = side_point::sleeping;
                    return act::sleep{one_second};
                }
                return monitor_lost(fmt::format("watching the lock key failed: {}", failure->what));
            }
            auto* r = std::get_if<ev::key_read>(&e);
            if (!r)
                unexpected("monitor", "requesting");
            auto const& entry = r->entry;
            if (entry && entry->session == monitor_id_) {
                monitor_index_ = r->index;
                monitor_retries_ = params_.monitor_retries;
                return read_monitor();
            }
            if (!entry)
                return monitor_lost("the lock key was deleted");
            if (entry->session.empty())
                return monitor_lost("the lock key was released (session invalidated?)");
            return monitor_lost(fmt::format("the lock key is now held by session {}", entry->session));
        }

        case side_point::sleeping: {
            auto* fired = std::get_if<ev::timer_fired>(&e);
            if (!fired)
                unexpected("monitor", "sleeping");
            if (fired->interrupted || monitor_stop_) {
                monitor_ = side_point::finished;
                return act::done{};
            }
            monitor_index_ = 0;
            return read_monitor();
        }

        case side_point::idle:
        case side_point::finished:
            break;
    }
    return act::done{};
}

lock_action lock_fsm::monitor_lost(std::string why)
{
    if (!lost_)
        lost_ = std::move(why);
    if (main_waiting())
        out_.interrupt.main = true;
    monitor_ = side_point::finished;
    return act::done{};
}

}  // namespace kvship::engine
