// The pair driver's side of the writes: a stage of batches through destination_writer (which prints them
// instead under -dry-run), and what its outcome means for the round.
#include "replicator_parts.hpp"

namespace kvship::replicate {

using namespace driver_detail;

awaitable<engine::replicator_event> pair_replicator::apply_batch(
    std::span<const engine::batch> batches, std::size_t number, std::size_t count
)
{
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

}  // namespace kvship::replicate
