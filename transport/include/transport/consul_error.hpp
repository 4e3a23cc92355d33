// Errors of the Consul client: transport::errc (an error_code enum with its own category) and
// consul_error, the code plus its context (HTTP status, request line, first bytes of the body).
// Operations return consul_result<T> = boost::system::result<T, consul_error>.
#pragma once

#include <boost/system/error_code.hpp>
#include <boost/system/result.hpp>

#include <cstdint>
#include <iosfwd>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>

namespace kvship::transport {

enum class errc
{
    connect_failed = 1,     // resolve or TCP connect failed (refused, unreachable)
    connection_lost,        // the connection broke mid-exchange; includes a truncated response
    timed_out,              // the request's deadline (or a blocking query's wait deadline) passed
    cancelled,              // the caller's cancellation signal aborted the request
    tls_failed,             // TLS handshake or certificate verification failed
    response_too_large,     // the response body is over consul_params::body_limit
    malformed_response,     // not HTTP, or a 200 whose JSON does not match what Consul sends
    missing_index,          // a read answered without a usable X-Consul-Index header
    no_leader,              // X-Consul-KnownLeader: false, or 500 "No cluster leader"
    no_path_to_datacenter,  // 500 "No path to datacenter" / "Remote DC has no server currently reachable"
    server_error,           // any other 5xx
    forbidden,              // 403 (Permission denied, ACL not found, Access is restricted)
    not_found,              // 404 where 404 is not an answer (session renew of an unknown id)
    bad_request,            // 400 and the other 4xx not listed here
    rate_limited,           // 429 (too many connections from this client, RPC rate limit)
    request_too_large,      // 413 "Request body(...) too large" / "Value for key ... is too large"
    too_many_operations,    // 413 "Transaction contains too many operations (N > M)"
    bad_status,             // a status Consul does not send for this request (1xx, 3xx, odd 2xx)
};

boost::system::error_category const& consul_category() noexcept;

inline boost::system::error_code make_error_code(errc e) noexcept
{
    return {static_cast<int>(e), consul_category()};
}

// The code plus what it needs to be understood. `message` names the request (method and path,
// never the token) and, for HTTP errors, the status and the first bytes of the body. `limit` is the
// server's limit parsed from a 413: M operations for too_many_operations, M bytes for
// request_too_large (0 when the body did not say).
struct consul_error
{
    boost::system::error_code code{};
    unsigned http_status = 0;
    std::string message{};
    std::uint64_t limit = 0;

    // "<code message>: <message>"
    std::string what() const;
    bool operator==(errc e) const noexcept { return code == make_error_code(e); }
};

// Lets consul_result<T>::value() throw: a boost::system::system_error carrying code and what().
[[noreturn]] void throw_exception_from_error(consul_error const& e, boost::source_location const& loc);

// Prints what() (lets test frameworks show a failed consul_result).
std::ostream& operator<<(std::ostream& os, consul_error const& e);

template <class T>
using consul_result = boost::system::result<T, consul_error>;

// Transient failures worth another attempt after a backoff: connect_failed, connection_lost,
// timed_out, no_leader, no_path_to_datacenter (the WAN link or the remote servers may come
// back; a misspelled dc only costs the retry budget), server_error and rate_limited (the one 4xx
// that means "later"). Never: forbidden and the other 4xx, malformed_response, missing_index,
// response_too_large, tls_failed, cancelled, too_many_operations, request_too_large.
[[nodiscard]] bool is_retryable(boost::system::error_code const& ec) noexcept;
[[nodiscard]] inline bool is_retryable(consul_error const& e) noexcept { return is_retryable(e.code); }

// A KV listing Consul answered with X-Consul-Results-Filtered-By-ACLs: the token cannot see every key,
// so the listing must never drive deletes. The error a list_stream sink returns to stop reading it
// (forbidden, status 200, "filtered by ACLs").
[[nodiscard]] consul_error filtered_by_acls_error();

// Its text: "GET /v1/kv/<prefix>?recurse&dc=<dc>: the listing was filtered by ACLs
// (X-Consul-Results-Filtered-By-ACLs): the token cannot read every key under the <side> prefix"
// (no `&dc=` when dc is nullopt; side names the prefix: "source", "destination").
[[nodiscard]] std::string filtered_listing_text(
    std::string_view prefix, std::optional<std::string_view> dc, std::string_view side
);

}  // namespace kvship::transport

namespace boost::system {
template <>
struct is_error_code_enum<kvship::transport::errc> : std::true_type
{
};
}  // namespace boost::system
