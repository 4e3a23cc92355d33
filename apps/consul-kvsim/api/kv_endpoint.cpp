// /v1/kv/ and /v1/txn (consul-api.md §2-§7).
#include "api/codec.hpp"
#include "api/server.hpp"

#include <fmt/format.h>

namespace kvship::kvsim::api {

namespace {

// The body length the client declared (Content-Length), if it did.
std::optional<std::uint64_t> declared_length(transport::http_request const& req)
{
    auto const n = parse_uint_go(std::string_view(req[http::field::content_length]));
    if (auto const* v = std::get_if<std::uint64_t>(&n)) {
        return *v;
    }
    return std::nullopt;
}

// conflictingFlags: more than one of `flags` present → 400 with the re-encoded query.
std::optional<reply> conflicting(query_params const& q, std::initializer_list<std::string_view> flags)
{
    int found = 0;
    for (auto const f : flags) {
        found += q.has(f) ? 1 : 0;
    }
    if (found > 1) {
        return text_reply(http::status::bad_request, "Conflicting flags: " + q.encode() + "\n");
    }
    return std::nullopt;
}

}  // namespace

awaitable<reply> sim_server::kv(call& c)
{
    query_opts q;
    if (auto r = parse_query(c, q)) {
        co_return std::move(*r);
    }
    if (auto r = check_ent_meta(c)) {
        co_return std::move(*r);
    }
    if (is_remote(q)) {
        // Consul's HTTP handler parses ?flags= and ?cas= before the RPC, so their 500s are local (not "rpc error
        // making call: ..." as the forwarded peer's answer would read)
        if (c.req.method() == http::verb::put || c.req.method() == http::verb::delete_) {
            for (char const* name : {"flags", "cas"}) {
                if (!c.query.has(name) || (std::string_view(name) == "flags" && c.req.method() != http::verb::put)) {
                    continue;
                }
                auto const n = parse_uint_go(c.query.get(name));
                if (auto const* e = std::get_if<std::string>(&n)) {
                    co_return text_reply(http::status::internal_server_error, *e);
                }
            }
        }
        auto r = co_await forward(c, q);
        co_return r;
    }
    std::string key = c.path.substr(std::string_view("/v1/kv/").size());
    auto const method = c.req.method();
    if (method == http::verb::get) {
        if (c.query.has("keys")) {
            auto r = co_await kv_keys(c, q, std::move(key));
            co_return r;
        }
        auto r = co_await kv_get(c, q, std::move(key));
        co_return r;
    }
    if (method == http::verb::put) {
        auto r = co_await kv_put(c, q, std::move(key));
        co_return r;
    }
    auto r = co_await kv_delete(c, q, std::move(key));
    co_return r;
}

awaitable<reply> sim_server::kv_get(call& c, query_opts q, std::string key)
{
    bool const recurse = c.query.has("recurse");
    if (!recurse && key.empty()) {
        co_return text_reply(http::status::bad_request, "Missing key name");
    }
    auto const acl = store_.resolve(q.token);
    if (!acl) {
        co_return acl_not_found();
    }
    if (q.min_index > 0) {
        c.classes.push_back("blocking");
    }
    if (!recurse) {
        if (!acl->can_read(key)) {
            co_return permission_denied(*acl, "key:read", key);
        }
        auto run = [&]() -> probe {
            auto const* e = store_.get(key);
            return {e != nullptr ? e->modify_index : store_.kvs_max_index(), watch_scope::key};
        };
        co_await block(q, key, run);
        auto const* e = store_.get(key);
        if (e == nullptr) {
            auto r = empty_reply(http::status::not_found);
            set_read_meta(r, store_.kvs_max_index());
            co_return r;
        }
        if (c.query.has("raw")) {
            reply r;
            r.res.result(http::status::ok);
            r.res.set(http::field::content_type, "text/plain");
            r.res.set("X-Content-Type-Options", "nosniff");
            r.res.set("Content-Security-Policy", "sandbox");
            r.res.body() = e->value.value_or(std::string());
            set_read_meta(r, e->modify_index);
            co_return r;
        }
        kv_entry const* const one[] = {e};
        auto r = json_reply(http::status::ok, json_entries(one, c.pretty));
        set_read_meta(r, e->modify_index);
        co_return r;
    }
    c.classes.push_back("list");
    auto run = [&]() -> probe {
        auto const idx = store_.list_index(key);
        // A listing that reports the KV table's index changes with any KV write (§5 consequence 3).
        bool const table_index = key.empty() || idx == store_.kvs_max_index();
        return {idx, table_index ? watch_scope::any_kv : watch_scope::prefix};
    };
    co_await block(q, key, run);
    auto entries = store_.list(key);
    auto const index = store_.list_index(key);
    bool filtered = false;
    if (acl->enabled && !acl->management) {
        auto const before = entries.size();
        std::erase_if(entries, [&](kv_entry const* e) { return !acl->can_read(e->key); });
        filtered = entries.size() != before;
    }
    reply r = entries.empty() ? empty_reply(http::status::not_found)
                              : json_reply(http::status::ok, json_entries(entries, c.pretty));
    set_read_meta(r, index);
    if (filtered && !q.token.empty()) {
        r.res.set("X-Consul-Results-Filtered-By-ACLs", "true");
    }
    co_return r;
}

awaitable<reply> sim_server::kv_keys(call& c, query_opts q, std::string key)
{
    std::string separator;
    if (c.query.has("seperator")) {
        separator = c.query.get("seperator");
    }
    if (c.query.has("separator")) {
        separator = c.query.get("separator");
    }
    auto const acl = store_.resolve(q.token);
    if (!acl) {
        co_return acl_not_found();
    }
    c.classes.push_back("keys");
    if (q.min_index > 0) {
        c.classes.push_back("blocking");
    }
    auto run = [&]() -> probe {
        auto const idx = store_.list_index(key);
        bool const table_index = key.empty() || idx == store_.kvs_max_index();
        return {idx, table_index ? watch_scope::any_kv : watch_scope::prefix};
    };
    co_await block(q, key, run);
    auto const keys = store_.keys(key, separator, *acl);
    auto const index = store_.list_index(key);
    bool filtered = false;
    if (acl->enabled && !acl->management && !q.token.empty()) {
        for (auto const* e : store_.list(key)) {
            if (!acl->can_read(e->key)) {
                filtered = true;
                break;
            }
        }
    }
    reply r = keys.empty() && !key.empty() ? empty_reply(http::status::not_found)
                                           : json_reply(http::status::ok, json_strings(keys, c.pretty));
    set_read_meta(r, index);
    if (filtered) {
        r.res.set("X-Consul-Results-Filtered-By-ACLs", "true");
    }
    co_return r;
}

awaitable<reply> sim_server::kv_put(call& c, query_opts q, std::string key)
{
    if (key.empty()) {
        co_return text_reply(http::status::bad_request, "Missing key name");
    }
    if (auto r = conflicting(c.query, {"cas", "acquire", "release"})) {
        co_return std::move(*r);
    }
    enum class op
    {
        set,
        cas,
        lock,
        unlock
    } kind = op::set;
    std::uint64_t flags = 0;
    index_t cas_index = 0;
    std::string session_id;
    if (c.query.has("flags")) {
        auto const n = parse_uint_go(c.query.get("flags"));
        if (auto const* e = std::get_if<std::string>(&n)) {
            co_return text_reply(http::status::internal_server_error, *e);
        }
        flags = std::get<std::uint64_t>(n);
    }
    if (c.query.has("cas")) {
        auto const n = parse_uint_go(c.query.get("cas"));
        if (auto const* e = std::get_if<std::string>(&n)) {
            co_return text_reply(http::status::internal_server_error, *e);
        }
        cas_index = std::get<std::uint64_t>(n);
        kind = op::cas;
    }
    if (c.query.has("acquire")) {
        session_id = c.query.get("acquire");
        kind = op::lock;
    }
    if (c.query.has("release")) {
        session_id = c.query.get("release");
        kind = op::unlock;
    }
    auto const length = declared_length(c.req);
    if (length.value_or(0) > kv_max_value_size || c.req.body().size() > kv_max_value_size) {
        co_return body_too_large(std::max<std::uint64_t>(length.value_or(0), c.req.body().size()), false);
    }
    auto const acl = store_.resolve(q.token);
    if (!acl) {
        co_return acl_not_found();
    }
    if (!acl->can_write(key)) {
        co_return permission_denied(*acl, "key:write", key);
    }
    std::optional<std::string> value;
    if (!c.req.body().empty()) {
        value = std::move(c.req.body());
    }
    write_result result;
    co_await committer_.commit([&] {
        switch (kind) {
            case op::set:
                result = store_.set(key, std::move(value), flags);
                break;
            case op::cas:
                result = store_.cas(key, std::move(value), flags, cas_index);
                break;
            case op::lock:
                result = store_.acquire(key, std::move(value), flags, session_id, sim_clock::now());
                break;
            case op::unlock:
                result = store_.release(key, std::move(value), flags, session_id);
                break;
        }
    });
    if (result.error) {
        co_return raft_apply_failed(*result.error);
    }
    co_return json_reply(http::status::ok, json_bool(kind == op::set || result.ok, c.pretty));
}

awaitable<reply> sim_server::kv_delete(call& c, query_opts q, std::string key)
{
    if (auto r = conflicting(c.query, {"recurse", "cas"})) {
        co_return std::move(*r);
    }
    bool const recurse = c.query.has("recurse");
    if (!recurse && key.empty()) {
        co_return text_reply(http::status::bad_request, "Missing key name");
    }
    std::optional<index_t> cas_index;
    if (c.query.has("cas")) {
        auto const n = parse_uint_go(c.query.get("cas"));
        if (auto const* e = std::get_if<std::string>(&n)) {
            co_return text_reply(http::status::internal_server_error, *e);
        }
        cas_index = std::get<std::uint64_t>(n);
    }
    auto const acl = store_.resolve(q.token);
    if (!acl) {
        co_return acl_not_found();
    }
    if (recurse ? !acl->can_write_prefix(key) : !acl->can_write(key)) {
        co_return permission_denied(*acl, "key:write", key);
    }
    write_result result;
    co_await committer_.commit([&] {
        auto const now = sim_clock::now();
        if (recurse) {
            result = store_.erase_tree(key, now);
        } else if (cas_index) {
            result = store_.erase_cas(key, *cas_index, now);
        } else {
            result = store_.erase(key, now);
        }
    });
    if (result.error) {
        co_return raft_apply_failed(*result.error);
    }
    co_return json_reply(http::status::ok, json_bool(!cas_index || result.ok, c.pretty));
}

awaitable<reply> sim_server::txn(call& c)
{
    if (auto const length = declared_length(c.req); length && *length > kv_max_value_size) {
        co_return body_too_large(length, true);
    }
    if (c.req.body().size() > kv_max_value_size) {
        co_return body_too_large(std::nullopt, true);
    }
    auto parsed = parse_txn_body(c.req.body());
    if (auto const* e = std::get_if<std::string>(&parsed)) {
        co_return text_reply(http::status::bad_request, "Failed to parse body: " + *e);
    }
    auto& body = std::get<txn_body>(parsed);
    if (auto e = txn_too_many_ops(body.element_count, opts_.txn_max_ops)) {
        co_return text_reply(http::status::payload_too_large, *e);
    }
    std::vector<txn_kv_op> ops;
    std::vector<txn_error> unsupported;
    bool writes = false;
    for (std::size_t i = 0; i < body.ops.size(); ++i) {
        auto& op = body.ops[i];
        if (!op) {
            writes = true;
            unsupported.push_back({i, "consul-kvsim supports KV operations only (no Node, Service or Check)"}
            );
            continue;
        }
        if (op->value && op->value->size() > kv_max_value_size) {
            co_return text_reply(
                http::status::payload_too_large,
                fmt::format(
                    "Value for key {} is too large ({} > {} bytes)",
                    go_quote(op->key),
                    op->value->size(),
                    kv_max_value_size
                )
            );
        }
        writes = writes || is_txn_write_verb(op->verb);
        ops.push_back(std::move(*op));
    }
    query_opts q;
    if (writes) {
        parse_dc_token(c, q);
    } else if (auto r = parse_query(c, q)) {
        co_return std::move(*r);
    }
    if (is_remote(q)) {
        auto r = co_await forward(c, q);
        co_return r;
    }
    c.classes.push_back(writes ? "txn_write" : "txn_read");
    if (!unsupported.empty()) {
        txn_result failed;
        failed.errors = std::move(unsupported);
        co_return json_reply(http::status::conflict, json_txn(failed, c.pretty));
    }
    auto const acl = store_.resolve(q.token);
    if (!acl) {
        co_return acl_not_found();
    }
    txn_result result;
    if (writes) {
        co_await committer_.commit([&] { result = store_.txn(ops, *acl, sim_clock::now()); });
    } else {
        result = store_.txn(ops, *acl, sim_clock::now());
    }
    auto r = json_reply(result.ok ? http::status::ok : http::status::conflict, json_txn(result, c.pretty));
    if (!writes) {
        set_leader_meta(r);
    }
    co_return r;
}

}  // namespace kvship::kvsim::api
