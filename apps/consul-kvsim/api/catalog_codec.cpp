// JSON of the service catalog endpoints, in the shapes Consul's agent, health and catalog endpoints write
// (structs.Node, structs.NodeService, structs.ServiceNode, structs.HealthCheck, api.AgentService), and the
// decoding of service/check registrations (structs.ServiceDefinition, structs.CheckType, CheckDefinition).
#include "api/codec.hpp"
#include "api/json_detail.hpp"
#include "store/duration.hpp"

#include <fmt/format.h>

#include <cmath>

namespace kvship::kvsim::api {

namespace {

using namespace json_detail;

constexpr std::string_view sim_consul_version = "1.17.0";

template <class W>
void put_strings(W& w, std::vector<std::string> const& v)
{
    w.StartArray();
    for (auto const& s : v) {
        put_string(w, s);
    }
    w.EndArray();
}

template <class W>
void put_meta(W& w, std::map<std::string, std::string> const& m)
{
    w.StartObject();
    for (auto const& [k, v] : m) {
        put_key(w, k);
        put_string(w, v);
    }
    w.EndObject();
}

template <class W>
void put_weights(W& w)
{
    w.StartObject();
    put_key(w, "Passing");
    w.Int(1);
    put_key(w, "Warning");
    w.Int(1);
    w.EndObject();
}

// A plain service's ConnectProxyConfig and ServiceConnect, as Go encodes their zero values.
template <class W>
void put_proxy_connect(W& w, std::string_view proxy_key, std::string_view connect_key)
{
    put_key(w, proxy_key);
    w.StartObject();
    put_key(w, "Mode");
    w.String("");
    put_key(w, "MeshGateway");
    w.StartObject();
    w.EndObject();
    put_key(w, "Expose");
    w.StartObject();
    w.EndObject();
    w.EndObject();
    put_key(w, connect_key);
    w.StartObject();
    w.EndObject();
}

template <class W>
void put_tagged_addresses(W& w, std::string_view address)
{
    w.StartObject();
    for (std::string_view const k : {"lan", "lan_ipv4", "wan", "wan_ipv4"}) {
        put_key(w, k);
        put_string(w, address);
    }
    w.EndObject();
}

template <class W>
void put_node_meta(W& w)
{
    w.StartObject();
    put_key(w, "consul-network-segment");
    w.String("");
    put_key(w, "consul-version");
    put_string(w, sim_consul_version);
    w.EndObject();
}

template <class W>
void put_node(W& w, node_info const& n)
{
    w.StartObject();
    put_key(w, "ID");
    put_string(w, n.id);
    put_key(w, "Node");
    put_string(w, n.name);
    put_key(w, "Address");
    put_string(w, n.address);
    put_key(w, "Datacenter");
    put_string(w, n.datacenter);
    put_key(w, "TaggedAddresses");
    put_tagged_addresses(w, n.address);
    put_key(w, "Meta");
    put_node_meta(w);
    put_key(w, "CreateIndex");
    w.Uint64(n.index);
    put_key(w, "ModifyIndex");
    w.Uint64(n.index);
    w.EndObject();
}

// structs.NodeService (the "Service" of a health row).
template <class W>
void put_node_service(W& w, catalog_service const& s)
{
    w.StartObject();
    put_key(w, "ID");
    put_string(w, s.id);
    put_key(w, "Service");
    put_string(w, s.name);
    put_key(w, "Tags");
    put_strings(w, s.tags);
    put_key(w, "Address");
    put_string(w, s.address);
    put_key(w, "Meta");
    put_meta(w, s.meta);
    put_key(w, "Port");
    w.Int(s.port);
    put_key(w, "Weights");
    put_weights(w);
    put_key(w, "EnableTagOverride");
    w.Bool(s.enable_tag_override);
    put_proxy_connect(w, "Proxy", "Connect");
    put_key(w, "CreateIndex");
    w.Uint64(s.create_index);
    put_key(w, "ModifyIndex");
    w.Uint64(s.modify_index);
    w.EndObject();
}

// structs.HealthCheck; the agent's own copy has zero Raft indexes.
template <class W>
void put_check(W& w, catalog_check const& c, std::string_view node, bool agent_view)
{
    w.StartObject();
    put_key(w, "Node");
    put_string(w, node);
    put_key(w, "CheckID");
    put_string(w, c.check_id);
    put_key(w, "Name");
    put_string(w, c.name);
    put_key(w, "Status");
    put_string(w, c.status);
    put_key(w, "Notes");
    put_string(w, c.notes);
    put_key(w, "Output");
    put_string(w, c.output);
    put_key(w, "ServiceID");
    put_string(w, c.service_id);
    put_key(w, "ServiceName");
    put_string(w, c.service_name);
    put_key(w, "ServiceTags");
    put_strings(w, c.service_tags);
    put_key(w, "Type");
    put_string(w, c.type);
    put_key(w, "Interval");
    put_string(w, c.interval);
    put_key(w, "Timeout");
    put_string(w, c.timeout);
    put_key(w, "ExposedPort");
    w.Int(0);
    put_key(w, "Definition");
    w.StartObject();
    w.EndObject();
    put_key(w, "CreateIndex");
    w.Uint64(agent_view ? 0 : c.create_index);
    put_key(w, "ModifyIndex");
    w.Uint64(agent_view ? 0 : c.modify_index);
    w.EndObject();
}

// ---------------------------------------------------------------- decoding

// time.Duration fields of CheckType: a Go duration string or a number of nanoseconds.
void read_duration(rj::Value const& v, std::chrono::nanoseconds& out, field_reader& fr)
{
    if (v.IsString()) {
        auto parsed = parse_go_duration_or_error(string_of(v));
        if (auto const* e = std::get_if<std::string>(&parsed)) {
            fr.fail(*e);
            return;
        }
        out = std::get<std::chrono::nanoseconds>(parsed);
    } else if (v.IsInt64()) {
        out = std::chrono::nanoseconds(v.GetInt64());
    } else if (v.IsNumber()) {
        // a double outside int64 made static_cast undefined (e.g. 1e300); such a value is left unset,
        // as parse_session_body does with LockDelay
        double const x = v.GetDouble();
        if (std::isfinite(x) && std::fabs(x) < 9.2e18) {
            out = std::chrono::nanoseconds(static_cast<std::int64_t>(x));
        }
    }
}

void read_string_map(
    rj::Value const& v, std::map<std::string, std::string>& out, std::string_view where, field_reader& fr
)
{
    if (v.IsNull()) {
        return;
    }
    if (!v.IsObject()) {
        fr.fail(type_error(v, where, "map[string]string"));
        return;
    }
    for (auto const& m : v.GetObject()) {
        if (!m.value.IsString()) {
            fr.fail(type_error(m.value, where, "string"));
            continue;
        }
        out.insert_or_assign(std::string(name_of(m.name)), std::string(string_of(m.value)));
    }
}

// Fields of a CheckType (and of a CheckDefinition, which adds ID and ServiceID) that the sim keeps, plus
// what decides the check's type and Empty().
struct check_fields
{
    check_definition def;
    bool any = false;  // a field with a non-zero value: CheckType.Empty() is false
    std::chrono::nanoseconds interval{0};
    std::chrono::nanoseconds timeout{0};
    bool script = false;
    std::string http, tcp, udp, grpc, h2ping, os_service, alias_service, alias_node, docker;
};

bool is_zero(rj::Value const& v)
{
    if (v.IsNull()) {
        return true;
    }
    if (v.IsString()) {
        return v.GetStringLength() == 0;
    }
    if (v.IsBool()) {
        return !v.GetBool();
    }
    if (v.IsNumber()) {
        return v.GetDouble() == 0;
    }
    if (v.IsArray()) {
        return v.Empty();
    }
    return v.ObjectEmpty();
}

// One member of a check object; false when the name is not one the sim reads (it is ignored, as Go does).
bool read_check_member(
    std::string_view name, rj::Value const& v, check_fields& f, field_reader& fr, std::string_view type
)
{
    auto where = [&](std::string_view field) { return fmt::format("{}.{}", type, field); };
    auto& d = f.def;
    auto str = [&](std::string& out, std::string_view field) { fr.read_string(v, out, where(field)); };
    if (!is_zero(v)) {
        f.any = true;
    }
    if (iequals(name, "CheckID") || (type == "CheckDefinition" && iequals(name, "ID"))) {
        str(d.check_id, "CheckID");
    } else if (iequals(name, "Name")) {
        str(d.name, "Name");
    } else if (iequals(name, "Status")) {
        str(d.status, "Status");
    } else if (iequals(name, "Notes")) {
        str(d.notes, "Notes");
    } else if (type == "CheckDefinition" && (iequals(name, "ServiceID") || name == "service_id")) {
        str(d.service_id, "ServiceID");
    } else if (iequals(name, "TTL")) {
        read_duration(v, d.ttl, fr);
    } else if (iequals(name, "Interval")) {
        read_duration(v, f.interval, fr);
    } else if (iequals(name, "Timeout")) {
        read_duration(v, f.timeout, fr);
    } else if (iequals(name, "ScriptArgs") || name == "args" || name == "script_args") {
        std::optional<std::vector<std::string>> args;
        fr.read_strings(v, args, where("ScriptArgs"));
        f.script = args && !args->empty();
    } else if (iequals(name, "HTTP")) {
        str(f.http, "HTTP");
    } else if (iequals(name, "TCP")) {
        str(f.tcp, "TCP");
    } else if (iequals(name, "UDP")) {
        str(f.udp, "UDP");
    } else if (iequals(name, "GRPC")) {
        str(f.grpc, "GRPC");
    } else if (iequals(name, "H2PING")) {
        str(f.h2ping, "H2PING");
    } else if (iequals(name, "OSService")) {
        str(f.os_service, "OSService");
    } else if (iequals(name, "AliasService")) {
        str(f.alias_service, "AliasService");
    } else if (iequals(name, "AliasNode")) {
        str(f.alias_node, "AliasNode");
    } else if (iequals(name, "DockerContainerID") || name == "docker_container_id") {
        str(f.docker, "DockerContainerID");
    } else {
        return false;
    }
    return true;
}

// CheckType.Validate (Consul 1.17) and CheckType.Type().
std::optional<std::string> finish_check(check_fields& f)
{
    bool const alias = !f.alias_service.empty() || !f.alias_node.empty();
    bool const interval_check = f.script || !f.http.empty() || !f.tcp.empty() || !f.udp.empty() ||
                                !f.grpc.empty() || !f.h2ping.empty() || !f.os_service.empty();
    auto& d = f.def;
    if (f.interval.count() > 0 && d.ttl.count() > 0) {
        return std::string("Interval and TTL cannot both be specified");
    }
    if (interval_check && f.interval.count() <= 0) {
        return std::string("Interval must be > 0 for Script, HTTP, H2PING, TCP, UDP or OSService checks");
    }
    if (interval_check && alias) {
        return std::string("Interval cannot be set for Alias checks");
    }
    if (alias && d.ttl.count() > 0) {
        return std::string("TTL must be not be set for Alias checks");
    }
    if (!interval_check && !alias && d.ttl.count() <= 0) {
        return std::string("TTL must be > 0 for TTL checks");
    }
    bool const has_interval = f.interval.count() > 0;
    if (!f.grpc.empty() && has_interval) {
        d.type = "grpc";
    } else if (!f.http.empty() && has_interval) {
        d.type = "http";
    } else if (d.ttl.count() > 0) {
        d.type = "ttl";
    } else if (!f.tcp.empty() && has_interval) {
        d.type = "tcp";
    } else if (!f.udp.empty() && has_interval) {
        d.type = "udp";
    } else if (alias) {
        d.type = "alias";
    } else if (f.script && !f.docker.empty() && has_interval) {
        d.type = "docker";
    } else if (f.script && has_interval) {
        d.type = "script";
    } else if (!f.h2ping.empty() && has_interval) {
        d.type = "h2ping";
    } else if (!f.os_service.empty() && has_interval) {
        d.type = "os_service";
    }
    if (has_interval) {
        d.interval = format_go_duration(f.interval);
    }
    if (f.timeout.count() > 0) {
        d.timeout = format_go_duration(f.timeout);
    }
    return std::nullopt;
}

// A CheckType object of a service definition; nullopt when empty (Consul drops those).
std::optional<check_fields> read_check_type(rj::Value const& v, field_reader& fr, std::string_view where)
{
    if (v.IsNull()) {
        return std::nullopt;
    }
    if (!v.IsObject()) {
        fr.fail(type_error(v, where, "structs.CheckType"));
        return std::nullopt;
    }
    check_fields f;
    for (auto const& m : v.GetObject()) {
        read_check_member(name_of(m.name), m.value, f, fr, "CheckType");
    }
    if (!f.any) {
        return std::nullopt;
    }
    return f;
}

}  // namespace

std::string node_uuid(std::string_view name)
{
    std::uint64_t h1 = 1469598103934665603ULL;
    std::uint64_t h2 = 0x9E3779B97F4A7C15ULL;
    for (char const ch : name) {
        h1 = (h1 ^ static_cast<unsigned char>(ch)) * 1099511628211ULL;
        h2 = (h2 ^ static_cast<unsigned char>(ch)) * 0xBF58476D1CE4E5B9ULL;
    }
    return fmt::format(
        "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
        h1 >> 32,
        (h1 >> 16) & 0xFFFF,
        h1 & 0xFFF,
        ((h2 >> 48) & 0x3FFF) | 0x8000,
        h2 & 0xFFFFFFFFFFFFULL
    );
}

std::string json_agent_services(
    std::span<catalog_service const* const> services, std::string_view datacenter, bool pretty
)
{
    return render(pretty, [&](auto& w) {
        w.StartObject();
        for (auto const* s : services) {
            put_key(w, s->id);
            w.StartObject();
            put_key(w, "ID");
            put_string(w, s->id);
            put_key(w, "Service");
            put_string(w, s->name);
            put_key(w, "Tags");
            put_strings(w, s->tags);
            put_key(w, "Meta");
            put_meta(w, s->meta);
            put_key(w, "Port");
            w.Int(s->port);
            put_key(w, "Address");
            put_string(w, s->address);
            put_key(w, "Weights");
            put_weights(w);
            put_key(w, "EnableTagOverride");
            w.Bool(s->enable_tag_override);
            put_key(w, "Datacenter");
            put_string(w, datacenter);
            w.EndObject();
        }
        w.EndObject();
    });
}

std::string json_agent_checks(
    std::span<catalog_check const* const> checks, std::string_view node, bool pretty
)
{
    return render(pretty, [&](auto& w) {
        w.StartObject();
        for (auto const* c : checks) {
            put_key(w, c->check_id);
            put_check(w, *c, node, true);
        }
        w.EndObject();
    });
}

std::string json_health_rows(std::span<health_row const> rows, node_info const& node, bool pretty)
{
    return render(pretty, [&](auto& w) {
        w.StartArray();
        for (auto const& row : rows) {
            w.StartObject();
            put_key(w, "Node");
            put_node(w, node);
            put_key(w, "Service");
            put_node_service(w, *row.service);
            put_key(w, "Checks");
            w.StartArray();
            for (auto const* c : row.checks) {
                put_check(w, *c, node.name, false);
            }
            w.EndArray();
            w.EndObject();
        }
        w.EndArray();
    });
}

std::string json_catalog_service(
    std::span<catalog_service const* const> services, node_info const& node, bool pretty
)
{
    return render(pretty, [&](auto& w) {
        w.StartArray();
        for (auto const* s : services) {
            w.StartObject();
            put_key(w, "ID");
            put_string(w, node.id);
            put_key(w, "Node");
            put_string(w, node.name);
            put_key(w, "Address");
            put_string(w, node.address);
            put_key(w, "Datacenter");
            put_string(w, node.datacenter);
            put_key(w, "TaggedAddresses");
            put_tagged_addresses(w, node.address);
            put_key(w, "NodeMeta");
            put_node_meta(w);
            put_key(w, "ServiceKind");
            w.String("");
            put_key(w, "ServiceID");
            put_string(w, s->id);
            put_key(w, "ServiceName");
            put_string(w, s->name);
            put_key(w, "ServiceTags");
            put_strings(w, s->tags);
            put_key(w, "ServiceAddress");
            put_string(w, s->address);
            put_key(w, "ServiceWeights");
            put_weights(w);
            put_key(w, "ServiceMeta");
            put_meta(w, s->meta);
            put_key(w, "ServicePort");
            w.Int(s->port);
            put_key(w, "ServiceEnableTagOverride");
            w.Bool(s->enable_tag_override);
            put_proxy_connect(w, "ServiceProxy", "ServiceConnect");
            put_key(w, "CreateIndex");
            w.Uint64(s->create_index);
            put_key(w, "ModifyIndex");
            w.Uint64(s->modify_index);
            w.EndObject();
        }
        w.EndArray();
    });
}

std::string json_service_tags(std::map<std::string, std::vector<std::string>> const& services, bool pretty)
{
    return render(pretty, [&](auto& w) {
        w.StartObject();
        for (auto const& [name, tags] : services) {
            put_key(w, name);
            put_strings(w, tags);
        }
        w.EndObject();
    });
}

std::variant<service_body, std::string> parse_service_body(std::string_view body)
{
    std::string error;
    auto doc = parse_document(body, error);
    if (!doc) {
        return error;
    }
    service_body out;
    if (doc->IsNull()) {
        return out;
    }
    if (!doc->IsObject()) {
        return type_error(*doc, "", "structs.ServiceDefinition");
    }
    field_reader fr;
    auto& reg = out.reg;
    std::vector<check_fields> checks;
    std::optional<check_fields> single;
    for (auto const& m : doc->GetObject()) {
        auto const name = name_of(m.name);
        auto const& v = m.value;
        if (iequals(name, "ID")) {
            fr.read_string(v, reg.id, "ServiceDefinition.ID");
        } else if (iequals(name, "Name")) {
            fr.read_string(v, reg.name, "ServiceDefinition.Name");
        } else if (iequals(name, "Tags")) {
            std::optional<std::vector<std::string>> tags;
            fr.read_strings(v, tags, "ServiceDefinition.Tags");
            reg.tags = tags.value_or(std::vector<std::string>{});
        } else if (iequals(name, "Address")) {
            fr.read_string(v, reg.address, "ServiceDefinition.Address");
        } else if (iequals(name, "Port")) {
            if (v.IsNull()) {
                continue;
            }
            if (!v.IsInt()) {
                fr.fail(type_error(v, "ServiceDefinition.Port", "int"));
                continue;
            }
            reg.port = v.GetInt();
        } else if (iequals(name, "Meta")) {
            read_string_map(v, reg.meta, "ServiceDefinition.Meta", fr);
        } else if (iequals(name, "EnableTagOverride") || name == "enable_tag_override") {
            fr.read_bool(v, reg.enable_tag_override, "ServiceDefinition.EnableTagOverride");
        } else if (iequals(name, "Check")) {
            single = read_check_type(v, fr, "ServiceDefinition.Check");
        } else if (iequals(name, "Checks")) {
            if (v.IsNull()) {
                continue;
            }
            if (!v.IsArray()) {
                fr.fail(type_error(v, "ServiceDefinition.Checks", "structs.CheckTypes"));
                continue;
            }
            for (auto const& item : v.GetArray()) {
                if (auto f = read_check_type(item, fr, "ServiceDefinition.Checks")) {
                    checks.push_back(std::move(*f));
                }
            }
        }
        // Kind, TaggedAddresses, Weights, Proxy, Connect, Token, ...: accepted and not kept.
    }
    if (!fr.error.empty()) {
        return fr.error;
    }
    if (single) {
        checks.insert(checks.begin(), std::move(*single));
    }
    for (auto& f : checks) {
        if (auto err = finish_check(f); err && !out.check_error) {
            out.check_error = std::move(err);
        }
        reg.checks.push_back(std::move(f.def));
    }
    return out;
}

std::variant<check_body, std::string> parse_check_body(std::string_view body)
{
    std::string error;
    auto doc = parse_document(body, error);
    if (!doc) {
        return error;
    }
    check_body out;
    if (doc->IsNull()) {
        return out;  // no name: "Missing check name"
    }
    if (!doc->IsObject()) {
        return type_error(*doc, "", "structs.CheckDefinition");
    }
    field_reader fr;
    check_fields f;
    for (auto const& m : doc->GetObject()) {
        read_check_member(name_of(m.name), m.value, f, fr, "CheckDefinition");
    }
    if (!fr.error.empty()) {
        return fr.error;
    }
    out.check_error = finish_check(f);
    out.def = std::move(f.def);
    return out;
}

std::variant<check_update_body, std::string> parse_check_update_body(std::string_view body)
{
    std::string error;
    auto doc = parse_document(body, error);
    if (!doc) {
        return error;
    }
    check_update_body out;
    if (doc->IsNull()) {
        return out;
    }
    if (!doc->IsObject()) {
        return type_error(*doc, "", "agent.checkUpdate");
    }
    field_reader fr;
    for (auto const& m : doc->GetObject()) {
        auto const name = name_of(m.name);
        if (iequals(name, "Status")) {
            fr.read_string(m.value, out.status, "checkUpdate.Status");
        } else if (iequals(name, "Output")) {
            fr.read_string(m.value, out.output, "checkUpdate.Output");
        }
    }
    if (!fr.error.empty()) {
        return fr.error;
    }
    return out;
}

}  // namespace kvship::kvsim::api
