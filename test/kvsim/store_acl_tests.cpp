// ACL rules (HCL and JSON), evaluation, tokens and list filtering (consul-api.md §11).
#include "store_test_support.hpp"

#include <catch2/catch.hpp>

using namespace kvship::kvsim;
using namespace kvship::kvsim::test;

namespace {

std::vector<acl_rule> rules_of(std::string_view text)
{
    auto r = parse_acl_rules(text);
    if (auto const* err = std::get_if<std::string>(&r)) {
        FAIL("parse error: " << *err);
    }
    return std::get<std::vector<acl_rule>>(r);
}

acl_rule rule(std::string key, bool prefix, acl_access a, acl_resource res = acl_resource::key)
{
    acl_rule r;
    r.key = std::move(key);
    r.is_prefix = prefix;
    r.access = a;
    r.resource = res;
    return r;
}

bool same_rules(std::vector<acl_rule> const& a, std::vector<acl_rule> const& b)
{
    if (a.size() != b.size()) {
        return false;
    }
    for (std::size_t i = 0; i < a.size(); ++i) {
        if (a[i].key != b[i].key || a[i].is_prefix != b[i].is_prefix || a[i].access != b[i].access ||
            a[i].resource != b[i].resource) {
            return false;
        }
    }
    return true;
}

authorizer authz(std::vector<acl_rule> rules, bool default_allow = false)
{
    authorizer a;
    a.enabled = true;
    a.default_allow = default_allow;
    a.accessor_id = "acc";
    a.rules = std::move(rules);
    return a;
}

}  // namespace

TEST_CASE("ACL rules parse from HCL", "[kvsim][acl]")
{
    auto const got = rules_of(R"hcl(
# a comment
key_prefix "" {
  policy = "read"
}
key_prefix "foo/" { policy = "write" }   // trailing comment
key "foo/secret" {
  policy = "deny"
}
/* block
   comment */
node_prefix "" { policy = "read" }
session_prefix "" { policy = "write" }
service_prefix "" { policy = "read" intentions = "read" }
agent_prefix "" { policy = "read" }
operator = "read"
keyring = "write"
key "list/" { policy = "list" }
)hcl");
    CHECK(same_rules(
        got,
        {rule("", true, acl_access::read),
         rule("foo/", true, acl_access::write),
         rule("foo/secret", false, acl_access::deny),
         rule("", true, acl_access::read, acl_resource::service),
         rule("list/", false, acl_access::list)}
    ));
    CHECK(rules_of("").empty());
    CHECK(rules_of("   # only a comment\n").empty());
}

TEST_CASE("ACL rules parse from JSON", "[kvsim][acl]")
{
    auto const got = rules_of(R"json({
  "key_prefix": {"foo/": {"policy": "read"}, "": {"policy": "deny"}},
  "key": {"foo/\u0078": {"policy": "write"}},
  "node_prefix": {"": {"policy": "read"}},
  "operator": "read"
})json");
    CHECK(same_rules(
        got,
        {rule("foo/", true, acl_access::read),
         rule("", true, acl_access::deny),
         rule("foo/x", false, acl_access::write)}
    ));
    // HCL's JSON list form
    auto const listed =
        rules_of(R"({"key_prefix": [{"a/": {"policy": "write"}}, {"b/": [{"policy": "list"}]}]})");
    CHECK(same_rules(listed, {rule("a/", true, acl_access::write), rule("b/", true, acl_access::list)}));
}

TEST_CASE("ACL rule parse errors", "[kvsim][acl]")
{
    for (std::string_view bad :
         {R"(key_prefix "a" { policy = "bogus" })",
          R"(key "a" { })",
          R"(key_prefix "a" {)",
          R"(key_prefix "a { policy = "read" })",
          R"({"key": {"a": {"policy": "read"}})",
          R"(key_prefix "a" policy)",
          R"(key_prefix = "x")",
          "@"}) {
        INFO(bad);
        auto r = parse_acl_rules(bad);
        REQUIRE(std::holds_alternative<std::string>(r));
        CHECK_FALSE(std::get<std::string>(r).empty());
    }
    store s;
    auto p = s.put_policy("bad", R"(key_prefix "" { policy = "writ" })");
    REQUIRE(std::holds_alternative<std::string>(p));
    CHECK(std::get<std::string>(p).find("Invalid key_prefix policy") == 0);
}

