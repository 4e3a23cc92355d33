#include <transport/http_server.hpp>

#include <boost/asio/ip/address.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>

#include <fmt/format.h>

#include <exception>
#include <cctype>
#include <cstring>
#include <limits>
#include <list>
#include <sstream>
#include <stdexcept>
#include <utility>

namespace kvship::transport {

namespace {

struct connection_slot
{
    beast::tcp_stream* stream = nullptr;
    bool idle = true;
    bool evicted = false;  // cancelled to make room (evict_idle_at_cap); ends at its next wake-up
};

http_reply plain_reply(http::status status, std::string body, unsigned version)
{
    http_reply rep;
    rep.res = http_response{status, version};
    rep.res.set(http::field::content_type, "text/plain; charset=utf-8");
    rep.res.body() = std::move(body);
    rep.close = true;
    return rep;
}

}  // namespace

struct http_server::impl : std::enable_shared_from_this<impl>
{
    server_params params;
    http_handler handler;
    too_large_handler too_large;
    tcp::acceptor acceptor;
    std::list<connection_slot> connections;
    bool stopping = false;

    impl(asio::any_io_executor ex, server_params p, http_handler h, too_large_handler t)
        : params(p), handler(std::move(h)), too_large(std::move(t)), acceptor(ex)
    {
    }

    awaitable<void> accept_loop()
    {
        auto self = shared_from_this();
        while (!stopping) {
            auto [ec, sock] = co_await acceptor.async_accept(nothrow_awaitable);
            if (ec) {
                if (stopping || ec == asio::error::operation_aborted || ec == asio::error::bad_descriptor) {
                    break;
                }
                // EMFILE and friends: back off briefly rather than spin.
                asio::steady_timer t(acceptor.get_executor(), std::chrono::milliseconds(50));
                co_await t.async_wait(nothrow_awaitable);
                continue;
            }
            asio::co_spawn(acceptor.get_executor(), run_connection(self, std::move(sock)), asio::detached);
        }
    }

    static awaitable<void> write_reply(beast::tcp_stream& stream, http_reply& rep)
    {
        if (rep.cut_after == 0) {
            auto [ec, n] = co_await http::async_write(stream, rep.res, nothrow_awaitable);
            (void)n;
            if (ec) {
                rep.close = true;
            }
            co_return;
        }
        // Fault injection: send only the first cut_after bytes of the serialized response, then drop.
        std::ostringstream os;
        os << rep.res;
        std::string bytes = os.str();
        if (bytes.size() > rep.cut_after) {
            bytes.resize(rep.cut_after);
        }
        auto [ec, n] = co_await asio::async_write(stream, asio::buffer(bytes), nothrow_awaitable);
        (void)ec;
        (void)n;
        rep.close = true;
    }

