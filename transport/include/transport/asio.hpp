// The Asio spellings kvship uses, in one place: namespaces, tokens and stream types. Beast's are in
// beast.hpp, for the HTTP code only.
#pragma once

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace kvship {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

template <class T = void>
using awaitable = asio::awaitable<T>;

// `use_awaitable` throws; `as_tuple(use_awaitable)` hands the error back to the caller.
inline constexpr auto use_awaitable = asio::use_awaitable;
inline constexpr auto nothrow_awaitable = asio::as_tuple(asio::use_awaitable);

}  // namespace kvship
