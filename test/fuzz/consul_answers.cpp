// Every other decoder of a Consul or Vault answer in transport/: the first byte picks one, the rest is
// the body (agent/self, bare bool, session create and renew, ?keys / datacenters arrays, health and
// catalog service listings, Vault sys/leader), plus Go durations (session TTLs), base64 values and
// error_from_status. Properties: a decoded service instance has an address; base64 and Go durations survive a round trip through their encoders.
#include "fuzz_check.hpp"

#include <gotext/base64.hpp>
#include <gotext/go_duration.hpp>
#include <transport/consul_codec.hpp>
#include <transport/consul_request.hpp>

#include <cstddef>
#include <cstdint>
#include <string>

namespace t = kvship::transport;
namespace g = kvship::gotext;

extern "C" int LLVMFuzzerTestOneInput(std::uint8_t const* data, std::size_t size)
{
    if (size == 0)
        return 0;
    std::string body(reinterpret_cast<char const*>(data + 1), size - 1);
    switch (data[0] % 12) {
    case 0: (void)t::decode_agent_self(std::move(body)); break;
    case 1: (void)t::decode_bool(std::move(body)); break;
    case 2: (void)t::decode_session_id(std::move(body)); break;
    case 3: {
        auto r = t::decode_session_renew(std::move(body));
        if (r && !r->empty())
            (void)g::parse_go_duration(*r);
        break;
    }
    case 4: (void)t::decode_string_array(std::move(body)); break;
    case 5:
    case 6: {
        auto r = data[0] % 12 == 5 ? t::decode_health_service(std::move(body))
                                   : t::decode_catalog_service(std::move(body));
        if (r)
            for (auto const& s : *r)
                FUZZ_CHECK(!s.address.empty());
        break;
    }
    case 7: (void)t::decode_vault_leader(std::move(body)); break;
    case 8: {
        auto d = g::parse_go_duration(body);
        if (d) {
            auto again = g::parse_go_duration(g::format_go_duration(*d));
            FUZZ_CHECK(again && *again == *d);
        }
        (void)g::parse_go_duration_or_error(body);
        break;
    }
    case 9: {
        auto d = g::base64_decode(body);
        if (d) {
            auto again = g::base64_decode(g::base64_encode(*d));
            FUZZ_CHECK(again && *again == *d);
        }
        break;
    }
    case 10: {
        unsigned status = body.empty() ? 500 : 400 + static_cast<unsigned char>(body[0]) % 200;
        (void)t::error_from_status("GET /v1/kv/x", status, body);
        (void)t::body_excerpt(body, 16);
        break;
    }
    default: (void)t::decode_kv_entries(std::move(body)); break;
    }
    return 0;
}
