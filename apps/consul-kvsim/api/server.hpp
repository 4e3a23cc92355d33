// consul-kvsim's HTTP API over the store: one datacenter of Consul as its HTTP clients see it (KV, blocking
// queries, txn, sessions, status/agent/catalog, ACLs, ?dc= forwarding), plus the /_sim/ test hooks
// (faults, WAN cuts, snapshots, stats). Everything runs on one single-threaded executor.
#pragma once

#include "api/codec.hpp"
#include "api/commit.hpp"
#include "api/faults.hpp"
#include "api/journal.hpp"
#include "api/options.hpp"
#include "api/replies.hpp"
#include "api/url.hpp"
#include "api/watch.hpp"
#include "store/store.hpp"

#include <logging/logger.hpp>
#include <transport/http_client.hpp>
#include <transport/http_server.hpp>

#include <functional>
#include <list>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace kvship::kvsim::api {

// The programs' one logger type and level enum (logging/logger.hpp); the sim's lines have no component.
using logging::log_level;
using logging::logger;

// "trace", "debug", "warn", "err" or "error"; anything else is info.
[[nodiscard]] log_level parse_log_level(std::string_view name);

class sim_server
{
public:
    // Builds the store and, with -data-dir, loads it. Throws std::runtime_error on a file error.
    sim_server(asio::any_io_executor ex, sim_options opts, logger log);
    ~sim_server();
    sim_server(sim_server const&) = delete;
    sim_server& operator=(sim_server const&) = delete;

    // Binds -http-addr (throws boost::system::system_error) and starts serving; the bound endpoint.
    tcp::endpoint start();
    // Graceful stop: no new connections, blocking queries answer now, timers end. The executor then runs
    // out of work once in-flight responses are written.
    void stop();
    // After stop(): true once no connection, blocking query or timer is left.
    [[nodiscard]] bool idle() const;
    // After the executor has stopped: flushes and compacts the journal.
    void finish();

private:
    struct call
    {
        transport::http_request req;
        std::string path;  // decoded and clean
        std::string raw_query;
        query_params query;
        bool pretty = false;
        std::vector<std::string_view> classes;  // stats classes
        std::string_view route;                 // the matched route pattern, for stats
    };

    struct query_opts
    {
        std::string dc;  // empty: the local DC
        std::string token;
        index_t min_index = 0;
        nanos wait{0};
    };

    // What one run of a blocking query saw: its index and what change would alter it.
    struct probe
    {
        index_t index = 0;
        watch_scope scope = watch_scope::any_kv;
    };

    using handler = awaitable<reply> (sim_server::*)(call&);

    struct route
    {
        std::string_view pattern;  // a trailing '/' matches the subtree, as http.ServeMux
        std::string_view methods;  // comma-separated
        handler fn;
    };

    struct wan_link
    {
        std::string address;
        bool cut = false;
        std::list<asio::cancellation_signal*> inflight;
    };

    static std::span<route const> routes();

    // ---- request plumbing (server.cpp) ----
    awaitable<reply> handle(transport::http_request req, transport::request_context ctx);
    awaitable<reply> dispatch(call& c);
    reply too_large(http::request_header<> const& header, std::optional<std::uint64_t> content_length);
    std::optional<reply> parse_query(call const& c, query_opts& q) const;
    void parse_dc_token(call const& c, query_opts& q) const;
    static std::optional<reply> check_ent_meta(call const& c);

    [[nodiscard]] bool is_remote(query_opts const& q) const
    {
        return !q.dc.empty() && q.dc != opts_.datacenter;
    }

