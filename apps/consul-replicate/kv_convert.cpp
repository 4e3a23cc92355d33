#include "kv_convert.hpp"

#include <string>
#include <utility>

namespace kvship::replicate {

std::vector<engine::kv_entry> to_engine_entries(std::vector<transport::kv_entry> entries)
{
    std::vector<engine::kv_entry> out;
    out.reserve(entries.size());
    for (auto& e : entries) {
        engine::kv_entry x;
        x.key = std::move(e.key);
        x.value = std::move(e.value).value_or(std::string{});
        x.flags = e.flags;
        x.modify_index = e.modify_index;
        if (!e.session.empty())
            x.session = std::move(e.session);
        out.push_back(std::move(x));
    }
    return out;
}

engine::snapshot to_snapshot(transport::kv_listing listing)
{
    engine::snapshot s;
    s.index = listing.index;
    s.entries = to_engine_entries(std::move(listing.entries));
    engine::sort_entries(s.entries);
    return s;
}

transport::txn_op to_transport(const engine::txn_op& op)
{
    transport::txn_op out;
    if (op.verb == engine::txn_verb::set) {
        out.verb = transport::txn_verb::set;
        out.value = op.value;
        out.flags = op.flags;
    } else {
        out.verb = transport::txn_verb::delete_key;
    }
    out.key = op.key;
    return out;
}

// The error kind label for a transport error, or `fallback` (the phase).
std::string_view error_kind(const transport::consul_error& e, std::string_view fallback)
{
    using transport::errc;
    if (e == errc::forbidden)
        return "acl_denied";
    if (e == errc::timed_out)
        return "timeout";
    if (e == errc::no_leader)
        return "no_leader";
    if (e == errc::malformed_response || e == errc::missing_index)
        return "decode";
    return fallback;
}

}  // namespace kvship::replicate
