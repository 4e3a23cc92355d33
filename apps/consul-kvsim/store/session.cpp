// Sessions: create/renew/destroy/expiry and what invalidation does to held locks (consul-api.md §8).
#include "store/detail.hpp"
#include "store/duration.hpp"
#include "store/store.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>

namespace kvship::kvsim {

namespace {

constexpr nanos session_ttl_max = std::chrono::hours(24);

std::uint64_t splitmix64(std::uint64_t& state)
{
    std::uint64_t z = (state += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

}  // namespace

void store::seed_ids(std::uint64_t seed)
{
    id_seed_ = seed;
    id_counter_ = 0;
}

// A version-4-shaped uuid from (seed, counter); skips ids already in use (after a restore or replay).
std::string store::next_id()
{
    for (;;) {
        std::uint64_t state = id_seed_ ^ (id_counter_++ * 0xD1B54A32D192ED03ULL);
        std::uint64_t const hi = splitmix64(state);
        std::uint64_t const lo = splitmix64(state);
        auto const a = static_cast<std::uint32_t>(hi >> 32);
        auto const b = static_cast<std::uint32_t>((hi >> 16) & 0xFFFF);
        auto const c = static_cast<std::uint32_t>((hi & 0x0FFF) | 0x4000);
        auto const d = static_cast<std::uint32_t>(((lo >> 48) & 0x3FFF) | 0x8000);
        std::uint64_t const e = lo & 0xFFFFFFFFFFFFULL;
        std::string id = fmt::format("{:08x}-{:04x}-{:04x}-{:04x}-{:012x}", a, b, c, d, e);
        bool const used = sessions_.count(id) != 0 ||
                          std::any_of(
                              tokens_.begin(),
                              tokens_.end(),
                              [&](auto const& t) { return t.first == id || t.second.accessor_id == id; }
                          ) ||
                          policies_.count(id) != 0;
        if (!used) {
            return id;
        }
    }
}

std::variant<session, std::string> store::create_session(session_request const& req, time_point now)
{
    // Endpoint checks, before Raft (no index used).
    std::string node = req.node.value_or(params_.node_name);
    if (node.empty()) {
        return std::string("Must provide Node");
    }
    session_behavior behavior = session_behavior::release;
    if (req.behavior && !req.behavior->empty()) {
        if (*req.behavior == "release") {
            behavior = session_behavior::release;
        } else if (*req.behavior == "delete") {
            behavior = session_behavior::del;
        } else {
            return fmt::format("Invalid Behavior setting '{}'", *req.behavior);
        }
    }
    nanos ttl{0};
    if (req.ttl && !req.ttl->empty()) {
        auto parsed = parse_go_duration_or_error(*req.ttl);
        if (auto const* err = std::get_if<std::string>(&parsed)) {
            return fmt::format("Session TTL '{}' invalid: {}", *req.ttl, *err);
        }
        ttl = std::get<nanos>(parsed);
        if (ttl != nanos{0} && (ttl < params_.session_ttl_min || ttl > session_ttl_max)) {
            return fmt::format(
                "Invalid Session TTL '{}', must be between [{}={}]",
                ttl.count(),
                format_go_duration(params_.session_ttl_min),
                format_go_duration(session_ttl_max)
            );
        }
    }

    // State-store checks happen inside the Raft apply: they use up an index.
    index_t const idx = ++raft_index_;
    auto fail = [&](std::string what) -> std::variant<session, std::string> {
        emit_index();
        return what;
    };
    if (node != params_.node_name) {
        return fail("Missing node registration");
    }
    std::vector<std::string> node_checks = req.node_checks.value_or(std::vector<std::string>{"serfHealth"});
    for (auto const& c : node_checks) {
        if (c != "serfHealth") {
            return fail(fmt::format("Missing check '{}' registration", c));
        }
    }
    std::vector<std::string> service_checks = req.service_checks.value_or(std::vector<std::string>{});
    if (!service_checks.empty()) {
        return fail(fmt::format("Missing check '{}' registration", service_checks.front()));
    }

    session s;
    s.id = next_id();
    s.name = req.name.value_or("");
    s.node = std::move(node);
    s.lock_delay = req.lock_delay.value_or(std::chrono::seconds(15));
    s.behavior = behavior;
    s.ttl = req.ttl.value_or("");
    s.ttl_duration = ttl;
    s.node_checks = std::move(node_checks);
    s.service_checks = std::move(service_checks);
    s.create_index = idx;
    s.modify_index = idx;
    if (ttl > nanos{0}) {
        s.expires_at = now + 2 * ttl;
    }
    sessions_table_index_ = idx;
    auto const& stored = sessions_.insert_or_assign(s.id, s).first->second;
    emit(ev_session_put{stored});
    emit_index();
    return s;
}

std::optional<session> store::renew_session(std::string_view id, time_point now)
{
    auto it = sessions_.find(id);
    if (it == sessions_.end()) {
        return std::nullopt;
    }
    // Not a Raft write in Consul: only the leader's timer moves.
    if (it->second.ttl_duration > nanos{0}) {
        it->second.expires_at = now + 2 * it->second.ttl_duration;
        emit(ev_session_put{it->second});
    }
    return it->second;
}

void store::destroy_session(std::string_view id, time_point now)
{
    index_t const idx = ++raft_index_;
    auto it = sessions_.find(id);
    if (it != sessions_.end()) {
        delete_session(it->first, idx, now);
    }
    emit_index();
}

// Consul's deleteSessionTxn: release or delete every held key, each starting a lock-delay.
void store::delete_session(std::string const& id_ref, index_t idx, time_point now)
{
    std::string const id = id_ref;  // id_ref lives in the map entry erased below
    auto const sit = sessions_.find(id);
    session const& s = sit->second;
    nanos const delay = std::min(s.lock_delay, params_.max_lock_delay);
    bool const release = s.behavior == session_behavior::release;
    std::vector<std::string> held;
    if (auto hk = session_keys_.find(id); hk != session_keys_.end()) {
        held.assign(hk->second.begin(), hk->second.end());
    }
    for (auto const& key : held) {
        if (release) {
            if (auto const* e = get(key)) {
                kv_entry copy = *e;
                copy.session.clear();
                kvs_set(std::move(copy), true, idx);
            }
        } else {
            kvs_delete(key, idx, now);
        }
        if (delay > nanos{0}) {
            lock_delays_.insert_or_assign(key, now + delay);
        }
    }
    sessions_.erase(sit);
    session_keys_.erase(id);
    sessions_table_index_ = idx;
    emit(ev_session_erase{id});
}

session const* store::get_session(std::string_view id) const
{
    auto it = sessions_.find(id);
    return it == sessions_.end() ? nullptr : &it->second;
}

std::vector<session const*> store::sessions() const
{
    std::vector<session const*> out;
    out.reserve(sessions_.size());
    for (auto const& [id, s] : sessions_) {
        out.push_back(&s);
    }
    return out;
}

index_t store::sessions_index() const
{
    return std::max<index_t>(1, sessions_table_index_);
}

}  // namespace kvship::kvsim
