// The service catalog: registrations, check IDs, TTL checks, health filters, indexes, replay and ACL rules.
#include "store_test_support.hpp"

#include <catch2/catch.hpp>

using namespace kvship::kvsim;
using namespace kvship::kvsim::test;

namespace {

check_definition ttl_check(std::chrono::nanoseconds ttl, std::string status = {}, std::string id = {})
{
    check_definition d;
    d.check_id = std::move(id);
    d.status = std::move(status);
    d.ttl = ttl;
    d.type = "ttl";
    return d;
}

service_registration vault(
    std::string id, std::vector<std::string> tags, std::vector<check_definition> checks = {}
)
{
    service_registration r;
    r.id = std::move(id);
    r.name = "vault";
    r.tags = std::move(tags);
    r.port = 8200;
    r.checks = std::move(checks);
    return r;
}

std::vector<std::string> ids_of(std::vector<health_row> const& rows)
{
    std::vector<std::string> out;
    for (auto const& r : rows) {
        out.push_back(r.service->id);
    }
    return out;
}

}  // namespace

TEST_CASE("catalog: a fresh node has serfHealth and the consul service", "[kvsim][catalog]")
{
    store s;
    CHECK(s.agent_services().empty());
    auto const checks = s.all_checks();
    REQUIRE(checks.size() == 1);
    CHECK(checks[0]->check_id == "serfHealth");
    CHECK(checks[0]->status == "passing");
    auto const rows = s.health_service("consul", {}, true);
    REQUIRE(rows.size() == 1);
    CHECK(rows[0].service->port == 8300);
    CHECK(s.service_tags() == std::map<std::string, std::vector<std::string>>{{"consul", {}}});
    CHECK(s.service_index("consul", true) == s.params().initial_index);
    CHECK(s.update_check("serfHealth", "critical", "", t0) == check_update::not_ttl);
    CHECK(s.update_check("nope", "critical", "", t0) == check_update::unknown);
}

TEST_CASE("catalog: register defaults, check IDs and names", "[kvsim][catalog]")
{
    store s;
    recorder rec;
    rec.attach(s);
    s.set("k", val("v"), 0);
    auto const kv_max = s.kvs_max_index();
    auto const raft = s.raft_index();

    service_registration r;
    r.name = "web";
    r.tags = {"a"};
    r.checks = {ttl_check(10s)};
    s.register_service(r, t0);
    CHECK(s.raft_index() == raft + 1);
    CHECK(s.kvs_max_index() == kv_max);  // a catalog write never moves the KV index
    CHECK(s.list_index("") == kv_max);
    auto const* svc = s.find_service("web");
    REQUIRE(svc != nullptr);
    CHECK(svc->name == "web");
    CHECK(svc->create_index == raft + 1);
    auto const* chk = s.find_check("service:web");
    REQUIRE(chk != nullptr);
    CHECK(chk->name == "Service 'web' check");
    CHECK(chk->status == "critical");  // no Status: critical until the first pass
    CHECK(chk->service_tags == std::vector<std::string>{"a"});
    CHECK(s.service_index("web", true) == raft + 1);
    CHECK(rec.count<ev_service_put>() == 1);
    CHECK(rec.count<ev_check_put>() == 1);
    CHECK(rec.count<ev_catalog_index>() == 1);

    // Several checks: service:<id>:<n>, counting from 1; a given CheckID is kept.
    auto v = vault("v1", {"active"}, {ttl_check(10s, "passing"), ttl_check(10s, "", "own"), ttl_check(10s)});
    v.checks[1].name = "Own";
    s.register_service(v, t0);
    CHECK(s.find_check("service:v1:1") != nullptr);
    CHECK(s.find_check("own") != nullptr);
    CHECK(s.find_check("own")->name == "Own");
    CHECK(s.find_check("service:v1:3") != nullptr);
    CHECK(s.find_check("service:v1:1")->status == "passing");
    auto const rows = s.health_service("vault", {}, false);
    REQUIRE(rows.size() == 1);
    std::vector<std::string> check_ids;
    for (auto const* c : rows[0].checks) {
        check_ids.push_back(c->check_id);
    }
    CHECK(check_ids == std::vector<std::string>{"own", "serfHealth", "service:v1:1", "service:v1:3"});
}

