#include "replicator_parts.hpp"

namespace kvship::replicate {

using namespace driver_detail;

pair_replicator::pair_replicator(
    transport::consul_client& source,
    transport::consul_client& destination,
    pair_params params,
    txn_limit& limit,
    const logger& log,
    metrics_registry& metrics,
    std::FILE* plan_out
)
    : source_(source),
      params_(std::move(params)),
      log_(log),
      metrics_(metrics),
      books_(params_.label, params_.fsm, params_.dry_run, log, metrics),
      writer_(
          destination,
          writer_settings(params_, plan_out),
          limit,
          log,
          metrics,
          destination_writer::hooks{
              [this](const engine::batch& b, std::size_t from, std::size_t to) {
                  books_.committed(b, from, to);
                  destination_reader_.committed(std::span<const engine::txn_op>(b.ops).subspan(from, to - from));
              },
              [this] { abort(); },
              [this] { return stopping_; }}
      ),
      destination_reader_(destination, destination_settings(params_), read_cancel_, log, metrics),
      source_reader_(source, source_settings(params_, [this] { return stopping_; }), read_cancel_, log)
{
}

void pair_replicator::request_stop()
{
    stopping_ = true;
    read_cancel_.emit(asio::cancellation_type::terminal);
    if (timer_)
        timer_->cancel();
    if (watch_)
        watch_->wake();
    if (stream_)
        stream_->wake();
}

void pair_replicator::abort()
{
    request_stop();
    writer_.abort();
}

awaitable<std::optional<std::string>> pair_replicator::run()
{
    auto ex = co_await asio::this_coro::executor;
    timer_.emplace(ex);

    // The lag callbacks point at the books; once run() ends, freeze them as plain values.
    struct freeze_lag
    {
        pair_books& books;

        ~freeze_lag() { books.freeze(); }
    } const freeze{books_};

    if (params_.fsm.lost_found && !params_.dry_run) {
        // A gated pair: the source's own record bounds what a turn must save (lost_found.hpp).
        auto load = load_source_record(source_, *params_.fsm.lost_found, params_.fsm.rule.status_key);
        (void)co_await guarded(&read_cancel_, std::move(load));
        if (stopping_) {
            books_.finished();
            co_return std::nullopt;
        }
    }
    engine::replicator_fsm fsm(params_.fsm);
    engine::replicator_event ev = engine::event::start{};
    for (;;) {
        if (stopping_)
            ev = engine::event::stop{};
        if (!params_.retry_enabled) {
            if (auto* f = std::get_if<engine::event::failed>(&ev)) {
                books_.finished();
                co_return f->what;
            }
        }
        fsm.set_limits(writer_.limits(params_.fsm.limits.max_value_bytes));  // a 413 taught a limit, or the fence op's room changed
        auto act = fsm.resume(std::move(ev));
        if (auto rep = fsm.take_report())
            books_.round(*rep);
        // Also a new source index whose entries equal the last round's: nothing to apply, the
        // destination already mirrors that index.
        books_.applied(fsm.applied_index());

        if (auto* done = std::get_if<engine::action::done>(&act)) {
            co_await close_stream();
            co_await stop_watches();
            books_.finished();
            co_return done->error;
        }
        if (auto* rs = std::get_if<engine::action::read_source>(&act)) {
            using way = engine::source_read_way;
            auto how = engine::choose_source_read(rs->index, watch_ != nullptr, grouping_wanted(fsm));
            if (how == way::start_watches)
                how = start_watches(fsm) ? way::delta : way::whole;
            if (how == way::regroup) {
                co_await stop_watches();
                next_full_reason_ = engine::full_read_reason::regroup;
                ev = engine::event::source_reset{};
            } else if (how == way::delta) {
                auto step = next_delta();
                ev = co_await std::move(step);
            } else {
                co_await stop_watches();
                auto step = read_source(rs->index);
                ev = co_await std::move(step);
                if (rs->index > 0)
                    group_blocked_ = false;
            }
        } else if (std::holds_alternative<engine::action::begin_stream>(act)) {
            co_await stop_watches();
            begin_full_read();
            auto step = read_destination({});
            ev = co_await std::move(step);
        } else if (std::holds_alternative<engine::action::stream_source>(act)) {
            start_stream();
            auto step = next_stream_event();
            ev = co_await std::move(step);
        } else if (std::holds_alternative<engine::action::read_chunk>(act)) {
            auto step = next_stream_event();
            ev = co_await std::move(step);
        } else if (auto* ap = std::get_if<engine::action::apply_puts>(&act)) {
            auto step = queue_puts(std::move(ap->ops));
            ev = co_await std::move(step);
        } else if (auto* rd = std::get_if<engine::action::read_destination>(&act)) {
            auto step = read_destination(rd->ranges);
            ev = co_await std::move(step);
        } else if (auto* ab = std::get_if<engine::action::apply_batch>(&act)) {
            auto step = apply_batch(ab->batches, ab->number, ab->count);
            ev = co_await std::move(step);
        } else if (auto* sl = std::get_if<engine::action::sleep>(&act)) {
            auto const ms = std::chrono::duration_cast<std::chrono::milliseconds>(sl->delay);
            log_.warn(
                "view", "{} (retry attempt {} after \"{}\")", books_.last_failure(), books_.failures(), format_go_duration(ms)
            );
            auto step = sleep(sl->delay);
            ev = co_await std::move(step);
        }
    }
}

engine::replicator_event pair_replicator::fail(std::string_view kind, std::string what)
{
    books_.failed(kind, what);
    // After a failure nothing is known for sure about the destination (a timed-out txn may have
    // committed): read it again.
    destination_reader_.forget();
    return engine::event::failed{std::move(what)};
}

awaitable<engine::replicator_event> pair_replicator::sleep(std::chrono::nanoseconds delay)
{
    if (stopping_)
        co_return engine::event::stop{};
    timer_->expires_after(delay);
    auto [ec] = co_await timer_->async_wait(nothrow_awaitable);
    if (ec || stopping_)
        co_return engine::event::stop{};
    co_return engine::event::timer_fired{};
}

}  // namespace kvship::replicate
