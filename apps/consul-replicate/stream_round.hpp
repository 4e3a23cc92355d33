// One streamed full round (DRIVER.md "Streamed full rounds"): the source_stream read and the
// destination_writer window the machine's puts go out through while the listing still arrives, as
// the outcomes the pair driver turns into the machine's next events.
#pragma once

#include "destination_writer.hpp"
#include "source_stream.hpp"

#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace kvship::replicate {

class stream_round
{
public:
    // `source` and `writer` must outlive the round; close() must be awaited before it is destroyed.
    // `stopping`: the pair is stopping (the round ends as `stop`).
    stream_round(
        asio::any_io_executor ex,
        transport::consul_client& source,
        source_stream::settings s,
        destination_writer& writer,
        std::function<bool()> stopping,
        const logger& log,
        metrics_registry& metrics
    );

    struct outcome
    {
        enum class kind
        {
            chunk,   // `entries`: the next piece of the listing
            queued,  // the batch is in the window
            end,     // the whole listing arrived and every put committed; `meta`
            failed,  // `error_kind`, `what`
            stop,    // the pair is stopping or the lock is gone
        };

        kind what = kind::stop;
        std::vector<engine::kv_entry> entries;
        transport::query_meta meta;
        std::string error_kind;
        std::string what_failed;
    };

    // The next chunk, or how the round ended (it is closed then).
    awaitable<outcome> next();
    // One of the machine's batches into the window, once it has room (else how the round ended).
    awaitable<outcome> queue(engine::batch b);
    // Abandons the read, lets the txns in flight finish; waits until the reader and they have ended.
    awaitable<void> close();
    // Ends a wait at once (a stop).
    void wake() { read_->wake(); }

private:
    // Shared with the window's wake callback, which may outlive a wait.
    struct parts
    {
        std::unique_ptr<source_stream> read;
    };

    std::shared_ptr<parts> parts_;
    source_stream* read_;
    std::shared_ptr<destination_writer::window> window_;
    std::function<bool()> stopping_;
    bool closed_ = false;
};

}  // namespace kvship::replicate
