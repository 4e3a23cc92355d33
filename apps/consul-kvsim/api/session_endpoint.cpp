// Sessions (§8), status/agent/catalog discovery (§10) and the ACL management endpoints (§11).
#include "api/codec.hpp"
#include "api/server.hpp"

#include <fmt/format.h>

namespace kvship::kvsim::api {

namespace {

std::string suffix_after(std::string const& path, std::string_view prefix)
{
    return path.size() > prefix.size() ? path.substr(prefix.size()) : std::string();
}

}  // namespace

awaitable<reply> sim_server::session_create(call& c)
{
    query_opts q;
    parse_dc_token(c, q);
    if (auto r = check_ent_meta(c)) {
        co_return std::move(*r);
    }
    session_request request;
    if (!c.req.body().empty()) {
        auto parsed = parse_session_body(c.req.body());
        if (auto const* e = std::get_if<std::string>(&parsed)) {
            co_return text_reply(http::status::bad_request, "Request decode failed: " + *e);
        }
        request = std::move(std::get<session_request>(parsed));
    }
    if (is_remote(q)) {
        auto r = co_await forward(c, q);
        co_return r;
    }
    if (!store_.resolve(q.token)) {
        co_return acl_not_found();
    }
    std::variant<session, std::string> result;
    co_await committer_.commit([&] { result = store_.create_session(request, sim_clock::now()); });
    if (auto const* e = std::get_if<std::string>(&result)) {
        co_return text_reply(http::status::internal_server_error, *e);
    }
    co_return json_reply(http::status::ok, json_session_id(std::get<session>(result).id, c.pretty));
}

awaitable<reply> sim_server::session_renew(call& c)
{
    query_opts q;
    if (auto r = parse_query(c, q)) {
        co_return std::move(*r);
    }
    if (auto r = check_ent_meta(c)) {
        co_return std::move(*r);
    }
    std::string const id = suffix_after(c.path, "/v1/session/renew/");
    if (id.empty()) {
        co_return text_reply(http::status::bad_request, "Missing session");
    }
    if (is_remote(q)) {
        auto r = co_await forward(c, q);
        co_return r;
    }
    if (!store_.resolve(q.token)) {
        co_return acl_not_found();
    }
    // A renew is not a Raft write in Consul: no group commit.
    auto const renewed = store_.renew_session(id, sim_clock::now());
    if (!renewed) {
        co_return text_reply(http::status::not_found, fmt::format("Session id '{}' not found", id));
    }
    session const* const one[] = {&*renewed};
    co_return json_reply(http::status::ok, json_sessions(one, c.pretty));
}

awaitable<reply> sim_server::session_destroy(call& c)
{
    query_opts q;
    parse_dc_token(c, q);
    if (auto r = check_ent_meta(c)) {
        co_return std::move(*r);
    }
    std::string const id = suffix_after(c.path, "/v1/session/destroy/");
    if (id.empty()) {
        co_return text_reply(http::status::bad_request, "Missing session");
    }
    if (is_remote(q)) {
        auto r = co_await forward(c, q);
        co_return r;
    }
    if (!store_.resolve(q.token)) {
        co_return acl_not_found();
    }
    co_await committer_.commit([&] { store_.destroy_session(id, sim_clock::now()); });
    co_return json_reply(http::status::ok, json_bool(true, c.pretty));
}

awaitable<reply> sim_server::session_info(call& c)
{
    auto r = co_await sessions_query(c, session_query::info, suffix_after(c.path, "/v1/session/info/"));
    co_return r;
}

awaitable<reply> sim_server::session_list(call& c)
{
    auto r = co_await sessions_query(c, session_query::list, std::string());
    co_return r;
}

awaitable<reply> sim_server::session_node(call& c)
{
    auto r = co_await sessions_query(c, session_query::node, suffix_after(c.path, "/v1/session/node/"));
    co_return r;
}

awaitable<reply> sim_server::sessions_query(call& c, session_query what, std::string arg)
{
    query_opts q;
    if (auto r = parse_query(c, q)) {
        co_return std::move(*r);
    }
    if (auto r = check_ent_meta(c)) {
        co_return std::move(*r);
    }
    if (what == session_query::info && arg.empty()) {
        co_return text_reply(http::status::bad_request, "Missing session");
    }
    if (what == session_query::node && arg.empty()) {
        co_return text_reply(http::status::bad_request, "Missing node name");
    }
    if (is_remote(q)) {
        auto r = co_await forward(c, q);
        co_return r;
    }
    if (!store_.resolve(q.token)) {
        co_return acl_not_found();
    }
    if (q.min_index > 0) {
        c.classes.push_back("blocking");
    }
    auto run = [&]() -> probe { return {store_.sessions_index(), watch_scope::sessions}; };
    co_await block(q, std::string(), run);
    std::vector<session const*> out;
    if (what == session_query::info) {
        if (auto const* s = store_.get_session(arg)) {
            out.push_back(s);
        }
    } else {
        for (auto const* s : store_.sessions()) {
            if (what == session_query::list || s->node == arg) {
                out.push_back(s);
            }
        }
    }
    auto r = json_reply(http::status::ok, json_sessions(out, c.pretty));
    set_read_meta(r, store_.sessions_index());
    co_return r;
}

awaitable<reply> sim_server::status_leader(call& c)
{
    query_opts q;
    parse_dc_token(c, q);
    if (is_remote(q)) {
        auto r = co_await forward(c, q);
        co_return r;
    }
    co_return json_reply(
        http::status::ok,
        json_string(fmt::format("{}:{}", endpoint_.address().to_string(), endpoint_.port()), c.pretty)
    );
}

awaitable<reply> sim_server::status_peers(call& c)
{
    query_opts q;
    parse_dc_token(c, q);
    if (is_remote(q)) {
        auto r = co_await forward(c, q);
        co_return r;
    }
    std::vector<std::string> const peers{
        fmt::format("{}:{}", endpoint_.address().to_string(), endpoint_.port())};
    co_return json_reply(http::status::ok, json_strings(peers, c.pretty));
}

awaitable<reply> sim_server::agent_self(call& c)
{
    agent_info info;
    info.datacenter = opts_.datacenter;
    info.node_name = opts_.node_name;
    info.node_id = node_uuid(opts_.datacenter + "/" + opts_.node_name);
    info.address = endpoint_.address().to_string();
    info.port = endpoint_.port();
    info.version = "1.17.0";
    info.revision = "kvsim";
    info.build_date = "2024-01-01T00:00:00Z";
    info.acl_default_policy = acl_policy_name();
    co_return json_reply(http::status::ok, json_agent_self(info, c.pretty));
}

awaitable<reply> sim_server::catalog_datacenters(call& c)
{
    std::vector<std::string> dcs{opts_.datacenter};
    for (auto const& peer : opts_.wan) {
        dcs.push_back(peer.datacenter);
    }
    co_return json_reply(http::status::ok, json_strings(dcs, c.pretty));
}

// ---------------------------------------------------------------- ACL management

std::variant<authorizer, reply> sim_server::acl_manager(query_opts const& q) const
{
    if (!opts_.acl_default_allow) {
        return text_reply(http::status::unauthorized, "ACL support disabled");
    }
    auto const acl = store_.resolve(q.token);
    if (!acl) {
        return acl_not_found();
    }
    if (!acl->management) {
        return permission_denied(*acl, "acl:write", "acl");
    }
    return *acl;
}

awaitable<reply> sim_server::acl_policy_create(call& c)
{
    query_opts q;
    parse_dc_token(c, q);
    auto manager = acl_manager(q);
    if (auto* r = std::get_if<reply>(&manager)) {
        co_return std::move(*r);
    }
    auto parsed = parse_policy_body(c.req.body());
    if (auto const* e = std::get_if<std::string>(&parsed)) {
        co_return text_reply(http::status::bad_request, "Request decode failed: " + *e);
    }
    auto const& body = std::get<policy_body>(parsed);
    if (body.name.empty()) {
        co_return text_reply(http::status::bad_request, "Invalid Policy: no name set");
    }
    std::variant<acl_policy, std::string> result;
    co_await committer_.commit([&] { result = store_.put_policy(body.name, body.rules); });
    if (auto const* e = std::get_if<std::string>(&result)) {
        co_return text_reply(http::status::bad_request, *e);
    }
    co_return json_reply(http::status::ok, json_policy(std::get<acl_policy>(result), c.pretty));
}

awaitable<reply> sim_server::acl_policy_read(call& c)
{
    query_opts q;
    parse_dc_token(c, q);
    auto manager = acl_manager(q);
    if (auto* r = std::get_if<reply>(&manager)) {
        co_return std::move(*r);
    }
    auto const* p = store_.find_policy(suffix_after(c.path, "/v1/acl/policy/"));
    if (p == nullptr) {
        co_return text_reply(http::status::not_found, "ACL policy not found");
    }
    co_return json_reply(http::status::ok, json_policy(*p, c.pretty));
}

awaitable<reply> sim_server::acl_token_create(call& c)
{
    query_opts q;
    parse_dc_token(c, q);
    auto manager = acl_manager(q);
    if (auto* r = std::get_if<reply>(&manager)) {
        co_return std::move(*r);
    }
    auto parsed = parse_token_body(c.req.body());
    if (auto const* e = std::get_if<std::string>(&parsed)) {
        co_return text_reply(http::status::bad_request, "Request decode failed: " + *e);
    }
    auto const& body = std::get<token_body>(parsed);
    acl_token token;
    token.accessor_id = body.accessor_id;
    token.secret_id = body.secret_id;
    token.description = body.description;
    token.local = body.local;
    for (auto const& ref : body.policy_refs) {
        auto const* p = store_.find_policy(ref);
        if (p == nullptr) {
            co_return text_reply(http::status::bad_request, fmt::format("cannot find policy {}", ref));
        }
        token.policy_ids.push_back(p->id);
    }
    std::variant<acl_token, std::string> result;
    co_await committer_.commit([&] { result = store_.put_token(token); });
    if (auto const* e = std::get_if<std::string>(&result)) {
        // ACL.TokenSet's errors are RPC errors: 500 (real Consul 1.10 for "SecretID is not a valid UUID" and
        // "SecretID is already in use")
        co_return text_reply(http::status::internal_server_error, *e);
    }
    auto const& created = std::get<acl_token>(result);
    std::vector<std::pair<std::string, std::string>> links;
    for (auto const& id : created.policy_ids) {
        auto const* p = store_.find_policy(id);
        links.emplace_back(id, p != nullptr ? p->name : std::string());
    }
    co_return json_reply(http::status::ok, json_token(created, links, c.pretty));
}

// GET /v1/acl/token/self (any valid token) and /v1/acl/token/<AccessorID> (management).
awaitable<reply> sim_server::acl_token_read(call& c)
{
    query_opts q;
    parse_dc_token(c, q);
    std::string const which = suffix_after(c.path, "/v1/acl/token/");
    acl_token const* token = nullptr;
    if (which == "self") {
        if (!opts_.acl_default_allow) {
            co_return text_reply(http::status::unauthorized, "ACL support disabled");
        }
        if (!store_.resolve(q.token)) {
            co_return acl_not_found();
        }
        token = store_.find_token(q.token);
    } else {
        auto manager = acl_manager(q);
        if (auto* r = std::get_if<reply>(&manager)) {
            co_return std::move(*r);
        }
        token = store_.find_token(which);
    }
    if (token == nullptr) {
        co_return text_reply(http::status::not_found, "ACL not found");
    }
    std::vector<std::pair<std::string, std::string>> links;
    for (auto const& id : token->policy_ids) {
        auto const* p = store_.find_policy(id);
        links.emplace_back(id, p != nullptr ? p->name : std::string());
    }
    co_return json_reply(http::status::ok, json_token(*token, links, c.pretty));
}

}  // namespace kvship::kvsim::api
