// The metrics registry's text exposition: histograms (cumulative buckets, +Inf, _sum, _count, the
// `le` label last), collectors run once per render, and the families kvship declares.
#include <metrics.hpp>
#include <process_metrics.hpp>

#include <catch2/catch.hpp>

#include <cmath>
#include <string>

using namespace kvship::replicate;

namespace {

bool has_line(const std::string& text, const std::string& line)
{
    return text.find("\n" + line + "\n") != std::string::npos || text.starts_with(line + "\n");
}

}  // namespace

TEST_CASE("a histogram renders cumulative buckets, +Inf, _sum and _count", "[replicate][metrics]")
{
    metrics_registry reg;
    reg.describe_histogram("x_seconds", "Test latency.", {0.01, 0.1, 1});
    label_set const l{{"pair", "a@dc1:b"}};
    reg.touch_histogram("x_seconds", l);
    auto const empty = reg.render();
    INFO(empty);
    CHECK(has_line(empty, "# TYPE x_seconds histogram"));
    CHECK(has_line(empty, "x_seconds_bucket{pair=\"a@dc1:b\",le=\"0.01\"} 0"));
    CHECK(has_line(empty, "x_seconds_bucket{pair=\"a@dc1:b\",le=\"+Inf\"} 0"));
    CHECK(has_line(empty, "x_seconds_count{pair=\"a@dc1:b\"} 0"));

    for (double v : {0.005, 0.01, 0.05, 0.5, 7.0}) reg.observe("x_seconds", l, v);
    auto const text = reg.render();
    INFO(text);
    CHECK(has_line(text, "x_seconds_bucket{pair=\"a@dc1:b\",le=\"0.01\"} 2"));  // le is inclusive
    CHECK(has_line(text, "x_seconds_bucket{pair=\"a@dc1:b\",le=\"0.1\"} 3"));
    CHECK(has_line(text, "x_seconds_bucket{pair=\"a@dc1:b\",le=\"1\"} 4"));
    CHECK(has_line(text, "x_seconds_bucket{pair=\"a@dc1:b\",le=\"+Inf\"} 5"));
    CHECK(text.find("\nx_seconds_sum{pair=\"a@dc1:b\"} 7.56") != std::string::npos);
    CHECK(has_line(text, "x_seconds_count{pair=\"a@dc1:b\"} 5"));
    // Bucket lines come in ascending `le` order, then _sum, then _count.
    CHECK(text.find("le=\"0.01\"") < text.find("le=\"0.1\""));
    CHECK(text.find("le=\"1\"") < text.find("le=\"+Inf\""));
    CHECK(text.find("le=\"+Inf\"") < text.find("x_seconds_sum"));
    CHECK(text.find("x_seconds_sum") < text.find("x_seconds_count"));

    auto const h = reg.histogram("x_seconds", l);
    REQUIRE(h);
    CHECK(h->count == 5);
    CHECK(h->sum == Approx(7.565));
    CHECK(h->counts == std::vector<std::uint64_t>{2, 1, 1, 1});
    CHECK(reg.value("x_seconds", l) == 5.0);
}

TEST_CASE("histogram observations ignore NaN and count +Inf only in the +Inf bucket", "[replicate][metrics]")
{
    metrics_registry reg;
    reg.describe_histogram("h", "h", {1, 2, std::numeric_limits<double>::infinity()});
    reg.observe("h", {}, std::nan(""));
    reg.observe("h", {}, std::numeric_limits<double>::infinity());
    reg.observe("h", {}, 1.5);
    auto const h = reg.histogram("h", {});
    REQUIRE(h);
    CHECK(h->upper_bounds == std::vector<double>{1, 2});  // an explicit +Inf bound is the implicit one
    CHECK(h->counts == std::vector<std::uint64_t>{0, 1, 1});
    auto const text = reg.render();
    CHECK(has_line(text, "h_bucket{le=\"2\"} 1"));
    CHECK(has_line(text, "h_bucket{le=\"+Inf\"} 2"));
    CHECK(has_line(text, "h_count 2"));
}

