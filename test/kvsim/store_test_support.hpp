// Builders shared by the kvsim store tests.
#pragma once

#include <chrono>
#include <optional>
#include <store/store.hpp>
#include <string>
#include <variant>
#include <vector>

namespace kvship::kvsim::test {

using namespace std::chrono_literals;

// A fixed origin far from the clock's epoch, so time arithmetic never goes negative.
inline time_point const t0 = time_point(std::chrono::hours(1000));

inline std::optional<std::string> val(std::string s)
{
    return std::optional<std::string>(std::move(s));
}

inline txn_kv_op op(
    std::string verb,
    std::string key,
    std::optional<std::string> value = std::nullopt,
    index_t index = 0,
    std::string session = {},
    std::uint64_t flags = 0
)
{
    txn_kv_op o;
    o.verb = std::move(verb);
    o.key = std::move(key);
    o.value = std::move(value);
    o.index = index;
    o.session = std::move(session);
    o.flags = flags;
    return o;
}

// Records every event the store emits.
struct recorder
{
    std::vector<store_event> events;

    void attach(store& s)
    {
        s.set_observer([this](store_event const& ev) { events.push_back(ev); });
    }

    template <typename T>
    std::size_t count() const
    {
        std::size_t n = 0;
        for (auto const& e : events) {
            n += std::holds_alternative<T>(e) ? 1 : 0;
        }
        return n;
    }
};

inline session make_session(store& s, session_request req = {}, time_point now = t0)
{
    auto r = s.create_session(req, now);
    if (auto const* err = std::get_if<std::string>(&r)) {
        throw std::runtime_error(*err);
    }
    return std::get<session>(r);
}

inline session_request req_with(
    std::optional<std::string> behavior,
    std::optional<nanos> lock_delay,
    std::optional<std::string> ttl = std::nullopt
)
{
    session_request r;
    r.behavior = std::move(behavior);
    r.lock_delay = lock_delay;
    r.ttl = std::move(ttl);
    return r;
}

}  // namespace kvship::kvsim::test
