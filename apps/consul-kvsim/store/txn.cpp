// Transactions (consul-api.md §7): pre-checks, one index, all errors collected, atomic rollback.
#include "store/detail.hpp"
#include "store/store.hpp"

#include <fmt/format.h>

#include <algorithm>

namespace kvship::kvsim {

namespace {

// The result copy of an entry, without its value (Consul blanks Value except for the get verbs).
kv_entry without_value(kv_entry const& e)
{
    return kv_entry{
        .key = e.key,
        .value = std::nullopt,
        .flags = e.flags,
        .lock_index = e.lock_index,
        .create_index = e.create_index,
        .modify_index = e.modify_index,
        .session = e.session};
}

kv_entry request_entry(txn_kv_op const& op)
{
    return detail::make_entry(op.key, op.value, op.flags, op.session);
}

}  // namespace

txn_result store::txn(std::vector<txn_kv_op> const& ops, authorizer const& acl, time_point now)
{
    txn_result r;
    bool const acl_on = acl.enabled && !acl.management;
    r.had_writes =
        std::any_of(ops.begin(), ops.end(), [](auto const& op) { return is_txn_write_verb(op.verb); });

    // The API layer answers these with 413 before calling; refuse them here too, without touching state.
    auto limit = txn_too_many_ops(ops.size(), params_.txn_max_ops);
    if (!limit) {
        limit = txn_value_too_large(ops, params_.kv_max_value_size);
    }
    if (limit) {
        r.errors.push_back({.op_index = 0, .what = std::move(*limit)});
        return r;
    }

    // Pre-checks (endpoint side, before Raft): one error per op at most.
    for (std::size_t i = 0; i < ops.size(); ++i) {
        auto const& op = ops[i];
        if (op.key.empty() && op.verb != "delete-tree") {
            r.errors.push_back({.op_index = i, .what = "Must provide key"});
            continue;
        }
        if (acl_on) {
            std::optional<std::string> denied;
            if (op.verb == "get" || op.verb == "get-tree" || op.verb == "get-or-empty") {
                // filtered on output
            } else if (op.verb == "check-index" || op.verb == "check-session") {
                if (!acl.can_read(op.key)) {
                    denied = permission_denied_text(acl, "key:read", op.key);
                }
            } else if (op.verb == "delete-tree") {
                if (!acl.can_write_prefix(op.key)) {
                    denied = permission_denied_text(acl, "key:write", op.key);
                }
            } else if (!acl.can_write(op.key)) {
                denied = permission_denied_text(acl, "key:write", op.key);
            }
            if (denied) {
                r.errors.push_back({.op_index = i, .what = std::move(*denied)});
                continue;
            }
        }
        if (op.verb == "lock" && lock_delay(op.key, now)) {
            r.errors.push_back(
                {.op_index = i,
                 .what = fmt::format("failed to lock key {} due to lock delay", go_quote(op.key))}
            );
        }
    }
    if (!r.errors.empty()) {
        return r;
    }

    index_t idx = 0;
    if (r.had_writes) {
        idx = ++raft_index_;  // the Raft entry is used even when the txn rolls back
        txn_ = txn_journal{};  // not emplace(): clang 14 sees the nested struct as not default-constructible
        txn_->kvs_table = kvs_table_index_;
        txn_->tombstone_table = tombstone_table_index_;
        txn_->pending_tombs = pending_tombs_.size();
        txn_->undo.reserve(ops.size());
    }
    r.results.reserve(ops.size());
    for (std::size_t i = 0; i < ops.size(); ++i) {
        run_txn_op(ops[i], i, idx, now, r);
    }

    if (!r.errors.empty()) {
        r.results.clear();
        if (r.had_writes) {
            rollback_txn();
            emit_index();
        }
        return r;
    }
    if (r.had_writes) {
        commit_txn();
        emit_index();
        r.index = idx;
    }
    if (acl_on) {
        std::erase_if(r.results, [&](kv_entry const& e) { return !acl.can_read(e.key); });
    }
    r.ok = true;
    return r;
}

void store::run_txn_op(txn_kv_op const& op, std::size_t i, index_t idx, time_point now, txn_result& r)
{
    auto error = [&](std::string what) { r.errors.push_back({.op_index = i, .what = std::move(what)}); };
    std::string_view const verb = op.verb;
    if (verb == "set") {
        r.results.push_back(without_value(kvs_set(request_entry(op), false, idx)));
    } else if (verb == "cas") {
        if (kvs_set_cas(request_entry(op), op.index, idx)) {
            r.results.push_back(without_value(*get(op.key)));
        } else {
            error(fmt::format("failed to set key {}, index is stale", go_quote(op.key)));
        }
    } else if (verb == "lock") {
        auto out = kvs_lock(request_entry(op), idx);
        if (out.error) {
            error(std::move(*out.error));
        } else if (!out.ok) {
            error(fmt::format("failed to lock key {}, lock is already held", go_quote(op.key)));
        } else {
            r.results.push_back(without_value(*get(op.key)));
        }
    } else if (verb == "unlock") {
        auto out = kvs_unlock(request_entry(op), idx);
        if (out.error) {
            error(std::move(*out.error));
        } else if (!out.ok) {
            error(fmt::format(
                "failed to unlock key {}, lock isn't held, or is held by another session", go_quote(op.key)
            ));
        } else {
            r.results.push_back(without_value(*get(op.key)));
        }
    } else if (verb == "get") {
        if (auto const* e = get(op.key)) {
            r.results.push_back(*e);
        } else {
            error(fmt::format("key {} doesn't exist", go_quote(op.key)));
        }
    } else if (verb == "get-or-empty") {
        if (auto const* e = get(op.key)) {
            r.results.push_back(*e);
        } else {
            kv_entry echo = detail::make_entry(op.key, std::nullopt, op.flags, op.session);
            echo.modify_index = op.index;
            r.results.push_back(std::move(echo));
        }
    } else if (verb == "get-tree") {
        for (auto const* e : list(op.key)) {
            r.results.push_back(*e);
        }
    } else if (verb == "check-index") {
        auto const* e = get(op.key);
        if (e == nullptr) {
            error(fmt::format("failed to check index, key {} doesn't exist", go_quote(op.key)));
        } else if (e->modify_index != op.index) {
            error(fmt::format(
                "failed index check for key {}, current modify index {} != {}",
                go_quote(op.key),
                e->modify_index,
                op.index
            ));
        } else {
            r.results.push_back(without_value(*e));
        }
    } else if (verb == "check-session") {
        auto const* e = get(op.key);
        if (e == nullptr) {
            error(fmt::format("failed to check session, key {} doesn't exist", go_quote(op.key)));
        } else if (e->session != op.session) {
            error(fmt::format(
                "failed session check for key {}, current session {} != {}",
                go_quote(op.key),
                go_quote(e->session),
                go_quote(op.session)
            ));
        } else {
            r.results.push_back(without_value(*e));
        }
    } else if (verb == "check-not-exists") {
        if (get(op.key) != nullptr) {
            error(fmt::format("key {} exists", go_quote(op.key)));
        }
    } else if (verb == "delete") {
        kvs_delete(op.key, idx, now);
    } else if (verb == "delete-cas") {
        if (!kvs_delete_cas(op.key, op.index, idx, now)) {
            error(fmt::format("failed to delete key {}, index is stale", go_quote(op.key)));
        }
    } else if (verb == "delete-tree") {
        kvs_delete_tree(op.key, idx, now);
    } else {
        error(fmt::format("unknown KV verb {}", go_quote(op.verb)));
    }
}

void store::rollback_txn()
{
    auto& j = *txn_;
    for (auto it = j.undo.rbegin(); it != j.undo.rend(); ++it) {
        if (it->tomb) {
            if (it->tomb_before) {
                tombstones_.insert_or_assign(it->key, *it->tomb_before);
            } else {
                tombstones_.erase(it->key);
            }
        } else if (it->kv_before) {
            raw_put(std::move(*it->kv_before));
        } else {
            raw_erase(it->key);
        }
    }
    kvs_table_index_ = j.kvs_table;
    tombstone_table_index_ = j.tombstone_table;
    pending_tombs_.resize(std::min(pending_tombs_.size(), j.pending_tombs));
    txn_.reset();
}

// Events in change order, each carrying the key's final state (a key changed twice is sent twice; replay
// ends in the same state).
void store::commit_txn()
{
    txn_journal j = std::move(*txn_);
    txn_.reset();
    if (!observer_) {
        return;
    }
    for (auto const& u : j.undo) {
        if (u.tomb) {
            if (auto t = tombstones_.find(u.key); t != tombstones_.end()) {
                observer_(ev_tombstone{u.key, t->second.index, t->second.created});
            }
        } else if (auto const* e = get(u.key)) {
            observer_(ev_entry_put{*e});
        } else {
            observer_(ev_entry_erase{u.key});
        }
    }
}

}  // namespace kvship::kvsim