TEST_CASE("ACL evaluation: exact beats prefix, longest prefix wins, levels", "[kvsim][acl]")
{
    auto const a = authz(
        {rule("", true, acl_access::read),
         rule("foo/", true, acl_access::write),
         rule("foo/bar/", true, acl_access::deny),
         rule("foo/bar/ok", false, acl_access::write),
         rule("foo/secret", false, acl_access::deny),
         rule("lst/", true, acl_access::list)}
    );

    struct row
    {
        std::string key;
        bool read;
        bool list;
        bool write;
    };

    auto const rows = std::vector<row>{
        {"x", true, false, false},
        {"foo/a", true, true, true},
        {"foo/bar/x", false, false, false},
        {"foo/bar/ok", true, true, true},
        {"foo/secret", false, false, false},
        {"foo/secret2", true, true, true},
        {"lst/a", true, true, false},
        {"foo", true, false, false},
    };
    for (auto const& r : rows) {
        INFO(r.key);
        CHECK(a.can_read(r.key) == r.read);
        CHECK(a.can_list(r.key) == r.list);
        CHECK(a.can_write(r.key) == r.write);
    }
    // no rule at all: the default policy
    CHECK(authz({}, true).can_write("any"));
    CHECK_FALSE(authz({}, false).can_read("any"));
    CHECK(authorizer::allow_all().can_write("any"));
    authorizer m = authz({rule("", true, acl_access::deny)});
    m.management = true;
    CHECK(m.can_write("any"));
    CHECK(m.can_write_prefix(""));
}

TEST_CASE("ACL write on a prefix", "[kvsim][acl]")
{
    auto const a = authz(
        {rule("app/", true, acl_access::write),
         rule("app/locked/", true, acl_access::read),
         rule("app/x", false, acl_access::deny),
         rule("free/", true, acl_access::write)}
    );
    CHECK(a.can_write_prefix("free/"));
    CHECK(a.can_write_prefix("free/sub/"));
    CHECK(a.can_write_prefix("app/other/"));
    CHECK_FALSE(a.can_write_prefix("app/"));          // rules inside deny
    CHECK_FALSE(a.can_write_prefix("app/locked/z"));  // parent is read
    CHECK_FALSE(a.can_write_prefix("app/x"));         // exact deny inside
    CHECK_FALSE(a.can_write_prefix("nothing/"));      // default deny
    CHECK_FALSE(a.can_write_prefix(""));
    CHECK(authz({rule("free/", true, acl_access::write)}, true).can_write_prefix(""));
    CHECK_FALSE(authz({rule("ro/", true, acl_access::read)}, true).can_write_prefix(""));
}

