// consul-kvsim: one simulated Consul datacenter over HTTP (see apps/consul-kvsim/README.md).
// Single-threaded: one io_context; SIGINT/SIGTERM stop it gracefully.
#include "api/options.hpp"
#include "api/server.hpp"

#include <boost/asio/signal_set.hpp>
#include <fmt/chrono.h>
#include <fmt/format.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <optional>
#include <string>
#include <vector>

namespace {

using namespace kvship;
using kvsim::api::log_level;

std::string_view level_name(log_level l)
{
    switch (l) {
        case log_level::trace:
            return "TRACE";
        case log_level::debug:
            return "DEBUG";
        case log_level::info:
            return "INFO";
        case log_level::warn:
            return "WARN";
        case log_level::err:
            return "ERROR";
    }
    return "?";
}

kvsim::api::logger make_logger(std::string const& level, std::string const& dc)
{
    auto sink = [dc](log_level l, std::string_view, std::string_view msg) {
        auto const now = std::chrono::system_clock::now();
        auto const ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()) % 1000;
        fmt::print(
            stderr,
            "{:%Y-%m-%dT%H:%M:%S}.{:03d} [{}] consul-kvsim dc={}: {}\n",
            fmt::gmtime(std::chrono::system_clock::to_time_t(now)),
            ms.count(),
            level_name(l),
            dc,
            msg
        );
        std::fflush(stderr);
    };
    return kvsim::api::logger(kvsim::api::parse_log_level(level), std::move(sink));
}

// Leaves without unwinding: used only when connections do not wind down in time.
[[noreturn]] void hard_exit(kvsim::api::sim_server& sim)
{
    sim.finish();
    std::fflush(stderr);
    std::_Exit(0);
}

// Once every connection and blocking query has ended, drops the signal wait so that the context runs out
// of work and run() returns; after 10 s gives up and exits.
awaitable<void> stop_when_idle(kvsim::api::sim_server* sim, asio::signal_set* signals, kvsim::api::logger log)
{
    asio::steady_timer timer(co_await asio::this_coro::executor);
    auto const deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (!sim->idle()) {
        if (std::chrono::steady_clock::now() >= deadline) {
            log.write(log_level::warn, "connections still open 10s after the stop; exiting now");
            hard_exit(*sim);
        }
        timer.expires_after(std::chrono::milliseconds(20));
        co_await timer.async_wait(nothrow_awaitable);
    }
    boost::system::error_code ignored;
    signals->cancel(ignored);
}

int run(kvsim::api::sim_options opts)
{
    auto log = make_logger(opts.log_level, opts.datacenter);
    asio::io_context ioc(1);
    std::optional<kvsim::api::sim_server> sim;
    try {
        sim.emplace(ioc.get_executor(), opts, log);
    } catch (std::exception const& e) {
        fmt::print(stderr, "consul-kvsim: {}\n", e.what());
        return 1;
    }
    tcp::endpoint ep;
    try {
        ep = sim->start();
    } catch (std::exception const& e) {
        fmt::print(stderr, "consul-kvsim: cannot listen on {}: {}\n", opts.http_addr, e.what());
        return 1;
    }
    asio::signal_set signals(ioc, SIGINT, SIGTERM);
    auto on_stopped = [&](std::exception_ptr e) {
        if (e) {
            log.write(log_level::err, "shutdown failed");
        }
    };
    auto on_signal = [&](boost::system::error_code const& ec, int signo) {
        if (ec) {
            return;
        }
        log.write(log_level::info, fmt::format("signal {}: shutting down", signo));
        sim->stop();
        asio::co_spawn(ioc, stop_when_idle(&*sim, &signals, log), on_stopped);
        // A second signal ends the process at once (after saving the data dir).
        signals.async_wait([&](boost::system::error_code const& ec2, int) {
            if (!ec2) {
                log.write(log_level::warn, "second signal: exiting now");
                hard_exit(*sim);
            }
        });
    };
    signals.async_wait(on_signal);
    // Ready only once signals are handled, so a test may stop the sim as soon as it reads this line.
    fmt::print(
        stderr,
        "consul-kvsim: dc={} listening on {}:{}\n",
        opts.datacenter,
        ep.address().to_string(),
        ep.port()
    );
    std::fflush(stderr);
    ioc.run();
    sim->finish();
    log.write(log_level::info, "stopped");
    return 0;
}

}  // namespace

int main(int argc, char** argv)
{
    std::vector<std::string> args(argv + 1, argv + argc);
    auto parsed = kvsim::api::parse_command_line(args);
    if (std::holds_alternative<kvsim::api::usage_request>(parsed)) {
        fmt::print(stderr, "{}", kvsim::api::usage_text());
        return 0;
    }
    if (auto const* e = std::get_if<kvsim::api::option_error>(&parsed)) {
        fmt::print(stderr, "consul-kvsim: {}\n{}", e->message, kvsim::api::usage_text());
        return 2;
    }
    try {
        return run(std::get<kvsim::api::sim_options>(std::move(parsed)));
    } catch (std::exception const& e) {
        fmt::print(stderr, "consul-kvsim: {}\n", e.what());
        return 1;
    }
}
