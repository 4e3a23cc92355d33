// One streamed full round (stream_round.hpp).
#include "stream_round.hpp"

namespace kvship::replicate {

namespace {

stream_round::outcome ended(stream_round::outcome::kind k)
{
    stream_round::outcome o;
    o.what = k;
    return o;
}

stream_round::outcome failed(const std::pair<std::string, std::string>& f)
{
    stream_round::outcome o;
    o.what = stream_round::outcome::kind::failed;
    o.error_kind = f.first;
    o.what_failed = f.second;
    return o;
}

}  // namespace

stream_round::stream_round(
    asio::any_io_executor ex,
    transport::consul_client& source,
    source_stream::settings s,
    destination_writer& writer,
    std::function<bool()> stopping,
    const logger& log,
    metrics_registry& metrics
)
    : parts_(std::make_shared<parts>()), stopping_(std::move(stopping))
{
    parts_->read = std::make_unique<source_stream>(ex, source, std::move(s), log, metrics);
    read_ = parts_->read.get();
    window_ = writer.open(ex, [weak = std::weak_ptr<parts>(parts_)] {
        if (auto live = weak.lock())
            live->read->wake();
    });
    read_->start();
}

awaitable<void> stream_round::close()
{
    if (std::exchange(closed_, true))
        co_return;
    read_->abandon();
    // In-flight txns finish (abort() cancels them); nothing more is sent.
    // The reader and the txns point at this object: wait until every one has ended. Txns are
    // atomic; what committed is counted (and kept in the known destination).
    window_->stop();
    for (;;) {
        window_->pump();
        if (read_->done() && window_->in_flight() == 0)
            break;
        auto waited = read_->wait();
        co_await std::move(waited);
    }
}

awaitable<stream_round::outcome> stream_round::queue(engine::batch b)
{
    auto& w = window_;
    // One batch, one txn (the machine cut it by the writer's limits()), once the window has room.
    for (;;) {
        w->pump();
        if (stopping_() || w->fenced() || w->failure()) {
            auto step = next();  // reports the failure or the stop
            co_return co_await std::move(step);
        }
        if (w->room())
            break;
        auto waited = read_->wait();
        co_await std::move(waited);
    }
    w->append(std::move(b));
    w->pump();
    co_return ended(outcome::kind::queued);
}

awaitable<stream_round::outcome> stream_round::next()
{
    auto& w = window_;
    for (;;) {
        w->pump();
        if (stopping_() || w->fenced()) {
            co_await close();
            co_return ended(outcome::kind::stop);
        }
        if (w->failure()) {
            auto const f = *w->failure();
            co_await close();
            co_return failed(f);
        }
        if (auto entries = read_->take_chunk()) {
            auto o = ended(outcome::kind::chunk);
            o.entries = std::move(*entries);
            co_return o;
        }
        if (read_->done() && read_->failure()) {
            auto const f = *read_->failure();
            co_await close();
            co_return failed(f);
        }
        if (read_->done() && w->idle()) {
            // The whole listing arrived and every put written so far has committed: the machine
            // may now decide deletes and the checkpoint.
            auto const meta = *read_->end();
            co_await close();
            if (auto const& f = w->failure())
                co_return failed(*f);
            auto o = ended(outcome::kind::end);
            o.meta = meta;
            co_return o;
        }
        auto waited = read_->wait();
        co_await std::move(waited);
    }
}

}  // namespace kvship::replicate
