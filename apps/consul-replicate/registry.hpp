// The replicator registry: each running replicator publishes what it copies under
// service/kvship/replicators/<id> in its own (destination) DC, attached to a session (behavior delete,
// TTL renewed) so the entry disappears when the process dies, and removed on a clean stop. At start and
// every interval it reads the entries of the DCs it may read from (with ?dc=, as the source is read) and
// refuses two-way replication (engine::find_two_way). A registry that cannot be read or written never
// stops replication: it is warned about once.
//
// Entry (JSON): {"ID":"<host>-<pid>","Host":"<host>","PID":<pid>,"Datacenter":"<dc>","Gated":false,
//                "Pairs":[{"SourceDatacenter":"dc1","Source":"app/","Destination":"backup/"}]}
// A gated replicator publishes "Gated":true and an empty SourceDatacenter.
#pragma once

#include "registry_codec.hpp"

#include "logger.hpp"

#include <engine/two_way.hpp>
#include <prefixes/rule.hpp>
#include <transport/consul_client.hpp>

#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <functional>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace kvship::replicate {

inline constexpr std::string_view registry_prefix = "service/kvship/replicators/";

struct registry_params
{
    std::chrono::nanoseconds ttl{std::chrono::seconds(15)};         // KVSHIP_REGISTRY_TTL (10s..24h)
    std::chrono::nanoseconds interval{std::chrono::seconds(30)};    // KVSHIP_REGISTRY_INTERVAL
    bool publish = true;  // -once and -dry-run check only: they write no entry
};

// The defaults with the environment knobs applied (bad values are warned about and ignored); `publish`
// false for -once and -dry-run.
[[nodiscard]] registry_params registry_params_from_env(const logger& log, bool publish);

// "<host>-<pid>", the host name reduced to [A-Za-z0-9._-].
[[nodiscard]] std::string registry_id();
[[nodiscard]] std::string registry_key(std::string_view id);


// This process's entry for one generation: `source_dc` is each rule's DC (ignored when gated).
[[nodiscard]] engine::published_replicator make_self_entry(
    std::string datacenter, const std::vector<prefixes::rule>& rules, bool gated
);

// The registry entries are each replicator's own: no pair writes or deletes them (a destination that
// covers service/kvship/replicators/ would otherwise delete the entries of the DC's replicators).
void protect_registry(std::vector<prefixes::rule>& rules);

class replicator_registry
{
public:
    // `local`: the local agent (entry, session, and for a gated self the DC list and registry reads);
    // `reader`: the client that reads the source DCs (for an ungated self). Both, and `log`, must outlive
    // this object. `on_refused` is called once when a periodic check finds a two-way setup.
    replicator_registry(
        asio::any_io_executor ex,
        transport::consul_client& local,
        transport::consul_client& reader,
        registry_params params,
        engine::published_replicator self,
        const logger& log,
        std::function<void()> on_refused
    );

    // One check now: the refusal message, or nullopt (also when nothing could be read: warned once).
    awaitable<std::optional<std::string>> check();

    // Spawns the loop: publish (when params.publish), renew, re-check every interval. Ends on stop() or a
    // refusal (refused() is then set).
    void start();
    // Ends the loop, then removes the entry and destroys the session; returns once that is done.
    awaitable<void> stop();

    [[nodiscard]] const std::optional<std::string>& refused() const { return refused_; }

private:
    awaitable<void> run();
    awaitable<bool> publish();
    awaitable<void> unpublish();
    awaitable<std::vector<std::string>> datacenters_to_check();
    void warn_once(const std::string& what, const std::string& message);

    asio::any_io_executor ex_;
    transport::consul_client& local_;
    transport::consul_client& reader_;
    registry_params params_;
    engine::published_replicator self_;
    const logger& log_;
    std::function<void()> on_refused_;
    asio::steady_timer timer_;
    asio::steady_timer done_;
    asio::cancellation_signal cancel_;
    std::string session_;
    bool published_ = false;
    bool running_ = false;
    bool stopping_ = false;
    std::optional<std::string> refused_;
    std::set<std::string> warned_;
};

}  // namespace kvship::replicate
