// The pair driver's side of the writes: a stage of batches through destination_writer, or printed under
// -dry-run.
#include "replicator_parts.hpp"

namespace kvship::replicate {

using namespace driver_detail;

awaitable<engine::replicator_event> pair_replicator::apply_batch(
    std::span<const engine::batch> batches, std::size_t number, std::size_t count
)
{
    if (params_.dry_run) {
        for (auto const& b : batches) print_batch(b);
        co_return engine::event::batch_applied{};
    }
    auto write = writer_.write_stage(batches, number, count);
    auto r = co_await std::move(write);
    if (r.fenced)
        co_return engine::event::stop{};
    if (r.failure)
        co_return fail(r.failure->first, std::move(r.failure->second));
    if (!r.complete) {
        if (stopping_)
            co_return engine::event::stop{};
        // Not reachable by the window's rules; if it ever is, the round is retried, never reported
        // (nor checkpointed) as applied.
        co_return fail(
            "dest_write",
            fmt::format(
                "batches {}..{} of {}: {} of {} operations committed and nothing left to send (a bug: please report it)",
                number + 1,
                number + batches.size(),
                count,
                r.committed_ops,
                r.ops
            )
        );
    }
    books_.succeeded();
    co_return engine::event::batch_applied{};
}

void pair_replicator::print_batch(const engine::batch& b) const
{
    if (plan_out_ == nullptr)
        return;
    std::string out;
    for (auto const& op : b.ops) {
        if (op.key == params_.fsm.rule.status_key)
            out += fmt::format("dry-run {}: checkpoint {:?}\n", params_.label, op.key);
        else if (op.verb == engine::txn_verb::set)
            out += fmt::format(
                "dry-run {}: put {:?} ({} bytes, flags {})\n",
                params_.label,
                op.key,
                op.value.size(),
                op.flags
            );
        else
            out += fmt::format("dry-run {}: delete {:?}\n", params_.label, op.key);
    }
    std::fwrite(out.data(), 1, out.size(), plan_out_);
    std::fflush(plan_out_);
}

}  // namespace kvship::replicate
