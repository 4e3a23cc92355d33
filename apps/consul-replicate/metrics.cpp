#include "metrics.hpp"

#include <transport/http_server.hpp>

#include "process_metrics.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace kvship::replicate {

namespace {

std::string_view type_name(metric_type t)
{
    switch (t) {
        case metric_type::counter:
            return "counter";
        case metric_type::gauge:
            return "gauge";
        case metric_type::histogram:
            return "histogram";
    }
    return "untyped";
}

void escape_label_value(std::string& out, std::string_view v)
{
    for (char c : v) {
        if (c == '\\')
            out += "\\\\";
        else if (c == '"')
            out += "\\\"";
        else if (c == '\n')
            out += "\\n";
        else
            out.push_back(c);
    }
}

void escape_help(std::string& out, std::string_view v)
{
    for (char c : v) {
        if (c == '\\')
            out += "\\\\";
        else if (c == '\n')
            out += "\\n";
        else
            out.push_back(c);
    }
}

struct endpoint_state
{
    const metrics_registry* reg;
    std::function<bool()> alive;
    std::function<readiness()> ready;
};

transport::http_response make_response(
    const transport::http_request& req, http::status status, std::string_view content_type, std::string body
)
{
    transport::http_response res{status, req.version()};
    res.set(http::field::content_type, content_type);
    res.set(http::field::cache_control, "no-store");
    res.keep_alive(req.keep_alive());
    res.body() = std::move(body);
    res.prepare_payload();
    return res;
}

// A plain function: the handler lambda stays capture-only and non-coroutine (STYLE §3.4).
transport::http_reply answer(const endpoint_state& st, const transport::http_request& req)
{
    std::string_view target = req.target();
    if (auto const q = target.find('?'); q != std::string_view::npos)
        target = target.substr(0, q);
    bool const known = target == "/metrics" || target == "/healthz" || target == "/readyz";
    if (!known)
        return {make_response(req, http::status::not_found, "text/plain; charset=utf-8", "not found\n")};
    if (req.method() != http::verb::get) {
        auto r =
            make_response(req, http::status::method_not_allowed, "text/plain; charset=utf-8", "GET only\n");
        r.set(http::field::allow, "GET");
        return {std::move(r)};
    }
    if (target == "/metrics") {
        return {make_response(
            req, http::status::ok, "text/plain; version=0.0.4; charset=utf-8", st.reg->render()
        )};
    }
    if (target == "/healthz") {
        if (st.alive && !st.alive())
            return {make_response(
                req, http::status::service_unavailable, "text/plain; charset=utf-8", "stopping\n"
            )};
        return {make_response(req, http::status::ok, "text/plain; charset=utf-8", "ok\n")};
    }
    readiness const r = st.ready ? st.ready() : readiness{true, {}};
    if (r.ready)
        return {make_response(req, http::status::ok, "text/plain; charset=utf-8", "ready\n")};
    return {
        make_response(req, http::status::service_unavailable, "text/plain; charset=utf-8", r.reason + "\n")};
}

awaitable<transport::http_reply> serve(std::shared_ptr<endpoint_state> st, transport::http_request req)
{
    co_return answer(*st, req);
}

}  // namespace

std::string render_labels(const label_set& labels)
{
    if (labels.empty())
        return {};
    std::string out = "{";
    bool first = true;
    for (auto const& [k, v] : labels) {
        if (!first)
            out.push_back(',');
        first = false;
        out += k;
        out += "=\"";
        escape_label_value(out, v);
        out.push_back('"');
    }
    out.push_back('}');
    return out;
}

std::string render_value(double v)
{
    if (std::isnan(v))
        return "NaN";
    if (std::isinf(v))
        return v > 0 ? "+Inf" : "-Inf";
    if (v == std::floor(v) && std::fabs(v) < 1e15)
        return fmt::format("{}", static_cast<long long>(v));
    return fmt::format("{}", v);
}

void metrics_registry::describe(std::string name, metric_type type, std::string help)
{
    auto& f = families_[std::move(name)];
    f.type = type;
    f.help = std::move(help);
}

