// KV table, tombstones, indexes, single-call writes and timers (consul-api.md §2-§5, §13).
#include "store/store.hpp"

#include "store/detail.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <utility>

namespace kvship::kvsim {

store::store(store_params params) : params_(std::move(params)), raft_index_(params_.initial_index)
{
    // What a Consul server's node has from the start: its own `consul` service and the serfHealth check.
    consul_service_.id = "consul";
    consul_service_.name = "consul";
    consul_service_.port = 8300;
    consul_service_.create_index = consul_service_.modify_index = params_.initial_index;
    serf_check_.check_id = "serfHealth";
    serf_check_.name = "Serf Health Status";
    serf_check_.status = std::string(health_passing);
    serf_check_.output = "Agent alive and reachable";
    serf_check_.create_index = serf_check_.modify_index = params_.initial_index;
}

void store::set_observer(std::function<void(store_event const&)> observer)
{
    observer_ = std::move(observer);
}

void store::emit(store_event const& ev) const
{
    if (observer_) {
        observer_(ev);
    }
}

void store::emit_index() const
{
    if (observer_) {
        observer_(ev_index{raft_index_, kvs_table_index_, tombstone_table_index_, sessions_table_index_});
    }
}

// ---------------------------------------------------------------- primitives

// No journal, no events: keeps the session->keys index right. Used by replay and rollback too.
void store::raw_put(kv_entry e)
{
    // Snapshots and journals mostly come in key order: append without a search.
    if (kv_.empty() || kv_.rbegin()->key < e.key) {
        if (!e.session.empty()) {
            session_keys_[e.session].insert(e.key);
        }
        kv_.emplace_hint(kv_.end(), std::move(e));
        return;
    }
    auto it = kv_.find(std::string_view(e.key));
    if (it == kv_.end()) {
        if (!e.session.empty()) {
            session_keys_[e.session].insert(e.key);
        }
        kv_.insert(std::move(e));
        return;
    }
    auto& cur = detail::mut(*it);
    if (cur.session != e.session) {
        if (!cur.session.empty()) {
            detail::unindex(session_keys_, cur.session, cur.key);
        }
        if (!e.session.empty()) {
            session_keys_[e.session].insert(e.key);
        }
    }
    cur = std::move(e);
}

void store::raw_erase(std::string_view key)
{
    auto it = kv_.find(key);
    if (it == kv_.end()) {
        return;
    }
    if (!it->session.empty()) {
        detail::unindex(session_keys_, it->session, it->key);
    }
    kv_.erase(it);
}

void store::raw_tombstone(std::string const& key, tomb_info t)
{
    if (t.created) {
        add_bucket(t.index, *t.created);
    } else {
        pending_tombs_.push_back(key);
    }
    tombstones_.insert_or_assign(key, t);
}

void store::add_bucket(index_t idx, time_point created)
{
    auto const due = detail::round_up(created + params_.tombstone_ttl, params_.tombstone_granularity);
    auto& slot = reap_buckets_[due];
    slot = std::max(slot, idx);
}

void store::rebuild_buckets()
{
    reap_buckets_.clear();
    pending_tombs_.clear();
    for (auto const& [key, t] : tombstones_) {
        if (t.created) {
            add_bucket(t.index, *t.created);
        } else {
            pending_tombs_.push_back(key);
        }
    }
}

// Journaled: records undo inside a txn, emits the event outside one.
kv_entry const& store::put_entry(kv_entry e)
{
    auto it = kv_.find(std::string_view(e.key));
    if (it == kv_.end()) {
        if (txn_) {
            txn_->undo.push_back(undo_rec{
                .tomb = false, .key = e.key, .kv_before = std::nullopt, .tomb_before = {}});
        }
        if (!e.session.empty()) {
            session_keys_[e.session].insert(e.key);
        }
        it = kv_.insert(std::move(e)).first;
    } else {
        auto& cur = detail::mut(*it);
        if (cur.session != e.session) {
            if (!cur.session.empty()) {
                detail::unindex(session_keys_, cur.session, cur.key);
            }
            if (!e.session.empty()) {
                session_keys_[e.session].insert(e.key);
            }
        }
        if (txn_) {
            txn_->undo.push_back(undo_rec{
                .tomb = false, .key = e.key, .kv_before = std::move(cur), .tomb_before = {}});
        }
        cur = std::move(e);
    }
    if (!txn_ && observer_) {
        observer_(ev_entry_put{*it});
    }
    return *it;
}

void store::erase_entry(kv_set::iterator it)
{
    if (!it->session.empty()) {
        detail::unindex(session_keys_, it->session, it->key);
    }
    if (txn_) {
        auto node = kv_.extract(it);
        std::string key = node.value().key;
        txn_->undo.push_back(undo_rec{
            .tomb = false, .key = std::move(key), .kv_before = std::move(node.value()), .tomb_before = {}});
        return;
    }
    if (observer_) {
        std::string key = it->key;
        kv_.erase(it);
        observer_(ev_entry_erase{std::move(key)});
        return;
    }
    kv_.erase(it);
}

void store::put_tombstone(std::string const& key, index_t idx, std::optional<time_point> created)
{
    if (txn_) {
        auto it = tombstones_.find(key);
        txn_->undo.push_back(undo_rec{
            .tomb = true,
            .key = key,
            .kv_before = std::nullopt,
            .tomb_before = it == tombstones_.end() ? std::nullopt : std::optional<tomb_info>(it->second)});
    }
    raw_tombstone(key, tomb_info{.index = idx, .created = created});
    tombstone_table_index_ = idx;
    if (!txn_ && observer_) {
        observer_(ev_tombstone{key, idx, created});
    }
}

void store::reap_up_to(index_t up_to)
{
    std::erase_if(tombstones_, [&](auto const& kv) { return kv.second.index <= up_to; });
}

void store::clear_state()
{
    kv_.clear();
    tombstones_.clear();
    pending_tombs_.clear();
    reap_buckets_.clear();
    sessions_.clear();
    session_keys_.clear();
    lock_delays_.clear();
    policies_.clear();
    tokens_.clear();
    kvs_table_index_ = 0;
    tombstone_table_index_ = 0;
    sessions_table_index_ = 0;
    services_.clear();
    checks_.clear();
    ttl_timers_.clear();
    service_indexes_.clear();
    services_table_index_ = 0;
    checks_table_index_ = 0;
    extinction_index_ = 0;
    raft_index_ = params_.initial_index;
    id_counter_ = 0;
}

// ---------------------------------------------------------------- Consul's state-store operations

kv_entry const& store::kvs_set(kv_entry e, bool update_session, index_t idx)
{
    auto it = kv_.find(std::string_view(e.key));
    if (it != kv_.end()) {
        e.create_index = it->create_index;
        if (!update_session) {
            e.session = it->session;
        }
        if (detail::same_entry(*it, e)) {
            return *it;  // idempotent: no write, ModifyIndex kept (PR #5885)
        }
    } else {
        e.create_index = idx;
        if (!update_session) {
            e.session.clear();
        }
    }
    e.modify_index = idx;
    kvs_table_index_ = idx;
    return put_entry(std::move(e));
}

bool store::kvs_set_cas(kv_entry e, index_t cas_index, index_t idx)
{
    auto it = kv_.find(std::string_view(e.key));
    bool const exists = it != kv_.end();
    if (cas_index == 0 ? exists : (!exists || it->modify_index != cas_index)) {
        return false;
    }
    kvs_set(std::move(e), false, idx);
    return true;
}

store::lock_outcome store::kvs_lock(kv_entry e, index_t idx)
{
    if (e.session.empty()) {
        return {.ok = false, .error = "missing session"};
    }
    if (sessions_.find(e.session) == sessions_.end()) {
        return {.ok = false, .error = "invalid session " + go_quote(e.session)};
    }
    auto it = kv_.find(std::string_view(e.key));
    if (it != kv_.end()) {
        if (it->session == e.session) {
            e.lock_index = it->lock_index;
        } else if (!it->session.empty()) {
            return {.ok = false, .error = std::nullopt};
        } else {
            e.lock_index = it->lock_index + 1;
        }
    } else {
        e.lock_index = 1;
    }
    kvs_set(std::move(e), true, idx);
    return {.ok = true, .error = std::nullopt};
}

store::lock_outcome store::kvs_unlock(kv_entry e, index_t idx)
{
    if (e.session.empty()) {
        return {.ok = false, .error = "missing session"};
    }
    auto it = kv_.find(std::string_view(e.key));
    if (it == kv_.end() || it->session != e.session) {
        return {.ok = false, .error = std::nullopt};
    }
    e.lock_index = it->lock_index;
    e.session.clear();
    kvs_set(std::move(e), true, idx);
    return {.ok = true, .error = std::nullopt};
}

bool store::kvs_delete(std::string_view key, index_t idx, std::optional<time_point> now)
{
    auto it = kv_.find(key);
    if (it == kv_.end()) {
        return false;
    }
    put_tombstone(it->key, idx, now);
    kvs_table_index_ = idx;
    erase_entry(it);
    return true;
}

bool store::kvs_delete_cas(
    std::string_view key, index_t cas_index, index_t idx, std::optional<time_point> now
)
{
    auto it = kv_.find(key);
    if (it == kv_.end()) {
        return true;
    }
    if (it->modify_index != cas_index) {
        return false;
    }
    kvs_delete(key, idx, now);
    return true;
}

bool store::kvs_delete_tree(std::string_view prefix, index_t idx, std::optional<time_point> now)
{
    auto it = kv_.lower_bound(prefix);
    bool deleted = false;
    while (it != kv_.end() && it->key.starts_with(prefix)) {
        auto next = std::next(it);
        erase_entry(it);
        it = next;
        deleted = true;
    }
    if (deleted) {
        if (!prefix.empty()) {
            put_tombstone(std::string(prefix), idx, now);
        }
        kvs_table_index_ = idx;
    }
    return deleted;
}

// ---------------------------------------------------------------- indexes and reads

index_t store::kvs_max_index() const
{
    return std::max<index_t>({1, kvs_table_index_, tombstone_table_index_});
}

index_t store::list_index(std::string_view prefix) const
{
    if (prefix.empty()) {
        return kvs_max_index();
    }
    index_t best = 0;
    for (auto it = kv_.lower_bound(prefix); it != kv_.end() && it->key.starts_with(prefix); ++it) {
        best = std::max(best, it->modify_index);
    }
    for (auto it = tombstones_.lower_bound(prefix); it != tombstones_.end() && it->first.starts_with(prefix);
         ++it) {
        best = std::max(best, it->second.index);
    }
    return best != 0 ? best : kvs_max_index();
}

kv_entry const* store::get(std::string_view key) const
{
    auto it = kv_.find(key);
    return it == kv_.end() ? nullptr : &*it;
}

std::vector<kv_entry const*> store::list(std::string_view prefix) const
{
    std::vector<kv_entry const*> out;
    auto first = kv_.lower_bound(prefix);
    if (prefix.empty()) {
        out.reserve(kv_.size());
    }
    for (auto it = first; it != kv_.end() && it->key.starts_with(prefix); ++it) {
        out.push_back(&*it);
    }
    return out;
}

std::vector<std::string> store::keys(
    std::string_view prefix, std::string_view separator, authorizer const& acl
) const
{
    std::vector<std::string> out;
    bool const filtered = acl.enabled && !acl.management;
    auto it = kv_.lower_bound(prefix);
    while (it != kv_.end() && it->key.starts_with(prefix)) {
        if (filtered && !acl.can_read(it->key)) {
            ++it;
            continue;
        }
        std::string_view const after = std::string_view(it->key).substr(prefix.size());
        auto const pos = separator.empty() ? std::string_view::npos : after.find(separator);
        if (pos == std::string_view::npos) {
            out.push_back(it->key);
            ++it;
            continue;
        }
        // Every key sharing this cut sorts right after it, so one emit covers them; skip them in one step.
        std::string cut = it->key.substr(0, prefix.size() + pos + separator.size());
        if (auto succ = detail::prefix_successor(cut)) {
            it = kv_.lower_bound(std::string_view(*succ));
        } else {
            it = kv_.end();
        }
        out.push_back(std::move(cut));
    }
    return out;
}

std::optional<index_t> store::tombstone_index(std::string_view key) const
{
    auto it = tombstones_.find(key);
    if (it == tombstones_.end()) {
        return std::nullopt;
    }
    return it->second.index;
}

std::optional<time_point> store::lock_delay(std::string_view key, time_point now) const
{
    auto it = lock_delays_.find(key);
    if (it == lock_delays_.end() || it->second <= now) {
        return std::nullopt;
    }
    return it->second;
}

// ---------------------------------------------------------------- single-call writes

namespace {
write_result missing_key()
{
    return {.ok = false, .error = "Must provide key"};
}
}  // namespace

write_result store::set(std::string_view key, std::optional<std::string> value, std::uint64_t flags)
{
    if (key.empty()) {
        return missing_key();
    }
    index_t const idx = ++raft_index_;
    kvs_set(detail::make_entry(std::string(key), std::move(value), flags), false, idx);
    emit_index();
    return {.ok = true, .error = std::nullopt};
}

write_result store::cas(
    std::string_view key, std::optional<std::string> value, std::uint64_t flags, index_t cas_index
)
{
    if (key.empty()) {
        return missing_key();
    }
    index_t const idx = ++raft_index_;
    bool const ok =
        kvs_set_cas(detail::make_entry(std::string(key), std::move(value), flags), cas_index, idx);
    emit_index();
    return {.ok = ok, .error = std::nullopt};
}

write_result store::acquire(
    std::string_view key,
    std::optional<std::string> value,
    std::uint64_t flags,
    std::string_view session_id,
    time_point now
)
{
    if (key.empty()) {
        return missing_key();
    }
    if (lock_delay(key, now)) {
        return {.ok = false, .error = std::nullopt};  // refused before Raft: no index used
    }
    index_t const idx = ++raft_index_;
    auto out =
        kvs_lock(detail::make_entry(std::string(key), std::move(value), flags, std::string(session_id)), idx);
    emit_index();
    return {.ok = out.ok, .error = std::move(out.error)};
}

write_result store::release(
    std::string_view key, std::optional<std::string> value, std::uint64_t flags, std::string_view session_id
)
{
    if (key.empty()) {
        return missing_key();
    }
    index_t const idx = ++raft_index_;
    auto out = kvs_unlock(
        detail::make_entry(std::string(key), std::move(value), flags, std::string(session_id)), idx
    );
    emit_index();
    return {.ok = out.ok, .error = std::move(out.error)};
}

write_result store::erase(std::string_view key)
{
    return do_erase(key, std::nullopt);
}

write_result store::erase(std::string_view key, time_point now)
{
    return do_erase(key, now);
}

write_result store::erase_cas(std::string_view key, index_t cas_index)
{
    return do_erase_cas(key, cas_index, std::nullopt);
}

write_result store::erase_cas(std::string_view key, index_t cas_index, time_point now)
{
    return do_erase_cas(key, cas_index, now);
}

write_result store::erase_tree(std::string_view prefix)
{
    return do_erase_tree(prefix, std::nullopt);
}

write_result store::erase_tree(std::string_view prefix, time_point now)
{
    return do_erase_tree(prefix, now);
}

write_result store::do_erase(std::string_view key, std::optional<time_point> now)
{
    if (key.empty()) {
        return missing_key();
    }
    index_t const idx = ++raft_index_;
    kvs_delete(key, idx, now);
    emit_index();
    return {.ok = true, .error = std::nullopt};
}

write_result store::do_erase_cas(std::string_view key, index_t cas_index, std::optional<time_point> now)
{
    if (key.empty()) {
        return missing_key();
    }
    index_t const idx = ++raft_index_;
    bool const ok = kvs_delete_cas(key, cas_index, idx, now);
    emit_index();
    return {.ok = ok, .error = std::nullopt};
}

write_result store::do_erase_tree(std::string_view prefix, std::optional<time_point> now)
{
    index_t const idx = ++raft_index_;
    kvs_delete_tree(prefix, idx, now);
    emit_index();
    return {.ok = true, .error = std::nullopt};
}

// ---------------------------------------------------------------- timers

std::optional<time_point> store::tick(time_point now)
{
    // Date tombstones made without a time: reaped one TTL after this tick at the latest.
    for (auto const& key : pending_tombs_) {
        auto it = tombstones_.find(key);
        if (it != tombstones_.end() && !it->second.created) {
            it->second.created = now;
            add_bucket(it->second.index, now);
        }
    }
    pending_tombs_.clear();

    // Expire sessions (each destroy is its own Raft write), in id order.
    std::vector<std::string> expired;
    for (auto const& [id, s] : sessions_) {
        if (s.expires_at && *s.expires_at <= now) {
            expired.push_back(id);
        }
    }
    for (auto const& id : expired) {
        destroy_session(id, now);
    }

    // Reap the tombstones of every bucket that is due: all tombstones with index <= the bucket's max.
    index_t up_to = 0;
    while (!reap_buckets_.empty() && reap_buckets_.begin()->first <= now) {
        up_to = std::max(up_to, reap_buckets_.begin()->second);
        reap_buckets_.erase(reap_buckets_.begin());
    }
    if (up_to != 0) {
        auto const before = tombstones_.size();
        reap_up_to(up_to);
        if (tombstones_.size() != before) {
            ++raft_index_;
            emit(ev_tombstones_reaped{up_to});
            emit_index();
        }
    }

    std::erase_if(lock_delays_, [&](auto const& kv) { return kv.second <= now; });

    expire_ttl_checks(now);

    std::optional<time_point> next = next_ttl_deadline();
    if (!reap_buckets_.empty() && (!next || reap_buckets_.begin()->first < *next)) {
        next = reap_buckets_.begin()->first;
    }
    for (auto const& [id, s] : sessions_) {
        if (s.expires_at && (!next || *s.expires_at < *next)) {
            next = s.expires_at;
        }
    }
    return next;
}

void store::reap_all_tombstones()
{
    reap_buckets_.clear();
    pending_tombs_.clear();
    if (tombstones_.empty()) {
        return;
    }
    index_t up_to = 0;
    for (auto const& [key, t] : tombstones_) {
        up_to = std::max(up_to, t.index);
    }
    tombstones_.clear();
    ++raft_index_;
    emit(ev_tombstones_reaped{up_to});
    emit_index();
}

void store::lock_delay_until(std::string_view key, time_point until)
{
    lock_delays_.insert_or_assign(std::string(key), until);
}

// ---------------------------------------------------------------- helpers

std::optional<std::string> txn_too_many_ops(std::size_t n, std::size_t max_ops)
{
    if (n <= max_ops) {
        return std::nullopt;
    }
    return fmt::format("Transaction contains too many operations ({} > {})", n, max_ops);
}

std::optional<std::string> txn_value_too_large(std::vector<txn_kv_op> const& ops, std::size_t max_size)
{
    for (auto const& op : ops) {
        if (op.value && op.value->size() > max_size) {
            return fmt::format(
                "Value for key {} is too large ({} > {} bytes)", go_quote(op.key), op.value->size(), max_size
            );
        }
    }
    return std::nullopt;
}

bool is_txn_write_verb(std::string_view verb)
{
    return verb == "set" || verb == "cas" || verb == "lock" || verb == "unlock" || verb == "delete" ||
           verb == "delete-cas" || verb == "delete-tree";
}

}  // namespace kvship::kvsim
