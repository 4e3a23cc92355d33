// The service catalog: the local agent's service/check endpoints (local to this sim, like an agent's) and the
// health/catalog reads (forwarded to the DC of ?dc=, blocking on the service's index), as Consul's
// agent_endpoint.go, health_endpoint.go and catalog_endpoint.go answer them.
#include "api/codec.hpp"
#include "api/server.hpp"

#include <fmt/format.h>

namespace kvship::kvsim::api {

namespace {

std::string suffix_after(std::string const& path, std::string_view prefix)
{
    return path.size() > prefix.size() ? path.substr(prefix.size()) : std::string();
}

// ipaddr.IsAny: an unspecified address.
bool is_any_address(std::string_view a)
{
    return a == "0.0.0.0" || a == "::" || a == "[::]";
}

// CheckTTL.SetStatus: outputs over 4 KiB are cut and annotated.
std::string cap_output(std::string output)
{
    auto const total = output.size();
    if (total <= check_output_max) {
        return output;
    }
    output.resize(check_output_max);
    return fmt::format("{} ... (captured {} of {} bytes)", output, check_output_max, total);
}

// strconv.ParseBool.
std::optional<bool> parse_go_bool(std::string_view s)
{
    for (std::string_view const t : {"1", "t", "T", "TRUE", "true", "True"}) {
        if (s == t) {
            return true;
        }
    }
    for (std::string_view const f : {"0", "f", "F", "FALSE", "false", "False"}) {
        if (s == f) {
            return false;
        }
    }
    return std::nullopt;
}

reply unknown_check(std::string_view id)
{
    return text_reply(
        http::status::not_found,
        fmt::format(
            "Unknown check ID {}. Ensure that the check ID is passed, not the check name.", go_quote(id)
        )
    );
}

// service:write on the check's service; node:write (the default policy here) for a node check.
bool can_write_check(authorizer const& acl, catalog_check const& c)
{
    if (!c.service_name.empty()) {
        return acl.can_write_service(c.service_name);
    }
    return !acl.enabled || acl.management || acl.default_allow;
}

reply check_denied(authorizer const& acl, catalog_check const& c, std::string_view node)
{
    if (!c.service_name.empty()) {
        return permission_denied(acl, "service:write", c.service_name);
    }
    return permission_denied(acl, "node:write", node);
}

}  // namespace

node_info sim_server::local_node() const
{
    std::string address = endpoint_.address().to_string();
    if (endpoint_.address().is_unspecified()) {
        address = "127.0.0.1";
    }
    return node_info{
        .id = node_uuid(opts_.datacenter + "/" + opts_.node_name),
        .name = opts_.node_name,
        .address = std::move(address),
        .datacenter = opts_.datacenter,
        .index = store_.params().initial_index};
}

// ---------------------------------------------------------------- agent writes (local, never forwarded)

awaitable<reply> sim_server::agent_service_register(call& c)
{
    query_opts q;
    parse_dc_token(c, q);
    if (auto r = check_ent_meta(c)) {
        co_return std::move(*r);
    }
    auto parsed = parse_service_body(c.req.body());
    if (auto const* e = std::get_if<std::string>(&parsed)) {
        co_return text_reply(http::status::bad_request, "Request decode failed: " + *e);
    }
    auto& body = std::get<service_body>(parsed);
    auto& reg = body.reg;
    if (reg.name.empty()) {
        co_return text_reply(http::status::bad_request, "Missing service name");
    }
    if (is_any_address(reg.address)) {
        co_return text_reply(http::status::bad_request, "Invalid service address");
    }
    auto const acl = store_.resolve(q.token);
    if (!acl) {
        co_return acl_not_found();
    }
    if (body.check_error) {
        co_return text_reply(http::status::bad_request, "Invalid check: " + *body.check_error);
    }
    for (auto const& def : reg.checks) {
        if (!def.status.empty() && !valid_check_status(def.status)) {
            co_return text_reply(
                http::status::bad_request, "Status for checks must 'passing', 'warning', 'critical'"
            );
        }
    }
    if (!acl->can_write_service(reg.name)) {
        co_return permission_denied(*acl, "service:write", reg.name);
    }
    auto const* existing = store_.find_service(reg.id.empty() ? reg.name : reg.id);
    if (existing != nullptr && !acl->can_write_service(existing->name)) {
        co_return permission_denied(*acl, "service:write", existing->name);
    }
    if (auto const v = c.query.all("replace-existing-checks"); !v.empty()) {
        reg.replace_existing_checks = v.front().empty() || v.front() == "true";
    }
    co_await committer_.commit([&] { store_.register_service(std::move(reg), sim_clock::now()); });
    co_return empty_reply(http::status::ok);
}

awaitable<reply> sim_server::agent_service_deregister(call& c)
{
    query_opts q;
    parse_dc_token(c, q);
    if (auto r = check_ent_meta(c)) {
        co_return std::move(*r);
    }
    std::string const id = suffix_after(c.path, "/v1/agent/service/deregister/");
    auto const acl = store_.resolve(q.token);
    if (!acl) {
        co_return acl_not_found();
    }
    auto const* existing = store_.find_service(id);
    if (existing == nullptr) {
        co_return text_reply(
            http::status::not_found,
            fmt::format(
                "Unknown service ID {}. Ensure that the service ID is passed, not the service name.",
                go_quote(id)
            )
        );
    }
    if (!acl->can_write_service(existing->name)) {
        co_return permission_denied(*acl, "service:write", existing->name);
    }
    co_await committer_.commit([&] { store_.deregister_service(id); });
    co_return empty_reply(http::status::ok);
}

awaitable<reply> sim_server::agent_check_register(call& c)
{
    query_opts q;
    parse_dc_token(c, q);
    if (auto r = check_ent_meta(c)) {
        co_return std::move(*r);
    }
    auto parsed = parse_check_body(c.req.body());
    if (auto const* e = std::get_if<std::string>(&parsed)) {
        co_return text_reply(http::status::bad_request, "Request decode failed: " + *e);
    }
    auto& body = std::get<check_body>(parsed);
    auto& def = body.def;
    if (def.name.empty()) {
        co_return text_reply(http::status::bad_request, "Missing check name");
    }
    if (!def.status.empty() && !valid_check_status(def.status)) {
        co_return text_reply(http::status::bad_request, "Bad check status");
    }
    auto const acl = store_.resolve(q.token);
    if (!acl) {
        co_return acl_not_found();
    }
    if (body.check_error) {
        co_return text_reply(http::status::bad_request, "Invalid check: " + *body.check_error);
    }
    catalog_check target;
    if (!def.service_id.empty()) {
        auto const* s = store_.find_service(def.service_id);
        if (s == nullptr) {
            co_return text_reply(
                http::status::not_found, fmt::format("ServiceID {} does not exist", go_quote(def.service_id))
            );
        }
        target.service_name = s->name;
    }
    if (!can_write_check(*acl, target)) {
        co_return check_denied(*acl, target, opts_.node_name);
    }
    std::string const id = def.check_id.empty() ? def.name : def.check_id;
    if (auto const* prev = store_.find_check(id); prev != nullptr && !can_write_check(*acl, *prev)) {
        co_return check_denied(*acl, *prev, opts_.node_name);
    }
    std::optional<std::string> error;
    co_await committer_.commit([&] { error = store_.register_check(std::move(def), sim_clock::now()); });
    if (error) {
        co_return text_reply(http::status::not_found, *error);
    }
    co_return empty_reply(http::status::ok);
}

awaitable<reply> sim_server::agent_check_deregister(call& c)
{
    query_opts q;
    parse_dc_token(c, q);
    if (auto r = check_ent_meta(c)) {
        co_return std::move(*r);
    }
    std::string const id = suffix_after(c.path, "/v1/agent/check/deregister/");
    auto const acl = store_.resolve(q.token);
    if (!acl) {
        co_return acl_not_found();
    }
    auto const* existing = store_.find_check(id);
    if (existing == nullptr) {
        co_return unknown_check(id);
    }
    if (!can_write_check(*acl, *existing)) {
        co_return check_denied(*acl, *existing, opts_.node_name);
    }
    co_await committer_.commit([&] { store_.deregister_check(id); });
    co_return empty_reply(http::status::ok);
}

awaitable<reply> sim_server::agent_check_pass(call& c)
{
    auto r = co_await check_status(
        c, suffix_after(c.path, "/v1/agent/check/pass/"), health_passing, c.query.get("note")
    );
    co_return r;
}

awaitable<reply> sim_server::agent_check_warn(call& c)
{
    auto r = co_await check_status(
        c, suffix_after(c.path, "/v1/agent/check/warn/"), health_warning, c.query.get("note")
    );
    co_return r;
}

awaitable<reply> sim_server::agent_check_fail(call& c)
{
    auto r = co_await check_status(
        c, suffix_after(c.path, "/v1/agent/check/fail/"), health_critical, c.query.get("note")
    );
    co_return r;
}

awaitable<reply> sim_server::agent_check_update(call& c)
{
    auto parsed = parse_check_update_body(c.req.body());
    if (auto const* e = std::get_if<std::string>(&parsed)) {
        co_return text_reply(http::status::bad_request, "Request decode failed: " + *e);
    }
    auto& body = std::get<check_update_body>(parsed);
    if (!valid_check_status(body.status)) {
        co_return text_reply(
            http::status::bad_request, fmt::format("Invalid check status: '{}'", body.status)
        );
    }
    auto r = co_await check_status(
        c, suffix_after(c.path, "/v1/agent/check/update/"), body.status, std::move(body.output)
    );
    co_return r;
}

awaitable<reply> sim_server::check_status(
    call& c, std::string id, std::string_view status, std::string output
)
{
    query_opts q;
    parse_dc_token(c, q);
    if (auto r = check_ent_meta(c)) {
        co_return std::move(*r);
    }
    auto const acl = store_.resolve(q.token);
    if (!acl) {
        co_return acl_not_found();
    }
    auto const* existing = store_.find_check(id);
    if (existing == nullptr) {
        co_return unknown_check(id);
    }
    if (!can_write_check(*acl, *existing)) {
        co_return check_denied(*acl, *existing, opts_.node_name);
    }
    output = cap_output(std::move(output));
    std::string const wanted(status);
    check_update result = check_update::ok;
    // Only a change of status reaches Raft (and waits for a commit); heartbeats answer at once.
    if (existing->status != wanted) {
        co_await committer_.commit([&] {
            result = store_.update_check(id, wanted, std::move(output), sim_clock::now());
        });
    } else {
        result = store_.update_check(id, wanted, std::move(output), sim_clock::now());
    }
    if (result == check_update::unknown) {
        co_return unknown_check(id);
    }
    if (result == check_update::not_ttl) {
        co_return text_reply(
            http::status::internal_server_error,
            fmt::format("CheckID {} does not have associated TTL", go_quote(id))
        );
    }
    co_return empty_reply(http::status::ok);
}

// ---------------------------------------------------------------- agent reads (local)

awaitable<reply> sim_server::agent_services(call& c)
{
    query_opts q;
    parse_dc_token(c, q);
    if (auto r = check_ent_meta(c)) {
        co_return std::move(*r);
    }
    auto const acl = store_.resolve(q.token);
    if (!acl) {
        co_return acl_not_found();
    }
    auto services = store_.agent_services();
    auto const total = services.size();
    std::erase_if(services, [&](catalog_service const* s) { return !acl->can_read_service(s->name); });
    auto r = json_reply(http::status::ok, json_agent_services(services, opts_.datacenter, c.pretty));
    if (!q.token.empty() && acl->enabled) {
        r.res.set("X-Consul-Results-Filtered-By-ACLs", total != services.size() ? "true" : "false");
    }
    co_return r;
}

awaitable<reply> sim_server::agent_checks(call& c)
{
    query_opts q;
    parse_dc_token(c, q);
    if (auto r = check_ent_meta(c)) {
        co_return std::move(*r);
    }
    auto const acl = store_.resolve(q.token);
    if (!acl) {
        co_return acl_not_found();
    }
    auto checks = store_.all_checks();
    auto const total = checks.size();
    std::erase_if(checks, [&](catalog_check const* ch) {
        return ch->service_name.empty() ? !(!acl->enabled || acl->management || acl->default_allow)
                                        : !acl->can_read_service(ch->service_name);
    });
    auto r = json_reply(http::status::ok, json_agent_checks(checks, opts_.node_name, c.pretty));
    if (!q.token.empty() && acl->enabled) {
        r.res.set("X-Consul-Results-Filtered-By-ACLs", total != checks.size() ? "true" : "false");
    }
    co_return r;
}

// ---------------------------------------------------------------- health and catalog reads (?dc=, blocking)

awaitable<reply> sim_server::health_service(call& c)
{
    auto r = co_await service_read(c, "/v1/health/service/", true);
    co_return r;
}

awaitable<reply> sim_server::catalog_service_nodes(call& c)
{
    auto r = co_await service_read(c, "/v1/catalog/service/", false);
    co_return r;
}

awaitable<reply> sim_server::service_read(call& c, std::string_view prefix, bool health)
{
    query_opts q;
    if (auto r = check_ent_meta(c)) {
        co_return std::move(*r);
    }
    if (auto r = parse_query(c, q)) {
        co_return std::move(*r);
    }
    std::vector<std::string> const tags = c.query.all("tag");
    std::string const name = suffix_after(c.path, prefix);
    if (name.empty()) {
        co_return text_reply(http::status::bad_request, "Missing service name");
    }
    if (is_remote(q)) {
        auto r = co_await forward(c, q);
        co_return r;
    }
    auto const acl = store_.resolve(q.token);
    if (!acl) {
        co_return acl_not_found();
    }
    if (q.min_index > 0) {
        c.classes.push_back("blocking");
    }
    auto run = [&]() -> probe { return {store_.service_index(name, health), watch_scope::catalog}; };
    co_await block(q, name, run);
    index_t const index = store_.service_index(name, health);
    bool const readable = acl->can_read_service(name);
    reply r;
    bool filtered = false;
    if (health) {
        // Consul filters ?passing in the HTTP handler, after the (blocking) query.
        bool passing = false;
        if (c.query.has("passing")) {
            auto const v = c.query.get("passing");
            auto const b = v.empty() ? std::optional<bool>(true) : parse_go_bool(v);
            if (!b) {
                co_return text_reply(http::status::bad_request, "Invalid value for ?passing");
            }
            passing = *b;
        }
        auto rows = store_.health_service(name, tags, passing);
        if (!readable && !rows.empty()) {
            rows.clear();
            filtered = true;
        }
        r = json_reply(http::status::ok, json_health_rows(rows, local_node(), c.pretty));
    } else {
        auto services = store_.service_instances(name, tags);
        if (!readable && !services.empty()) {
            services.clear();
            filtered = true;
        }
        r = json_reply(http::status::ok, json_catalog_service(services, local_node(), c.pretty));
    }
    set_read_meta(r, index);
    if (filtered && !q.token.empty()) {
        r.res.set("X-Consul-Results-Filtered-By-ACLs", "true");
    }
    co_return r;
}

awaitable<reply> sim_server::catalog_services(call& c)
{
    query_opts q;
    if (auto r = check_ent_meta(c)) {
        co_return std::move(*r);
    }
    if (auto r = parse_query(c, q)) {
        co_return std::move(*r);
    }
    if (is_remote(q)) {
        auto r = co_await forward(c, q);
        co_return r;
    }
    auto const acl = store_.resolve(q.token);
    if (!acl) {
        co_return acl_not_found();
    }
    if (q.min_index > 0) {
        c.classes.push_back("blocking");
    }
    auto run = [&]() -> probe { return {store_.services_index(), watch_scope::catalog}; };
    co_await block(q, std::string(), run);
    auto services = store_.service_tags();
    auto const total = services.size();
    std::erase_if(services, [&](auto const& kv) { return !acl->can_read_service(kv.first); });
    auto r = json_reply(http::status::ok, json_service_tags(services, c.pretty));
    set_read_meta(r, store_.services_index());
    if (total != services.size() && !q.token.empty()) {
        r.res.set("X-Consul-Results-Filtered-By-ACLs", "true");
    }
    co_return r;
}

}  // namespace kvship::kvsim::api