metrics_registry::series& metrics_registry::at(std::string_view name, const label_set& labels)
{
    auto fit = families_.find(name);
    if (fit == families_.end())
        fit = families_.emplace(std::string(name), family{}).first;
    auto key = render_labels(labels);
    auto sit = fit->second.by_labels.find(key);
    if (sit == fit->second.by_labels.end())
        sit = fit->second.by_labels.emplace(std::move(key), series{labels, 0, {}, {}, 0}).first;
    return sit->second;
}

void metrics_registry::add(std::string_view name, const label_set& labels, double v)
{
    at(name, labels).value += v;
}

void metrics_registry::set(std::string_view name, const label_set& labels, double v)
{
    auto& s = at(name, labels);
    s.value = v;
    s.fn = nullptr;
}

void metrics_registry::set_callback(
    std::string_view name, const label_set& labels, std::function<double()> fn
)
{
    at(name, labels).fn = std::move(fn);
}

void metrics_registry::describe_histogram(std::string name, std::string help, std::vector<double> upper_bounds)
{
    if (!std::is_sorted(upper_bounds.begin(), upper_bounds.end()) ||
        std::adjacent_find(upper_bounds.begin(), upper_bounds.end()) != upper_bounds.end())
        throw std::logic_error("describe_histogram " + name + ": bucket bounds must be strictly ascending");
    if (!upper_bounds.empty() && std::isinf(upper_bounds.back()))
        upper_bounds.pop_back();  // +Inf is always there
    auto& f = families_[std::move(name)];
    f.type = metric_type::histogram;
    f.help = std::move(help);
    f.upper_bounds = std::move(upper_bounds);
}

metrics_registry::series& metrics_registry::histogram_at(std::string_view name, const label_set& labels)
{
    auto const fit = families_.find(name);
    if (fit == families_.end() || fit->second.type != metric_type::histogram)
        throw std::logic_error(fmt::format("{} is not a declared histogram", name));
    auto& s = at(name, labels);
    if (s.buckets.empty())
        s.buckets.assign(fit->second.upper_bounds.size() + 1, 0);
    return s;
}

void metrics_registry::touch_histogram(std::string_view name, const label_set& labels)
{
    histogram_at(name, labels);
}

void metrics_registry::observe(std::string_view name, const label_set& labels, double v)
{
    auto& s = histogram_at(name, labels);
    if (std::isnan(v))
        return;
    auto const& bounds = families_.find(name)->second.upper_bounds;
    auto const i = static_cast<std::size_t>(std::lower_bound(bounds.begin(), bounds.end(), v) - bounds.begin());
    ++s.buckets[i];
    s.sum += v;
    s.value += 1;  // the count
}

void metrics_registry::on_render(std::function<void()> fn)
{
    collectors_.push_back(std::move(fn));
}

void metrics_registry::remove_labelled(std::string_view key, std::string_view value)
{
    for (auto& [name, fam] : families_) {
        for (auto it = fam.by_labels.begin(); it != fam.by_labels.end();) {
            bool match = false;
            for (auto const& [k, v] : it->second.labels) match = match || (k == key && v == value);
            it = match ? fam.by_labels.erase(it) : std::next(it);
        }
    }
}

std::optional<double> metrics_registry::value(std::string_view name, const label_set& labels) const
{
    auto const fit = families_.find(name);
    if (fit == families_.end())
        return std::nullopt;
    auto const sit = fit->second.by_labels.find(render_labels(labels));
    if (sit == fit->second.by_labels.end())
        return std::nullopt;
    return sit->second.fn ? sit->second.fn() : sit->second.value;
}

double metrics_registry::sum(std::string_view name) const
{
    auto const fit = families_.find(name);
    if (fit == families_.end())
        return 0;
    double total = 0;
    for (auto const& [_, s] : fit->second.by_labels)
        total += s.fn ? s.fn() : s.value;
    return total;
}

std::optional<metrics_registry::histogram_data> metrics_registry::histogram(
    std::string_view name, const label_set& labels
) const
{
    auto const fit = families_.find(name);
    if (fit == families_.end() || fit->second.type != metric_type::histogram)
        return std::nullopt;
    auto const sit = fit->second.by_labels.find(render_labels(labels));
    if (sit == fit->second.by_labels.end())
        return std::nullopt;
    auto const& s = sit->second;
    return histogram_data{fit->second.upper_bounds, s.buckets, s.sum, static_cast<std::uint64_t>(s.value)};
}

