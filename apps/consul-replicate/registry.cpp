#include "registry.hpp"
#include "registry_codec.hpp"
#include "guarded.hpp"

#include <gotext/go_duration.hpp>
#include <gotext/go_string.hpp>

#include <boost/asio/co_spawn.hpp>
#include <fmt/format.h>

#include <algorithm>
#include <cstdlib>
#include <exception>
#include <unistd.h>

namespace kvship::replicate {

namespace {

using clock = std::chrono::steady_clock;

std::string acl_hint()
{
    return fmt::format(
        "the token needs key_prefix \"{}\" {{ policy = \"write\" }} and session_prefix \"\" {{ policy = \"write\" }} "
        "in its own datacenter and key_prefix \"{}\" {{ policy = \"read\" }} in the ones it reads (README "
        "\"Two-way replication is refused\")",
        registry_prefix,
        registry_prefix
    );
}

void env_knob(const char* name, std::chrono::nanoseconds& out, std::chrono::nanoseconds min, const logger& log)
{
    char const* v = std::getenv(name);
    if (v == nullptr || *v == '\0')
        return;
    auto d = gotext::parse_go_duration(v);
    if (!d || *d < min) {
        log.warn("registry", "ignoring {}={:?}: not a duration of at least {}", name, v, gotext::format_go_duration(min));
        return;
    }
    out = *d;
}

}  // namespace

registry_params registry_params_from_env(const logger& log, bool publish)
{
    registry_params p;
    p.publish = publish;
    env_knob("KVSHIP_REGISTRY_TTL", p.ttl, std::chrono::seconds(10), log);
    env_knob("KVSHIP_REGISTRY_INTERVAL", p.interval, std::chrono::milliseconds(100), log);
    return p;
}

std::string registry_id()
{
    char host[256] = {};
    if (::gethostname(host, sizeof host - 1) != 0)
        host[0] = '\0';
    std::string name;
    for (char const* c = host; *c != '\0'; ++c) {
        bool const ok = (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
                        *c == '.' || *c == '_' || *c == '-';
        name += ok ? *c : '_';
    }
    if (name.empty())
        name = "unknown";
    return fmt::format("{}-{}", name, ::getpid());
}

std::string registry_key(std::string_view id)
{
    return std::string(registry_prefix) + std::string(id);
}

engine::published_replicator make_self_entry(
    std::string datacenter, const std::vector<prefixes::rule>& rules, bool gated
)
{
    engine::published_replicator r;
    r.id = registry_id();
    char host[256] = {};
    if (::gethostname(host, sizeof host - 1) == 0)
        r.host = host;
    r.pid = ::getpid();
    r.datacenter = std::move(datacenter);
    r.gated = gated;
    for (auto const& rule : rules)
        r.pairs.push_back(
            {gated ? std::string{} : rule.spec.datacenter.value_or(std::string{}), rule.spec.source, rule.spec.destination}
        );
    return r;
}

void protect_registry(std::vector<prefixes::rule>& rules)
{
    for (auto& r : rules) r.protected_prefixes.emplace_back(registry_prefix);
}

replicator_registry::replicator_registry(
    asio::any_io_executor ex,
    transport::consul_client& local,
    transport::consul_client& reader,
    registry_params params,
    engine::published_replicator self,
    const logger& log,
    std::function<void()> on_refused
)
    : ex_(ex),
      local_(local),
      reader_(reader),
      params_(params),
      self_(std::move(self)),
      log_(log),
      on_refused_(std::move(on_refused)),
      timer_(ex),
      done_(ex)
{
}

void replicator_registry::warn_once(const std::string& what, const std::string& message)
{
    if (warned_.insert(what).second)
        log_.warn("registry", "{} (replication goes on; this is not repeated)", message);
}

awaitable<std::vector<std::string>> replicator_registry::datacenters_to_check()
{
    std::vector<std::string> dcs;
    if (self_.gated) {
        // A gated replicator may read from any other DC.
        auto r = co_await guarded(&cancel_, local_.datacenters());
        if (!r) {
            warn_once("datacenters", fmt::format("two-way check: cannot list the datacenters: {}", r.error().what()));
            co_return dcs;
        }
        for (auto& dc : *r)
            if (dc != self_.datacenter)
                dcs.push_back(std::move(dc));
        co_return dcs;
    }
    for (auto const& p : self_.pairs)
        if (!p.source_dc.empty() && std::find(dcs.begin(), dcs.end(), p.source_dc) == dcs.end())
            dcs.push_back(p.source_dc);
    co_return dcs;
}

awaitable<std::optional<std::string>> replicator_registry::check()
{
    auto const dcs = co_await datacenters_to_check();
    std::vector<engine::published_replicator> others;
    auto& client = self_.gated ? local_ : reader_;
    for (auto const& dc : dcs) {
        if (stopping_)
            co_return std::nullopt;
        transport::query_options q;
        q.dc = dc;
        auto r = co_await guarded(&cancel_, client.list(std::string(registry_prefix), q));
        if (!r) {
            warn_once(
                "read:" + dc,
                fmt::format(
                    "two-way check: cannot read the replicator registry GET /v1/kv/{}?recurse&dc={}: {}; {}",
                    registry_prefix,
                    dc,
                    r.error().what(),
                    acl_hint()
                )
            );
            continue;
        }
        if (r->results_filtered)
            warn_once(
                "filtered:" + dc,
                fmt::format(
                    "two-way check: the replicator registry of {}: {}: replicators there may be missed; {}",
                    dc,
                    transport::filtered_listing_text(registry_prefix, dc, "registry"),
                    acl_hint()
                )
            );
        for (auto const& e : r->entries) {
            auto entry = decode_registry_entry(e.value.value_or(std::string{}));
            if (!entry) {
                log_.debug("registry", "ignoring {:?} in {}: not a replicator entry", e.key, dc);
                continue;
            }
            others.push_back(std::move(*entry));
        }
    }
    auto conflict = engine::find_two_way(self_, others);
    if (!conflict)
        co_return std::nullopt;
    co_return conflict->message;
}

awaitable<bool> replicator_registry::publish()
{
    std::string const local_dc;
    if (session_.empty()) {
        transport::session_params p;
        p.name = "kvship replicator " + self_.id;
        p.ttl = gotext::format_go_duration(params_.ttl);
        p.behavior = "delete";
        p.lock_delay = "0s";
        auto r = co_await guarded(&cancel_, local_.session_create(p, local_dc));
        if (!r) {
            if (!stopping_)
                warn_once(
                    "publish",
                    fmt::format(
                        "cannot publish this replicator's entry {:?}: creating its session: {}; {}",
                        registry_key(self_.id),
                        r.error().what(),
                        acl_hint()
                    )
                );
            co_return false;
        }
        session_ = *r;
    }
    transport::put_options o;
    o.acquire = session_;
    auto r = co_await guarded(&cancel_, local_.put(registry_key(self_.id), encode_registry_entry(self_), o));
    if (!r || !*r) {
        if (!stopping_)
            warn_once(
                "publish",
                fmt::format(
                    "cannot publish this replicator's entry {:?}: {}; {}",
                    registry_key(self_.id),
                    r ? std::string("the key is held by another session") : r.error().what(),
                    acl_hint()
                )
            );
        co_return false;
    }
    if (!published_)
        log_.info("registry", "published {:?}: {}", registry_key(self_.id), engine::describe(self_));
    published_ = true;
    co_return true;
}

awaitable<void> replicator_registry::unpublish()
{
    std::string const local_dc;
    if (published_) {
        auto r = co_await local_.remove(registry_key(self_.id), std::nullopt, local_dc);
        if (!r)
            log_.warn("registry", "removing {:?}: {} (its session ends it)", registry_key(self_.id), r.error().what());
        published_ = false;
    }
    if (!session_.empty()) {
        auto r = co_await local_.session_destroy(session_, local_dc);
        if (!r)
            log_.debug("registry", "destroying session {}: {}", session_, r.error().what());
        session_.clear();
    }
}

void replicator_registry::start()
{
    running_ = true;
    asio::co_spawn(ex_, run(), [this](std::exception_ptr e) {
        if (e) {
            try {
                std::rethrow_exception(e);
            } catch (const std::exception& ex) {
                log_.warn("registry", "stopped: {}", ex.what());
            } catch (...) {
                log_.warn("registry", "stopped");
            }
        }
        running_ = false;
        done_.cancel();
    });
}

awaitable<void> replicator_registry::run()
{
    auto next_check = clock::now() + params_.interval;
    auto const renew_every = std::chrono::duration_cast<clock::duration>(params_.ttl / 2);
    if (params_.publish)
        co_await publish();
    while (!stopping_) {
        auto const wake = params_.publish ? std::min(next_check, clock::now() + renew_every) : next_check;
        timer_.expires_at(wake);
        co_await timer_.async_wait(nothrow_awaitable);
        if (stopping_)
            break;
        if (params_.publish) {
            if (!session_.empty()) {
                std::string const local_dc;
                auto r = co_await guarded(&cancel_, local_.session_renew(session_, local_dc));
                if (!r && r.error().code == transport::make_error_code(transport::errc::not_found)) {
                    log_.warn("registry", "session {} of {:?} expired; publishing again", session_, registry_key(self_.id));
                    session_.clear();
                    published_ = false;
                } else if (!r && !stopping_) {
                    log_.debug("registry", "renewing session {}: {}", session_, r.error().what());
                }
            }
            if (!published_ && !stopping_)
                co_await publish();
        }
        if (stopping_ || clock::now() < next_check)
            continue;
        auto refusal = co_await check();
        if (refusal && !stopping_) {
            refused_ = std::move(refusal);  // the app stops the pairs and logs it as the reason it exits
            if (on_refused_)
                on_refused_();
            break;
        }
        next_check = clock::now() + params_.interval;
    }
}

awaitable<void> replicator_registry::stop()
{
    stopping_ = true;
    cancel_.emit(asio::cancellation_type::terminal);
    timer_.cancel();
    while (running_) {
        done_.expires_at(clock::time_point::max());
        co_await done_.async_wait(nothrow_awaitable);
    }
    co_await unpublish();
}

}  // namespace kvship::replicate
