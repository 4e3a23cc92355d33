#include "api/replies.hpp"

#include <fmt/format.h>

#include <algorithm>

namespace kvship::kvsim::api {

reply text_reply(http::status status, std::string body)
{
    reply r;
    r.res.result(status);
    if (!body.empty()) {
        r.res.set(http::field::content_type, "text/plain; charset=utf-8");
    }
    r.res.body() = std::move(body);
    return r;
}

reply json_reply(http::status status, std::string body)
{
    reply r;
    r.res.result(status);
    r.res.set(http::field::content_type, "application/json");
    r.res.body() = std::move(body);
    return r;
}

reply empty_reply(http::status status)
{
    reply r;
    r.res.result(status);
    return r;
}

reply body_too_large(std::optional<std::uint64_t> length, bool txn)
{
    std::string_view const doc =
        txn ? "https://www.consul.io/docs/agent/options.html#txn_max_req_len"
            : "https://developer.hashicorp.com/consul/docs/agent/config/config-files#kv_max_value_size";
    if (length) {
        return text_reply(
            http::status::payload_too_large,
            fmt::format(
                "Request body({} bytes) too large, max size: {} bytes. See {}.",
                *length,
                kv_max_value_size,
                doc
            )
        );
    }
    return text_reply(
        http::status::payload_too_large,
        fmt::format("Request body too large, max size: {} bytes. See {}.", kv_max_value_size, doc)
    );
}

reply raft_apply_failed(std::string const& error)
{
    return text_reply(http::status::internal_server_error, "raft apply failed: " + error);
}

reply acl_not_found()
{
    return text_reply(http::status::forbidden, "ACL not found");
}

reply permission_denied(authorizer const& acl, std::string_view permission, std::string_view name)
{
    return text_reply(http::status::forbidden, permission_denied_text(acl, permission, name));
}

void set_read_meta(reply& r, index_t index)
{
    r.res.set("X-Consul-Index", std::to_string(std::max<index_t>(index, 1)));
    set_leader_meta(r);
    r.res.set("X-Consul-Query-Backend", "blocking-query");
}

void set_leader_meta(reply& r)
{
    r.res.set("X-Consul-KnownLeader", "true");
    r.res.set("X-Consul-LastContact", "0");
}

}  // namespace kvship::kvsim::api
