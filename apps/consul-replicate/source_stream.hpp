// A streamed full read of a pair's source (DRIVER.md "Streamed full rounds"): a reader coroutine
// decodes `GET /v1/kv/<src>?recurse` as it arrives into a bounded queue of chunks, with the stale
// re-read and the ACL-filter check, while the pair's loop hands the chunks to the machine. The body
// waits in the socket (back-pressure) while `max_chunks` are queued.
#pragma once

#include "logger.hpp"
#include "metrics.hpp"

#include <engine/types.hpp>
#include <transport/consul_client.hpp>
#include <transport/consul_request.hpp>

#include <boost/asio/cancellation_signal.hpp>

#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace kvship::replicate {

class source_stream
{
public:
    struct settings
    {
        std::string label;               // the pair's: the `pair` metrics label and log context
        std::string prefix;              // the source prefix
        transport::read_settings reads;  // ?dc, -max-stale
        std::size_t max_chunks = 4;      // chunks queued before the reader waits
    };

    // `source`, `log` and `metrics` must outlive the stream; close() must be awaited before it is destroyed.
    source_stream(
        asio::any_io_executor ex, transport::consul_client& source, settings s, const logger& log, metrics_registry& metrics
    );

    // Starts the reader.
    void start();

    // The next decoded chunk, if one is queued (the reader goes on).
    [[nodiscard]] std::optional<std::vector<engine::kv_entry>> take_chunk();
    // The reader has ended: with the listing's meta (`end()`), or with `failure()`.
    [[nodiscard]] bool done() const { return s_->reader_done; }
    [[nodiscard]] const std::optional<std::pair<std::string, std::string>>& failure() const { return s_->read_failure; }
    [[nodiscard]] const std::optional<transport::query_meta>& end() const { return s_->end; }

    // Waits for the next wake-up: a chunk, the reader's end, or wake().
    awaitable<void> wait();
    // Ends a wait() at once (the pair's txns call it when one finishes).
    void wake() { s_->wake.cancel(); }
    // Abandons the read: the reader ends soon (done()); the stream must not be destroyed before.
    void abandon();

private:
    struct state
    {
        explicit state(asio::any_io_executor ex) : wake(ex), reader_wake(ex) {}

        std::deque<std::vector<engine::kv_entry>> chunks;
        std::optional<transport::query_meta> end;
        std::optional<std::pair<std::string, std::string>> read_failure;  // (error kind, what)
        bool reader_done = false;
        bool closing = false;
        asio::cancellation_signal reader_cancel;
        asio::steady_timer wake;         // the loop waits on it; the reader and the txns wake it
        asio::steady_timer reader_wake;  // the reader waits on it while the queue is full
    };

    awaitable<void> read(std::shared_ptr<state> s);

    asio::any_io_executor ex_;
    transport::consul_client& source_;
    settings settings_;
    const logger& log_;
    metrics_registry& metrics_;
    std::shared_ptr<state> s_;
};

}  // namespace kvship::replicate
