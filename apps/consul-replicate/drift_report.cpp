#include "drift_report.hpp"

#include "client_params.hpp"
#include "gate.hpp"
#include "kv_convert.hpp"
#include "registry.hpp"

#include <engine/drift.hpp>
#include <prefixes/rule.hpp>
#include <transport/consul_client.hpp>

#include <exception>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace kvship::replicate {

namespace {

constexpr int exit_equal = 0;
constexpr int exit_different = 1;
constexpr int exit_error = static_cast<int>(exit_code::runner);

std::chrono::milliseconds to_ms(nanos d)
{
    return std::chrono::duration_cast<std::chrono::milliseconds>(d);
}

class drift_report
{
public:
    drift_report(const config& cfg, const logger& log, std::FILE* out) : cfg_(cfg), log_(log), out_(out) {}

    awaitable<int> run();

private:
    // Reads one pair; true when it could be compared completely.
    awaitable<bool> compare_pair(const prefixes::rule& rule, const std::string& source_dc);
    transport::consul_params params(const std::string& address, const std::string& token) const;
    void print(const std::string& line);
    int fail(std::string_view what)
    {
        log_.err("diff", "{}", what);
        return exit_error;
    }

    const config& cfg_;
    const logger& log_;
    std::FILE* out_;
    bool json_ = false;
    bool differs_ = false;
    std::unique_ptr<transport::consul_client> destination_;
    std::unique_ptr<transport::consul_client> source_;
};

transport::consul_params drift_report::params(const std::string& address, const std::string& token) const
{
    auto p = consul_client_params(cfg_, log_, address, token);
    // One pass, no pair loop: the client retries reads as -consul-retry* say.
    p.retry.enabled = cfg_.consul.retry.enabled;
    p.retry.max_attempts = static_cast<unsigned>(std::max(0, cfg_.consul.retry.attempts));
    p.retry.backoff = to_ms(cfg_.consul.retry.backoff);
    p.retry.max_backoff = to_ms(cfg_.consul.retry.max_backoff);
    return p;
}

void drift_report::print(const std::string& line)
{
    std::fwrite(line.data(), 1, line.size(), out_);
    std::fputc('\n', out_);
}

awaitable<int> drift_report::run()
{
    json_ = cfg_.format == log_format::json;
    auto ex = co_await asio::this_coro::executor;
    try {
        destination_ = transport::create_consul_client(ex, params(cfg_.consul.address, cfg_.consul.token));
        std::string const source_token = cfg_.source_token.empty() ? cfg_.consul.token : cfg_.source_token;
        if (!cfg_.source_addr.empty())
            source_ = transport::create_consul_client(ex, params(cfg_.source_addr, source_token));
        else if (source_token != cfg_.consul.token)
            source_ = transport::create_consul_client(ex, params(cfg_.consul.address, source_token));
    } catch (const std::exception& e) {
        co_return fail(e.what());
    }

    auto self = co_await destination_->agent_self();
    if (!self)
        co_return fail(fmt::format("agent/self: {}", self.error().what()));
    std::string const local_dc = self->datacenter;
    for (auto const& spec : cfg_.prefixes) {
        if (spec.datacenter && *spec.datacenter == local_dc)
            co_return fail(
                fmt::format("{}: local datacenter cannot be the source datacenter", prefixes::to_string(spec))
            );
    }

    std::string gate_source;
    if (cfg_.gate.enabled()) {
        // The source is the primary as the gate decides it, from one look (no settle: nothing is
        // written, so nothing can flap).
        auto detector = make_primary_detector(cfg_.gate, *destination_);
        auto obs = co_await detector->detect();
        if (obs.error)
            co_return fail(fmt::format("gate: cannot tell the primary datacenter: {}", *obs.error));
        if (obs.claimants.empty())
            co_return fail("gate: no datacenter claims the primary, so there is no source to compare with");
        if (obs.claimants.size() > 1)
            co_return fail(fmt::format(
                "gate: {} datacenters claim the primary ({}), so there is no single source to compare with",
                obs.claimants.size(),
                fmt::join(obs.claimants, ", ")
            ));
        gate_source = obs.claimants.front();
        if (gate_source == local_dc) {
            log_.info("diff", "gate: this datacenter ({}) is the primary", local_dc);
            print(
                json_ ? fmt::format(
                            R"({{"kind":"primary","datacenter":{},"differences":0}})", engine::json_quote(local_dc)
                        )
                      : fmt::format(
                            "this datacenter ({}) is the primary: it is the source, nothing is replicated into it",
                            local_dc
                        )
            );
            co_return exit_equal;
        }
    }

    auto rules = prefixes::make_rules(cfg_.prefixes, prefixes::key_filter{cfg_.excludes, {}}, cfg_.status_dir);
    protect_registry(rules);  // as replication: the replicators' own registry entries are not drift
    for (auto const& rule : rules) {
        std::string const dc = cfg_.gate.enabled() ? gate_source : rule.spec.datacenter.value_or(std::string{});
        bool const ok = co_await compare_pair(rule, dc);
        std::fflush(out_);
        if (!ok)
            co_return exit_error;
    }
    co_return differs_ ? exit_different : exit_equal;
}

awaitable<bool> drift_report::compare_pair(const prefixes::rule& rule, const std::string& source_dc)
{
    auto spec = rule.spec;
    spec.datacenter = source_dc;
    std::string const label = prefixes::to_string(spec);
    auto const& dest = rule.spec.destination;

    // The destination first, whole (as a replicator's full round), decoded as it arrives so the body is
    // never held next to its entries; then the source as a stream against it.
    std::vector<engine::kv_entry> dst_entries;
    bool dst_filtered = false;
    auto dst_sink = [&](const transport::query_meta& meta, std::vector<transport::kv_entry> entries)
        -> awaitable<std::optional<transport::consul_error>> {
        if (meta.results_filtered) {
            dst_filtered = true;
            co_return transport::filtered_by_acls_error();
        }
        for (auto& e : to_engine_entries(std::move(entries))) dst_entries.push_back(std::move(e));
        co_return std::nullopt;
    };
    transport::query_options const dq;
    auto listing = co_await destination_->list_stream(dest, dq, dst_sink, 1000);
    if (dst_filtered || (listing && listing->results_filtered)) {
        log_.err(
            "diff", "{}: destination: {}", label, transport::filtered_listing_text(dest, std::nullopt, "destination")
        );
        co_return false;
    }
    if (!listing) {
        log_.err("diff", "{}: destination: GET /v1/kv/{}?recurse: {}", label, dest, listing.error().what());
        co_return false;
    }
    engine::drift_scan scan(rule, std::move(dst_entries));

    auto emit = [this, &label](const std::vector<engine::drift_item>& items) {
        for (auto const& d : items)
            print(json_ ? engine::format_drift_json(label, d) : engine::format_drift_text(label, d));
    };
    bool filtered = false;
    std::optional<std::string> bad;
    auto sink = [&](const transport::query_meta& meta,
                    std::vector<transport::kv_entry> entries) -> awaitable<std::optional<transport::consul_error>> {
        if (meta.results_filtered) {
            filtered = true;
            co_return transport::filtered_by_acls_error();
        }
        auto const chunk = to_engine_entries(std::move(entries));
        auto items = scan.feed(chunk);
        if (!items) {
            bad = items.error();
            co_return transport::consul_error{
                transport::make_error_code(transport::errc::malformed_response), 200, items.error()};
        }
        emit(items.value());
        co_return std::nullopt;
    };
    transport::query_options sq;
    sq.dc = source_dc;
    auto const& src = rule.spec.source;
    auto r = co_await (source_ ? *source_ : *destination_).list_stream(src, sq, sink, 1000);
    if (filtered || (r && r->results_filtered)) {
        log_.err("diff", "{}: source: {}", label, transport::filtered_listing_text(src, source_dc, "source"));
        co_return false;
    }
    if (bad) {
        log_.err("diff", "{}: source: GET /v1/kv/{}?recurse&dc={}: {}", label, src, source_dc, *bad);
        co_return false;
    }
    if (!r) {
        log_.err("diff", "{}: source: GET /v1/kv/{}?recurse&dc={}: {}", label, src, source_dc, r.error().what());
        co_return false;
    }
    emit(scan.finish());
    auto const& t = scan.totals();
    if (t.source_keys == 0 && t.destination_keys > 0)
        log_.warn(
            "diff",
            "{}: the source listing is empty: every destination key is reported as only in the destination. "
            "If the token cannot read the source prefix, Consul before 1.13 answers an empty listing without "
            "saying it filtered it (X-Consul-Results-Filtered-By-ACLs)",
            label
        );
    print(json_ ? engine::format_drift_summary_json(label, t) : engine::format_drift_summary_text(label, t));
    differs_ = differs_ || t.differences() > 0;
    co_return true;
}

}  // namespace

int run_drift_report(const config& cfg, const logger& log, std::FILE* out)
{
    asio::io_context ioc(1);
    int code = exit_error;
    drift_report report(cfg, log, out);
    asio::co_spawn(ioc, report.run(), [&](std::exception_ptr e, int c) {
        if (e) {
            try {
                std::rethrow_exception(e);
            } catch (const std::exception& ex) {
                log.err("diff", "{}", ex.what());
            } catch (...) {
                log.err("diff", "unknown exception");
            }
            code = exit_error;
        } else {
            code = c;
        }
    });
    ioc.run();
    std::fflush(out);
    return code;
}

}  // namespace kvship::replicate
