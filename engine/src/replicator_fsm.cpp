#include <engine/replicator_fsm.hpp>

#include <stdexcept>
#include <utility>

namespace kvship::engine {

replicator_fsm::replicator_fsm(replicator_config config) : config_(std::move(config)) {}

replicator_action replicator_fsm::resume(replicator_event ev)
{
    if (state_ == state::finished)
        return action::done{};
    if (std::holds_alternative<event::stop>(ev))
        return finish(std::nullopt);

    switch (state_) {
        case state::idle:
            if (std::holds_alternative<event::start>(ev))
                return read_source();
            break;
        case state::reading_source:
            if (auto* e = std::get_if<event::source_read>(&ev))
                return on_source(std::move(e->src));
            if (auto* e = std::get_if<event::failed>(&ev)) {
                retry_ = retry_target::source;
                return on_failure(std::move(e->what));
            }
            break;
        case state::reading_destination:
            if (auto* e = std::get_if<event::destination_read>(&ev))
                return on_destination(std::move(e->dst), e->prev);
            if (auto* e = std::get_if<event::failed>(&ev)) {
                retry_ = retry_target::destination;
                return on_failure(std::move(e->what));
            }
            break;
        case state::applying:
            if (std::holds_alternative<event::batch_applied>(ev)) {
                ++next_batch_;
                return next_batch_or_finish();
            }
            if (auto* e = std::get_if<event::failed>(&ev)) {
                retry_ = retry_target::destination;
                return on_failure(std::move(e->what));
            }
            break;
        case state::sleeping:
            if (std::holds_alternative<event::timer_fired>(ev))
                return retry_ == retry_target::source ? read_source() : read_destination();
            break;
        case state::finished:
            break;
    }
    // The driver answered an action with the wrong event: a bug, not an input error.
    throw std::logic_error("replicator_fsm: event does not answer the pending action");
}

std::optional<round_report> replicator_fsm::take_report()
{
    return std::exchange(report_, std::nullopt);
}

replicator_action replicator_fsm::on_source(snapshot src)
{
    attempt_ = 0;
    auto const step = next_wait_index(index_, src.index);
    index_ = step.next_index;
    if (!is_new_data(step))
        return read_source();
    // consul-template: a new index with deep-equal data is no event.
    if (round_done_ && src_ && same_entries(*src_, src))
        return read_source();
    src_ = std::move(src);
    round_done_ = false;
    return read_destination();
}

replicator_action replicator_fsm::on_destination(snapshot dst, const std::optional<checkpoint>& prev)
{
    checkpoint const previous = prev.value_or(checkpoint{});
    plan p = guard_plan(make_plan(*src_, dst, config_.rule, previous), config_.guard);

    current_ = round_report{};
    current_.source_index = src_->index;
    current_.puts = p.puts.size();
    current_.deletes = p.deletes.size();
    current_.stats = p.stats;
    current_.warnings = p.warnings;
    current_.refused = p.refused;

    std::optional<txn_op> checkpoint_op;
    // Rewrite the checkpoint only when it moves or data changes (consul-replicate wrote it on
    // every pass); never for a refused plan.
    if (config_.encode_checkpoint && p.next_checkpoint &&
        (!prev || *prev != *p.next_checkpoint || has_changes(p))) {
        checkpoint_op =
            txn_op{txn_verb::set, config_.rule.status_key, config_.encode_checkpoint(*p.next_checkpoint), 0};
    }

    auto batches = make_batches(std::move(p), config_.limits, std::move(checkpoint_op));
    if (!batches) {
        current_.batch_err = batches.error();
        batches_.clear();
        return finish_round();
    }
    batches_ = std::move(batches).value();
    next_batch_ = 0;
    current_.batches = batches_.size();
    current_.checkpoint_written = !batches_.empty() && batches_.back().carries_checkpoint;
    return next_batch_or_finish();
}

replicator_action replicator_fsm::on_failure(std::string what)
{
    if (!should_retry(attempt_, config_.backoff))
        return finish(what + " (exceeded maximum retries)");
    auto const delay = backoff_delay(attempt_, config_.backoff, config_.seed);
    ++attempt_;
    state_ = state::sleeping;
    return action::sleep{delay};
}

replicator_action replicator_fsm::next_batch_or_finish()
{
    if (next_batch_ < batches_.size()) {
        state_ = state::applying;
        return action::apply_batch{&batches_[next_batch_], next_batch_, batches_.size()};
    }
    return finish_round();
}

replicator_action replicator_fsm::finish_round()
{
    attempt_ = 0;
    round_done_ = true;
    batches_.clear();
    next_batch_ = 0;
    std::optional<std::string> problem;
    if (current_.batch_err)
        problem = current_.batch_err->message;
    else if (current_.refused)
        problem = current_.refused->message;
    report_ = std::move(current_);
    current_ = round_report{};
    if (config_.once)
        return finish(std::move(problem));
    return read_source();
}

replicator_action replicator_fsm::finish(std::optional<std::string> error)
{
    state_ = state::finished;
    batches_.clear();
    return action::done{std::move(error)};
}

replicator_action replicator_fsm::read_source()
{
    state_ = state::reading_source;
    return action::read_source{index_};
}

replicator_action replicator_fsm::read_destination()
{
    state_ = state::reading_destination;
    return action::read_destination{config_.rule.status_key};
}

}  // namespace kvship::engine
