#include "api/codec.hpp"

#include "api/json_detail.hpp"
#include "api/url.hpp"
#include "store/duration.hpp"

#include <gotext/base64.hpp>
#include <gotext/go_string.hpp>

#include <fmt/format.h>
#include <rapidjson/document.h>
#include <rapidjson/error/error.h>
#include <rapidjson/prettywriter.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <charconv>
#include <cmath>
#include <functional>

namespace kvship::kvsim::api {

namespace {

using namespace json_detail;

template <class W>
void put_entry(W& w, kv_entry const& e)
{
    w.StartObject();
    put_key(w, "LockIndex");
    w.Uint64(e.lock_index);
    put_key(w, "Key");
    put_string(w, e.key);
    put_key(w, "Flags");
    w.Uint64(e.flags);
    put_key(w, "Value");
    if (e.value && !e.value->empty()) {
        put_base64(w, *e.value);
    } else {
        w.Null();
    }
    if (!e.session.empty()) {
        put_key(w, "Session");
        put_string(w, e.session);
    }
    put_key(w, "CreateIndex");
    w.Uint64(e.create_index);
    put_key(w, "ModifyIndex");
    w.Uint64(e.modify_index);
    w.EndObject();
}

template <class W>
void put_strings_or_null(W& w, std::vector<std::string> const& v)
{
    if (v.empty()) {
        w.Null();
        return;
    }
    w.StartArray();
    for (auto const& s : v) {
        put_string(w, s);
    }
    w.EndArray();
}

template <class W>
void put_session(W& w, session const& s)
{
    w.StartObject();
    put_key(w, "ID");
    put_string(w, s.id);
    put_key(w, "Name");
    put_string(w, s.name);
    put_key(w, "Node");
    put_string(w, s.node);
    put_key(w, "LockDelay");
    w.Int64(s.lock_delay.count());
    put_key(w, "Behavior");
    w.String(s.behavior == session_behavior::del ? "delete" : "release");
    put_key(w, "TTL");
    put_string(w, s.ttl);
    put_key(w, "NodeChecks");
    put_strings_or_null(w, s.node_checks);
    put_key(w, "ServiceChecks");
    if (s.service_checks.empty()) {
        w.Null();
    } else {
        w.StartArray();
        for (auto const& id : s.service_checks) {
            w.StartObject();
            put_key(w, "ID");
            put_string(w, id);
            put_key(w, "Namespace");
            w.String("");
            w.EndObject();
        }
        w.EndArray();
    }
    put_key(w, "CreateIndex");
    w.Uint64(s.create_index);
    put_key(w, "ModifyIndex");
    w.Uint64(s.modify_index);
    w.EndObject();
}

template <class W>
void put_traffic(W& w, traffic const& t)
{
    w.StartObject();
    put_key(w, "requests");
    w.Uint64(t.requests);
    put_key(w, "bytes_in");
    w.Uint64(t.bytes_in);
    put_key(w, "bytes_out");
    w.Uint64(t.bytes_out);
    w.EndObject();
}

template <class W>
void put_traffic_map(W& w, std::map<std::string, traffic, std::less<>> const& m)
{
    w.StartObject();
    for (auto const& [name, t] : m) {
        put_key(w, name);
        put_traffic(w, t);
    }
    w.EndObject();
}

std::optional<txn_kv_op> read_kv_op(rj::Value const& v, field_reader& fr, bool& unknown_field)
{
    if (v.IsNull()) {
        return std::nullopt;
    }
    if (!v.IsObject()) {
        fr.fail(type_error(v, "TxnOp.KV", "api.KVTxnOp"));
        return std::nullopt;
    }
    txn_kv_op op;
    for (auto const& m : v.GetObject()) {
        auto const name = name_of(m.name);
        auto const& val = m.value;
        if (iequals(name, "Verb")) {
            fr.read_string(val, op.verb, "TxnOp.KV.Verb");
        } else if (iequals(name, "Key")) {
            fr.read_string(val, op.key, "TxnOp.KV.Key");
        } else if (iequals(name, "Value")) {
            if (val.IsNull()) {
                op.value = std::nullopt;
            } else if (!val.IsString()) {
                fr.fail(type_error(val, "TxnOp.KV.Value", "[]uint8"));
            } else {
                auto decoded = gotext::base64_decode(string_of(val));
                if (!decoded) {
                    fr.fail(base64_error(string_of(val)));
                } else {
                    op.value = std::move(*decoded);
                }
            }
        } else if (iequals(name, "Flags")) {
            fr.read_uint64(val, op.flags, "TxnOp.KV.Flags");
        } else if (iequals(name, "Index")) {
            fr.read_uint64(val, op.index, "TxnOp.KV.Index");
        } else if (iequals(name, "Session")) {
            fr.read_string(val, op.session, "TxnOp.KV.Session");
        } else if (iequals(name, "Namespace") || iequals(name, "Partition")) {
            std::string ignored;
            fr.read_string(val, ignored, "TxnOp.KV.Namespace");
        } else {
            fr.fail(fmt::format("json: unknown field {}", go_quote(name)));
            unknown_field = true;
        }
    }
    if (op.value && op.value->empty()) {
        op.value = std::nullopt;
    }
    return op;
}

}  // namespace

// ---------------------------------------------------------------- output

std::string json_entries(std::span<kv_entry const* const> entries, bool pretty)
{
    if (pretty) {
        return render(true, [&](auto& w) {
            w.StartArray();
            for (auto const* e : entries) {
                put_entry(w, *e);
            }
            w.EndArray();
        });
    }
    // The hot path of big listings (a 100,000-key ?recurse is 24 MB): the same bytes as put_entry with
    // a compact writer, appended straight into one pre-sized string.
    std::size_t size = 2;
    for (auto const* e : entries) {
        size += 110 + e->key.size() + e->session.size() +
                (e->value ? gotext::base64_size(e->value->size()) : 0);
    }
    std::string out;
    out.reserve(size);
    auto number = [&out](std::uint64_t n) {
        char buf[24];
        auto const [end, ec] = std::to_chars(buf, buf + sizeof buf, n);
        (void)ec;
        out.append(buf, end);
    };
    auto string = [&out](std::string_view v) {
        if (needs_escaping(v)) {
            out += go_json_literal(v);
        } else {
            out.push_back('"');
            out += v;
            out.push_back('"');
        }
    };
    out.push_back('[');
    for (std::size_t i = 0; i < entries.size(); ++i) {
        auto const& e = *entries[i];
        out += i == 0 ? "{\"LockIndex\":" : ",{\"LockIndex\":";
        number(e.lock_index);
        out += ",\"Key\":";
        string(e.key);
        out += ",\"Flags\":";
        number(e.flags);
        if (e.value && !e.value->empty()) {
            out += ",\"Value\":\"";
            out += gotext::base64_encode(*e.value);
            out.push_back('"');
        } else {
            out += ",\"Value\":null";
        }
        if (!e.session.empty()) {
            out += ",\"Session\":";
            string(e.session);
        }
        out += ",\"CreateIndex\":";
        number(e.create_index);
        out += ",\"ModifyIndex\":";
        number(e.modify_index);
        out.push_back('}');
    }
    out.push_back(']');
    return out;
}

std::string json_strings(std::vector<std::string> const& values, bool pretty)
{
    return render(pretty, [&](auto& w) {
        w.StartArray();
        for (auto const& v : values) {
            put_string(w, v);
        }
        w.EndArray();
    });
}

std::string json_bool(bool value, bool pretty)
{
    return pretty ? std::string(value ? "true\n" : "false\n") : std::string(value ? "true" : "false");
}

std::string json_string(std::string_view value, bool pretty)
{
    return render(pretty, [&](auto& w) { put_string(w, value); });
}

std::string json_txn(txn_result const& result, bool pretty)
{
    return render(pretty, [&](auto& w) {
        w.StartObject();
        put_key(w, "Results");
        // A successful txn always shows an array, empty when its ops return nothing (deletes, checks, an empty
        // txn): Consul 1.10 answers `"Results":[]` (found by test/real/test_differential.py). A failed one: null.
        if (result.ok) {
            w.StartArray();
            for (auto const& e : result.results) {
                w.StartObject();
                put_key(w, "KV");
                put_entry(w, e);
                w.EndObject();
            }
            w.EndArray();
        } else {
            w.Null();
        }
        put_key(w, "Errors");
        if (result.ok) {
            w.Null();
        } else {
            w.StartArray();
            for (auto const& err : result.errors) {
                w.StartObject();
                put_key(w, "OpIndex");
                w.Uint64(err.op_index);
                put_key(w, "What");
                put_string(w, err.what);
                w.EndObject();
            }
            w.EndArray();
        }
        w.EndObject();
    });
}

std::string json_sessions(std::span<session const* const> sessions, bool pretty)
{
    return render(pretty, [&](auto& w) {
        w.StartArray();
        for (auto const* s : sessions) {
            put_session(w, *s);
        }
        w.EndArray();
    });
}

std::string json_session_id(std::string_view id, bool pretty)
{
    return render(pretty, [&](auto& w) {
        w.StartObject();
        put_key(w, "ID");
        put_string(w, id);
        w.EndObject();
    });
}

std::string json_agent_self(agent_info const& info, bool pretty)
{
    return render(pretty, [&](auto& w) {
        w.StartObject();
        put_key(w, "Config");
        w.StartObject();
        put_key(w, "Datacenter");
        put_string(w, info.datacenter);
        put_key(w, "PrimaryDatacenter");
        put_string(w, info.datacenter);
        put_key(w, "NodeName");
        put_string(w, info.node_name);
        put_key(w, "NodeID");
        put_string(w, info.node_id);
        put_key(w, "Revision");
        put_string(w, info.revision);
        put_key(w, "Server");
        w.Bool(true);
        put_key(w, "Version");
        put_string(w, info.version);
        put_key(w, "BuildDate");
        put_string(w, info.build_date);
        w.EndObject();
        put_key(w, "DebugConfig");
        w.StartObject();
        put_key(w, "Datacenter");
        put_string(w, info.datacenter);
        put_key(w, "NodeName");
        put_string(w, info.node_name);
        put_key(w, "ServerMode");
        w.Bool(true);
        put_key(w, "ACLDefaultPolicy");
        put_string(w, info.acl_default_policy);
        w.EndObject();
        put_key(w, "Coord");
        w.StartObject();
        put_key(w, "Vec");
        w.StartArray();
        for (int i = 0; i < 8; ++i) {
            w.Int(0);
        }
        w.EndArray();
        put_key(w, "Error");
        w.Double(1.5);
        put_key(w, "Adjustment");
        w.Int(0);
        put_key(w, "Height");
        w.Double(1e-05);
        w.EndObject();
        put_key(w, "Member");
        w.StartObject();
        put_key(w, "Name");
        put_string(w, info.node_name);
        put_key(w, "Addr");
        put_string(w, info.address);
        put_key(w, "Port");
        w.Uint(8301);
        put_key(w, "Tags");
        w.StartObject();
        put_key(w, "build");
        put_string(w, fmt::format("{}:{}", info.version, info.revision));
        put_key(w, "dc");
        put_string(w, info.datacenter);
        put_key(w, "id");
        put_string(w, info.node_id);
        put_key(w, "port");
        w.String("8300");
        put_key(w, "role");
        w.String("consul");
        put_key(w, "vsn");
        w.String("2");
        w.EndObject();
        put_key(w, "Status");
        w.Int(1);
        put_key(w, "ProtocolMin");
        w.Int(1);
        put_key(w, "ProtocolMax");
        w.Int(5);
        put_key(w, "ProtocolCur");
        w.Int(2);
        put_key(w, "DelegateMin");
        w.Int(2);
        put_key(w, "DelegateMax");
        w.Int(5);
        put_key(w, "DelegateCur");
        w.Int(4);
        w.EndObject();
        put_key(w, "Stats");
        w.StartObject();
        w.EndObject();
        put_key(w, "Meta");
        w.StartObject();
        w.EndObject();
        w.EndObject();
    });
}

std::string json_policy(acl_policy const& policy, bool pretty)
{
    return render(pretty, [&](auto& w) {
        w.StartObject();
        put_key(w, "ID");
        put_string(w, policy.id);
        put_key(w, "Name");
        put_string(w, policy.name);
        put_key(w, "Description");
        w.String("");
        put_key(w, "Rules");
        put_string(w, policy.rules_text);
        put_key(w, "Datacenters");
        w.Null();
        w.EndObject();
    });
}

std::string json_token(
    acl_token const& token, std::vector<std::pair<std::string, std::string>> const& policies, bool pretty
)
{
    return render(pretty, [&](auto& w) {
        w.StartObject();
        put_key(w, "AccessorID");
        put_string(w, token.accessor_id);
        put_key(w, "SecretID");
        put_string(w, token.secret_id);
        put_key(w, "Description");
        put_string(w, token.description);
        put_key(w, "Policies");
        if (policies.empty()) {
            w.Null();
        } else {
            w.StartArray();
            for (auto const& [id, name] : policies) {
                w.StartObject();
                put_key(w, "ID");
                put_string(w, id);
                put_key(w, "Name");
                put_string(w, name);
                w.EndObject();
            }
            w.EndArray();
        }
        put_key(w, "Local");
        w.Bool(token.local);
        w.EndObject();
    });
}

std::string json_stats(traffic_stats const& stats, sim_gauges const& g, bool pretty)
{
    return render(pretty, [&](auto& w) {
        w.StartObject();
        put_key(w, "datacenter");
        put_string(w, g.datacenter);
        put_key(w, "totals");
        put_traffic(w, stats.totals);
        put_key(w, "by_route");
        put_traffic_map(w, stats.by_route);
        put_key(w, "by_class");
        put_traffic_map(w, stats.by_class);
        put_key(w, "by_status");
        w.StartObject();
        for (auto const& [status, n] : stats.by_status) {
            auto const name = std::to_string(status);
            put_key(w, name);
            w.Uint64(n);
        }
        w.EndObject();
        put_key(w, "store");
        w.StartObject();
        put_key(w, "raft_index");
        w.Uint64(g.raft_index);
        put_key(w, "kvs_max_index");
        w.Uint64(g.kvs_max_index);
        put_key(w, "keys");
        w.Uint64(g.kv_count);
        put_key(w, "tombstones");
        w.Uint64(g.tombstone_count);
        put_key(w, "sessions");
        w.Uint64(g.session_count);
        put_key(w, "commits");
        w.Uint64(g.commits);
        put_key(w, "committed_writes");
        w.Uint64(g.committed_writes);
        w.EndObject();
        put_key(w, "blocking_queries");
        w.Uint64(g.blocking_queries);
        put_key(w, "connections");
        w.Uint64(g.connections);
        put_key(w, "faults");
        w.Uint64(g.faults);
        w.EndObject();
    });
}

// ---------------------------------------------------------------- input

std::variant<txn_body, std::string> parse_txn_body(std::string_view body)
{
    std::string error;
    auto doc = parse_document(body, error);
    if (!doc) {
        return error;
    }
    txn_body out;
    if (doc->IsNull()) {
        return out;
    }
    if (!doc->IsArray()) {
        return type_error(*doc, "", "api.TxnOps");
    }
    field_reader fr;
    for (auto const& elem : doc->GetArray()) {
        ++out.element_count;
        if (elem.IsNull()) {
            continue;
        }
        if (!elem.IsObject()) {
            fr.fail(type_error(elem, "", "api.TxnOp"));
            continue;
        }
        std::optional<txn_kv_op> kv;
        bool other = false;
        bool unknown = false;
        for (auto const& m : elem.GetObject()) {
            auto const name = name_of(m.name);
            if (iequals(name, "KV")) {
                kv = read_kv_op(m.value, fr, unknown);
            } else if (iequals(name, "Node") || iequals(name, "Service") || iequals(name, "Check")) {
                other = other || !m.value.IsNull();
            } else {
                fr.fail(fmt::format("json: unknown field {}", go_quote(name)));
                unknown = true;
            }
        }
        if (unknown) {
            break;
        }
        if (kv) {
            out.ops.emplace_back(std::move(kv));
        } else if (other) {
            out.ops.emplace_back(std::nullopt);
        }
    }
    if (!fr.error.empty()) {
        return fr.error;
    }
    return out;
}

std::variant<session_request, std::string> parse_session_body(std::string_view body)
{
    std::string error;
    auto doc = parse_document(body, error);
    if (!doc) {
        return error;
    }
    session_request req;
    if (doc->IsNull()) {
        return req;
    }
    if (!doc->IsObject()) {
        return type_error(*doc, "", "structs.Session");
    }
    field_reader fr;
    std::optional<std::vector<std::string>> node_checks;
    std::optional<std::vector<std::string>> checks;
    bool node_checks_given = false;
    bool checks_given = false;
    for (auto const& m : doc->GetObject()) {
        auto const name = name_of(m.name);
        auto const& v = m.value;
        auto set_string = [&](std::optional<std::string>& field, std::string_view where) {
            std::string s;
            if (v.IsNull()) {
                return;
            }
            fr.read_string(v, s, where);
            field = std::move(s);
        };
        if (iequals(name, "Name")) {
            set_string(req.name, "Session.Name");
        } else if (iequals(name, "Node")) {
            set_string(req.node, "Session.Node");
        } else if (iequals(name, "Behavior")) {
            set_string(req.behavior, "Session.Behavior");
        } else if (iequals(name, "TTL")) {
            set_string(req.ttl, "Session.TTL");
        } else if (iequals(name, "LockDelay")) {
            nanos d{0};
            if (v.IsString()) {
                auto parsed = parse_go_duration_or_error(string_of(v));
                if (auto const* e = std::get_if<std::string>(&parsed)) {
                    fr.fail(*e);
                    continue;
                }
                d = std::get<nanos>(parsed);
            } else if (v.IsNumber()) {
                double const x = v.GetDouble();
                if (v.IsInt64()) {
                    d = nanos(v.GetInt64());
                } else if (std::isfinite(x) && std::fabs(x) < 9.2e18) {
                    d = nanos(static_cast<std::int64_t>(x));
                }
            }
            if (v.IsNull()) {
                continue;
            }
            if (d < nanos(1000)) {
                d *= 1'000'000'000;
            }
            req.lock_delay = d;
        } else if (iequals(name, "NodeChecks")) {
            node_checks_given = true;
            fr.read_strings(v, node_checks, "Session.NodeChecks");
        } else if (iequals(name, "Checks")) {
            checks_given = true;
            fr.read_strings(v, checks, "Session.Checks");
        } else if (iequals(name, "ServiceChecks")) {
            if (v.IsNull()) {
                continue;
            }
            if (!v.IsArray()) {
                fr.fail(type_error(v, "Session.ServiceChecks", "[]structs.ServiceCheck"));
                continue;
            }
            std::vector<std::string> ids;
            for (auto const& item : v.GetArray()) {
                if (!item.IsObject()) {
                    fr.fail(type_error(item, "Session.ServiceChecks", "structs.ServiceCheck"));
                    continue;
                }
                std::string id;
                for (auto const& f : item.GetObject()) {
                    if (iequals(name_of(f.name), "ID")) {
                        fr.read_string(f.value, id, "ServiceCheck.ID");
                    }
                }
                ids.push_back(std::move(id));
            }
            req.service_checks = std::move(ids);
        }
        // Other fields (ID, Namespace, CreateIndex, ...) are ignored, as Consul's Session decoder does.
    }
    if (!fr.error.empty()) {
        return fr.error;
    }
    // Consul's fixupEmptySessionChecks: an explicit empty Checks removes every check; otherwise the
    // deprecated Checks and NodeChecks fall back to each other around the serfHealth default.
    std::vector<std::string> const serf{"serfHealth"};
    std::vector<std::string> const c = checks_given ? checks.value_or(std::vector<std::string>{}) : serf;
    std::vector<std::string> const n =
        node_checks_given ? node_checks.value_or(std::vector<std::string>{}) : serf;
    if (checks_given || node_checks_given) {
        if (c.empty()) {
            req.node_checks = std::vector<std::string>{};
        } else if (c == serf) {
            req.node_checks = n;
        } else if (n.empty() || n == serf) {
            req.node_checks = c;
        } else {
            req.node_checks = n;
        }
    }
    return req;
}

std::variant<policy_body, std::string> parse_policy_body(std::string_view body)
{
    std::string error;
    auto doc = parse_document(body, error);
    if (!doc) {
        return error;
    }
    if (!doc->IsObject()) {
        return type_error(*doc, "", "structs.ACLPolicy");
    }
    policy_body out;
    field_reader fr;
    for (auto const& m : doc->GetObject()) {
        auto const name = name_of(m.name);
        if (iequals(name, "Name")) {
            fr.read_string(m.value, out.name, "ACLPolicy.Name");
        } else if (iequals(name, "Description")) {
            fr.read_string(m.value, out.description, "ACLPolicy.Description");
        } else if (iequals(name, "Rules")) {
            fr.read_string(m.value, out.rules, "ACLPolicy.Rules");
        }
    }
    if (!fr.error.empty()) {
        return fr.error;
    }
    return out;
}

std::variant<token_body, std::string> parse_token_body(std::string_view body)
{
    std::string error;
    auto doc = parse_document(body, error);
    if (!doc) {
        return error;
    }
    if (!doc->IsObject()) {
        return type_error(*doc, "", "structs.ACLToken");
    }
    token_body out;
    field_reader fr;
    for (auto const& m : doc->GetObject()) {
        auto const name = name_of(m.name);
        auto const& v = m.value;
        if (iequals(name, "AccessorID")) {
            fr.read_string(v, out.accessor_id, "ACLToken.AccessorID");
        } else if (iequals(name, "SecretID")) {
            fr.read_string(v, out.secret_id, "ACLToken.SecretID");
        } else if (iequals(name, "Description")) {
            fr.read_string(v, out.description, "ACLToken.Description");
        } else if (iequals(name, "Local")) {
            fr.read_bool(v, out.local, "ACLToken.Local");
        } else if (iequals(name, "Policies")) {
            if (v.IsNull()) {
                continue;
            }
            if (!v.IsArray()) {
                fr.fail(type_error(v, "ACLToken.Policies", "[]structs.ACLTokenPolicyLink"));
                continue;
            }
            for (auto const& link : v.GetArray()) {
                if (!link.IsObject()) {
                    fr.fail(type_error(link, "ACLToken.Policies", "structs.ACLTokenPolicyLink"));
                    continue;
                }
                std::string id;
                std::string pname;
                for (auto const& f : link.GetObject()) {
                    if (iequals(name_of(f.name), "ID")) {
                        fr.read_string(f.value, id, "ACLTokenPolicyLink.ID");
                    } else if (iequals(name_of(f.name), "Name")) {
                        fr.read_string(f.value, pname, "ACLTokenPolicyLink.Name");
                    }
                }
                out.policy_refs.push_back(id.empty() ? pname : id);
            }
        }
    }
    if (!fr.error.empty()) {
        return fr.error;
    }
    return out;
}

std::variant<fault_rule, std::string> parse_fault_body(std::string_view body)
{
    std::string error;
    auto doc = parse_document(body, error);
    if (!doc) {
        return error;
    }
    if (!doc->IsObject()) {
        return std::string("a fault is a JSON object");
    }
    fault_rule out;
    field_reader fr;
    for (auto const& m : doc->GetObject()) {
        auto const name = name_of(m.name);
        auto const& v = m.value;
        std::uint64_t n = 0;
        if (name == "path_prefix") {
            fr.read_string(v, out.path_prefix, "path_prefix");
        } else if (name == "method") {
            fr.read_string(v, out.method, "method");
        } else if (name == "count") {
            fr.read_uint64(v, n, "count");
            if (!v.IsNull()) {
                out.remaining = n;
            }
        } else if (name == "status") {
            fr.read_uint64(v, n, "status");
            if (n != 0 && (n < 100 || n > 999)) {
                fr.fail(fmt::format("status {} is not an HTTP status", n));
            }
            out.status = static_cast<unsigned>(n);
        } else if (name == "body") {
            fr.read_string(v, out.body, "body");
        } else if (name == "delay_ms") {
            fr.read_uint64(v, n, "delay_ms");
            out.delay =
                std::chrono::milliseconds(static_cast<std::int64_t>(std::min<std::uint64_t>(n, 3'600'000)));
        } else if (name == "drop_after_bytes") {
            fr.read_uint64(v, n, "drop_after_bytes");
            out.drop_after_bytes = static_cast<std::size_t>(n);
        } else {
            fr.fail(fmt::format("unknown field {}", go_quote(name)));
        }
    }
    if (!fr.error.empty()) {
        return fr.error;
    }
    if (out.remaining && *out.remaining == 0) {
        return std::string("count must be at least 1 (leave it out for every matching request)");
    }
    if (out.status == 0 && out.delay.count() == 0 && out.drop_after_bytes == 0) {
        return std::string("a fault needs at least one of status, delay_ms, drop_after_bytes");
    }
    return out;
}

}  // namespace kvship::kvsim::api
