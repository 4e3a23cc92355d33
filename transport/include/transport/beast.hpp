// The Beast spellings kvship's HTTP code uses (http_client, http_server, the request builders):
// kept out of asio.hpp so that a user of consul_client.hpp does not compile Beast.
#pragma once

#include <transport/asio.hpp>

#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>

namespace kvship {

namespace beast = boost::beast;
namespace http = boost::beast::http;

}  // namespace kvship
