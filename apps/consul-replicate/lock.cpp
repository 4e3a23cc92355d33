#include "lock.hpp"
#include "guarded.hpp"

#include <engine/types.hpp>
#include <replicate/duration.hpp>
#include <gotext/go_duration.hpp>

#include <boost/asio/bind_cancellation_slot.hpp>

#include <utility>

namespace kvship::replicate {

namespace {

using clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr milliseconds one_second{1000};

std::string short_id(std::string_view id)
{
    return std::string(id.substr(0, 8));
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

lock_manager::lock_manager(
    asio::any_io_executor ex,
    transport::consul_client& client,
    lock_params params,
    const logger& log,
    metrics_registry& metrics
)
    : ex_(ex),
      client_(client),
      params_(std::move(params)),
      log_(log),
      metrics_(metrics),
      wake_(ex),
      sleep_(ex),
      renew_timer_(ex),
      monitor_timer_(ex)
{
    metrics_.set(metric::lock_held, {}, 0);
    metrics_.add(metric::lock_losses, {}, 0);
    metrics_.add(metric::fenced_batches, {}, 0);
}

std::optional<transport::txn_op> lock_manager::fence_op() const
{
    if (!held())
        return std::nullopt;
    transport::txn_op op;
    op.verb = transport::txn_verb::check_session;
    op.key = params_.key;
    op.session = session_;
    return op;
}

void lock_manager::wake()
{
    wake_.cancel();
}

void lock_manager::set_state(lock_state s)
{
    if (s == state_)
        return;
    state_ = s;
    metrics_.set(metric::lock_held, {}, s == lock_state::held ? 1 : 0);
    if (on_change_)
        on_change_();
}

void lock_manager::declare_lost(const std::string& why)
{
    if (state_ != lock_state::held)
        return;
    metrics_.add(metric::lock_losses, {});
    log_.err("lock", "lost lock {:?}: {}; replication stops, back to standby", params_.key, why);
    set_state(lock_state::lost);
}

void lock_manager::stop()
{
    stopping_ = true;
    read_cancel_.emit(asio::cancellation_type::terminal);
    sleep_.cancel();
    wake();
}

void lock_manager::lose(std::string why)
{
    if (!lost_)
        lost_ = why;
    declare_lost(why);
    wake();
}

awaitable<void> lock_manager::wait_wake()
{
    wake_.expires_at(clock::time_point::max());
    co_await wake_.async_wait(nothrow_awaitable);
}

awaitable<bool> lock_manager::pause(milliseconds d)
{
    if (stopping_ || session_gone_)
        co_return false;
    sleep_.expires_after(d);
    auto [ec] = co_await sleep_.async_wait(nothrow_awaitable);
    co_return !ec && !stopping_ && !session_gone_;
}

awaitable<void> lock_manager::run()
{
    milliseconds backoff{250};
    while (!stopping_) {
        if (session_.empty()) {
            auto create = create_session();
            auto created = co_await std::move(create);
            if (!created) {
                auto wait = pause(backoff);
                bool const slept = co_await std::move(wait);
                if (!slept)
                    continue;
                backoff = std::min(backoff * 2, params_.retry);
                continue;
            }
            backoff = milliseconds{250};
        }

        auto contention = contend();
        auto const got = co_await std::move(contention);
        if (got == contend_result::conflict) {
            set_state(lock_state::failed);
            break;
        }
        if (got == contend_result::session_gone) {
            log_.warn("lock", "{}; creating a new session", *session_gone_);
            auto join = join_tasks();
            co_await std::move(join);
            session_.clear();
            session_gone_.reset();
            continue;
        }
        if (got == contend_result::stopping)
            break;

        // Held.
        lost_.reset();
        ++holds_;
        log_.info("lock", "acquired lock {:?} (session {})", params_.key, session_);
        set_state(lock_state::held);
        monitor_stop_ = false;
        monitor_running_ = true;
        auto monitor = monitor_loop(session_);
        auto monitor_done = [this](std::exception_ptr) {
            monitor_running_ = false;
            wake();
        };
        asio::co_spawn(ex_, std::move(monitor), std::move(monitor_done));
        while (!stopping_ && !lost_ && !session_gone_ && monitor_running_) {
            auto w = wait_wake();
            co_await std::move(w);
        }
        if (stopping_ && state_ == lock_state::held)
            break;  // graceful: the shutdown below releases
        std::string const why = lost_ ? *lost_ : session_gone_ ? *session_gone_ : "the monitor ended";
        declare_lost(why);
        bool const gone = session_gone_.has_value();
        auto join = join_tasks();
        co_await std::move(join);
        if (!gone) {
            auto release = let_go(true, false);  // release at once: no lock-delay for the next holder
            co_await std::move(release);
        }
        session_.clear();
        session_gone_.reset();
        lost_.reset();
        if (!stopping_)
            set_state(lock_state::standby);
    }

    bool const was_held = state_ == lock_state::held;
    auto join = join_tasks();
    co_await std::move(join);
    auto release = let_go(was_held, was_held);
    co_await std::move(release);
    session_.clear();
    if (state_ != lock_state::failed)
        set_state(lock_state::stopped);
}

awaitable<bool> lock_manager::create_session()
{
    transport::session_params p;
    p.name = params_.session_name;
    p.ttl = format_go_duration(params_.ttl);
    p.behavior = "release";
    if (params_.lock_delay)
        p.lock_delay = format_go_duration(*params_.lock_delay);
    std::string const local_dc;
    auto op = client_.session_create(p, local_dc);
    auto r = co_await guarded(&read_cancel_, std::move(op));
    if (!r) {
        if (!stopping_)
            log_.warn("lock", "creating the lock session: {}", r.error().what());
        co_return false;
    }
    session_ = *r;
    session_gone_.reset();
    log_.debug("lock", "created lock session {} (ttl {})", session_, p.ttl);
    renew_stop_ = false;
    renew_running_ = true;
    auto renew = renew_loop(session_, params_.ttl);
    auto renew_done = [this](std::exception_ptr) {
        renew_running_ = false;
        wake();
    };
    asio::co_spawn(ex_, std::move(renew), std::move(renew_done));
    co_return true;
}

awaitable<lock_manager::contend_result> lock_manager::contend()
{
    transport::query_options q;
    q.wait = params_.wait;
    std::string announced_holder;
    for (;;) {
        if (stopping_)
            co_return contend_result::stopping;
        if (session_gone_)
            co_return contend_result::session_gone;
        auto get_op = client_.get(params_.key, q);
        auto r = co_await guarded(&read_cancel_, std::move(get_op));
        if (stopping_)
            co_return contend_result::stopping;
        if (session_gone_)
            co_return contend_result::session_gone;
        if (!r) {
            log_.warn("lock", "reading lock key {:?}: {}", params_.key, r.error().what());
            q.index = 0;
            auto wait = pause(one_second);
            co_await std::move(wait);
            continue;
        }
        auto const& e = r->entry;
        if (e && e->flags != engine::lock_flag_value) {
            error_ = fmt::format(
                "existing key {:?} (flags {}) does not match lock use: a consul lock key has flags {}; "
                "choose another -lock prefix or remove the key",
                params_.key,
                e->flags,
                engine::lock_flag_value
            );
            co_return contend_result::conflict;
        }
        if (e && e->session == session_)
            co_return contend_result::acquired;
        if (e && !e->session.empty()) {
            if (announced_holder != e->session) {
                log_.info("lock", "lock {:?} is held by session {}; standing by", params_.key, e->session);
                announced_holder = e->session;
            }
            q.index = r->index;
            continue;
        }

        transport::put_options o;
        o.acquire = session_;
        o.flags = engine::lock_flag_value;
        std::string const empty;
        auto put_op = client_.put(params_.key, empty, o);
        auto a = co_await guarded(&read_cancel_, std::move(put_op));
        if (stopping_)
            co_return contend_result::stopping;
        if (!a) {
            log_.warn("lock", "acquiring lock {:?}: {}", params_.key, a.error().what());
            q.index = 0;
            auto wait = pause(one_second);
            co_await std::move(wait);
            continue;
        }
        if (*a)
            co_return contend_result::acquired;

        // Why not? Held by another session: block on it; else a lock-delay is in force.
        q.index = 0;
        auto again_op = client_.get(params_.key, q);
        auto again = co_await guarded(&read_cancel_, std::move(again_op));
        if (again && again->entry && !again->entry->session.empty()) {
            q.index = again->index;
            continue;
        }
        log_.debug(
            "lock",
            "lock {:?} is free but could not be acquired (lock-delay); retrying in {} ms",
            params_.key,
            params_.retry.count()
        );
        auto wait = pause(params_.retry);
        co_await std::move(wait);
    }
}

awaitable<void> lock_manager::renew_loop(std::string id, std::chrono::nanoseconds ttl)
{
    auto wait = std::chrono::duration_cast<milliseconds>(ttl / 2);
    auto last = clock::now();
    std::string why;
    for (;;) {
        if (clock::now() - last > ttl) {
            why = fmt::format(
                "lock session {} could not be renewed for a whole TTL ({})", id, format_go_duration(ttl)
            );
            break;
        }
        renew_timer_.expires_after(wait);
        auto [ec] = co_await renew_timer_.async_wait(nothrow_awaitable);
        if (ec || renew_stop_)
            co_return;
        std::string const local_dc;
        auto op = client_.session_renew(id, local_dc);
        auto r = co_await guarded(&renew_cancel_, std::move(op));
        if (renew_stop_)
            co_return;
        if (!r) {
            if (r.error() == transport::errc::not_found) {
                why = fmt::format("lock session {} expired or was destroyed (renew answered 404)", id);
                break;
            }
            log_.warn("lock", "renewing lock session {}: {}; retrying in 1s", short_id(id), r.error().what());
            wait = milliseconds{1000};
            continue;
        }
        if (auto server_ttl = gotext::parse_go_duration(*r); server_ttl && server_ttl->count() > 0)
            ttl = *server_ttl;
        wait = std::chrono::duration_cast<milliseconds>(ttl / 2);
        last = clock::now();
    }
    session_gone_ = why;
    read_cancel_.emit(asio::cancellation_type::terminal);
    sleep_.cancel();
    wake();
}

awaitable<void> lock_manager::monitor_loop(std::string id)
{
    transport::query_options q;
    q.mode = transport::consistency::consistent;
    q.wait = params_.monitor_wait;
    unsigned retries = params_.monitor_retries;
    std::string why;
    for (;;) {
        auto op = client_.get(params_.key, q);
        auto r = co_await guarded(&monitor_cancel_, std::move(op));
        if (monitor_stop_)
            co_return;
        if (!r) {
            if (retries > 0 && transport::is_retryable(r.error())) {
                --retries;
                log_.warn("lock", "watching lock {:?}: {}; retrying in 1s", params_.key, r.error().what());
                monitor_timer_.expires_after(milliseconds{1000});
                auto [ec] = co_await monitor_timer_.async_wait(nothrow_awaitable);
                if (ec || monitor_stop_)
                    co_return;
                q.index = 0;
                continue;
            }
            why = fmt::format("watching the lock key failed: {}", r.error().what());
            break;
        }
        auto const& e = r->entry;
        if (e && e->session == id) {
            q.index = r->index;
            retries = params_.monitor_retries;
            continue;
        }
        if (!e)
            why = "the lock key was deleted";
        else if (e->session.empty())
            why = "the lock key was released (session invalidated?)";
        else
            why = fmt::format("the lock key is now held by session {}", e->session);
        break;
    }
    if (!lost_)
        lost_ = why;
    wake();
}

awaitable<void> lock_manager::join_tasks()
{
    renew_stop_ = true;
    monitor_stop_ = true;
    renew_timer_.cancel();
    monitor_timer_.cancel();
    renew_cancel_.emit(asio::cancellation_type::terminal);
    monitor_cancel_.emit(asio::cancellation_type::terminal);
    while (renew_running_ || monitor_running_) {
        auto w = wait_wake();
        co_await std::move(w);
    }
}

awaitable<void> lock_manager::let_go(bool was_held, bool cleanup)
{
    if (session_.empty())
        co_return;
    if (was_held) {
        transport::put_options o;
        o.release = session_;
        o.flags = engine::lock_flag_value;
        std::string const empty;
        auto release_op = client_.put(params_.key, empty, o);
        auto released = co_await std::move(release_op);
        if (!released)
            log_.warn("lock", "releasing lock {:?}: {}", params_.key, released.error().what());
        else if (*released)
            log_.info("lock", "released lock {:?}", params_.key);
        if (cleanup) {
            // consul lock's Destroy: delete the key when nobody holds it and it is still a lock key.
            transport::query_options const q;
            auto get_op = client_.get(params_.key, q);
            auto got = co_await std::move(get_op);
            if (got && got->entry && got->entry->flags == engine::lock_flag_value && got->entry->session.empty()) {
                std::optional<std::uint64_t> const cas = got->entry->modify_index;
                std::string const local_dc;
                auto remove_op = client_.remove(params_.key, cas, local_dc);
                auto removed = co_await std::move(remove_op);
                if (!removed)
                    log_.warn("lock", "cleaning up lock key {:?}: {}", params_.key, removed.error().what());
            }
        }
    }
    std::string const local_dc;
    auto destroy_op = client_.session_destroy(session_, local_dc);
    auto destroyed = co_await std::move(destroy_op);
    if (!destroyed)
        log_.warn("lock", "destroying lock session {}: {}", short_id(session_), destroyed.error().what());
}

}  // namespace kvship::replicate
