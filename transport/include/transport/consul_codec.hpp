// JSON of Consul's HTTP API, encoded and decoded in one TU (src/kv_codec.cpp, the only RapidJSON
// user in transport). Decoders are strict: the whole body must be the expected shape, every
// number an exact uint64, or the answer is errc::malformed_response with what and where, never a
// partial result. They take the body by value and parse it in place, so pass it with std::move.
#pragma once

#include <transport/consul_error.hpp>
#include <transport/consul_types.hpp>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace kvship::transport {

// A KV listing (GET /v1/kv/<p>?recurse, or a single key): a JSON array of entries. Values are
// base64-decoded; `"Value": null` stays nullopt; `Session` may be absent.
[[nodiscard]] consul_result<std::vector<kv_entry>> decode_kv_entries(std::string body);
// The same listing decoded as it arrives, for bodies too large to hold whole: feed() the body's
// bytes in order (any split), take() the entries decoded so far, finish() at the end of the body.
// A small scanner (nesting depth, strings and their escapes) splits the top-level array at its
// element boundaries; each run of complete elements is then decoded by the same strict decoder
// as decode_kv_entries, so every rule holds (and errors name the entry's position in the body).
// Only finish() returning no error makes the entries a complete listing: a body that is empty, not
// an array, malformed anywhere or cut short is an error, and errors are sticky.
class kv_listing_decoder
{
public:
    // Complete elements are decoded once `batch` of them are pending (or `batch_bytes` of text).
    explicit kv_listing_decoder(std::size_t batch = 1000, std::size_t batch_bytes = std::size_t{4} << 20);

    [[nodiscard]] std::optional<consul_error> feed(std::string_view bytes);
    // Decodes what is pending and checks that the body ended where the array closed.
    [[nodiscard]] std::optional<consul_error> finish();
    // Moves out the entries decoded so far, in body order.
    [[nodiscard]] std::vector<kv_entry> take();

    [[nodiscard]] std::size_t ready() const noexcept { return ready_.size(); }

    // Body bytes fed so far.
    [[nodiscard]] std::uint64_t offset() const noexcept { return consumed_ + buf_.size(); }

private:
    enum class state : std::uint8_t
    {
        before,   // leading whitespace, then '['
        first,    // after '[': an element or ']'
        element,  // after ',': an element
        nested,   // inside an object or array element
        string,   // inside a string element
        scalar,   // inside a number/true/false/null element
        after,    // after an element: ',' or ']'
        done,     // after ']': whitespace only
    };

    std::optional<consul_error> scan(std::size_t from);
    std::optional<consul_error> decode_pending();
    std::optional<consul_error> error(std::string message);
    void begin_element(std::size_t pos, char c);
    void end_element(std::size_t end);

    std::size_t batch_;
    std::size_t batch_bytes_;
    std::string buf_;                // body bytes not yet decoded (and the element in progress)
    std::uint64_t consumed_ = 0;     // body bytes dropped from the front of buf_
    std::size_t pending_start_ = 0;  // in buf_: start of the first complete, undecoded element
    std::size_t pending_end_ = 0;    // in buf_: end of the last complete element
    std::size_t pending_count_ = 0;
    std::size_t current_start_ = 0;  // in buf_: start of the element being scanned
    std::size_t decoded_ = 0;        // entries decoded so far (ready_ and taken)
    unsigned depth_ = 0;
    bool in_string_ = false;
    bool escape_ = false;
    state state_ = state::before;
    std::optional<consul_error> error_;
    std::vector<kv_entry> ready_;
};

// A JSON array of strings (?keys listings, /v1/catalog/datacenters).
[[nodiscard]] consul_result<std::vector<std::string>> decode_string_array(std::string body);
// A /v1/txn answer: `committed` for a 200 (Results, Errors null), false for a 409 (Errors).
[[nodiscard]] consul_result<txn_outcome> decode_txn_response(std::string body, bool committed);
// GET /v1/agent/self: Config.Datacenter and Config.NodeName.
[[nodiscard]] consul_result<agent_info> decode_agent_self(std::string body);
// A bare JSON `true` or `false` (KV PUT/DELETE, session destroy).
[[nodiscard]] consul_result<bool> decode_bool(std::string body);
// PUT /v1/session/create: {"ID": "..."} → the ID.
[[nodiscard]] consul_result<std::string> decode_session_id(std::string body);
// PUT /v1/session/renew/<id>: [session] → its TTL string ("" when it has none).
[[nodiscard]] consul_result<std::string> decode_session_renew(std::string body);

// GET /v1/health/service/<name>: [{"Node": {...}, "Service": {...}, "Checks": [...]}, ...].
// Every instance needs a string Node.Node and Service.Service, a Service.Port in 0..65535 and an
// address (Service.Address, else Node.Address); Tags may be null.
[[nodiscard]] consul_result<std::vector<service_instance>> decode_health_service(std::string body);
// GET /v1/catalog/service/<name>: [{"Node", "Address", "Datacenter", "ServiceAddress", "ServicePort",
// "ServiceTags", ...}, ...], checked the same way.
[[nodiscard]] consul_result<std::vector<service_instance>> decode_catalog_service(std::string body);
// Vault's GET /v1/sys/leader: an object with a string "leader_address" (an http(s)://host:port URL
// or ""), booleans "ha_enabled" and "is_self" when present.
[[nodiscard]] consul_result<vault_leader> decode_vault_leader(std::string body);

// The /v1/txn request body: [{"KV": {"Verb": ..., "Key": ..., ...}}, ...].
[[nodiscard]] std::string encode_txn(std::vector<txn_op> const& ops);
// The /v1/session/create body; empty fields are left out.
[[nodiscard]] std::string encode_session_create(session_params const& p);
// Consul's name of a verb ("set", "delete-cas", ...).
[[nodiscard]] std::string_view txn_verb_name(txn_verb v);

}  // namespace kvship::transport