    // Sends the original request to WAN peer q.dc and returns its answer (hop-by-hop headers dropped).
    // 500 "No path to datacenter" for an unknown DC; 500 "Remote DC has no server currently reachable" when
    // the link is cut, the peer is down or the exchange fails. A cut or stop() aborts it at once.
    awaitable<reply> forward(call& c, query_opts q);
    // Blocking-query loop (§6): returns at once without ?index; otherwise once run() reports an index
    // above q.min_index, at the deadline (wait, default 5m, cap 10m, plus jitter < wait/16) or at stop().
    // The caller reads the result afterwards, without suspending in between.
    awaitable<void> block(query_opts q, std::string key, std::function<probe()> run);
    awaitable<void> sleep_for(nanos d);
    void on_event(store_event const& ev);
    void after_commit();
    awaitable<void> tick_loop();
    [[nodiscard]] std::string acl_policy_name() const;

    // ---- KV and txn (kv_endpoint.cpp) ----
    awaitable<reply> kv(call& c);
    awaitable<reply> kv_get(call& c, query_opts q, std::string key);
    awaitable<reply> kv_keys(call& c, query_opts q, std::string key);
    awaitable<reply> kv_put(call& c, query_opts q, std::string key);
    awaitable<reply> kv_delete(call& c, query_opts q, std::string key);
    awaitable<reply> txn(call& c);

    // ---- sessions, status, agent, catalog, ACL (session_endpoint.cpp) ----
    awaitable<reply> session_create(call& c);
    awaitable<reply> session_renew(call& c);
    awaitable<reply> session_destroy(call& c);
    awaitable<reply> session_info(call& c);
    awaitable<reply> session_list(call& c);
    awaitable<reply> session_node(call& c);
    awaitable<reply> status_leader(call& c);
    awaitable<reply> status_peers(call& c);
    awaitable<reply> agent_self(call& c);
    awaitable<reply> catalog_datacenters(call& c);
    awaitable<reply> acl_policy_create(call& c);
    awaitable<reply> acl_policy_read(call& c);
    awaitable<reply> acl_token_create(call& c);
    awaitable<reply> acl_token_read(call& c);
    // The token's authorizer when it may manage ACLs, else the 401/403 answer.
    std::variant<authorizer, reply> acl_manager(query_opts const& q) const;
    enum class session_query
    {
        info,
        list,
        node
    };
    // info (arg: session id), list, node (arg: node name): blocking reads of the sessions table.
    awaitable<reply> sessions_query(call& c, session_query what, std::string arg);

    // ---- service catalog (catalog_endpoint.cpp) ----
    awaitable<reply> agent_service_register(call& c);
    awaitable<reply> agent_service_deregister(call& c);
    awaitable<reply> agent_check_register(call& c);
    awaitable<reply> agent_check_deregister(call& c);
    awaitable<reply> agent_check_pass(call& c);
    awaitable<reply> agent_check_warn(call& c);
    awaitable<reply> agent_check_fail(call& c);
    awaitable<reply> agent_check_update(call& c);
    awaitable<reply> agent_services(call& c);
    awaitable<reply> agent_checks(call& c);
    awaitable<reply> health_service(call& c);
    awaitable<reply> catalog_service_nodes(call& c);
    awaitable<reply> catalog_services(call& c);
    // pass/warn/fail/update: ACL, then the TTL update.
    awaitable<reply> check_status(call& c, std::string id, std::string_view status, std::string output);
    // health (with_checks) and catalog service reads: dc forwarding, ACL, blocking on the service's index.
    awaitable<reply> service_read(call& c, std::string_view prefix, bool health);
    [[nodiscard]] node_info local_node() const;

    // ---- /_sim/ (admin_endpoint.cpp) ----
    awaitable<reply> admin(call& c);

    asio::any_io_executor ex_;
    sim_options opts_;
    logger log_;
    store store_;
    watch_hub hub_;
    committer committer_;
    std::unique_ptr<journal> journal_;
    std::unique_ptr<transport::http_server> server_;
    transport::http_client client_;
    std::map<std::string, wan_link, std::less<>> wan_;
    fault_table faults_;
    traffic_stats stats_;
    asio::steady_timer tick_timer_;
    std::mt19937_64 rng_;
    tcp::endpoint endpoint_;
    std::string journal_error_;
    bool stopping_ = false;
    bool tick_done_ = false;
};

}  // namespace kvship::kvsim::api