TEST_CASE("catalog: re-registration keeps check state and unchanged indexes", "[kvsim][catalog]")
{
    store s;
    s.register_service(vault("v1", {"standby"}, {ttl_check(10s)}), t0);
    REQUIRE(s.update_check("service:v1", "passing", "ok", t0) == check_update::ok);
    auto const idx = s.service_index("vault", true);
    auto const raft = s.raft_index();

    // Identical: one Raft index used, nothing modified, the service index stays.
    s.register_service(vault("v1", {"standby"}, {ttl_check(10s)}), t0 + 1s);
    CHECK(s.raft_index() == raft + 1);
    CHECK(s.service_index("vault", true) == idx);
    CHECK(s.find_check("service:v1")->status == "passing");
    CHECK(s.find_check("service:v1")->output == "ok");

    // New tags: the service and its check (ServiceTags) change; status survives.
    s.register_service(vault("v1", {"active"}, {ttl_check(10s)}), t0 + 2s);
    CHECK(s.service_index("vault", true) == s.raft_index());
    CHECK(s.find_service("v1")->tags == std::vector<std::string>{"active"});
    CHECK(s.find_check("service:v1")->service_tags == std::vector<std::string>{"active"});
    CHECK(s.find_check("service:v1")->status == "passing");

    // Checks left out stay, unless replace_existing_checks.
    s.register_service(vault("v1", {"active"}), t0 + 3s);
    CHECK(s.find_check("service:v1") != nullptr);
    auto r = vault("v1", {"active"});
    r.replace_existing_checks = true;
    s.register_service(r, t0 + 4s);
    CHECK(s.find_check("service:v1") == nullptr);
}

TEST_CASE("catalog: tag and passing filters", "[kvsim][catalog]")
{
    store s;
    s.register_service(vault("v1", {"active", "Primary"}, {ttl_check(10s, "passing")}), t0);
    s.register_service(vault("v2", {"standby"}, {ttl_check(10s, "passing")}), t0);
    s.register_service(vault("v3", {"active"}, {ttl_check(10s, "warning")}), t0);
    s.register_service(vault("v4", {"active"}), t0);  // no check: only serfHealth

    CHECK(ids_of(s.health_service("vault", {}, false)) == std::vector<std::string>{"v1", "v2", "v3", "v4"});
    CHECK(ids_of(s.health_service("vault", {"active"}, false)) == std::vector<std::string>{"v1", "v3", "v4"});
    CHECK(ids_of(s.health_service("vault", {"ACTIVE", "primary"}, false)) == std::vector<std::string>{"v1"});
    CHECK(ids_of(s.health_service("vault", {"active", "standby"}, false)).empty());
    CHECK(ids_of(s.health_service("vault", {"active"}, true)) == std::vector<std::string>{"v1", "v4"});
    CHECK(ids_of(s.health_service("nope", {}, false)).empty());
    CHECK(s.service_tags().at("vault") == std::vector<std::string>{"Primary", "active", "standby"});

    // A failing node check fails every instance.
    check_definition node;
    node.name = "disk";
    node.ttl = 10s;
    node.type = "ttl";
    node.status = "critical";
    auto const before = s.service_index("vault", true);
    REQUIRE_FALSE(s.register_check(node, t0));
    CHECK(s.service_index("vault", true) > before);
    CHECK(s.health_service("vault", {}, true).empty());
    CHECK(s.update_check("disk", "passing", "", t0) == check_update::ok);
    CHECK(ids_of(s.health_service("vault", {}, true)) == std::vector<std::string>{"v1", "v2", "v4"});

    check_definition orphan = ttl_check(10s);
    orphan.name = "x";
    orphan.service_id = "missing";
    CHECK(
        s.register_check(orphan, t0) == std::optional<std::string>(R"(ServiceID "missing" does not exist)")
    );
}

