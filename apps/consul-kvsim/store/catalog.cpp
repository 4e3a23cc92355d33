// The service catalog of the sim's one node: agent registrations, TTL checks and the catalog's indexes
// (Consul's agent/local state, agent/checks CheckTTL and state/catalog.go, reduced to one node).
#include "store/detail.hpp"
#include "store/store.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <utility>

namespace kvship::kvsim {

namespace {

std::string lower(std::string_view s)
{
    std::string out(s);
    for (char& c : out) {
        c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
    return out;
}

// memdb's id indexes are case-insensitive: results come ordered by the lowercased ID.
template <class T, class Id>
void sort_by_id(std::vector<T const*>& v, Id id)
{
    std::stable_sort(v.begin(), v.end(), [&](T const* a, T const* b) {
        return lower(id(*a)) < lower(id(*b));
    });
}

// Consul's serviceTagFilter: every wanted tag must be among the service's tags, compared case-insensitively.
bool has_tags(catalog_service const& s, std::vector<std::string> const& wanted)
{
    for (auto const& w : wanted) {
        auto const lw = lower(w);
        bool const found =
            std::any_of(s.tags.begin(), s.tags.end(), [&](std::string const& t) { return lower(t) == lw; });
        if (!found) {
            return false;
        }
    }
    return true;
}

// Equal apart from the Raft indexes (ServiceNode.IsSameService / HealthCheck.IsSame).
bool same_service(catalog_service a, catalog_service b)
{
    a.create_index = b.create_index = 0;
    a.modify_index = b.modify_index = 0;
    return a == b;
}

bool same_check(catalog_check a, catalog_check b)
{
    a.create_index = b.create_index = 0;
    a.modify_index = b.modify_index = 0;
    return a == b;
}

}  // namespace

// ---------------------------------------------------------------- primitives

void store::put_service(catalog_service s, catalog_change& ch)
{
    auto it = services_.find(s.id);
    if (it != services_.end()) {
        s.create_index = it->second.create_index;
        s.modify_index = it->second.modify_index;
        if (same_service(it->second, s)) {
            return;
        }
        if (it->second.name != s.name) {
            ch.names.insert(it->second.name);
        }
    } else {
        s.create_index = ch.idx;
    }
    s.modify_index = ch.idx;
    services_table_index_ = ch.idx;
    ch.names.insert(s.name);
    auto const& stored = services_.insert_or_assign(s.id, std::move(s)).first->second;
    emit(ev_service_put{stored});
}

void store::put_check(catalog_check c, catalog_change& ch)
{
    auto it = checks_.find(c.check_id);
    if (it != checks_.end()) {
        c.create_index = it->second.create_index;
        c.modify_index = it->second.modify_index;
        if (same_check(it->second, c)) {
            return;
        }
        if (!it->second.service_name.empty() && it->second.service_name != c.service_name) {
            ch.names.insert(it->second.service_name);
        }
        if (it->second.service_id.empty()) {
            ch.node_checks = true;
        }
    } else {
        c.create_index = ch.idx;
    }
    c.modify_index = ch.idx;
    checks_table_index_ = ch.idx;
    if (c.service_id.empty()) {
        ch.node_checks = true;
    } else {
        ch.names.insert(c.service_name);
    }
    auto const& stored = checks_.insert_or_assign(c.check_id, std::move(c)).first->second;
    emit(ev_check_put{stored});
}

void store::erase_check(std::string const& id_ref, catalog_change& ch)
{
    // Callers may pass the map's own key; it dies with the erase below.
    std::string const id = id_ref;
    auto it = checks_.find(id);
    if (it == checks_.end()) {
        return;
    }
    if (it->second.service_id.empty()) {
        ch.node_checks = true;
    } else {
        ch.names.insert(it->second.service_name);
    }
    checks_.erase(it);
    ttl_timers_.erase(id);
    checks_table_index_ = ch.idx;
    emit(ev_check_erase{id});
}

// Moves the per-service indexes of every touched service (Consul's catalogUpdateServiceIndexes, or the
// extinction index once a service's last instance is gone), then reports the Raft index.
void store::finish_catalog_change(catalog_change& ch)
{
    if (ch.node_checks) {
        for (auto const& [id, s] : services_) {
            ch.names.insert(s.name);
        }
        ch.names.insert(consul_service_.name);
    }
    ev_catalog_index ev;
    for (auto const& name : ch.names) {
        bool const exists = name == consul_service_.name ||
                            std::any_of(services_.begin(), services_.end(), [&](auto const& kv) {
                                return kv.second.name == name;
                            });
        if (exists) {
            service_indexes_.insert_or_assign(name, ch.idx);
            ev.services.emplace_back(name, ch.idx);
        } else if (service_indexes_.erase(name) > 0) {
            extinction_index_ = ch.idx;
            ev.services.emplace_back(name, 0);
        }
    }
    ev.services_table = services_table_index_;
    ev.checks_table = checks_table_index_;
    ev.extinction = extinction_index_;
    emit(ev);
    emit_index();
}

void store::arm_ttl(catalog_check const& c, time_point now)
{
    if (c.ttl.count() <= 0) {
        ttl_timers_.erase(c.check_id);
        return;
    }
    auto& t = ttl_timers_[c.check_id];
    t.deadline = now + c.ttl;
    t.armed = true;
}

// ---------------------------------------------------------------- agent operations

void store::register_service(service_registration reg, time_point now)
{
    if (reg.id.empty()) {
        reg.id = reg.name;
    }
    catalog_change ch;
    ch.idx = ++raft_index_;

    catalog_service s;
    s.id = reg.id;
    s.name = reg.name;
    s.tags = std::move(reg.tags);
    s.address = std::move(reg.address);
    s.port = reg.port;
    s.meta = std::move(reg.meta);
    s.enable_tag_override = reg.enable_tag_override;
    std::vector<std::string> const tags = s.tags;
    put_service(std::move(s), ch);

    // Consul's addServiceInternal: default IDs and names, critical unless Status says otherwise, then the
    // previous status and output of a check with the same ID.
    std::set<std::string, std::less<>> kept;
    std::size_t const n = reg.checks.size();
    for (std::size_t i = 0; i < n; ++i) {
        auto& def = reg.checks[i];
        catalog_check c;
        c.check_id = def.check_id;
        if (c.check_id.empty()) {
            c.check_id = "service:" + reg.id;
            if (n > 1) {
                c.check_id += fmt::format(":{}", i + 1);
            }
        }
        c.name = def.name.empty() ? fmt::format("Service '{}' check", reg.name) : def.name;
        c.status = def.status.empty() ? std::string(health_critical) : def.status;
        c.notes = def.notes;
        c.service_id = reg.id;
        c.service_name = reg.name;
        c.service_tags = tags;
        c.type = def.type;
        c.interval = def.interval;
        c.timeout = def.timeout;
        c.ttl = def.ttl;
        if (auto const* prev = find_check(c.check_id); prev != nullptr && prev != &serf_check_) {
            c.status = prev->status;
            c.output = prev->output;
        }
        kept.insert(c.check_id);
        arm_ttl(c, now);
        put_check(std::move(c), ch);
    }
    // The service's other checks: dropped on replace-existing-checks, else they follow its name and tags.
    std::vector<std::string> others;
    for (auto const& [id, c] : checks_) {
        if (c.service_id == reg.id && kept.find(id) == kept.end()) {
            others.push_back(id);
        }
    }
    for (auto const& id : others) {
        if (reg.replace_existing_checks) {
            erase_check(id, ch);
            continue;
        }
        catalog_check c = checks_.at(id);
        c.service_name = reg.name;
        c.service_tags = tags;
        put_check(std::move(c), ch);
    }
    finish_catalog_change(ch);
}

bool store::deregister_service(std::string_view id)
{
    auto it = services_.find(id);
    if (it == services_.end()) {
        return false;
    }
    catalog_change ch;
    ch.idx = ++raft_index_;
    std::string const sid = it->second.id;
    ch.names.insert(it->second.name);
    services_.erase(it);
    services_table_index_ = ch.idx;
    emit(ev_service_erase{sid});
    std::vector<std::string> ids;
    for (auto const& [cid, c] : checks_) {
        if (c.service_id == sid) {
            ids.push_back(cid);
        }
    }
    for (auto const& cid : ids) {
        erase_check(cid, ch);
    }
    finish_catalog_change(ch);
    return true;
}

std::optional<std::string> store::register_check(check_definition def, time_point now)
{
    catalog_check c;
    if (!def.service_id.empty()) {
        auto const* s = find_service(def.service_id);
        if (s == nullptr) {
            return fmt::format("ServiceID {} does not exist", go_quote(def.service_id));
        }
        c.service_id = s->id;
        c.service_name = s->name;
        c.service_tags = s->tags;
    }
    c.check_id = def.check_id.empty() ? def.name : def.check_id;
    c.name = def.name;
    c.status = def.status.empty() ? std::string(health_critical) : def.status;
    c.notes = def.notes;
    c.type = def.type;
    c.interval = def.interval;
    c.timeout = def.timeout;
    c.ttl = def.ttl;
    if (auto const* prev = find_check(c.check_id); prev != nullptr && prev != &serf_check_) {
        c.status = prev->status;
        c.output = prev->output;
    }
    catalog_change ch;
    ch.idx = ++raft_index_;
    arm_ttl(c, now);
    put_check(std::move(c), ch);
    finish_catalog_change(ch);
    return std::nullopt;
}

bool store::deregister_check(std::string_view id)
{
    auto it = checks_.find(id);
    if (it == checks_.end()) {
        return false;
    }
    catalog_change ch;
    ch.idx = ++raft_index_;
    erase_check(it->first, ch);
    finish_catalog_change(ch);
    return true;
}

check_update store::update_check(
    std::string_view id, std::string_view status, std::string output, time_point now
)
{
    auto it = checks_.find(id);
    if (it == checks_.end()) {
        return id == serf_check_.check_id ? check_update::not_ttl : check_update::unknown;
    }
    if (it->second.ttl.count() <= 0) {
        return check_update::not_ttl;
    }
    // CheckTTL.SetStatus: the timer restarts and remembers the output for a later "TTL expired".
    auto& timer = ttl_timers_[it->first];
    timer.deadline = now + it->second.ttl;
    timer.armed = true;
    timer.last_output = output;
    catalog_check c = it->second;
    if (c.status == status && c.output == output) {
        return check_update::ok;
    }
    if (c.status == status) {
        // Output only: Consul syncs it to the servers later (check_update_interval); no Raft write here.
        it->second.output = std::move(output);
        emit(ev_check_put{it->second});
        return check_update::ok;
    }
    c.status = std::string(status);
    c.output = std::move(output);
    catalog_change ch;
    ch.idx = ++raft_index_;
    put_check(std::move(c), ch);
    finish_catalog_change(ch);
    return check_update::ok;
}

// CheckTTL's timer: a check not updated within its TTL turns critical, once, until the next update.
void store::expire_ttl_checks(time_point now)
{
    std::vector<std::string> due;
    for (auto& [id, t] : ttl_timers_) {
        if (!t.armed) {
            continue;
        }
        if (!t.deadline) {
            // Restored from the journal or a snapshot: the timer starts again, as after an agent restart.
            auto const it = checks_.find(id);
            if (it != checks_.end()) {
                t.deadline = now + it->second.ttl;
            }
            continue;
        }
        if (*t.deadline <= now) {
            due.push_back(id);
        }
    }
    for (auto const& id : due) {
        auto& t = ttl_timers_.at(id);
        t.armed = false;
        std::string output = t.last_output.empty()
                                 ? std::string("TTL expired")
                                 : "TTL expired (last output before timeout follows): " + t.last_output;
        auto it = checks_.find(id);
        if (it == checks_.end()) {
            continue;
        }
        if (it->second.status == health_critical) {
            if (it->second.output != output) {
                it->second.output = std::move(output);
                emit(ev_check_put{it->second});
            }
            continue;
        }
        catalog_check c = it->second;
        c.status = std::string(health_critical);
        c.output = std::move(output);
        catalog_change ch;
        ch.idx = ++raft_index_;
        put_check(std::move(c), ch);
        finish_catalog_change(ch);
    }
}

std::optional<time_point> store::next_ttl_deadline() const
{
    std::optional<time_point> next;
    for (auto const& [id, t] : ttl_timers_) {
        if (t.armed && t.deadline && (!next || *t.deadline < *next)) {
            next = t.deadline;
        }
    }
    return next;
}

// ---------------------------------------------------------------- reads

catalog_service const* store::find_service(std::string_view id) const
{
    auto it = services_.find(id);
    return it == services_.end() ? nullptr : &it->second;
}

catalog_check const* store::find_check(std::string_view id) const
{
    if (id == serf_check_.check_id) {
        return &serf_check_;
    }
    auto it = checks_.find(id);
    return it == checks_.end() ? nullptr : &it->second;
}

std::vector<catalog_service const*> store::agent_services() const
{
    std::vector<catalog_service const*> out;
    for (auto const& [id, s] : services_) {
        out.push_back(&s);
    }
    return out;
}

std::vector<catalog_check const*> store::all_checks() const
{
    std::vector<catalog_check const*> out{&serf_check_};
    for (auto const& [id, c] : checks_) {
        out.push_back(&c);
    }
    std::sort(out.begin(), out.end(), [](auto const* a, auto const* b) { return a->check_id < b->check_id; });
    return out;
}

std::vector<catalog_service const*> store::service_instances(
    std::string_view name, std::vector<std::string> const& tags
) const
{
    std::vector<catalog_service const*> out;
    if (name == consul_service_.name && has_tags(consul_service_, tags)) {
        out.push_back(&consul_service_);
    }
    for (auto const& [id, s] : services_) {
        if (s.name == name && has_tags(s, tags)) {
            out.push_back(&s);
        }
    }
    sort_by_id(out, [](catalog_service const& s) -> std::string const& { return s.id; });
    return out;
}

std::vector<catalog_check const*> store::checks_of(catalog_service const& s) const
{
    std::vector<catalog_check const*> out{&serf_check_};
    for (auto const& [id, c] : checks_) {
        if (c.service_id.empty() || (c.service_id == s.id && &s != &consul_service_)) {
            out.push_back(&c);
        }
    }
    sort_by_id(out, [](catalog_check const& c) -> std::string const& { return c.check_id; });
    return out;
}

std::vector<health_row> store::health_service(
    std::string_view name, std::vector<std::string> const& tags, bool passing_only
) const
{
    std::vector<health_row> out;
    for (auto const* s : service_instances(name, tags)) {
        health_row row{s, checks_of(*s)};
        if (passing_only && std::any_of(row.checks.begin(), row.checks.end(), [](catalog_check const* c) {
                return c->status != health_passing;
            })) {
            continue;
        }
        out.push_back(std::move(row));
    }
    return out;
}

std::map<std::string, std::vector<std::string>> store::service_tags() const
{
    std::map<std::string, std::set<std::string>> unique;
    unique[consul_service_.name];
    for (auto const& [id, s] : services_) {
        auto& tags = unique[s.name];
        tags.insert(s.tags.begin(), s.tags.end());
    }
    std::map<std::string, std::vector<std::string>> out;
    for (auto& [name, tags] : unique) {
        out.emplace(name, std::vector<std::string>(tags.begin(), tags.end()));
    }
    return out;
}

index_t store::service_index(std::string_view name, bool with_checks) const
{
    if (auto it = service_indexes_.find(name); it != service_indexes_.end()) {
        return it->second;
    }
    if (name == consul_service_.name) {
        return consul_service_.modify_index;
    }
    if (extinction_index_ > 0) {
        return extinction_index_;
    }
    index_t idx = services_index();
    if (with_checks) {
        idx = std::max({idx, checks_table_index_, serf_check_.modify_index});
    }
    return idx;
}

index_t store::services_index() const
{
    return std::max({params_.initial_index, services_table_index_});
}

}  // namespace kvship::kvsim
