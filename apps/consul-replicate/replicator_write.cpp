// The pair driver's writes: every batch one txn (or a plain PUT), a window of them in flight
// (engine::txn_window decides what goes next; a 413's re-cut is engine::answer_too_large).
#include "replicator_parts.hpp"

namespace kvship::replicate {

using namespace driver_detail;

void pair_replicator::send(const std::shared_ptr<txn_writer>& w, chunk c)
{
    std::size_t slot = 0;
    while (w->busy[slot]) ++slot;  // the window has room, so a slot is free
    w->busy[slot] = true;
    auto const at = w->batch_at(c.from);
    chunk const local{c.from - at->first, c.to - at->first, c.plain_put};
    auto task = send_chunk(at->second.b, local);
    asio::co_spawn(
        timer_->get_executor(),
        std::move(task),
        asio::bind_cancellation_slot(
            w->cancel[slot].slot(),
            [w, slot, c, local](std::exception_ptr e, chunk_outcome o) {
                if (e) {
                    o = chunk_outcome{};
                    o.c = local;
                    o.error = transport::consul_error{
                        transport::make_error_code(transport::errc::cancelled), 0, "txn task failed"};
                }
                w->busy[slot] = false;
                w->finished.emplace_back(c, std::move(o));
                if (w->wake)
                    w->wake();
            }
        )
    );
}

void pair_replicator::pump(const std::shared_ptr<txn_writer>& w)
{
    // Every outcome first: a txn the server refused as too large goes again in pieces, and those
    // must be queued before the window picks what to send (else the checkpoint's batch could go
    // out while they wait).
    auto done = std::move(w->finished);
    w->finished.clear();
    for (auto& [piece, o] : done) {
        auto const at = w->batch_at(piece.from);
        std::size_t const start = at->first;
        auto& held = at->second;
        std::deque<chunk> retry;
        judge_outcome(*held.b, o, retry, w->failure, w->fenced);
        if (!retry.empty()) {
            std::vector<chunk> parts;
            for (auto const& r : retry) parts.push_back(chunk{r.from + start, r.to + start, r.plain_put});
            w->window.split(piece, parts);
        } else if (!o.error && !o.rolled_back && !o.unheld && !o.fenced) {
            w->window.committed(piece);
            if (w->count > 0)
                log_.trace(
                    "runner",
                    "{}: batch {}/{} ops {}..{} of {} took_ms={}",
                    params_.label,
                    held.number + 1,
                    w->count,
                    o.c.from,
                    o.c.to,
                    held.b->ops.size(),
                    o.took.count()
                );
            held.left -= piece.to - piece.from;
            if (held.left == 0)
                w->batches.erase(at);
        } else {
            w->window.failed(piece);
        }
    }
    if (w->failure || w->fenced || stopping_)
        w->window.stop();
    while (auto c = w->window.next()) send(w, *c);
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

engine::txn_reserve pair_replicator::fence_room() const
{
    if (!params_.fence)
        return {};
    auto const f = params_.fence();
    // Unheld: nothing is sent; a session id is a 36-byte UUID.
    return engine::fence_reserve(f ? std::string_view(f->key) : std::string_view{}, f ? f->session.size() : 36);
}

engine::batch_limits pair_replicator::batch_limits_now() const
{
    return engine::limits_for_txns(
        limit_.max_ops, limit_.max_bytes, params_.fsm.limits.max_value_bytes, fence_room()
    );
}

namespace {

// "op i ("key"): what; ..." for a rolled-back txn; `key_of(i)` names op i.
template <class KeyOf>
std::string describe_txn_errors(const std::vector<transport::txn_error_item>& errors, KeyOf key_of)
{
    std::string why;
    for (auto const& err : errors) {
        if (!why.empty())
            why += "; ";
        why += fmt::format("op {} ({:?}): {}", err.op_index, key_of(err.op_index), err.what);
        if (why.size() > 400) {
            why += "; ...";
            break;
        }
    }
    return why;
}

}  // namespace

awaitable<pair_replicator::chunk_outcome> pair_replicator::send_chunk(const engine::batch* b, chunk c)
{
    chunk_outcome out;
    out.c = c;
    auto const started = clock::now();
    std::optional<transport::txn_op> fence;
    if (params_.fence) {
        fence = params_.fence();
        if (!fence) {
            out.unheld = true;
            co_return out;
        }
    }
    std::string const local_dc;
    if (c.plain_put) {
        auto const& op = b->ops[c.from];
        if (op.verb != engine::txn_verb::set) {
            out.error = transport::consul_error{
                transport::make_error_code(transport::errc::request_too_large),
                0,
                fmt::format("delete of {:?} does not fit in a transaction", op.key)};
            co_return out;
        }
        if (fence) {
            // A value too large for any txn cannot carry the fence op: check the lock in a one-op
            // txn first. This one case is check-then-write, not atomic: a loss between the check
            // and the PUT is not caught (the window is one round trip).
            std::vector<transport::txn_op> check{*fence};
            auto check_op = destination_.txn(std::move(check), local_dc);
            auto checked = co_await std::move(check_op);
            out.sent_ops = 1;
            if (!checked) {
                out.error = checked.error();
                co_return out;
            }
            if (!checked->committed) {
                out.fenced = true;
                out.rolled_back = fmt::format(
                    "lock check before PUT {:?} refused: {}",
                    op.key,
                    describe_txn_errors(
                        checked->errors, [&](std::size_t) { return std::string_view(fence->key); }
                    )
                );
                co_return out;
            }
        }
        transport::put_options opts;
        opts.flags = op.flags;
        auto put_op = destination_.put(op.key, op.value, opts);
        auto r = co_await std::move(put_op);
        if (!r)
            out.error = r.error();
        else if (!*r)
            out.rolled_back = fmt::format("PUT {:?} answered false", op.key);
    } else {
        std::size_t const offset = fence ? 1 : 0;
        std::vector<transport::txn_op> ops;
        ops.reserve(c.to - c.from + offset);
        if (fence)
            ops.push_back(*fence);
        for (std::size_t k = c.from; k < c.to; ++k) ops.push_back(to_transport(b->ops[k]));
        out.sent_ops = ops.size();
        auto txn_op = destination_.txn(std::move(ops), local_dc);
        auto r = co_await std::move(txn_op);
        if (!r) {
            out.error = r.error();
        } else if (!r->committed) {
            auto key_of = [&](std::size_t i) {
                if (i < offset)
                    return std::string_view(fence->key);
                auto const idx = c.from + i - offset;
                return idx < c.to ? std::string_view(b->ops[idx].key) : std::string_view{};
            };
            for (auto const& err : r->errors) out.fenced = out.fenced || (fence && err.op_index == 0);
            out.rolled_back = fmt::format(
                "transaction rolled back{}: {}",
                out.fenced ? " by the lock check (the lock is no longer held by this process)" : "",
                describe_txn_errors(r->errors, key_of)
            );
        }
    }
    out.took = std::chrono::duration_cast<std::chrono::milliseconds>(clock::now() - started);
    metrics_.observe(metric::txn_duration, labels(), seconds_since(started));
    co_return out;
}

void pair_replicator::judge_outcome(
    const engine::batch& b,
    chunk_outcome& o,
    std::deque<chunk>& retry,
    std::optional<std::pair<std::string, std::string>>& failure,
    bool& fenced
)
{
    using engine::txn_answer;
    txn_answer a = txn_answer::committed;
    engine::too_large_answer cut;
    if (o.unheld)
        a = txn_answer::not_held;
    else if (o.fenced)
        a = txn_answer::fenced;
    else if (o.error) {
        auto const& e = *o.error;
        bool const ops = e == transport::errc::too_many_operations;
        if (ops || e == transport::errc::request_too_large) {
            a = ops ? txn_answer::too_many_ops : txn_answer::too_large;
            engine::txn_too_large const r{ops, e.limit > 0 ? static_cast<std::size_t>(e.limit) : 0, o.sent_ops};
            cut = engine::answer_too_large(b, o.c, r, limit_.max_ops, limit_.max_bytes, fence_room());
        } else {
            a = e == transport::errc::cancelled ? txn_answer::cancelled : txn_answer::failed;
        }
    } else if (o.rolled_back) {
        a = txn_answer::rolled_back;
    }
    auto const verdict = engine::judge_txn(a, !cut.parts.empty(), stopping_);
    if (!verdict.result.empty())
        metrics_.add(metric::txn, labels("result", verdict.result));
    switch (verdict.what) {
        case engine::txn_verdict::kind::committed:
            count_applied(b, o.c.from, o.c.to);
            return;
        case engine::txn_verdict::kind::recut:
            if (cut.learned_ops) {
                limit_.max_ops = *cut.learned_ops;
                log_.info("runner", "destination allows at most {} operations per transaction", limit_.max_ops);
            }
            if (cut.learned_bytes) {
                limit_.max_bytes = *cut.learned_bytes;
                log_.info("runner", "destination allows at most {} bytes per transaction", limit_.max_bytes);
            }
            retry.insert(retry.end(), cut.parts.begin(), cut.parts.end());
            return;
        case engine::txn_verdict::kind::lock_gone:
            if (verdict.fenced_batch) {
                metrics_.add(metric::fenced_batches, {});
                log_.err("runner", "{}: {}", params_.label, o.rolled_back.value_or("fenced"));
            }
            if (!fenced) {
                fenced = true;
                abort();  // stop at once: nothing more is sent, in-flight txns are aborted
                if (verdict.fenced_batch && params_.on_fenced)
                    params_.on_fenced();
            }
            return;
        case engine::txn_verdict::kind::failure:
            if (!failure) {
                if (o.error)
                    failure.emplace(std::string(error_kind(*o.error, "dest_write")), o.error->what());
                else
                    failure.emplace("dest_write", std::move(o.rolled_back).value_or("rolled back"));
            }
            return;
        case engine::txn_verdict::kind::nothing:
            return;
    }
}

awaitable<engine::replicator_event> pair_replicator::apply_batch(
    std::span<const engine::batch> batches, std::size_t number, std::size_t count
)
{
    if (params_.dry_run) {
        for (auto const& b : batches) print_batch(b);
        co_return engine::event::batch_applied{};
    }
    // The stage's batches laid end to end: one piece per batch, one txn each, up to write_window
    // in flight at once (order among data ops does not matter: each key appears once in a round).
    // engine::txn_window decides what goes next, holds the checkpoint's batch until every other has
    // committed (the checkpoint never gets ahead of the data), and says whether every op committed.
    auto ex = co_await asio::this_coro::executor;
    if (!apply_wake_)
        apply_wake_.emplace(ex);
    std::size_t const width = std::max<std::size_t>(1, params_.write_window);
    auto w = std::make_shared<txn_writer>(width, [this] { apply_wake_->cancel(); });
    w->count = count;
    std::vector<chunk> pieces;
    for (std::size_t i = 0; i < batches.size(); ++i) pieces.push_back(w->add(&batches[i], nullptr, number + i));
    std::size_t const n_ops = w->window_end;
    bool const checkpoint_last = !batches.empty() && batches.back().carries_checkpoint;
    w->window = engine::txn_window(std::move(pieces), n_ops, checkpoint_last, width);
    writer_ = w;
    for (;;) {
        pump(w);
        if (w->window.idle() && w->finished.empty())
            break;
        if (w->finished.empty()) {
            apply_wake_->expires_at(clock::time_point::max());
            co_await apply_wake_->async_wait(nothrow_awaitable);
        }
    }
    writer_.reset();
    auto& window = w->window;
    bool const fenced = w->fenced;
    auto& failure = w->failure;
    if (fenced)
        co_return engine::event::stop{};
    if (failure)
        co_return fail(failure->first, std::move(failure->second));
    if (!window.complete()) {
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
                window.committed_ops(),
                n_ops
            )
        );
    }
    status_.failing = false;
    failures_ = 0;
    co_return engine::event::batch_applied{};
}