TEST_CASE("catalog: TTL checks expire and status updates", "[kvsim][catalog]")
{
    store s;
    s.register_service(vault("v1", {"active"}, {ttl_check(5s, "passing")}), t0);
    auto next = s.tick(t0 + 1s);
    REQUIRE(next);
    CHECK(*next == t0 + 5s);
    CHECK(s.find_check("service:v1")->status == "passing");

    // A heartbeat with the same status and output is no Raft write; it restarts the timer.
    auto raft = s.raft_index();
    CHECK(s.update_check("service:v1", "passing", "", t0 + 4s) == check_update::ok);
    CHECK(s.raft_index() == raft);
    CHECK(*s.tick(t0 + 6s) == t0 + 9s);
    CHECK(s.find_check("service:v1")->status == "passing");

    // Output only: no Raft write, the output changes.
    CHECK(s.update_check("service:v1", "passing", "fine", t0 + 6s) == check_update::ok);
    CHECK(s.raft_index() == raft);
    CHECK(s.find_check("service:v1")->output == "fine");

    // Missed TTL: critical once, a Raft write, the service index moves, the KV index does not.
    auto const kv_max = s.kvs_max_index();
    s.tick(t0 + 11s);
    auto const* c = s.find_check("service:v1");
    CHECK(c->status == "critical");
    CHECK(c->output == "TTL expired (last output before timeout follows): fine");
    CHECK(s.raft_index() == raft + 1);
    CHECK(c->modify_index == raft + 1);
    CHECK(s.service_index("vault", true) == raft + 1);
    CHECK(s.kvs_max_index() == kv_max);
    CHECK_FALSE(s.tick(t0 + 20s));  // nothing armed any more
    CHECK(s.raft_index() == raft + 1);

    // pass / warn / fail switch the status, each a Raft write.
    raft = s.raft_index();
    CHECK(s.update_check("service:v1", "passing", "", t0 + 21s) == check_update::ok);
    CHECK(s.update_check("service:v1", "warning", "", t0 + 21s) == check_update::ok);
    CHECK(s.update_check("service:v1", "critical", "down", t0 + 21s) == check_update::ok);
    CHECK(s.raft_index() == raft + 3);
    CHECK(s.find_check("service:v1")->output == "down");

    // Without a prior output the expiry says only "TTL expired".
    s.register_service(vault("v2", {}, {ttl_check(1s, "passing")}), t0 + 30s);
    s.tick(t0 + 32s);
    CHECK(s.find_check("service:v2")->output == "TTL expired");

    // Interval checks are not run by the sim and cannot be updated through the TTL API.
    check_definition http;
    http.type = "http";
    http.interval = "10s";
    s.register_service(vault("v3", {}, {http}), t0);
    CHECK(s.find_check("service:v3")->status == "critical");
    CHECK(s.update_check("service:v3", "passing", "", t0) == check_update::not_ttl);
}

TEST_CASE("catalog: deregistration and the extinction index", "[kvsim][catalog]")
{
    store s;
    auto const initial = s.service_index("web", true);
    CHECK(initial == s.params().initial_index);
    service_registration a;
    a.name = "web";
    a.id = "web-1";
    a.checks = {ttl_check(10s)};
    s.register_service(a, t0);
    a.id = "web-2";
    s.register_service(a, t0);
    CHECK_FALSE(s.deregister_service("nope"));
    auto const raft = s.raft_index();
    REQUIRE(s.deregister_service("web-1"));
    CHECK(s.raft_index() == raft + 1);
    CHECK(s.find_check("service:web-1") == nullptr);
    CHECK(s.service_index("web", true) == raft + 1);
    REQUIRE(s.deregister_service("web-2"));
    CHECK(s.service_instances("web", {}).empty());
    CHECK(s.service_index("web", true) == raft + 2);  // the extinction
    CHECK(s.service_index("other", false) == raft + 2);
    CHECK(s.services_index() == raft + 2);
    CHECK(s.service_tags().count("web") == 0);

    CHECK_FALSE(s.deregister_check("nope"));
    check_definition node;
    node.name = "disk";
    node.ttl = 10s;
    REQUIRE_FALSE(s.register_check(node, t0));
    CHECK(s.deregister_check("disk"));
    CHECK(s.find_check("disk") == nullptr);
}

