#include "api/faults.hpp"

namespace kvship::kvsim::api {

std::optional<fault_rule> fault_table::take(std::string_view method, std::string_view path)
{
    for (auto it = rules_.begin(); it != rules_.end(); ++it) {
        if (!path.starts_with(it->path_prefix) || (!it->method.empty() && it->method != method)) {
            continue;
        }
        fault_rule out = *it;
        if (it->remaining) {
            if (--*it->remaining == 0) {
                rules_.erase(it);
            }
        }
        return out;
    }
    return std::nullopt;
}

void traffic_stats::record(
    std::string_view route,
    std::vector<std::string_view> const& classes,
    unsigned status,
    std::uint64_t in,
    std::uint64_t out
)
{
    totals.add(in, out);
    auto add_to = [&](std::map<std::string, traffic, std::less<>>& m, std::string_view name) {
        auto it = m.find(name);
        if (it == m.end()) {
            it = m.emplace(std::string(name), traffic{}).first;
        }
        it->second.add(in, out);
    };
    add_to(by_route, route);
    for (auto const c : classes) {
        add_to(by_class, c);
    }
    ++by_status[status];
}

}  // namespace kvship::kvsim::api