void pair_replicator::count_applied(const engine::batch& b, std::size_t from, std::size_t to)
{
    auto const& status_key = params_.fsm.rule.status_key;
    std::size_t puts = 0;
    std::size_t deletes = 0;
    std::size_t bytes = 0;
    std::size_t saved = 0;
    for (std::size_t k = from; k < to; ++k) {
        auto const& op = b.ops[k];
        if (op.key == status_key)
            continue;
        if (params_.fsm.lost_found && op.key.starts_with(params_.fsm.lost_found->prefix)) {
            // A lost+found save (or its .turn record): not replication, counted on its own.
            if (!op.key.ends_with(engine::turn_record_name))
                ++saved;
            continue;
        }
        if (op.verb == engine::txn_verb::set) {
            ++puts;
            bytes += op.value.size();
            log_.debug("runner", "updated key {:?}", op.key);
        } else {
            ++deletes;
            log_.debug("runner", "deleted {:?}", op.key);
        }
    }
    if (saved > 0) {
        metrics_.add(lost_found_entries_metric, labels(), static_cast<double>(saved));
        lost_found_committed_ += saved;
    }
    metrics_.add(metric::keys_put, labels(), static_cast<double>(puts));
    metrics_.add(metric::keys_deleted, labels(), static_cast<double>(deletes));
    metrics_.add(metric::bytes_written, labels(), static_cast<double>(bytes));
    note_committed(std::span<const engine::txn_op>(b.ops).subspan(from, to - from));
}

}  // namespace kvship::replicate
