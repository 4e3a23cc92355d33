// The sim's test hooks that are plain data: injected faults (/_sim/fault) and traffic counters
// (/_sim/stats). No I/O: the router consults and updates them.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace kvship::kvsim::api {

// One injected fault. A request matches when its decoded path starts with `path_prefix` and, if `method`
// is set, its method equals it. A matching request is first delayed by `delay`, then answered with
// `status`/`body` when status is set, else served normally and cut after `drop_after_bytes` when set.
struct fault_rule
{
    std::string path_prefix;
    std::string method;                      // empty: any method
    std::optional<std::uint64_t> remaining;  // nullopt: every matching request until cleared
    unsigned status = 0;                     // 0: no injected status
    std::string body;
    std::chrono::milliseconds delay{0};
    std::size_t drop_after_bytes = 0;  // 0: no cut
};

class fault_table
{
public:
    void add(fault_rule rule) { rules_.push_back(std::move(rule)); }

    void clear() { rules_.clear(); }

    [[nodiscard]] std::size_t size() const { return rules_.size(); }

    // The first rule matching the request, with one use consumed (a rule used up is removed).
    [[nodiscard]] std::optional<fault_rule> take(std::string_view method, std::string_view path);

private:
    std::vector<fault_rule> rules_;
};

struct traffic
{
    std::uint64_t requests = 0;
    std::uint64_t bytes_in = 0;
    std::uint64_t bytes_out = 0;

    void add(std::uint64_t in, std::uint64_t out)
    {
        ++requests;
        bytes_in += in;
        bytes_out += out;
    }
};

// Counters by route ("GET /v1/kv"), by class ("read", "write", "blocking", "forwarded", "txn", ...) and
// by status; /_sim/ requests are not counted.
struct traffic_stats
{
    traffic totals;
    std::map<std::string, traffic, std::less<>> by_route;
    std::map<std::string, traffic, std::less<>> by_class;
    std::map<unsigned, std::uint64_t> by_status;

    void record(
        std::string_view route,
        std::vector<std::string_view> const& classes,
        unsigned status,
        std::uint64_t in,
        std::uint64_t out
    );

    void reset() { *this = traffic_stats{}; }
};

}  // namespace kvship::kvsim::api
