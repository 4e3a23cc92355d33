// kvship-sim-load: load and measure a Consul-compatible server (consul-kvsim or real Consul).
//   load     --addr A --keys N [--conns 4] [--ops 64] [--value-size 100] [--prefix bench/] [--subprefixes 256]
//   recurse  --addr A [--prefix bench/] [--repeat 5]
//   watchers --addr A [--count 2000] [--prefix watch/]
// Prints one `name key=value ...` line per figure, for bench/*.py to parse.
#include <gotext/base64.hpp>
#include <transport/http_client.hpp>

#include <fmt/format.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <iostream>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

using namespace kvship;
using namespace std::chrono_literals;
using transport::http_client;
using transport::http_request;
using steady = std::chrono::steady_clock;

namespace {

struct options
{
    std::string command;
    std::string addr = "127.0.0.1:8500";
    std::size_t keys = 100000;
    std::size_t conns = 4;
    std::size_t ops = 64;
    std::size_t value_size = 100;
    std::string prefix;
    std::size_t subprefixes = 256;
    std::size_t repeat = 5;
    std::size_t count = 2000;
};

options parse(int argc, char** argv)
{
    if (argc < 2) {
        throw std::invalid_argument("usage: kvship-sim-load load|recurse|watchers --addr HOST:PORT [options]");
    }
    options o;
    o.command = argv[1];
    for (int i = 2; i < argc; ++i) {
        std::string flag = argv[i];
        if (i + 1 >= argc) {
            throw std::invalid_argument(fmt::format("flag {} needs a value", flag));
        }
        std::string const v = argv[++i];
        auto number = [&] {
            try {
                return static_cast<std::size_t>(std::stoull(v));
            } catch (std::exception const&) {
                throw std::invalid_argument(fmt::format("flag {}: \"{}\" is not a number", flag, v));
            }
        };
        if (flag == "--addr") {
            o.addr = v;
        } else if (flag == "--keys") {
            o.keys = number();
        } else if (flag == "--conns") {
            o.conns = std::max<std::size_t>(1, number());
        } else if (flag == "--ops") {
            o.ops = std::max<std::size_t>(1, number());
        } else if (flag == "--value-size") {
            o.value_size = number();
        } else if (flag == "--prefix") {
            o.prefix = v;
        } else if (flag == "--subprefixes") {
            o.subprefixes = std::max<std::size_t>(1, number());
        } else if (flag == "--repeat") {
            o.repeat = std::max<std::size_t>(1, number());
        } else if (flag == "--count") {
            o.count = number();
        } else {
            throw std::invalid_argument(fmt::format("unknown flag {}", flag));
        }
    }
    if (o.prefix.empty()) {
        o.prefix = o.command == "watchers" ? "watch/" : "bench/";
    }
    return o;
}

double ms_since(steady::time_point t0)
{
    return std::chrono::duration<double, std::milli>(steady::now() - t0).count();
}

// The key for item i: 256 sub-prefixes as in BENCHMARKS.md (bench/d000/... to bench/d255/...).
std::string key_for(options const& o, std::size_t i)
{
    return fmt::format("{}d{:03}/k{:08}", o.prefix, i % o.subprefixes, i);
}

std::string txn_body(options const& o, std::size_t first, std::size_t last, std::string const& value_b64)
{
    rapidjson::StringBuffer sb;
    rapidjson::Writer<rapidjson::StringBuffer> w(sb);
    w.StartArray();
    for (std::size_t i = first; i < last; ++i) {
        w.StartObject();
        w.Key("KV");
        w.StartObject();
        w.Key("Verb");
        w.String("set");
        w.Key("Key");
        w.String(key_for(o, i));
        w.Key("Value");
        w.String(value_b64);
        w.EndObject();
        w.EndObject();
    }
    w.EndArray();
    return {sb.GetString(), sb.GetSize()};
}

struct load_state
{
    std::size_t next = 0;
    std::size_t requests = 0;
    std::size_t failures = 0;
    std::string first_error;
};

awaitable<void> load_worker(http_client& client, options const& o, load_state& st, std::string value_b64)
{
    while (st.next < o.keys) {
        std::size_t const first = st.next;
        std::size_t const last = std::min(o.keys, first + o.ops);
        st.next = last;
        http_request req{http::verb::put, "/v1/txn", 11};
        req.set(http::field::content_type, "application/json");
        req.body() = txn_body(o, first, last, value_b64);
        auto res = co_await client.send(o.addr, std::move(req), 60s);
        ++st.requests;
        if (!res || res->result() != http::status::ok) {
            ++st.failures;
            if (st.first_error.empty()) {
                st.first_error = res ? fmt::format("status {}: {}", res->result_int(), res->body().substr(0, 200))
                                     : res.error().message();
            }
        }
    }
}

int run_load(options const& o)
{
    asio::io_context ioc{1};
    http_client client{ioc.get_executor()};
    load_state st;
    std::string const value_b64 = gotext::base64_encode(std::string(o.value_size, 'v'));
    auto const t0 = steady::now();
    for (std::size_t c = 0; c < o.conns; ++c) {
        asio::co_spawn(ioc, load_worker(client, o, st, value_b64), [](std::exception_ptr e) {
            if (e) {
                std::rethrow_exception(e);
            }
        });
    }
    ioc.run();
    double const ms = ms_since(t0);
    fmt::print(
        "load keys={} conns={} ops={} value_size={} ms={:.1f} keys_per_s={:.0f} requests={} failures={}{}\n",
        o.keys, o.conns, o.ops, o.value_size, ms, static_cast<double>(o.keys) / (ms / 1000.0), st.requests,
        st.failures, st.first_error.empty() ? "" : " first_error=\"" + st.first_error + "\""
    );
    return st.failures == 0 ? 0 : 1;
}

int run_recurse(options const& o)
{
    asio::io_context ioc{1};
    http_client client{ioc.get_executor()};
    std::vector<double> times;
    std::size_t bytes = 0;
    int status = 0;
    auto body = [&]() -> awaitable<void> {
        for (std::size_t r = 0; r < o.repeat; ++r) {
            http_request req{http::verb::get, "/v1/kv/" + o.prefix + "?recurse", 11};
            auto const t0 = steady::now();
            auto res = co_await client.send(o.addr, std::move(req), 120s);
            times.push_back(ms_since(t0));
            if (!res) {
                throw std::runtime_error("recurse failed: " + res.error().message());
            }
            status = res->result_int();
            bytes = res->body().size();
        }
    };
    asio::co_spawn(ioc, body(), [](std::exception_ptr e) {
        if (e) {
            std::rethrow_exception(e);
        }
    });
    ioc.run();
    std::sort(times.begin(), times.end());
    fmt::print(
        "recurse prefix={} status={} bytes={} best_ms={:.1f} median_ms={:.1f}\n", o.prefix, status, bytes,
        times.front(), times[times.size() / 2]
    );
    return status == 200 ? 0 : 1;
}

// N blocking queries on one prefix, each on its own connection; once all are parked, one write wakes them.
int run_watchers(options const& o)
{
    asio::io_context ioc{1};
    transport::client_params cp;
    cp.max_idle_per_host = o.count + 1;
    http_client client{ioc.get_executor(), cp};
    std::size_t parked_index = 0;
    std::size_t woken = 0;
    std::size_t wrong = 0;
    std::size_t errors = 0;
    steady::time_point write_at{};
    double all_woken_ms = 0;

    // The lambdas below live until ioc.run() returns, so the coroutines they start may capture by reference.
    auto watcher = [&](std::size_t) -> awaitable<void> {
        http_request req{http::verb::get, fmt::format("/v1/kv/{}?recurse&index={}&wait=60s", o.prefix, parked_index), 11};
        auto res = co_await client.send(o.addr, std::move(req), 90s);
        if (!res) {
            ++errors;
        } else if (write_at == steady::time_point{}) {
            ++wrong;  // returned before the write: not blocking
        }
        if (++woken == o.count) {
            all_woken_ms = ms_since(write_at);
        }
    };
    auto driver = [&]() -> awaitable<void> {
        http_request seed{http::verb::put, "/v1/kv/" + o.prefix + "seed", 11};
        seed.body() = "x";
        auto s = co_await client.send(o.addr, std::move(seed), 10s);
        if (!s) {
            throw std::runtime_error("seed write failed: " + s.error().message());
        }
        http_request get{http::verb::get, "/v1/kv/" + o.prefix + "?recurse", 11};
        auto g = co_await client.send(o.addr, std::move(get), 10s);
        if (!g) {
            throw std::runtime_error("index read failed: " + g.error().message());
        }
        parked_index = std::stoull(std::string((*g)["X-Consul-Index"]));
        for (std::size_t i = 0; i < o.count; ++i) {
            asio::co_spawn(ioc, watcher(i), asio::detached);
        }
        asio::steady_timer settle(ioc, 2s);
        co_await settle.async_wait(use_awaitable);
        write_at = steady::now();
        http_request put{http::verb::put, "/v1/kv/" + o.prefix + "wake", 11};
        put.body() = "y";
        co_await client.send(o.addr, std::move(put), 10s);
    };
    asio::co_spawn(ioc, driver(), [](std::exception_ptr e) {
        if (e) {
            std::rethrow_exception(e);
        }
    });
    ioc.run();
    fmt::print(
        "watchers count={} woken={} early={} errors={} all_woken_ms={:.1f}\n", o.count, woken, wrong, errors,
        all_woken_ms
    );
    return errors == 0 && wrong == 0 ? 0 : 1;
}

void raise_fd_limit()
{
    rlimit rl{};
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

}  // namespace

int main(int argc, char** argv)
{
    try {
        raise_fd_limit();
        auto const o = parse(argc, argv);
        if (o.command == "load") {
            return run_load(o);
        }
        if (o.command == "recurse") {
            return run_recurse(o);
        }
        if (o.command == "watchers") {
            return run_watchers(o);
        }
        throw std::invalid_argument(fmt::format("unknown command \"{}\" (load, recurse, watchers)", o.command));
    } catch (std::exception const& e) {
        std::cerr << "kvship-sim-load: " << e.what() << "\n";
        return 1;
    }
}
