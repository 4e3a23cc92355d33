// Pure pieces of the Consul client, kept apart from I/O so they can be tested as tables: request
// targets (percent-encoding, query options), a source read's options and its stale re-read,
// blocking-query deadlines, reading the meta headers, and turning an HTTP error status into a
// consul_error.
#pragma once

#include <transport/consul_error.hpp>
#include <transport/consul_types.hpp>

#include <boost/beast/http/fields.hpp>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace kvship::transport {

// A key as a URL path: every byte except unreserved characters (A-Z a-z 0-9 - . _ ~) and '/'
// becomes %XX, so '?', '#', '%', ' ' and non-ASCII bytes survive the trip.
[[nodiscard]] std::string escape_path(std::string_view key);
// A query-string value: like escape_path, but '/' is encoded too.
[[nodiscard]] std::string escape_query_value(std::string_view value);

// Builds "<path>?a&b=c": presence flags and escaped values, in call order.
class target_builder
{
public:
    explicit target_builder(std::string path) : target_(std::move(path)) {}
    target_builder& flag(std::string_view name);
    target_builder& param(std::string_view name, std::string_view value);
    target_builder& param(std::string_view name, std::uint64_t value);
    // dc, stale/consistent, index and wait (as "<n>ms", only when index > 0 and wait > 0).
    target_builder& query(query_options const& q);
    std::string const& str() const { return target_; }

private:
    std::string target_;
    bool has_query_ = false;
};

// How a replicator reads its source (consul-template's rule for -max-stale): `?stale` when a bound
// is set, a blocking read of up to `wait` once an index is known, and an answer from a server further
// behind the leader than the bound is dropped and the same query sent again without `?stale`.
struct read_settings
{
    std::string dc{};
    std::chrono::nanoseconds max_stale{0};  // 0: default-mode reads, never re-read
    std::chrono::milliseconds wait{0};      // of a blocking read (index > 0)
};

// The options of a read at `index` (0: a plain read; else blocking, waiting past `index`).
[[nodiscard]] query_options read_query(read_settings const& s, std::uint64_t index);
// After an answer to `sent` whose X-Consul-LastContact is `last_contact`: nullopt when it may be
// used, else the query to send instead (`sent` in the default mode). Only a `?stale` read is ever
// too stale.
[[nodiscard]] std::optional<query_options> stale_reread(read_settings const& s, query_options const& sent,
                                                        std::chrono::milliseconds last_contact);

// Consul's longest wait (max_query_time) and the wait it uses when a blocking query names none.
inline constexpr std::chrono::milliseconds max_query_wait{std::chrono::minutes(10)};
inline constexpr std::chrono::milliseconds default_query_wait{std::chrono::minutes(5)};

// How long the server may hold a read: 0 for a non-blocking read (index 0); otherwise `wait`
// clamped to max_query_wait, or default_query_wait when wait is 0.
[[nodiscard]] std::chrono::milliseconds effective_wait(query_options const& q);
// The client's deadline for a read: request_timeout for a non-blocking read, else
// w + w/16 (Consul's jitter) + margin, with w = effective_wait(q).
[[nodiscard]] std::chrono::milliseconds read_deadline(query_options const& q,
                                                      std::chrono::milliseconds request_timeout,
                                                      std::chrono::milliseconds margin);

// Reads X-Consul-Index (required: missing or not a decimal uint64 → missing_index; 0 is raised
// to 1), X-Consul-KnownLeader (anything but "true", including absence, → no_leader: a listing
// from a cluster without a leader must never look like data) and X-Consul-LastContact
// (milliseconds; absent → 0, not a number → malformed_response). `request` names the request
// in the error message.
[[nodiscard]] consul_result<query_meta> parse_query_meta(boost::beast::http::fields const& headers,
                                                         std::string_view request);

// The consul_error for an HTTP status that is not this request's success: the code from the
// status and body (consul-api.md §12), the first bytes of the body in the message, and the limit
// of a 413. `request` is "<METHOD> <path>" and never holds the token.
[[nodiscard]] consul_error error_from_status(std::string_view request, unsigned status, std::string_view body);

// The first `max` bytes of a body for an error message: control bytes become '?', and "..." marks a cut.
[[nodiscard]] std::string body_excerpt(std::string_view body, std::size_t max = 256);

// Replaces every occurrence of `secret` in `text` with "<redacted>" (nothing when secret is empty).
void redact(std::string& text, std::string_view secret);

}  // namespace kvship::transport
