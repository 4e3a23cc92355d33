#include "lock.hpp"
#include "guarded.hpp"

#include <engine/types.hpp>

#include <boost/asio/co_spawn.hpp>

#include <chrono>
#include <utility>

namespace kvship::replicate {

namespace {

using clock = std::chrono::steady_clock;
namespace act = engine::lock_actions;
namespace ev = engine::lock_events;

engine::lock_time now()
{
    return std::chrono::duration_cast<engine::lock_time>(clock::now().time_since_epoch());
}

log_level level_of(engine::lock_log_level l)
{
    switch (l) {
        case engine::lock_log_level::debug:
            return log_level::debug;
        case engine::lock_log_level::info:
            return log_level::info;
        case engine::lock_log_level::warn:
            return log_level::warn;
        case engine::lock_log_level::err:
            return log_level::err;
    }
    return log_level::err;
}

ev::failed failure(const transport::consul_error& e)
{
    return {e.what(), e == transport::errc::not_found, transport::is_retryable(e)};
}

}  // namespace

lock_manager::lock_manager(
    asio::any_io_executor ex,
    transport::consul_client& client,
    lock_params params,
    const logger& log,
    metrics_registry& metrics
)
    : ex_(ex),
      client_(client),
      log_(log),
      metrics_(metrics),
      fsm_(std::move(params)),
      main_(ex),
      renew_(ex),
      monitor_(ex)
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
    op.key = key();
    op.session = fsm_.session();
    return op;
}

void lock_manager::stop()
{
    (void)apply(fsm_.stop());
}

void lock_manager::lose(std::string why)
{
    (void)apply(fsm_.lose(std::move(why)));
}

awaitable<void> lock_manager::run()
{
    auto main = drive(engine::lock_lane::main);
    co_await std::move(main);
}

lock_manager::lane_io& lock_manager::io(engine::lock_lane lane)
{
    switch (lane) {
        case engine::lock_lane::renew:
            return renew_;
        case engine::lock_lane::monitor:
            return monitor_;
        case engine::lock_lane::main:
            break;
    }
    return main_;
}

// Publishes a step's notes, interrupts and starts the lanes it names, and hands back its action.
// An interrupt finds its lane suspended in its one pending operation: calls into the machine come
// from other coroutines and completion handlers of this single-threaded io_context (on_change must
// not call back), never while that lane is between two steps.
engine::lock_action lock_manager::apply(engine::lock_step step)
{
    for (auto const& note : step.notes) {
        if (auto const* l = std::get_if<engine::lock_notes::log>(&note)) {
            log_.write(level_of(l->level), "lock", l->text);
        } else if (std::holds_alternative<engine::lock_notes::loss>(note)) {
            metrics_.add(metric::lock_losses, {});
        } else if (auto const* s = std::get_if<engine::lock_notes::state>(&note)) {
            metrics_.set(metric::lock_held, {}, s->to == lock_state::held ? 1 : 0);
            if (on_change_)
                on_change_();
        }
    }
    auto interrupt = [](lane_io& l) {
        l.cancel.emit(asio::cancellation_type::terminal);
        l.timer.cancel();
    };
    if (step.interrupt.main)
        interrupt(main_);
    if (step.interrupt.renew)
        interrupt(renew_);
    if (step.interrupt.monitor)
        interrupt(monitor_);
    if (step.start.renew)
        spawn(engine::lock_lane::renew);
    if (step.start.monitor)
        spawn(engine::lock_lane::monitor);
    return std::move(step.action);
}

void lock_manager::spawn(engine::lock_lane lane)
{
    auto task = drive(lane);
    auto ended = [this, lane](std::exception_ptr) { (void)apply(fsm_.ended(lane)); };
    asio::co_spawn(ex_, std::move(task), std::move(ended));
}

awaitable<void> lock_manager::drive(engine::lock_lane lane)
{
    engine::lock_event answer = ev::start{};
    for (;;) {
        auto action = apply(fsm_.resume(lane, now(), std::move(answer)));
        if (std::holds_alternative<act::done>(action))
            co_return;
        auto op = perform(std::move(action), io(lane));
        auto next = co_await std::move(op);
        answer = std::move(next);
    }
}

// The one call an action (other than done) names, and its answer. The lane's signal cancels its
// requests; its timer serves sleep and wait.
awaitable<engine::lock_event> lock_manager::perform(engine::lock_action a, lane_io& io)
{
    std::string const local_dc;
    std::string const& key = fsm_.params().key;
    if (auto* c = std::get_if<act::create_session>(&a)) {
        transport::session_params p;
        p.name = c->name;
        p.ttl = c->ttl;
        p.behavior = c->behavior;
        p.lock_delay = c->lock_delay;
        auto r = co_await guarded(&io.cancel, client_.session_create(p, local_dc));
        if (!r)
            co_return failure(r.error());
        co_return ev::session_created{*r};
    }
    if (auto* k = std::get_if<act::read_key>(&a)) {
        transport::query_options q;
        q.index = k->index;
        q.wait = k->wait;
        if (k->consistent)
            q.mode = transport::consistency::consistent;
        auto r = co_await guarded(&io.cancel, client_.get(key, q));
        if (!r)
            co_return failure(r.error());
        ev::key_read read{r->index, std::nullopt};
        if (auto const& e = r->entry)
            read.entry = engine::lock_key_entry{e->flags, e->session, e->modify_index};
        co_return read;
    }
    if (std::holds_alternative<act::acquire>(a) || std::holds_alternative<act::release>(a)) {
        transport::put_options o;
        if (auto* acq = std::get_if<act::acquire>(&a))
            o.acquire = acq->session;
        else
            o.release = std::get<act::release>(a).session;
        o.flags = engine::lock_flag_value;
        std::string const empty;
        auto r = co_await guarded(&io.cancel, client_.put(key, empty, o));
        if (!r)
            co_return failure(r.error());
        co_return ev::answered{*r};
    }
    if (auto* rm = std::get_if<act::remove>(&a)) {
        std::optional<std::uint64_t> const cas = rm->cas;
        auto r = co_await guarded(&io.cancel, client_.remove(key, cas, local_dc));
        if (!r)
            co_return failure(r.error());
        co_return ev::answered{*r};
    }
    if (auto* rn = std::get_if<act::renew>(&a)) {
        auto r = co_await guarded(&io.cancel, client_.session_renew(rn->session, local_dc));
        if (!r)
            co_return failure(r.error());
        co_return ev::renewed{*r};
    }
    if (auto* d = std::get_if<act::destroy_session>(&a)) {
        auto r = co_await guarded(&io.cancel, client_.session_destroy(d->session, local_dc));
        if (!r)
            co_return failure(r.error());
        co_return ev::answered{*r};
    }
    if (auto* s = std::get_if<act::sleep>(&a))
        io.timer.expires_after(s->delay);
    else
        io.timer.expires_at(clock::time_point::max());  // act::wait
    auto [ec] = co_await io.timer.async_wait(nothrow_awaitable);
    co_return ev::timer_fired{static_cast<bool>(ec)};
}

}  // namespace kvship::replicate
