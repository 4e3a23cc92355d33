#include <transport/consul_error.hpp>

#include <boost/system/system_error.hpp>
#include <boost/throw_exception.hpp>
#include <fmt/format.h>

#include <ostream>

namespace kvship::transport {

namespace {

// error_category's destructor is protected and non-virtual by design; instances are never deleted.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wnon-virtual-dtor"
class category_impl final : public boost::system::error_category
{
public:
    char const* name() const noexcept override { return "kvship.consul"; }

    std::string message(int ev) const override
    {
        switch (static_cast<errc>(ev)) {
        case errc::connect_failed: return "could not connect to the Consul agent";
        case errc::connection_lost: return "connection to the Consul agent lost mid-request";
        case errc::timed_out: return "Consul request timed out";
        case errc::cancelled: return "Consul request cancelled";
        case errc::tls_failed: return "TLS handshake with the Consul agent failed";
        case errc::response_too_large: return "Consul response body over the limit";
        case errc::malformed_response: return "malformed Consul response";
        case errc::missing_index: return "Consul read without a usable X-Consul-Index";
        case errc::no_leader: return "Consul has no known leader";
        case errc::no_path_to_datacenter: return "no path to the datacenter";
        case errc::server_error: return "Consul server error";
        case errc::forbidden: return "permission denied by Consul ACLs";
        case errc::not_found: return "not found";
        case errc::bad_request: return "Consul rejected the request";
        case errc::rate_limited: return "rate limited by Consul";
        case errc::request_too_large: return "request too large for Consul";
        case errc::too_many_operations: return "transaction has too many operations";
        case errc::bad_status: return "unexpected HTTP status from Consul";
        }
        return "unknown kvship.consul error";
    }
};

#pragma GCC diagnostic pop

category_impl const category_instance;

}  // namespace

boost::system::error_category const& consul_category() noexcept
{
    return category_instance;
}

std::string consul_error::what() const
{
    std::string out = code.message();
    if (!message.empty()) {
        out += ": ";
        out += message;
    }
    return out;
}

std::ostream& operator<<(std::ostream& os, consul_error const& e)
{
    return os << e.what();
}

consul_error filtered_by_acls_error()
{
    return consul_error{make_error_code(errc::forbidden), 200, "filtered by ACLs"};
}

std::string filtered_listing_text(std::string_view prefix, std::optional<std::string_view> dc, std::string_view side)
{
    return fmt::format(
        "GET /v1/kv/{}?recurse{}: the listing was filtered by ACLs (X-Consul-Results-Filtered-By-ACLs): "
        "the token cannot read every key under the {} prefix",
        prefix,
        dc ? fmt::format("&dc={}", *dc) : std::string(),
        side
    );
}

void throw_exception_from_error(consul_error const& e, boost::source_location const& loc)
{
    boost::throw_exception(boost::system::system_error(e.code, e.message), loc);
}

bool is_retryable(boost::system::error_code const& ec) noexcept
{
    if (ec.category() != consul_category()) {
        return false;
    }
    switch (static_cast<errc>(ec.value())) {
    case errc::connect_failed:
    case errc::connection_lost:
    case errc::timed_out:
    case errc::no_leader:
    case errc::no_path_to_datacenter:
    case errc::server_error:
    case errc::rate_limited:
        return true;
    default:
        return false;
    }
}

}  // namespace kvship::transport
