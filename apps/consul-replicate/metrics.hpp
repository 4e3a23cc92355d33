// kvship's Prometheus metrics: a small registry of labelled counters, gauges and histograms rendered
// in the text exposition format 0.0.4, the metric names the replicator uses (anchors.md §6), and the HTTP
// endpoint that serves /metrics, /healthz and /readyz.
#pragma once

#include <transport/asio.hpp>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace kvship::transport {
class http_server;
}

namespace kvship::replicate {

enum class metric_type
{
    counter,
    gauge,
    histogram,
};

using label_set = std::vector<std::pair<std::string, std::string>>;

// Not thread-safe: used from the one io_context thread.
class metrics_registry
{
public:
    // Declares a family (HELP and TYPE lines). Series of undeclared names are rendered as untyped.
    void describe(std::string name, metric_type type, std::string help);

    // counter += v
    void add(std::string_view name, const label_set& labels, double v = 1);
    // gauge = v
    void set(std::string_view name, const label_set& labels, double v);
    // A gauge computed when rendered (e.g. lag in seconds, which grows between events).
    void set_callback(std::string_view name, const label_set& labels, std::function<double()> fn);

    // Declares a histogram family with these bucket upper bounds (ascending; +Inf is implicit).
    void describe_histogram(std::string name, std::string help, std::vector<double> upper_bounds);
    // Creates the series at zero (so it shows before the first observation). The family must have
    // been declared with describe_histogram (else std::logic_error).
    void touch_histogram(std::string_view name, const label_set& labels);
    // Counts `v` in the first bucket whose bound is >= v (Prometheus' `le`), adds it to the sum. NaN
    // is ignored.
    void observe(std::string_view name, const label_set& labels, double v);
    // Runs `fn` at the start of every render(): a collector that reads the process' state once per
    // scrape for the callbacks that show it.
    void on_render(std::function<void()> fn);
    // Drops every series of every family that carries label `key` = `value` (a pair that went away
    // on reload).
    void remove_labelled(std::string_view key, std::string_view value);

    // The current value of one series (tests, /readyz); nullopt when absent.
    [[nodiscard]] std::optional<double> value(std::string_view name, const label_set& labels) const;

    // The sum of every series of a counter or gauge family (0 when it has none).
    [[nodiscard]] double sum(std::string_view name) const;

    // One histogram series: per-bucket counts (not cumulative; the last one is the +Inf bucket).
    struct histogram_data
    {
        std::vector<double> upper_bounds;
        std::vector<std::uint64_t> counts;  // upper_bounds.size() + 1
        double sum = 0;
        std::uint64_t count = 0;
    };
    [[nodiscard]] std::optional<histogram_data> histogram(std::string_view name, const label_set& labels) const;

    // Text format 0.0.4: families sorted by name, series by label text.
    [[nodiscard]] std::string render() const;

private:
    struct series
    {
        label_set labels;
        double value = 0;
        std::function<double()> fn;
        // Histograms: one count per bucket (+Inf last), the sum of the observations.
        std::vector<std::uint64_t> buckets;
        double sum = 0;
    };

    struct family
    {
        std::optional<metric_type> type;
        std::string help;
        std::vector<double> upper_bounds;                      // histograms
        std::map<std::string, series, std::less<>> by_labels;  // key: rendered label text
    };

    series& at(std::string_view name, const label_set& labels);
    series& histogram_at(std::string_view name, const label_set& labels);

    std::map<std::string, family, std::less<>> families_;
    std::vector<std::function<void()>> collectors_;
};

// {a="x",b="y"} with Prometheus escaping (\\, \", \n); empty for no labels.
[[nodiscard]] std::string render_labels(const label_set& labels);

// A sample value as Prometheus prints it: integers without a fraction, NaN, +Inf, -Inf.
[[nodiscard]] std::string render_value(double v);

// The names kvship exports, declared once (describe) so they show with HELP and TYPE even at zero.
namespace metric {
inline constexpr std::string_view build_info = "kvship_build_info";
inline constexpr std::string_view up = "kvship_up";
inline constexpr std::string_view ready = "kvship_ready";
inline constexpr std::string_view keys_put = "kvship_keys_put_total";
inline constexpr std::string_view keys_deleted = "kvship_keys_deleted_total";
inline constexpr std::string_view bytes_written = "kvship_bytes_written_total";
inline constexpr std::string_view txn = "kvship_txn_total";
inline constexpr std::string_view errors = "kvship_errors_total";
inline constexpr std::string_view source_index = "kvship_source_index";
inline constexpr std::string_view applied_index = "kvship_applied_index";
inline constexpr std::string_view lag_index = "kvship_lag_index";
inline constexpr std::string_view lag_seconds = "kvship_lag_seconds";
inline constexpr std::string_view last_success = "kvship_last_success_timestamp_seconds";
inline constexpr std::string_view guard_trips = "kvship_safety_guard_trips_total";
inline constexpr std::string_view paused = "kvship_paused";
inline constexpr std::string_view full_syncs = "kvship_full_syncs_total";
inline constexpr std::string_view rounds = "kvship_rounds_total";
inline constexpr std::string_view wakeups = "kvship_blocking_query_wakeups_total";
inline constexpr std::string_view source_keys = "kvship_source_keys";
inline constexpr std::string_view source_watches = "kvship_source_watches";
inline constexpr std::string_view destination_keys = "kvship_destination_keys";
inline constexpr std::string_view source_known_leader = "kvship_source_known_leader";
inline constexpr std::string_view source_last_contact = "kvship_source_last_contact_seconds";
inline constexpr std::string_view lock_held = "kvship_lock_held";
inline constexpr std::string_view lock_losses = "kvship_lock_losses_total";
inline constexpr std::string_view fenced_batches = "kvship_fenced_batches_total";
// Histograms (per pair).
inline constexpr std::string_view replication_latency = "kvship_replication_latency_seconds";
inline constexpr std::string_view txn_duration = "kvship_txn_duration_seconds";
inline constexpr std::string_view full_read_duration = "kvship_full_read_duration_seconds";
}  // namespace metric

// Bucket bounds of the latency histograms: 1 ms to 60 s in 1-2.5-5 steps, for millisecond-scale
// lag on a LAN and seconds-scale lag across a WAN or after a stall alike.
[[nodiscard]] std::vector<double> latency_buckets();
// The same up to 300 s, for full reads of large prefixes.
[[nodiscard]] std::vector<double> full_read_buckets();

// Declares every family above, the standard process_* families (process_metrics.hpp) and sets
// build_info{version,revision} = 1.
void declare_metrics(metrics_registry& reg, std::string_view version, std::string_view revision);

// Readiness as /readyz reports it: ready, or not with the reason.
struct readiness
{
    bool ready = false;
    std::string reason;
};

// Serves GET /metrics (text format 0.0.4), /healthz (200 "ok" while `alive` says so) and /readyz
// (200 "ready", or 503 with the reason). Other paths: 404; other methods: 405.
class metrics_endpoint
{
public:
    metrics_endpoint(
        asio::any_io_executor ex,
        const metrics_registry& reg,
        std::function<bool()> alive,
        std::function<readiness()> ready
    );
    ~metrics_endpoint();

    // Binds "host:port" and starts serving; throws (std::invalid_argument, system_error) naming
    // the problem.
    void start(const std::string& host_port);
    [[nodiscard]] tcp::endpoint local_endpoint() const;
    void stop();

private:
    std::unique_ptr<transport::http_server> server_;
};

}  // namespace kvship::replicate
