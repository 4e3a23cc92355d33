// The /_sim/ test hooks (documented in apps/consul-kvsim/README.md): WAN cuts, injected faults,
// snapshot/restore, tombstone reaping, session expiry and traffic counters.
#include "api/codec.hpp"
#include "api/server.hpp"

#include <fmt/format.h>

namespace kvship::kvsim::api {

namespace {

reply ok_true()
{
    return json_reply(http::status::ok, "true");
}

reply admin_error(http::status status, std::string text)
{
    return text_reply(status, std::move(text));
}

}  // namespace

awaitable<reply> sim_server::admin(call& c)
{
    c.query = query_params::parse(c.raw_query);
    c.pretty = c.query.has("pretty");
    auto const method = c.req.method();
    std::string_view const path = c.path;
    std::string_view const rest = path.substr(std::string_view("/_sim/").size());

    // PUT /_sim/wan/<dc>/cut | /_sim/wan/<dc>/restore
    if (rest.starts_with("wan/")) {
        std::string_view const tail = rest.substr(4);
        auto const slash = tail.rfind('/');
        if (slash == std::string_view::npos || method != http::verb::put) {
            co_return admin_error(
                http::status::not_found, "want PUT /_sim/wan/<dc>/cut or /_sim/wan/<dc>/restore"
            );
        }
        std::string_view const dc = tail.substr(0, slash);
        std::string_view const action = tail.substr(slash + 1);
        auto it = wan_.find(dc);
        if (it == wan_.end()) {
            co_return admin_error(http::status::not_found, fmt::format("no WAN peer named {}", go_quote(dc)));
        }
        if (action == "cut") {
            it->second.cut = true;
            for (auto* sig : it->second.inflight) {
                sig->emit(asio::cancellation_type::terminal);
            }
            client_.close_idle();
            log_.write(log_level::info, fmt::format("WAN link to {} cut", dc));
            co_return ok_true();
        }
        if (action == "restore") {
            it->second.cut = false;
            log_.write(log_level::info, fmt::format("WAN link to {} restored", dc));
            co_return ok_true();
        }
        co_return admin_error(http::status::not_found, "want cut or restore");
    }
    if (rest == "fault" && (method == http::verb::put || method == http::verb::post)) {
        auto parsed = parse_fault_body(c.req.body());
        if (auto const* e = std::get_if<std::string>(&parsed)) {
            co_return admin_error(http::status::bad_request, "bad fault: " + *e);
        }
        faults_.add(std::move(std::get<fault_rule>(parsed)));
        co_return ok_true();
    }
    if (rest == "faults" && method == http::verb::delete_) {
        faults_.clear();
        co_return ok_true();
    }
    if (rest == "snapshot" && method == http::verb::get) {
        reply r;
        r.res.result(http::status::ok);
        r.res.set(http::field::content_type, "application/octet-stream");
        r.res.set("X-Consul-Index", std::to_string(store_.raft_index()));
        r.res.body() = store_.encode_snapshot();
        co_return r;
    }
    if (rest == "restore" && (method == http::verb::put || method == http::verb::post)) {
        if (auto err = store_.restore_snapshot(c.req.body())) {
            co_return admin_error(http::status::bad_request, "bad snapshot: " + *err);
        }
        hub_.wake_all();
        if (journal_) {
            journal_->compact(store_);
        }
        log_.write(
            log_level::info,
            fmt::format("snapshot restored: raft index {}, {} keys", store_.raft_index(), store_.kv_count())
        );
        co_return ok_true();
    }
    if (rest == "tombstones/reap" && method == http::verb::put) {
        store_.reap_all_tombstones();
        co_return ok_true();
    }
    // PUT /_sim/session/<id>/expire
    if (rest.starts_with("session/") && rest.ends_with("/expire") && method == http::verb::put) {
        std::string_view const id = rest.substr(8, rest.size() - 8 - 7);
        if (id.empty() || store_.get_session(id) == nullptr) {
            co_return admin_error(http::status::not_found, fmt::format("Session id '{}' not found", id));
        }
        store_.destroy_session(id, sim_clock::now());
        co_return ok_true();
    }
    if (rest == "stats" && method == http::verb::get) {
        sim_gauges g;
        g.datacenter = opts_.datacenter;
        g.raft_index = store_.raft_index();
        g.kvs_max_index = store_.kvs_max_index();
        g.kv_count = store_.kv_count();
        g.tombstone_count = store_.tombstone_count();
        g.session_count = store_.sessions().size();
        g.blocking_queries = hub_.size();
        g.connections = server_ ? server_->connection_count() : 0;
        g.faults = faults_.size();
        g.commits = committer_.commits();
        g.committed_writes = committer_.writes();
        co_return json_reply(http::status::ok, json_stats(stats_, g, c.pretty));
    }
    if (rest == "stats/reset" && method == http::verb::put) {
        stats_.reset();
        co_return ok_true();
    }
    co_return admin_error(
        http::status::not_found,
        fmt::format(
            "unknown admin endpoint {} {} (see apps/consul-kvsim/README.md)",
            std::string_view(c.req.method_string()),
            path
        )
    );
}

}  // namespace kvship::kvsim::api
