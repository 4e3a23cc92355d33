// read_fresh(): one source read with the stale re-read, for the pair driver's reads and its watcher.
#pragma once

#include "guarded.hpp"

#include <transport/consul_request.hpp>

#include <boost/asio/cancellation_signal.hpp>

#include <utility>

namespace kvship::replicate {

// One source read with the stale re-read (DRIVER.md): `start(q)` begins the read, run under `cancel`; a
// `?stale` answer from a server further behind the leader than -max-stale (transport::stale_reread) is
// dropped and the same query sent again without `?stale`, unless `reread(answer)` says no (it may log).
// `q` ends as the query of the answer returned.
template <class Start, class Reread>
auto read_fresh(
    asio::cancellation_signal* cancel,
    const transport::read_settings& reads,
    transport::query_options& q,
    Start start,
    Reread reread
) -> decltype(start(q))
{
    auto first = start(q);
    auto r = co_await guarded(cancel, std::move(first));
    if (!r)
        co_return r;
    if (auto again = transport::stale_reread(reads, q, r->last_contact); again && reread(*r)) {
        q = std::move(*again);
        auto second = start(q);
        r = co_await guarded(cancel, std::move(second));
    }
    co_return r;
}

}  // namespace kvship::replicate
