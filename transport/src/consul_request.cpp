#include <transport/consul_request.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <charconv>

namespace kvship::transport {

namespace {

bool is_unreserved(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
           c == '_' || c == '~';
}

std::string escape(std::string_view in, bool keep_slash)
{
    static constexpr char hex[] = "0123456789ABCDEF";
    std::string out;
    out.reserve(in.size() + in.size() / 4);
    for (char ch : in) {
        auto const c = static_cast<unsigned char>(ch);
        if (is_unreserved(c) || (keep_slash && c == '/')) {
            out.push_back(ch);
        } else {
            out.push_back('%');
            out.push_back(hex[c >> 4]);
            out.push_back(hex[c & 0xF]);
        }
    }
    return out;
}

// Strict decimal uint64: digits only, no sign, no spaces, no overflow.
bool parse_u64(std::string_view s, std::uint64_t& out)
{
    if (s.empty() || s.size() > 20) {
        return false;
    }
    auto const* end = s.data() + s.size();
    auto [p, ec] = std::from_chars(s.data(), end, out);
    return ec == std::errc() && p == end;
}

bool contains(std::string_view hay, std::string_view needle)
{
    return hay.find(needle) != std::string_view::npos;
}

// The number after the last `marker` in `body`, if digits follow it.
std::uint64_t number_after(std::string_view body, std::string_view marker)
{
    auto pos = body.rfind(marker);
    if (pos == std::string_view::npos) {
        return 0;
    }
    pos += marker.size();
    auto end = pos;
    while (end < body.size() && body[end] >= '0' && body[end] <= '9') {
        ++end;
    }
    std::uint64_t v = 0;
    if (!parse_u64(body.substr(pos, end - pos), v)) {
        return 0;
    }
    return v;
}

}  // namespace

std::string escape_path(std::string_view key)
{
    return escape(key, true);
}

std::string escape_query_value(std::string_view value)
{
    return escape(value, false);
}

target_builder& target_builder::flag(std::string_view name)
{
    target_ += has_query_ ? '&' : '?';
    has_query_ = true;
    target_ += name;
    return *this;
}

target_builder& target_builder::param(std::string_view name, std::string_view value)
{
    flag(name);
    target_ += '=';
    target_ += escape_query_value(value);
    return *this;
}

target_builder& target_builder::param(std::string_view name, std::uint64_t value)
{
    flag(name);
    target_ += '=';
    target_ += std::to_string(value);
    return *this;
}

target_builder& target_builder::query(query_options const& q)
{
    if (!q.dc.empty()) {
        param("dc", q.dc);
    }
    if (q.mode == consistency::stale) {
        flag("stale");
    } else if (q.mode == consistency::consistent) {
        flag("consistent");
    }
    if (q.index > 0) {
        param("index", q.index);
        if (q.wait.count() > 0) {
            flag("wait");
            target_ += fmt::format("={}ms", q.wait.count());
        }
    }
    return *this;
}

query_options read_query(read_settings const& s, std::uint64_t index)
{
    query_options q;
    q.dc = s.dc;
    q.index = index;
    if (index > 0) {
        q.wait = s.wait;
    }
    q.mode = s.max_stale.count() > 0 ? consistency::stale : consistency::default_mode;
    return q;
}

std::optional<query_options> stale_reread(read_settings const& s, query_options const& sent,
                                          std::chrono::milliseconds last_contact)
{
    if (sent.mode != consistency::stale || s.max_stale.count() <= 0 || last_contact <= s.max_stale) {
        return std::nullopt;
    }
    query_options again = sent;
    again.mode = consistency::default_mode;
    return again;
}

std::chrono::milliseconds effective_wait(query_options const& q)
{
    if (q.index == 0) {
        return std::chrono::milliseconds(0);
    }
    if (q.wait.count() <= 0) {
        return default_query_wait;
    }
    return std::min(q.wait, max_query_wait);
}

std::chrono::milliseconds read_deadline(query_options const& q, std::chrono::milliseconds request_timeout,
                                        std::chrono::milliseconds margin)
{
    auto const w = effective_wait(q);
    if (w.count() == 0) {
        return request_timeout;
    }
    return w + w / 16 + margin;
}

consul_result<query_meta> parse_query_meta(boost::beast::http::fields const& headers, std::string_view request)
{
    query_meta meta;
    auto const idx = headers.find("X-Consul-Index");
    if (idx == headers.end()) {
        return consul_error{errc::missing_index, 0, fmt::format("{}: no X-Consul-Index header", request)};
    }
    if (!parse_u64(idx->value(), meta.index)) {
        return consul_error{errc::missing_index, 0,
                            fmt::format("{}: X-Consul-Index {:?} is not a uint64", request,
                                        body_excerpt(idx->value(), 40))};
    }
    meta.index = std::max<std::uint64_t>(meta.index, 1);

    auto const leader = headers.find("X-Consul-KnownLeader");
    meta.known_leader = leader != headers.end() && leader->value() == "true";
    if (!meta.known_leader) {
        return consul_error{errc::no_leader, 0,
                            leader == headers.end()
                                ? fmt::format("{}: no X-Consul-KnownLeader header", request)
                                : fmt::format("{}: X-Consul-KnownLeader: {}", request,
                                              body_excerpt(leader->value(), 40))};
    }

    auto const filtered = headers.find("X-Consul-Results-Filtered-By-ACLs");
    meta.results_filtered = filtered != headers.end() && filtered->value() == "true";

    auto const contact = headers.find("X-Consul-LastContact");
    if (contact != headers.end()) {
        std::uint64_t ms = 0;
        if (!parse_u64(contact->value(), ms) || ms > static_cast<std::uint64_t>(INT64_MAX)) {
            return consul_error{errc::malformed_response, 0,
                                fmt::format("{}: X-Consul-LastContact {:?} is not a number of milliseconds",
                                            request, body_excerpt(contact->value(), 40))};
        }
        meta.last_contact = std::chrono::milliseconds(static_cast<std::int64_t>(ms));
    }
    return meta;
}

consul_error error_from_status(std::string_view request, unsigned status, std::string_view body)
{
    consul_error e;
    e.http_status = status;
    e.message = fmt::format("{}: HTTP {}", request, status);
    if (!body.empty()) {
        e.message += ": ";
        e.message += body_excerpt(body);
    }
    if (status >= 500 && status <= 599) {
        if (contains(body, "No cluster leader")) {
            e.code = errc::no_leader;
        } else if (contains(body, "No path to datacenter") ||
                   contains(body, "Remote DC has no server currently reachable")) {
            e.code = errc::no_path_to_datacenter;
        } else {
            e.code = errc::server_error;
        }
        return e;
    }
    switch (status) {
    case 403:
        e.code = errc::forbidden;
        break;
    case 404:
        e.code = errc::not_found;
        break;
    case 413:
        if (contains(body, "too many operations")) {
            e.code = errc::too_many_operations;
            e.limit = number_after(body, " > ");  // "(N > M)"
        } else {
            e.code = errc::request_too_large;
            if (contains(body, "max size: ")) {
                e.limit = number_after(body, "max size: ");  // "Request body(N bytes) too large, max size: M bytes"
            } else {
                e.limit = number_after(body, " > ");  // "Value for key \"k\" is too large (N > M bytes)"
            }
        }
        break;
    case 429:
        e.code = errc::rate_limited;
        break;
    default:
        e.code = status >= 400 && status <= 499 ? errc::bad_request : errc::bad_status;
        break;
    }
    return e;
}

std::string body_excerpt(std::string_view body, std::size_t max)
{
    std::string out(body.substr(0, max));
    for (auto& c : out) {
        auto const u = static_cast<unsigned char>(c);
        if (u < 0x20 || u == 0x7F) {
            c = '?';
        }
    }
    if (body.size() > max) {
        out += "...";
    }
    return out;
}

void redact(std::string& text, std::string_view secret)
{
    if (secret.empty()) {
        return;
    }
    static constexpr std::string_view mark = "<redacted>";
    for (auto pos = text.find(secret); pos != std::string::npos; pos = text.find(secret, pos + mark.size())) {
        text.replace(pos, secret.size(), mark);
    }
}

}  // namespace kvship::transport