namespace {

void render_histogram_series(
    std::string& out, std::string_view name, const std::vector<double>& bounds, const label_set& labels,
    const std::vector<std::uint64_t>& buckets, double sum
)
{
    // Cumulative buckets, each with `le` as the last label, then the +Inf bucket (= the count).
    label_set with_le = labels;
    with_le.emplace_back("le", std::string{});
    std::uint64_t cumulative = 0;
    for (std::size_t i = 0; i <= bounds.size(); ++i) {
        cumulative += i < buckets.size() ? buckets[i] : 0;
        with_le.back().second = i < bounds.size() ? render_value(bounds[i]) : "+Inf";
        out += fmt::format("{}_bucket{} {}\n", name, render_labels(with_le), cumulative);
    }
    auto const text = render_labels(labels);
    out += fmt::format("{}_sum{} {}\n", name, text, render_value(sum));
    out += fmt::format("{}_count{} {}\n", name, text, cumulative);
}

}  // namespace

std::string metrics_registry::render() const
{
    for (auto const& collect : collectors_) collect();
    std::string out;
    for (auto const& [name, fam] : families_) {
        if (fam.type) {
            out += "# HELP ";
            out += name;
            out.push_back(' ');
            escape_help(out, fam.help);
            out += fmt::format("\n# TYPE {} {}\n", name, type_name(*fam.type));
        }
        for (auto const& [labels, s] : fam.by_labels) {
            if (fam.type == metric_type::histogram) {
                render_histogram_series(out, name, fam.upper_bounds, s.labels, s.buckets, s.sum);
                continue;
            }
            double const v = s.fn ? s.fn() : s.value;
            out += name;
            out += labels;
            out.push_back(' ');
            out += render_value(v);
            out.push_back('\n');
        }
    }
    return out;
}

std::vector<double> latency_buckets()
{
    return {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25, 60};
}

std::vector<double> full_read_buckets()
{
    auto b = latency_buckets();
    b.push_back(120);
    b.push_back(300);
    return b;
}