    // One connection: read a request, answer it, repeat while keep-alive holds.
    static awaitable<void> run_connection(std::shared_ptr<impl> self, tcp::socket sock)
    {
        boost::system::error_code ignored;
        tcp::endpoint remote = sock.remote_endpoint(ignored);
        if (self->connections.size() >= self->params.max_connections && self->params.evict_idle_at_cap) {
            // The list is in arrival order: the first idle slot has waited longest.
            for (auto& c : self->connections) {
                if (c.idle && !c.evicted) {
                    c.evicted = true;
                    c.stream->socket().cancel(ignored);
                    break;
                }
            }
        }
        std::size_t live = 0;
        for (auto const& c : self->connections) {
            live += c.evicted ? 0 : 1;
        }
        if (live >= self->params.max_connections) {
            beast::tcp_stream stream(std::move(sock));
            stream.expires_after(std::chrono::seconds(5));
            auto rep = plain_reply(http::status::too_many_requests, "Your IP is issuing too many concurrent connections, please rate limit your calls\n", 11);
            rep.res.prepare_payload();
            co_await write_reply(stream, rep);
            stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
            co_return;
        }
        beast::tcp_stream stream(std::move(sock));
        auto slot = self->connections.insert(self->connections.end(), connection_slot{&stream, true});
        struct unregister
        {
            impl* owner;
            std::list<connection_slot>::iterator it;
            ~unregister() { owner->connections.erase(it); }
        } guard{self.get(), slot};

        beast::flat_buffer buffer;
        auto const& p = self->params;
        while (!self->stopping && !slot->evicted) {
            http::request_parser<http::string_body> parser;
            parser.header_limit(static_cast<std::uint32_t>(p.header_limit));
            parser.body_limit(boost::none);  // checked below from Content-Length, then set for the body
            slot->idle = true;
            stream.expires_after(p.idle_timeout);
            {
                // The head's raw bytes first (at most header_limit), to frame as Consul does.
                // (asio::async_read_until would copy a Beast buffer: read by hand into ours.)
                std::size_t head_size = 0;
                boost::system::error_code uec;
                for (std::size_t scanned = 0;;) {
                    std::string_view const have(static_cast<char const*>(buffer.data().data()), buffer.size());
                    auto const at = have.find("\r\n\r\n", scanned);
                    if (at != std::string_view::npos) {
                        head_size = at + 4;
                        break;
                    }
                    if (have.size() > p.header_limit) {
                        uec = asio::error::not_found;
                        break;
                    }
                    scanned = have.size() < 3 ? 0 : have.size() - 3;
                    auto [rec, rn] = co_await stream.async_read_some(buffer.prepare(4096), nothrow_awaitable);
                    buffer.commit(rn);
                    if (rec) {
                        uec = rec;
                        break;
                    }
                }
                if (uec && uec != asio::error::not_found) {
                    break;  // closed, timed out, cancelled: nothing to answer
                }
                if (!uec) {
                    std::string_view const head(static_cast<char const*>(buffer.data().data()), head_size);
                    auto const framing = scan_request_framing(head);
                    if (framing.unsupported_coding) {
                        slot->idle = false;
                        auto rep = plain_reply(http::status::not_implemented, "Unsupported transfer encoding", 11);
                        rep.res.set(http::field::content_type, "text/plain; charset=utf-8");
                        rep.res.keep_alive(false);
                        rep.res.prepare_payload();
                        stream.expires_after(p.write_timeout);
                        co_await write_reply(stream, rep);
                        break;
                    }
                    if (framing.drop_content_length) {
                        std::string rest = without_content_length(head);
                        auto const all = buffer.data();
                        rest.append(static_cast<char const*>(all.data()) + head_size, all.size() - head_size);
                        buffer.consume(buffer.size());
                        auto out = buffer.prepare(rest.size());
                        std::memcpy(out.data(), rest.data(), rest.size());
                        buffer.commit(rest.size());
                    }
                }
                // not_found: the head is over header_limit; Beast's parser says so below (400).
            }
            auto [hec, hn] = co_await http::async_read_header(stream, buffer, parser, nothrow_awaitable);
            (void)hn;
            slot->idle = false;
            if (hec) {
                // A malformed request gets a 400; a closed, timed out or cancelled connection just ends.
                if (hec.category() == http::make_error_code(http::error::bad_target).category() &&
                    hec != http::error::end_of_stream && hec != http::error::partial_message) {
                    auto rep = plain_reply(http::status::bad_request, fmt::format("Bad request: {}", hec.message()), 11);
                    rep.res.prepare_payload();
                    stream.expires_after(p.write_timeout);
                    co_await write_reply(stream, rep);
                }
                break;
            }
            unsigned const version = parser.get().version();
            auto const content_length = parser.content_length();
            if (content_length && *content_length > p.body_limit) {
                auto rep = self->too_large(parser.get().base(), std::optional<std::uint64_t>(*content_length));
                rep.close = true;
                rep.res.version(version);
                rep.res.keep_alive(false);
                rep.res.prepare_payload();
                stream.expires_after(p.write_timeout);
                co_await write_reply(stream, rep);
                break;
            }
            parser.body_limit(p.body_limit);
            if (!parser.is_done()) {
                if (beast::iequals(parser.get()[http::field::expect], "100-continue")) {
                    http::response<http::empty_body> cont{http::status::continue_, version};
                    stream.expires_after(p.write_timeout);
                    auto [cec, cn] = co_await http::async_write(stream, cont, nothrow_awaitable);
                    (void)cn;
                    if (cec) {
                        break;
                    }
                }
                // Beast reads max(512, free capacity) bytes at a time: give a large body (a txn
                // of up to 512 KiB) room for 64 KiB reads instead of ~1 KiB ones. Small bodies
                // keep the small buffer, so thousands of idle watchers stay cheap.
                if (content_length && *content_length > 16 * 1024)
                    buffer.reserve(64 * 1024);
                stream.expires_after(p.read_timeout);
                auto [bec, bn] = co_await http::async_read(stream, buffer, parser, nothrow_awaitable);
                (void)bn;
                if (bec == http::error::body_limit) {
                    auto rep = self->too_large(parser.get().base(), std::nullopt);
                    rep.close = true;
                    rep.res.version(version);
                    rep.res.keep_alive(false);
                    rep.res.prepare_payload();
                    stream.expires_after(p.write_timeout);
                    co_await write_reply(stream, rep);
                    break;
                }
                if (bec) {
                    break;
                }
            }
            http_request req = parser.release();
            bool const keep_alive = req.keep_alive();
            stream.expires_never();  // the handler may long-poll; it owns its own deadline

            http_reply rep;
            std::string failure;
            try {
                rep = co_await self->handler(std::move(req), request_context{remote});
            } catch (std::exception const& e) {
                failure = e.what();
            }
            if (!failure.empty()) {
                rep = plain_reply(http::status::internal_server_error, failure, version);
                rep.close = false;
            }
            rep.res.version(version);
            rep.res.keep_alive(keep_alive && !rep.close && !self->stopping);
            rep.res.prepare_payload();
            stream.expires_after(p.write_timeout);
            co_await write_reply(stream, rep);
            if (!rep.res.keep_alive() || rep.close) {
                break;
            }
        }
        stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
        stream.close();
    }
};

http_server::http_server(asio::any_io_executor ex, server_params params, http_handler handler,
                         too_large_handler too_large)
    : impl_(std::make_shared<impl>(std::move(ex), params, std::move(handler), std::move(too_large)))
{
}

http_server::~http_server()
{
    stop();
}

void http_server::listen(tcp::endpoint ep)
{
    auto& a = impl_->acceptor;
    a.open(ep.protocol());
    a.set_option(asio::socket_base::reuse_address(true));
    a.bind(ep);
    a.listen(asio::socket_base::max_listen_connections);
}

tcp::endpoint http_server::local_endpoint() const
{
    return impl_->acceptor.local_endpoint();
}

void http_server::start()
{
    asio::co_spawn(impl_->acceptor.get_executor(), impl_->accept_loop(), asio::detached);
}

void http_server::stop()
{
    if (impl_->stopping) {
        return;
    }
    impl_->stopping = true;
    boost::system::error_code ignored;
    impl_->acceptor.close(ignored);
    for (auto& c : impl_->connections) {
        if (c.idle) {
            c.stream->socket().cancel(ignored);
        }
    }
}

std::size_t http_server::connection_count() const
{
    return impl_->connections.size();
}

namespace {

bool iequal(std::string_view a, std::string_view b)
{
    if (a.size() != b.size()) {
        return false;
    }
    for (std::size_t i = 0; i < a.size(); ++i) {
        if (std::tolower(static_cast<unsigned char>(a[i])) != std::tolower(static_cast<unsigned char>(b[i]))) {
            return false;
        }
    }
    return true;
}

std::string_view trim_blanks(std::string_view v)
{
    while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
    while (!v.empty() && (v.back() == ' ' || v.back() == '\t' || v.back() == '\r' || v.back() == '\n')) v.remove_suffix(1);
    return v;
}

// Calls fn(name, value, line) for each field line of the head (the request line skipped).
template <class Fn>
void for_each_field(std::string_view head, Fn fn)
{
    std::size_t pos = head.find('\n');
    while (pos != std::string_view::npos && pos + 1 < head.size()) {
        std::size_t const start = pos + 1;
        std::size_t const end = head.find('\n', start);
        std::string_view const line = head.substr(start, end == std::string_view::npos ? head.npos : end + 1 - start);
        auto const colon = line.find(':');
        if (colon != std::string_view::npos) {
            fn(trim_blanks(line.substr(0, colon)), trim_blanks(line.substr(colon + 1)), line);
        }
        pos = end;
    }
}

}  // namespace

request_framing scan_request_framing(std::string_view head)
{
    std::size_t codings = 0;
    bool chunked = false;
    bool content_length = false;
    for_each_field(head, [&](std::string_view name, std::string_view value, std::string_view) {
        if (iequal(name, "transfer-encoding")) {
            ++codings;
            chunked = iequal(value, "chunked");
        } else if (iequal(name, "content-length")) {
            content_length = true;
        }
    });
    request_framing out;
    out.unsupported_coding = codings > 1 || (codings == 1 && !chunked);
    out.drop_content_length = codings == 1 && chunked && content_length;
    return out;
}

std::string without_content_length(std::string_view head)
{
    // Every line but the Content-Length fields, byte for byte: a malformed line (no colon) stays, so the
    // parser refuses the request as Consul would, and the blank line that ends the head stays.
    std::size_t const first_end = head.find('\n');
    std::string out(head.substr(0, first_end == std::string_view::npos ? head.size() : first_end + 1));
    if (first_end == std::string_view::npos)
        return out;
    for (std::size_t start = first_end + 1; start < head.size();) {
        std::size_t const end = head.find('\n', start);
        std::string_view const line = head.substr(start, end == std::string_view::npos ? head.npos : end + 1 - start);
        auto const colon = line.find(':');
        if (colon == std::string_view::npos || !iequal(trim_blanks(line.substr(0, colon)), "content-length"))
            out += line;
        start += line.size();
    }
    return out;
}

tcp::endpoint parse_endpoint(std::string const& host_port)
{
    auto const colon = host_port.rfind(':');
    if (colon == std::string::npos || colon + 1 == host_port.size()) {
        throw std::invalid_argument(fmt::format("address \"{}\" is not host:port", host_port));
    }
    std::string host = host_port.substr(0, colon);
    std::string const port_text = host_port.substr(colon + 1);
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
        host = host.substr(1, host.size() - 2);
    }
    unsigned long port = 0;
    try {
        std::size_t used = 0;
        port = std::stoul(port_text, &used);
        if (used != port_text.size()) {
            throw std::invalid_argument("trailing characters");
        }
    } catch (std::exception const&) {
        throw std::invalid_argument(fmt::format("address \"{}\" has a bad port \"{}\"", host_port, port_text));
    }
    if (port > 65535) {
        throw std::invalid_argument(fmt::format("address \"{}\" has a port above 65535", host_port));
    }
    if (host.empty() || host == "localhost") {
        host = "127.0.0.1";
    }
    boost::system::error_code ec;
    auto addr = asio::ip::make_address(host, ec);
    if (ec) {
        throw std::invalid_argument(fmt::format("address \"{}\" has a host that is not an IP address", host_port));
    }
    return {addr, static_cast<unsigned short>(port)};
}

}  // namespace kvship::transport