TEST_CASE("histograms are declared before use and have ascending bounds", "[replicate][metrics]")
{
    metrics_registry reg;
    CHECK_THROWS_AS(reg.observe("nope", {}, 1), std::logic_error);
    reg.describe("g", metric_type::gauge, "a gauge");
    CHECK_THROWS_AS(reg.touch_histogram("g", {}), std::logic_error);
    CHECK_THROWS_AS(reg.describe_histogram("bad", "x", {1, 0.5}), std::logic_error);
    CHECK_THROWS_AS(reg.describe_histogram("dup", "x", {1, 1}), std::logic_error);
    CHECK_FALSE(reg.histogram("g", {}));
}

TEST_CASE("remove_labelled drops a pair's histogram series too", "[replicate][metrics]")
{
    metrics_registry reg;
    reg.describe_histogram("h", "h", {1});
    reg.observe("h", {{"pair", "a"}}, 0.5);
    reg.observe("h", {{"pair", "b"}}, 0.5);
    reg.remove_labelled("pair", "a");
    auto const text = reg.render();
    CHECK(text.find("pair=\"a\"") == std::string::npos);
    CHECK(has_line(text, "h_count{pair=\"b\"} 1"));
}

TEST_CASE("collectors run once at the start of every render", "[replicate][metrics]")
{
    metrics_registry reg;
    int runs = 0;
    double shown = 0;
    reg.describe("c", metric_type::gauge, "collected");
    reg.on_render([&] { shown = ++runs * 10; });
    reg.set_callback("c", {}, [&] { return shown; });
    CHECK(has_line(reg.render(), "c 10"));
    CHECK(has_line(reg.render(), "c 20"));
    CHECK(runs == 2);
}

TEST_CASE("latency buckets span 1 ms to 60 s; full reads go on to 300 s", "[replicate][metrics]")
{
    auto const b = latency_buckets();
    REQUIRE(b.size() >= 10);
    CHECK(b.front() == 0.001);
    CHECK(b.back() == 60);
    CHECK(std::is_sorted(b.begin(), b.end()));
    CHECK(full_read_buckets().back() == 300);
}

TEST_CASE("declare_metrics declares the histograms, the process families and build_info", "[replicate][metrics]")
{
    metrics_registry reg;
    declare_metrics(reg, "1.2.3", "abc");
    auto const text = reg.render();
    INFO(text);
    for (auto name : {metric::replication_latency, metric::txn_duration, metric::full_read_duration})
        CHECK(has_line(text, "# TYPE " + std::string(name) + " histogram"));
    CHECK(has_line(text, "# TYPE process_cpu_seconds_total counter"));
    for (auto name : {"process_resident_memory_bytes", "process_virtual_memory_bytes", "process_open_fds",
                      "process_max_fds", "process_start_time_seconds"})
        CHECK(has_line(text, "# TYPE " + std::string(name) + " gauge"));
    CHECK(has_line(text, "kvship_build_info{version=\"1.2.3\",revision=\"abc\"} 1"));
    // On Linux the process series are there and plausible.
    auto const rss = reg.value(metric::process_resident, {});
    REQUIRE(rss);
    CHECK(*rss > 0);
    CHECK(reg.value(metric::process_open_fds, {}).value_or(0) >= 3);
    CHECK(reg.value(metric::process_start_time, {}).value_or(0) > 1.5e9);
}

TEST_CASE("sum adds every series of a family, callbacks included", "[replicate][metrics]")
{
    metrics_registry reg;
    reg.describe("keys_total", metric_type::counter, "Test keys.");
    CHECK(reg.sum("keys_total") == 0);
    CHECK(reg.sum("absent_total") == 0);
    reg.add("keys_total", {{"pair", "a"}}, 3);
    reg.add("keys_total", {{"pair", "b"}}, 4);
    reg.set_callback("keys_total", {{"pair", "c"}}, [] { return 5.0; });
    CHECK(reg.sum("keys_total") == 12);
}
