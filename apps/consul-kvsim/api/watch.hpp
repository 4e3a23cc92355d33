// Blocking-query waiters and the scoped wake-up rules of consul-api.md §6. A waiter is one timer that
// expires at the query's deadline; a relevant change cancels it early. Single-threaded.
#pragma once

#include <transport/asio.hpp>

#include <chrono>
#include <cstddef>
#include <list>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace kvship::kvsim::api {

enum class watch_scope
{
    key,       // a single key: a write or delete of exactly that key
    prefix,    // a listing: any write or delete of a key under the prefix, or a delete-tree around it
    any_kv,    // a listing whose index is the KV table's: any KV change
    sessions,  // session info/list/node: any session change
    catalog,   // health/catalog reads: any catalog change (each query re-checks its own service's index)
};

class watch_hub
{
public:
    // Waits until a change in `scope` (for key/prefix: of `key`) or `deadline`. True when woken by a
    // change (or by wake_all), false at the deadline. Cancellation: the wait ends as at the deadline.
    awaitable<bool> wait(watch_scope scope, std::string key, std::chrono::steady_clock::time_point deadline);

    // A key was written or deleted.
    void key_changed(std::string_view key);
    // A delete-tree of `prefix` (its tombstone): listings around and under it.
    void tree_changed(std::string_view prefix);
    void sessions_changed();
    // A catalog write (never a KV one): services, checks or their indexes.
    void catalog_changed();
    // Snapshot restore, shutdown.
    void wake_all();

    [[nodiscard]] std::size_t size() const;

private:
    struct waiter
    {
        asio::steady_timer* timer = nullptr;
        bool woken = false;
        watch_scope scope = watch_scope::key;
        std::multimap<std::string, waiter*, std::less<>>::iterator map_it;
        std::list<waiter*>::iterator list_it;
    };

    void add(waiter& w, std::string key);
    void remove(waiter& w);
    void wake(std::vector<waiter*> const& ws);
    void collect_prefixes_of(std::string_view key, std::vector<waiter*>& out);

    std::multimap<std::string, waiter*, std::less<>> keys_;
    std::multimap<std::string, waiter*, std::less<>> prefixes_;
    std::map<std::size_t, std::size_t> prefix_lengths_;  // length -> how many prefix waiters have it
    std::list<waiter*> any_kv_;
    std::list<waiter*> sessions_;
    std::list<waiter*> catalog_;
};

}  // namespace kvship::kvsim::api
