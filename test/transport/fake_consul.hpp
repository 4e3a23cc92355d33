// An in-process fake Consul for client tests: an HTTP (transport::http_server) or HTTPS server on
// 127.0.0.1:0 that answers with scripted replies and records every request it got.
#pragma once

#include "../support/run.hpp"

#include <transport/asio.hpp>
#include <transport/consul_error.hpp>
#include <transport/http_server.hpp>

#include <catch2/catch.hpp>

#include <chrono>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace boost::asio::ssl {
class context;
}

namespace kvship::test {

struct recorded_request
{
    http::verb method;
    std::string target;
    std::string body;
    std::optional<std::string> token;  // the X-Consul-Token header
    std::string authorization;         // any Authorization header (must stay empty)
};

struct scripted_reply
{
    unsigned status = 200;
    std::string body;
    std::vector<std::pair<std::string, std::string>> headers;
    std::chrono::milliseconds delay{0};  // answer after this long
    std::size_t cut_after = 0;           // drop the connection after this many bytes (plain only)
};

// A KV read answer with Consul's meta headers; an empty `index` leaves X-Consul-Index out.
scripted_reply kv_reply(unsigned status, std::string body, std::string index, std::string known_leader = "true",
                        std::string last_contact = "0");
// A JSON (200) or plain-text (other statuses) answer without meta headers.
scripted_reply reply(unsigned status, std::string body);

class fake_consul
{
public:
    explicit fake_consul(asio::io_context& ioc);
    // HTTPS with this server context.
    fake_consul(asio::io_context& ioc, std::shared_ptr<boost::asio::ssl::context> tls);
    ~fake_consul();
    fake_consul(fake_consul const&) = delete;
    fake_consul& operator=(fake_consul const&) = delete;

    std::string address() const;  // "127.0.0.1:<port>"
    std::uint16_t port() const;
    // Replies are used in order; when none is left the fallback answers (default: 500 "no script").
    void push(scripted_reply r);
    void fallback(std::function<scripted_reply(recorded_request const&)> f);
    std::vector<recorded_request> const& requests() const;
    std::size_t connections() const;   // open connections (plain) / accepted connections (TLS)
    std::size_t tls_handshake_failures() const;

private:
    struct impl;
    std::shared_ptr<impl> impl_;
};

}  // namespace kvship::test

// Catch prints a consul_result as "value" or its error (Boost's operator<< needs T printable too).
namespace Catch {
template <class T>
struct StringMaker<boost::system::result<T, kvship::transport::consul_error>>
{
    static std::string convert(boost::system::result<T, kvship::transport::consul_error> const& r)
    {
        return r ? std::string("{value}") : "{error: " + r.error().what() + "}";
    }
};
}  // namespace Catch