void declare_metrics(metrics_registry& reg, std::string_view version, std::string_view revision)
{
    using t = metric_type;
    reg.describe(std::string(metric::build_info), t::gauge, "Build metadata (always 1).");
    reg.describe(std::string(metric::up), t::gauge, "1 while the replication loops run.");
    reg.describe(
        std::string(metric::ready),
        t::gauge,
        "1 when every pair finished its initial sync and is neither paused nor failing."
    );
    reg.describe(std::string(metric::keys_put), t::counter, "Destination keys written.");
    reg.describe(std::string(metric::keys_deleted), t::counter, "Destination keys deleted.");
    reg.describe(std::string(metric::bytes_written), t::counter, "Value bytes written to the destination.");
    reg.describe(
        std::string(metric::txn),
        t::counter,
        "Destination transactions by result (ok, rolled_back, error, too_large)."
    );
    reg.describe(
        std::string(metric::errors),
        t::counter,
        "Errors by kind (source_read, destination_read, dest_write, acl_denied, timeout, no_leader, "
        "decode, checkpoint, batch)."
    );
    reg.describe(std::string(metric::source_index), t::gauge, "Last X-Consul-Index seen from the source.");
    reg.describe(
        std::string(metric::applied_index),
        t::gauge,
        "Highest source index fully applied to the destination (the checkpoint)."
    );
    reg.describe(std::string(metric::lag_index), t::gauge, "Source index minus applied index.");
    reg.describe(
        std::string(metric::lag_seconds),
        t::gauge,
        "Age of the oldest source change seen but not yet applied (0 when caught up)."
    );
    reg.describe(std::string(metric::last_success), t::gauge, "Unix time of the last successful round.");
    reg.describe(
        std::string(metric::guard_trips),
        t::counter,
        "Rounds whose deletes the safety guard held back, by guard (empty_source, mass_delete)."
    );
    reg.describe(
        std::string(metric::paused), t::gauge, "1 while the pair's deletes are held back by a guard."
    );
    reg.describe(
        std::string(metric::full_syncs),
        t::counter,
        "Full reads of source and destination, by reason (startup, index_reset, retry, refresh, regroup)."
    );
    reg.describe(std::string(metric::rounds), t::counter, "Finished replication rounds.");
    reg.describe(
        std::string(metric::wakeups),
        t::counter,
        "Source reads by outcome (changed, no_change, timeout, index_reset)."
    );
    reg.describe(
        std::string(metric::source_keys), t::gauge, "Source keys under the prefix at the last round."
    );
    reg.describe(
        std::string(metric::source_watches),
        t::gauge,
        "Source groups watched by their own blocking query (grouped watching); 0 when the prefix is read whole."
    );
    reg.describe(
        std::string(metric::destination_keys),
        t::gauge,
        "Destination keys managed by the pair at the last round."
    );
    reg.describe(
        std::string(metric::source_known_leader),
        t::gauge,
        "X-Consul-KnownLeader of the last source read (1 or 0)."
    );
    reg.describe(
        std::string(metric::source_last_contact),
        t::gauge,
        "X-Consul-LastContact of the last source read, in seconds."
    );
    reg.describe(std::string(metric::lock_held), t::gauge, "1 while this process holds the -lock lock.");
    reg.describe(std::string(metric::lock_losses), t::counter, "Times the held -lock lock was lost.");
    reg.describe(
        std::string(metric::fenced_batches),
        t::counter,
        "Destination transactions refused by their check-session op (the lock was no longer ours)."
    );
    reg.describe_histogram(
        std::string(metric::replication_latency),
        "Seconds from the source read that saw a change to the commit of the round that applied it "
        "(the oldest change of the round; rounds after the initial sync that wrote something).",
        latency_buckets()
    );
    reg.describe_histogram(
        std::string(metric::txn_duration),
        "Seconds each destination write took (a /v1/txn, or a plain PUT for a value too large for one).",
        latency_buckets()
    );
    reg.describe_histogram(
        std::string(metric::full_read_duration),
        "Seconds a successful whole-prefix read of the source took (streamed or not; the reads counted "
        "by kvship_full_syncs_total).",
        full_read_buckets()
    );
    reg.set(metric::build_info, {{"version", std::string(version)}, {"revision", std::string(revision)}}, 1);
    register_process_metrics(reg);
}

metrics_endpoint::metrics_endpoint(
    asio::any_io_executor ex,
    const metrics_registry& reg,
    std::function<bool()> alive,
    std::function<readiness()> ready
)
{
    auto st = std::make_shared<endpoint_state>(endpoint_state{&reg, std::move(alive), std::move(ready)});
    transport::http_handler handler = [st](transport::http_request req, transport::request_context) {
        return serve(st, std::move(req));
    };
    transport::too_large_handler too_large = [](http::request_header<> const&, std::optional<std::uint64_t>) {
        transport::http_response res{http::status::payload_too_large, 11};
        res.set(http::field::content_type, "text/plain; charset=utf-8");
        res.body() = "request body too large\n";
        res.prepare_payload();
        return transport::http_reply{std::move(res), 0, true};
    };
    transport::server_params params;
    params.body_limit = 64 * 1024;
    params.max_connections = 256;
    // A scraper or probe sends its request at once: idle or slow connections are cut after 30 s
    // (the header read), a request's body must arrive within 10 s, and at the cap the longest-idle
    // connection makes room, so /healthz answers however many idle connections are open.
    params.idle_timeout = std::chrono::seconds(30);
    params.read_timeout = std::chrono::seconds(10);
    params.write_timeout = std::chrono::seconds(10);
    params.evict_idle_at_cap = true;
    server_ = std::make_unique<transport::http_server>(
        std::move(ex), params, std::move(handler), std::move(too_large)
    );
}

metrics_endpoint::~metrics_endpoint() = default;

void metrics_endpoint::start(const std::string& host_port)
{
    // ":9100" means every interface, as in Go's net.Listen (parse_endpoint reads an empty host as
    // loopback).
    server_->listen(transport::parse_endpoint(host_port.starts_with(':') ? "0.0.0.0" + host_port : host_port)
    );
    server_->start();
}

tcp::endpoint metrics_endpoint::local_endpoint() const
{
    return server_->local_endpoint();
}

void metrics_endpoint::stop()
{
    server_->stop();
}

}  // namespace kvship::replicate
