// The pair driver's writer (destination_writer.hpp): every batch one txn (or a plain PUT), a window
// of them in flight (engine::txn_window decides what goes next; a 413's re-cut is engine::answer_too_large).
#include "destination_writer.hpp"

#include "kv_convert.hpp"

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/co_spawn.hpp>

#include <fmt/format.h>

#include <algorithm>

namespace kvship::replicate {

using clock = std::chrono::steady_clock;

namespace {

double seconds_since(clock::time_point t)
{
    return std::chrono::duration<double>(clock::now() - t).count();
}

}  // namespace

destination_writer::destination_writer(
    transport::consul_client& destination,
    settings s,
    txn_limit& limit,
    const logger& log,
    metrics_registry& metrics,
    hooks h
)
    : destination_(destination),
      settings_(std::move(s)),
      limit_(limit),
      log_(log),
      metrics_(metrics),
      hooks_(std::move(h))
{
}

engine::txn_reserve destination_writer::fence_room() const
{
    if (!settings_.fence)
        return {};
    auto const f = settings_.fence();
    // Unheld: nothing is sent; a session id is a 36-byte UUID.
    return engine::fence_reserve(f ? std::string_view(f->key) : std::string_view{}, f ? f->session.size() : 36);
}

engine::batch_limits destination_writer::limits(std::size_t max_value_bytes) const
{
    return engine::limits_for_txns(limit_.max_ops, limit_.max_bytes, max_value_bytes, fence_room());
}

std::shared_ptr<destination_writer::window> destination_writer::open(
    asio::any_io_executor ex, std::function<void()> wake
)
{
    std::erase_if(open_, [](const std::weak_ptr<window>& w) { return w.expired(); });
    auto w = std::make_shared<window>(*this, std::move(ex), std::max<std::size_t>(1, settings_.width), std::move(wake));
    open_.push_back(w);
    return w;
}

void destination_writer::abort()
{
    for (auto const& weak : open_)
        if (auto w = weak.lock())
            for (auto& sig : w->cancel_) sig.emit(asio::cancellation_type::terminal);
}

void destination_writer::send(const std::shared_ptr<window>& w, chunk c)
{
    std::size_t slot = 0;
    while (w->busy_[slot]) ++slot;  // the window has room, so a slot is free
    w->busy_[slot] = true;
    auto const at = w->batch_at(c.from);
    chunk const local{c.from - at->first, c.to - at->first, c.plain_put};
    auto task = send_chunk(at->second.b, local);
    asio::co_spawn(
        w->ex_,
        std::move(task),
        asio::bind_cancellation_slot(
            w->cancel_[slot].slot(),
            [w, slot, c, local](std::exception_ptr e, chunk_outcome o) {
                if (e) {
                    o = chunk_outcome{};
                    o.c = local;
                    o.error = transport::consul_error{
                        transport::make_error_code(transport::errc::cancelled), 0, "txn task failed"};
                }
                w->busy_[slot] = false;
                w->finished_.emplace_back(c, std::move(o));
                if (w->wake_)
                    w->wake_();
            }
        )
    );
}

void destination_writer::window::pump()
{
    // Every outcome first: a txn the server refused as too large goes again in pieces, and those
    // must be queued before the window picks what to send (else the checkpoint's batch could go
    // out while they wait).
    auto done = std::move(finished_);
    finished_.clear();
    for (auto& [piece, o] : done) {
        auto const at = batch_at(piece.from);
        std::size_t const start = at->first;
        auto& h = at->second;
        std::deque<chunk> retry;
        owner_.judge_outcome(*h.b, o, retry, *this);
        if (!retry.empty()) {
            std::vector<chunk> parts;
            for (auto const& r : retry) parts.push_back(chunk{r.from + start, r.to + start, r.plain_put});
            window_.split(piece, parts);
        } else if (!o.error && !o.rolled_back && !o.unheld && !o.fenced) {
            window_.committed(piece);
            if (count_ > 0)
                owner_.log_.trace(
                    "runner",
                    "{}: batch {}/{} ops {}..{} of {} took_ms={}",
                    owner_.settings_.label,
                    h.number + 1,
                    count_,
                    o.c.from,
                    o.c.to,
                    h.b->ops.size(),
                    o.took.count()
                );
            h.left -= piece.to - piece.from;
            if (h.left == 0)
                batches_.erase(at);
        } else {
            window_.failed(piece);
        }
    }
    if (failure_ || fenced_ || owner_.hooks_.stopping())
        window_.stop();
    auto self = shared_from_this();
    while (auto c = window_.next()) owner_.send(self, *c);
}

void destination_writer::window::append(engine::batch b)
{
    auto owned = std::make_shared<const engine::batch>(std::move(b));
    window_.append(add(owned.get(), owned, 0));
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

awaitable<destination_writer::chunk_outcome> destination_writer::send_chunk(const engine::batch* b, chunk c)
{
    chunk_outcome out;
    out.c = c;
    auto const started = clock::now();
    std::optional<transport::txn_op> fence;
    if (settings_.fence) {
        fence = settings_.fence();
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

void destination_writer::judge_outcome(const engine::batch& b, chunk_outcome& o, std::deque<chunk>& retry, window& w)
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
    auto const verdict = engine::judge_txn(a, !cut.parts.empty(), hooks_.stopping());
    if (!verdict.result.empty())
        metrics_.add(metric::txn, {{"pair", settings_.label}, {"result", std::string(verdict.result)}});
    switch (verdict.what) {
        case engine::txn_verdict::kind::committed:
            hooks_.committed(b, o.c.from, o.c.to);
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
                log_.err("runner", "{}: {}", settings_.label, o.rolled_back.value_or("fenced"));
            }
            if (!w.fenced_) {
                w.fenced_ = true;
                hooks_.lock_gone();  // stop at once: nothing more is sent, in-flight txns are aborted
                if (verdict.fenced_batch && settings_.on_fenced)
                    settings_.on_fenced();
            }
            return;
        case engine::txn_verdict::kind::failure:
            if (!w.failure_) {
                if (o.error)
                    w.failure_.emplace(std::string(error_kind(*o.error, "dest_write")), o.error->what());
                else
                    w.failure_.emplace("dest_write", std::move(o.rolled_back).value_or("rolled back"));
            }
            return;
        case engine::txn_verdict::kind::nothing:
            return;
    }
}

void destination_writer::print(const engine::batch& b) const
{
    if (settings_.plan_out == nullptr)
        return;
    std::string out;
    for (auto const& op : b.ops) {
        if (op.key == settings_.status_key)
            out += fmt::format("dry-run {}: checkpoint {:?}\n", settings_.label, op.key);
        else if (op.verb == engine::txn_verb::set)
            out += fmt::format(
                "dry-run {}: put {:?} ({} bytes, flags {})\n",
                settings_.label,
                op.key,
                op.value.size(),
                op.flags
            );
        else
            out += fmt::format("dry-run {}: delete {:?}\n", settings_.label, op.key);
    }
    std::fwrite(out.data(), 1, out.size(), settings_.plan_out);
    std::fflush(settings_.plan_out);
}

awaitable<destination_writer::stage_result> destination_writer::write_stage(
    std::span<const engine::batch> batches, std::size_t number, std::size_t count
)
{
    // The stage's batches laid end to end: one piece per batch, one txn each, up to `width` in
    // flight at once (order among data ops does not matter: each key appears once in a round).
    // engine::txn_window decides what goes next, holds the checkpoint's batch until every other has
    // committed (the checkpoint never gets ahead of the data), and says whether every op committed.
    if (settings_.dry_run) {
        for (auto const& b : batches) print(b);
        stage_result r;
        r.complete = true;
        co_return r;
    }
    auto ex = co_await asio::this_coro::executor;
    if (!stage_wake_)
        stage_wake_.emplace(ex);
    auto w = open(ex, [this] { stage_wake_->cancel(); });
    w->count_ = count;
    std::vector<chunk> pieces;
    for (std::size_t i = 0; i < batches.size(); ++i) pieces.push_back(w->add(&batches[i], nullptr, number + i));
    bool const checkpoint_last = !batches.empty() && batches.back().carries_checkpoint;
    w->window_ = engine::txn_window(std::move(pieces), w->end_, checkpoint_last, w->busy_.size());
    for (;;) {
        w->pump();
        if (w->idle())
            break;
        if (w->finished_.empty()) {
            stage_wake_->expires_at(clock::time_point::max());
            co_await stage_wake_->async_wait(nothrow_awaitable);
        }
    }
    stage_result r;
    r.fenced = w->fenced_;
    r.failure = std::move(w->failure_);
    r.complete = w->window_.complete();
    r.committed_ops = w->window_.committed_ops();
    r.ops = w->end_;
    co_return r;
}

}  // namespace kvship::replicate
