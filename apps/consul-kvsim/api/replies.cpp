#include "api/replies.hpp"

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