TEST_CASE("catalog: journal replay and snapshots rebuild it", "[kvsim][catalog]")
{
    store s;
    std::vector<std::string> lines;
    s.set_observer([&](store_event const& ev) { lines.push_back(store::encode_event(ev)); });
    auto v = vault("v1", {"active", "with space"}, {ttl_check(10s, "passing")});
    v.meta = {{"version", "1.15"}};
    v.address = "10.0.0.1";
    s.register_service(v, t0);
    s.register_service(vault("v2", {"standby"}, {ttl_check(10s)}), t0);
    s.update_check("service:v1", "passing", "line\nbreak", t0);
    s.register_service(vault("gone", {}), t0);
    s.deregister_service("gone");

    auto same = [&](store const& b) {
        CHECK(b.raft_index() == s.raft_index());
        CHECK(b.service_index("vault", true) == s.service_index("vault", true));
        CHECK(b.service_index("gone", true) == s.service_index("gone", true));
        CHECK(b.services_index() == s.services_index());
        REQUIRE(b.agent_services().size() == 2);
        CHECK(*b.find_service("v1") == *s.find_service("v1"));
        CHECK(*b.find_check("service:v1") == *s.find_check("service:v1"));
        CHECK(*b.find_check("service:v2") == *s.find_check("service:v2"));
        CHECK(b.find_service("gone") == nullptr);
    };

    store replayed;
    for (auto const& line : lines) {
        auto ev = store::decode_event(line);
        REQUIRE(ev);
        replayed.apply_event(*ev);
    }
    same(replayed);
    // A replayed TTL check starts its timer again at the next tick.
    CHECK(replayed.tick(t0 + 100s) == t0 + 110s);
    CHECK(replayed.find_check("service:v1")->status == "passing");

    store restored;
    REQUIRE_FALSE(restored.restore_snapshot(s.encode_snapshot()));
    same(restored);
}

TEST_CASE("catalog: service ACL rules", "[kvsim][catalog][acl]")
{
    auto parsed = parse_acl_rules(R"(
        service "vault" { policy = "read" }
        service_prefix "web" { policy = "write" }
        service_prefix "" { policy = "deny" }
        key_prefix "" { policy = "write" }
    )");
    REQUIRE(std::holds_alternative<std::vector<acl_rule>>(parsed));
    authorizer a;
    a.enabled = true;
    a.default_allow = true;
    a.rules = std::get<std::vector<acl_rule>>(parsed);
    CHECK(a.can_read_service("vault"));
    CHECK_FALSE(a.can_write_service("vault"));
    CHECK(a.can_write_service("web-frontend"));
    CHECK_FALSE(a.can_read_service("db"));
    CHECK(a.can_write("any/key"));  // key rules are apart from service rules
    CHECK(a.can_write_prefix("any/"));

    store s(store_params{.acl = {.enabled = true, .default_allow = false, .master_token = "root"}});
    auto pol = s.put_policy("p", R"({"service": {"vault": {"policy": "write"}}})");
    REQUIRE(std::holds_alternative<acl_policy>(pol));
    // A policy's service rules survive the journal line format.
    auto const line = store::encode_event(ev_acl_policy_put{std::get<acl_policy>(pol)});
    auto ev = store::decode_event(line);
    REQUIRE(ev);
    auto const& back = std::get<ev_acl_policy_put>(*ev).p;
    REQUIRE(back.key_rules.size() == 1);
    CHECK(back.key_rules[0].resource == acl_resource::service);
    CHECK_FALSE(back.key_rules[0].is_prefix);
}