TEST_CASE("ACL token resolution", "[kvsim][acl]")
{
    SECTION("ACLs off: any token, allow all")
    {
        store s;
        auto a = s.resolve("whatever");
        REQUIRE(a);
        CHECK_FALSE(a->enabled);
        CHECK(a->can_write("x"));
    }
    store_params p;
    p.acl = acl_config{true, false, "root"};
    store s(p);
    SECTION("master, anonymous, unknown")
    {
        auto m = s.resolve("root");
        REQUIRE(m);
        CHECK(m->management);
        CHECK(m->can_write("x"));
        auto anon = s.resolve("");
        REQUIRE(anon);
        CHECK_FALSE(anon->can_read("x"));
        CHECK(anon->accessor_id == anonymous_accessor_id);
        CHECK_FALSE(s.resolve("nope"));
    }
    SECTION("policies merge: deny > write > list > read")
    {
        auto p1 = std::get<acl_policy>(s.put_policy("p1", R"(key_prefix "a/" { policy = "read" }
key_prefix "b/" { policy = "write" })"));
        auto p2 = std::get<acl_policy>(s.put_policy("p2", R"(key_prefix "a/" { policy = "write" }
key_prefix "b/" { policy = "deny" })"));
        CHECK(s.find_policy("p1") == s.find_policy(p1.id));
        acl_token t;
        t.policy_ids = {p1.id, "p2"};
        t.description = "both";
        auto tok = std::get<acl_token>(s.put_token(t));
        CHECK(tok.accessor_id.size() == 36);
        CHECK(tok.secret_id.size() == 36);
        CHECK(s.find_token(tok.accessor_id) == s.find_token(tok.secret_id));
        auto a = s.resolve(tok.secret_id);
        REQUIRE(a);
        CHECK(a->accessor_id == tok.accessor_id);
        CHECK(a->can_write("a/x"));
        CHECK_FALSE(a->can_read("b/x"));
        CHECK_FALSE(a->can_read("c"));

        // replacing a policy by name keeps its id and changes the token's rights
        auto p1b = std::get<acl_policy>(s.put_policy("p1", R"(key_prefix "c" { policy = "read" })"));
        CHECK(p1b.id == p1.id);
        CHECK(s.resolve(tok.secret_id)->can_read("c"));

        acl_token bad;
        bad.policy_ids = {"no-such-policy"};
        CHECK(std::holds_alternative<std::string>(s.put_token(bad)));
    }
    SECTION("a given SecretID must be a UUID (Consul 1.10's text)")
    {
        acl_token t;
        t.secret_id = "writer-secret";
        auto r = s.put_token(t);
        REQUIRE(std::holds_alternative<std::string>(r));
        CHECK(std::get<std::string>(r) == "Invalid Token: SecretID is not a valid UUID");
        t.secret_id = "11111111-1111-4111-8111-11111111111g";
        CHECK(std::holds_alternative<std::string>(s.put_token(t)));
        t.secret_id = "11111111-1111-4111-8111-1111111111111";
        CHECK(std::holds_alternative<std::string>(s.put_token(t)));
        t.secret_id = "AAAAAAAA-1111-4111-8111-111111111111";
        auto ok = s.put_token(t);
        REQUIRE(std::holds_alternative<acl_token>(ok));
        CHECK(std::get<acl_token>(ok).secret_id == t.secret_id);
        CHECK(s.resolve(t.secret_id));
    }
}

TEST_CASE("keys listing filters by ACL", "[kvsim][acl]")
{
    store s;
    for (auto const* k : {"a/1", "a/2", "b/1", "b/x/2", "c"}) {
        REQUIRE(s.set(k, val("v"), 0).ok);
    }
    auto const a = authz({rule("a/", true, acl_access::read), rule("b/x/", true, acl_access::read)});
    CHECK(s.keys("", "", a) == std::vector<std::string>{"a/1", "a/2", "b/x/2"});
    CHECK(s.keys("", "/", a) == std::vector<std::string>{"a/", "b/"});
    CHECK(s.keys("b/", "/", a) == std::vector<std::string>{"b/x/"});
    CHECK(s.keys("c", "/", a).empty());
}

TEST_CASE("permission denied text", "[kvsim][acl]")
{
    auto a = authz({});
    CHECK(
        permission_denied_text(a, "key:read", "foo") ==
        "Permission denied: token with AccessorID 'acc' lacks permission 'key:read' on \"foo\""
    );
    a.accessor_id.clear();
    CHECK(
        permission_denied_text(a, "key:write", "") ==
        "Permission denied: provided token lacks permission 'key:write'"
    );
}

TEST_CASE("ACL rules nested too deep are an error and no stack overflow", "[kvsim][acl]")
{
    std::string hcl = "key_prefix";
    for (int i = 0; i < 100000; ++i) hcl += " \"a\"";
    hcl += " { policy = \"read\" }";
    std::string json_like = "key = ";
    for (int i = 0; i < 100000; ++i) json_like += "{a = ";
    std::string lists = "key = " + std::string(100000, '[');
    std::string json = "{";
    for (int i = 0; i < 100000; ++i) json += "\"key\": {";
    for (auto const& bad : {hcl, json_like, lists, json}) {
        auto r = parse_acl_rules(bad);
        REQUIRE(std::holds_alternative<std::string>(r));
        CHECK(std::get<std::string>(r).find("nested more than 64 levels deep") != std::string::npos);
    }
}
