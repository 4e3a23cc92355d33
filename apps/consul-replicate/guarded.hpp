// guarded(): one request run as a coroutine of its own whose cancellation slot is `sig`, so that a
// terminal emit on `sig` aborts exactly this request (the pair driver, the lock, the gate, the
// registry and the Vault runner cancel their in-flight request this way on stop).
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <utility>

namespace kvship::replicate {

template <class T>
boost::asio::awaitable<T> guarded(boost::asio::cancellation_signal* sig, boost::asio::awaitable<T> op)
{
    auto ex = co_await boost::asio::this_coro::executor;
    auto token = boost::asio::bind_cancellation_slot(sig->slot(), boost::asio::use_awaitable);
    auto r = co_await boost::asio::co_spawn(ex, std::move(op), token);
    co_return r;
}

}  // namespace kvship::replicate
