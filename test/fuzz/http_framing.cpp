// HTTP framing on both ends, from raw bytes: the first byte picks the side.
//  * server (the sim, transport/http_server.cpp): the request head's framing as Go's net/http judges it
//    (scan_request_framing, without_content_length), then Beast's request parser over what the server
//    would hand it. Properties: a head whose framing is refused never reaches the parser; with chunked
//    and Content-Length, the rewritten head keeps its request line and its end, is shorter, and holds no
//    Content-Length field;
//    one parse consumes at most the bytes given (no request is split into two from one message).
//  * client (transport/http_client.cpp): Beast's response parser with the client's limits (64 KiB of
//    header, 1 MiB of body), then parse_query_meta and error_from_status on what it parsed.
#include "fuzz_check.hpp"

#include <transport/consul_request.hpp>
#include <transport/http_server.hpp>

#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>

#include <algorithm>
#include <cctype>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace t = kvship::transport;
namespace http = boost::beast::http;

namespace {

std::string lower(std::string_view s)
{
    std::string out(s);
    std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return out;
}

void server_side(std::string_view bytes)
{
    auto const end = bytes.find("\r\n\r\n");
    if (end == std::string_view::npos)
        return;
    std::string_view const head = bytes.substr(0, end + 4);
    auto const framing = t::scan_request_framing(head);
    std::string stream(bytes);
    if (framing.unsupported_coding)
        return;  // answered 501 and closed, never parsed
    if (framing.drop_content_length) {
        std::string const rewritten = t::without_content_length(head);
        auto const first_line = head.substr(0, head.find('\n') + 1);
        FUZZ_CHECK(std::string_view(rewritten).starts_with(first_line));
        FUZZ_CHECK(rewritten.ends_with("\n\r\n"));  // the blank line that ends the head stays
        FUZZ_CHECK(rewritten.size() < head.size());  // at least one Content-Length field went
        std::string const l = lower(rewritten);
        for (std::size_t at = l.find("content-length"); at != std::string::npos; at = l.find("content-length", at + 1)) {
            // only as a field name at the start of a line counts
            bool const line_start = at > 0 && l[at - 1] == '\n';
            auto const after = l.find_first_not_of(" \t", at + 14);
            FUZZ_CHECK(!(line_start && after != std::string::npos && l[after] == ':'));
        }
        stream = rewritten + std::string(bytes.substr(head.size()));
    }
    http::request_parser<http::string_body> parser;
    parser.header_limit(64 * 1024);
    parser.body_limit(1 << 20);
    parser.eager(true);
    boost::system::error_code ec;
    std::size_t const used = parser.put(boost::asio::buffer(stream), ec);
    FUZZ_CHECK(used <= stream.size());
}

void client_side(std::string_view bytes)
{
    http::response_parser<http::string_body> parser;
    parser.header_limit(64 * 1024);
    parser.body_limit(1 << 20);
    parser.eager(true);
    boost::system::error_code ec;
    std::size_t const used = parser.put(boost::asio::buffer(bytes.data(), bytes.size()), ec);
    FUZZ_CHECK(used <= bytes.size());
    if (!ec && !parser.is_done())
        parser.put_eof(ec);
    if (ec || !parser.is_header_done())
        return;
    auto const& res = parser.get();
    auto meta = t::parse_query_meta(res.base(), "GET /v1/kv/x");
    (void)meta;
    if (parser.is_done() && res.result_int() >= 400)
        (void)t::error_from_status("GET /v1/kv/x", res.result_int(), res.body());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(std::uint8_t const* data, std::size_t size)
{
    if (size == 0)
        return 0;
    std::string_view const bytes(reinterpret_cast<char const*>(data + 1), size - 1);
    if (data[0] % 2 == 0)
        server_side(bytes);
    else
        client_side(bytes);
    return 0;
}
