#include "api/watch.hpp"

namespace kvship::kvsim::api {

awaitable<bool> watch_hub::wait(
    watch_scope scope, std::string key, std::chrono::steady_clock::time_point deadline
)
{
    auto ex = co_await asio::this_coro::executor;
    asio::steady_timer timer(ex, deadline);
    waiter w;
    w.timer = &timer;
    w.scope = scope;
    add(w, std::move(key));

    struct guard
    {
        watch_hub* hub;
        waiter* w;

        ~guard()
        {
            if (!w->woken) {
                hub->remove(*w);
            }
        }
    } g{this, &w};

    auto [ec] = co_await timer.async_wait(nothrow_awaitable);
    (void)ec;
    co_return w.woken;
}

void watch_hub::add(waiter& w, std::string key)
{
    switch (w.scope) {
        case watch_scope::key:
            w.map_it = keys_.emplace(std::move(key), &w);
            break;
        case watch_scope::prefix:
            ++prefix_lengths_[key.size()];
            w.map_it = prefixes_.emplace(std::move(key), &w);
            break;
        case watch_scope::any_kv:
            w.list_it = any_kv_.insert(any_kv_.end(), &w);
            break;
        case watch_scope::sessions:
            w.list_it = sessions_.insert(sessions_.end(), &w);
            break;
        case watch_scope::catalog:
            w.list_it = catalog_.insert(catalog_.end(), &w);
            break;
    }
}

void watch_hub::remove(waiter& w)
{
    switch (w.scope) {
        case watch_scope::key:
            keys_.erase(w.map_it);
            break;
        case watch_scope::prefix: {
            auto const len = w.map_it->first.size();
            if (auto it = prefix_lengths_.find(len); it != prefix_lengths_.end() && --it->second == 0) {
                prefix_lengths_.erase(it);
            }
            prefixes_.erase(w.map_it);
            break;
        }
        case watch_scope::any_kv:
            any_kv_.erase(w.list_it);
            break;
        case watch_scope::sessions:
            sessions_.erase(w.list_it);
            break;
        case watch_scope::catalog:
            catalog_.erase(w.list_it);
            break;
    }
}

void watch_hub::wake(std::vector<waiter*> const& ws)
{
    for (auto* w : ws) {
        if (w->woken) {
            continue;
        }
        remove(*w);
        w->woken = true;
        w->timer->cancel();
    }
}

void watch_hub::collect_prefixes_of(std::string_view key, std::vector<waiter*>& out)
{
    for (auto const& [len, count] : prefix_lengths_) {
        (void)count;
        if (len > key.size()) {
            break;
        }
        auto [lo, hi] = prefixes_.equal_range(key.substr(0, len));
        for (; lo != hi; ++lo) {
            out.push_back(lo->second);
        }
    }
}

void watch_hub::key_changed(std::string_view key)
{
    std::vector<waiter*> woken;
    auto [lo, hi] = keys_.equal_range(key);
    for (; lo != hi; ++lo) {
        woken.push_back(lo->second);
    }
    collect_prefixes_of(key, woken);
    woken.insert(woken.end(), any_kv_.begin(), any_kv_.end());
    wake(woken);
}

void watch_hub::tree_changed(std::string_view prefix)
{
    // Keys under the prefix were reported one by one (key_changed); here the listings around it: those
    // of prefixes of it and of narrower prefixes inside it.
    std::vector<waiter*> woken;
    collect_prefixes_of(prefix, woken);
    for (auto it = prefixes_.lower_bound(prefix); it != prefixes_.end() && it->first.starts_with(prefix);
         ++it) {
        if (it->first.size() > prefix.size()) {
            woken.push_back(it->second);
        }
    }
    woken.insert(woken.end(), any_kv_.begin(), any_kv_.end());
    wake(woken);
}

void watch_hub::sessions_changed()
{
    std::vector<waiter*> const woken(sessions_.begin(), sessions_.end());
    wake(woken);
}

void watch_hub::catalog_changed()
{
    std::vector<waiter*> const woken(catalog_.begin(), catalog_.end());
    wake(woken);
}

void watch_hub::wake_all()
{
    std::vector<waiter*> woken;
    for (auto const& [k, w] : keys_) {
        woken.push_back(w);
    }
    for (auto const& [k, w] : prefixes_) {
        woken.push_back(w);
    }
    woken.insert(woken.end(), any_kv_.begin(), any_kv_.end());
    woken.insert(woken.end(), sessions_.begin(), sessions_.end());
    woken.insert(woken.end(), catalog_.begin(), catalog_.end());
    wake(woken);
}

std::size_t watch_hub::size() const
{
    return keys_.size() + prefixes_.size() + any_kv_.size() + sessions_.size() + catalog_.size();
}

}  // namespace kvship::kvsim::api
