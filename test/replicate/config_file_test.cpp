// Config file decoding: every key, JSON and HCL forms, deprecated keys, errors (compat.md §2).
#include <replicate/config_file.hpp>

#include <catch2/catch.hpp>

#include <functional>
#include <string>
#include <vector>

using namespace kvship::replicate;
using namespace std::chrono_literals;

namespace {

parsed_config ok(std::string_view text)
{
    auto r = parse_config_text(text);
    INFO(text);
    if (!r)
        FAIL("unexpected error: " << r.error().message);
    return std::move(r).value();
}

std::string err(std::string_view text)
{
    auto r = parse_config_text(text);
    INFO(text);
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().code == exit_code::config);
    return r.error().message;
}

}  // namespace

TEST_CASE("every config key, in JSON and in HCL", "[replicate][config_file]")
{
    struct row
    {
        std::string json;
        std::string hcl;
        std::function<bool(const config_layer&)> check;
    };

    std::vector<row> const rows = {
        {R"({"consul": {"address": "a:1"}})",
         R"(consul { address = "a:1" })",
         [](auto& l) { return l.consul.address == "a:1"; }},
        {R"({"consul": {"token": "t"}})",
         R"(consul { token = "t" })",
         [](auto& l) { return l.consul.token == "t"; }},
        {R"({"consul": {"auth": {"enabled": true, "username": "u", "password": "p"}}})",
         "consul {\n auth {\n enabled = true\n username = \"u\"\n password = \"p\"\n }\n}",
         [](auto& l) {
             return l.consul.auth.enabled == true && l.consul.auth.username == "u" &&
                    l.consul.auth.password == "p";
         }},
        {R"({"consul": {"retry": {"enabled": false, "attempts": 3, "backoff": "1s", "max_backoff": "10s"}}})",
         R"(consul { retry { enabled = false, attempts = 3, backoff = "1s", max_backoff = "10s" } })",
         [](auto& l) {
             return l.consul.retry.enabled == false && l.consul.retry.attempts == 3 &&
                    l.consul.retry.backoff == nanos(1s) && l.consul.retry.max_backoff == nanos(10s);
         }},
        {R"({"consul": {"ssl": {"enabled": true, "verify": false, "cert": "c", "key": "k", "ca_cert": "ca", "ca_path": "cp", "server_name": "sn"}}})",
         "consul {\n ssl {\n enabled = true\n verify = false\n cert = \"c\"\n key = \"k\"\n ca_cert = "
         "\"ca\"\n "
         "ca_path = \"cp\"\n server_name = \"sn\"\n }\n}",
         [](auto& l) {
             auto const& s = l.consul.ssl;
             return s.enabled == true && s.verify == false && s.cert == "c" && s.key == "k" &&
                    s.ca_cert == "ca" && s.ca_path == "cp" && s.server_name == "sn";
         }},
        {R"({"consul": {"transport": {"dial_keep_alive": "1s", "dial_timeout": "2s", "disable_keep_alives": true, "idle_conn_timeout": "3s", "max_idle_conns": 4, "max_idle_conns_per_host": 5, "tls_handshake_timeout": "6s"}}})",
         "consul { transport {\n dial_keep_alive = \"1s\"\n dial_timeout = \"2s\"\n disable_keep_alives = "
         "true\n "
         "idle_conn_timeout = \"3s\"\n max_idle_conns = 4\n max_idle_conns_per_host = 5\n "
         "tls_handshake_timeout = "
         "\"6s\"\n} }",
         [](auto& l) {
             auto const& t = l.consul.transport;
             return t.dial_keep_alive == nanos(1s) && t.dial_timeout == nanos(2s) &&
                    t.disable_keep_alives == true && t.idle_conn_timeout == nanos(3s) &&
                    t.max_idle_conns == 4 && t.max_idle_conns_per_host == 5 &&
                    t.tls_handshake_timeout == nanos(6s);
         }},
        {R"({"kill_signal": "SIGTERM", "reload_signal": "sigusr2"})",
         "kill_signal = \"SIGTERM\"\nreload_signal = \"sigusr2\"",
         [](auto& l) { return l.kill_signal == sigterm() && l.reload_signal->name == "SIGUSR2"; }},
        {R"({"kill_signal": "", "reload_signal": "SIGNULL"})",
         "kill_signal = \"\"\nreload_signal = \"SIGNULL\"",
         [](auto& l) { return l.kill_signal->disabled() && l.reload_signal->disabled(); }},
        {R"({"log_level": "debug"})",
         R"(log_level = "debug")",
         [](auto& l) { return l.log_level == "debug"; }},
        {R"({"max_stale": "10s"})",
         R"(max_stale = "10s")",
         [](auto& l) { return l.max_stale == nanos(10s); }},
        {R"({"max_stale": 5})", R"(max_stale = 5)", [](auto& l) { return l.max_stale == nanos(5); }},
        {R"({"pid_file": "/run/p"})",
         R"(pid_file = "/run/p")",
         [](auto& l) { return l.pid_file == "/run/p"; }},
        {R"({"status_dir": "s/d"})", R"(status_dir = "s/d")", [](auto& l) { return l.status_dir == "s/d"; }},
        {R"({"syslog": {"enabled": true, "facility": "LOCAL3"}})",
         R"(syslog { enabled = true facility = "LOCAL3" })",
         [](auto& l) { return l.syslog.enabled == true && l.syslog.facility == "LOCAL3"; }},
        {R"({"wait": {"min": "5s", "max": "10s"}})",
         R"(wait { min = "5s" max = "10s" })",
         [](auto& l) { return l.wait.min == nanos(5s) && l.wait.max == nanos(10s); }},
        {R"({"wait": {"min": "5s"}})",
         R"(wait { min = "5s" })",
         [](auto& l) { return l.wait.min == nanos(5s) && !l.wait.max; }},
        {R"({"wait": "5s:10s"})",
         R"(wait = "5s:10s")",
         [](auto& l) { return l.wait.min == nanos(5s) && l.wait.max == nanos(10s); }},
        {R"({"wait": "5s"})", R"(wait = "5s")", [](auto& l) { return l.wait.max == nanos(20s); }},
        {R"({"wait": {"bool": true}})",
         R"(wait { bool = true })",
         [](auto& l) { return !l.wait.min && !l.wait.max; }},
        // kvship
        {R"({"source_addr": "https://dc1:8501", "source_token": "st"})",
         "source_addr = \"https://dc1:8501\"\nsource_token = \"st\"",
         [](auto& l) { return l.source_addr == "https://dc1:8501" && l.source_token == "st"; }},
        {R"({"metrics_addr": ":9100", "dry_run": true})",
         "metrics_addr = \":9100\"\ndry_run = true",
         [](auto& l) { return l.metrics_addr == ":9100" && l.dry_run == true; }},
        {R"({"max_delete_percent": 30, "max_delete_min_keys": 100, "allow_empty_source": true, "allow_mass_delete": true})",
         "max_delete_percent = 30\nmax_delete_min_keys = 100\nallow_empty_source = true\nallow_mass_delete = "
         "true",
         [](auto& l) {
             auto const& g = l.delete_guard;
             return g.max_delete_percent == 30 && g.min_keys == 100 && g.allow_empty_source == true &&
                    g.allow_mass_delete == true;
         }},
        {R"({"txn_max_ops": 64, "log_format": "json"})",
         "txn_max_ops = 64\nlog_format = \"json\"",
         [](auto& l) { return l.txn_max_ops == 64 && l.log_format == "json"; }},
    };
    for (auto const& r : rows) {
        auto const j = ok(r.json);
        CHECK(r.check(j.layer));
        CHECK(j.warnings.empty());
        auto const h = ok(r.hcl);
        CHECK(r.check(h.layer));
        CHECK(j.layer == h.layer);
    }
}

TEST_CASE("an empty file sets nothing", "[replicate][config_file]")
{
    CHECK(ok("").layer == config_layer{});
    CHECK(ok("  \n# only a comment\n").layer == config_layer{});
    CHECK(ok("{}").layer == config_layer{});
}

TEST_CASE("prefix: block, string, or a list of either - blocks accumulate", "[replicate][config_file]")
{
    using spec = kvship::prefixes::prefix_spec;
    auto const json = ok(R"({
        "prefix": [
            {"source": "global", "datacenter": "nyc1", "destination": "default"},
            {"source": "a@dc1:b"},
            "c@dc2",
            {"source": "d", "dc": "dc3"}
        ]
    })");
    std::vector<spec> const want = {
        {"global", "nyc1", "default"},
        {"a", "dc1", "b"},
        {"c", "dc2", "c"},
        {"d", "dc3", "d"},
    };
    CHECK(json.layer.prefixes == want);

    auto const hcl = ok(R"(
        prefix {
            source = "global"
            datacenter = "nyc1"
            destination = "default"
        }
        prefix { source = "a@dc1:b" }
        prefix = "c@dc2"
        prefix { source = "d" dc = "dc3" }
    )");
    CHECK(hcl.layer.prefixes == want);

    CHECK(ok(R"({"prefix": {"source": "x@dc1"}})").layer.prefixes == std::vector<spec>{{"x", "dc1", "x"}});
    CHECK(ok(R"({"prefix": "x@dc1"})").layer.prefixes == std::vector<spec>{{"x", "dc1", "x"}});
    CHECK(ok(R"(prefix = ["x@dc1", "y@dc1"])").layer.prefixes.size() == 2);
    // `dc` wins over `datacenter`, as consul-replicate looks at it first.
    CHECK(
        ok(R"({"prefix": {"source": "x", "dc": "a", "datacenter": "b"}})").layer.prefixes[0].datacenter == "a"
    );
}

TEST_CASE("prefix errors", "[replicate][config_file]")
{
    // Without `@dc` a prefix parses; without a gate the resolved config refuses it with this text.
    CHECK(
        ok(R"({"prefix": "global"})").layer.prefixes_needing_gate ==
        std::vector<config_error>{file_error(R"(prefix "global": missing datacenter)")}
    );
    CHECK(
        ok(R"({"prefix": {"source": "global"}})").layer.prefixes_needing_gate ==
        std::vector<config_error>{file_error(R"(prefix {source = "global"}: missing datacenter)")}
    );
    CHECK(ok(R"({"prefix": "global@dc1"})").layer.prefixes_needing_gate.empty());
    // consul-replicate rebuilds `source@dc` and parses it: a dc in both places fails.
    CHECK(
        err(R"({"prefix": {"source": "x@dc1", "datacenter": "dc2"}})") ==
        R"(prefix {source = "x@dc1"}: invalid source format: "x@dc1@dc2")"
    );
    CHECK(err(R"({"prefix": {"datacenter": "dc2"}})") == "prefix block has no source");
    CHECK(err(R"({"prefix": {"source": "x@dc1", "foo": 1}})") == "'prefix' has invalid keys: foo");
    CHECK(err(R"({"prefix": 5})") == "'prefix' expected type 'object', got unconvertible type 'int'");
    CHECK(
        err(R"({"prefix": {"source": 5}})") ==
        "'prefix.source' expected type 'string', got unconvertible type 'int'"
    );
}

TEST_CASE("exclude: block, string, or list", "[replicate][config_file]")
{
    auto const l = ok(R"(
        exclude { source = "vault/sys/expire" }
        exclude = "vault/core/lock"
        exclude = ["a", "b"]
    )")
                       .layer;
    CHECK(l.excludes == std::vector<std::string>{"vault/sys/expire", "vault/core/lock", "a", "b"});
    CHECK(ok(R"({"exclude": [{"source": "x"}, "y"]})").layer.excludes == std::vector<std::string>{"x", "y"});
    CHECK(err(R"({"exclude": {}})") == R"(exclude "": missing exclude)");
    CHECK(err(R"({"exclude": " "})") == R"(exclude " ": missing exclude)");
    CHECK(err(R"({"exclude": {"src": "x"}})") == "'exclude' has invalid keys: src");
}

TEST_CASE("single blocks: a repeated block replaces the earlier one entirely", "[replicate][config_file]")
{
    auto const l = ok(R"(
        consul { address = "a:1" }
        consul { token = "t" }
    )")
                       .layer;
    CHECK_FALSE(l.consul.address.has_value());
    CHECK(l.consul.token == "t");
    auto const j = ok(R"({"wait": [{"min": "1s"}, {"max": "9s"}]})").layer;
    CHECK_FALSE(j.wait.min.has_value());
    CHECK(j.wait.max == nanos(9s));
    // A repeated scalar: the last one.
    CHECK(ok("log_level = \"info\"\nlog_level = \"err\"").layer.log_level == "err");
}

TEST_CASE("durations: strings or integer nanoseconds", "[replicate][config_file]")
{
    CHECK(ok(R"({"consul": {"retry": {"backoff": 5}}})").layer.consul.retry.backoff == nanos(5));
    CHECK(ok(R"({"consul": {"retry": {"backoff": 5.0}}})").layer.consul.retry.backoff == nanos(5));
    CHECK(ok(R"({"max_stale": "1m30s"})").layer.max_stale == nanos(90s));
    CHECK(err(R"({"max_stale": "x"})") == R"('max_stale': time: invalid duration "x")");
    CHECK(
        err(R"({"consul": {"retry": {"backoff": "5"}}})") ==
        R"('consul.retry.backoff': time: missing unit in duration "5")"
    );
    CHECK(
        err(R"({"max_stale": true})") == "'max_stale' expected type 'duration', got unconvertible type 'bool'"
    );
    CHECK(
        err(R"({"max_stale": 1.5})") ==
        "'max_stale' expected type 'duration', got unconvertible type 'float64'"
    );
}

TEST_CASE("deprecated forms work and warn", "[replicate][config_file]")
{
    auto const consul_string = ok(R"({"consul": "10.0.0.1:8500"})");
    CHECK(consul_string.layer.consul.address == "10.0.0.1:8500");
    REQUIRE(consul_string.warnings.size() == 1);
    CHECK(consul_string.warnings[0].starts_with("consul now accepts a stanza instead of a string."));

    auto const top = ok(R"(
        consul {
            address = "a:1"
            token = "inner"
            retry { attempts = 3 }
        }
        auth { username = "u" password = "p" }
        ssl { verify = false }
        token = "outer"
        retry = "5s"
        path = "ignored"
    )");
    auto const& c = top.layer.consul;
    CHECK(c.address == "a:1");
    CHECK(c.token == "outer");
    CHECK(c.auth.username == "u");
    CHECK(c.auth.password == "p");
    CHECK(c.ssl.verify == false);
    // `retry = "5s"` replaces consul.retry with a constant backoff.
    CHECK(c.retry.backoff == nanos(5s));
    CHECK(c.retry.max_backoff == nanos(5s));
    CHECK_FALSE(c.retry.attempts.has_value());
    REQUIRE(top.warnings.size() == 5);
    CHECK(top.warnings[0].starts_with("auth is now a child stanza inside consul"));
    CHECK(top.warnings[1].starts_with("path is no longer a key"));
    CHECK(top.warnings[2].starts_with("retry is now a child stanza for consul"));
    CHECK(top.warnings[3].starts_with("ssl is now a child stanza for consul"));
    CHECK(top.warnings[4].starts_with("token is now a child stanza inside consul"));
}

TEST_CASE(
    "keys consul-template HEAD added are accepted and ignored with a warning", "[replicate][config_file]"
)
{
    auto const p = ok(R"({
        "consul": {"namespace": "ns", "token_file": "/t", "ssl": {"ca_cert_bytes": "x"},
                   "transport": {"max_conns_per_host": 3}},
        "syslog": {"name": "x"}
    })");
    CHECK(p.layer == config_layer{});
    CHECK(p.warnings.size() == 5);
    CHECK(p.warnings[0] == "consul.namespace is accepted for compatibility and ignored");
}

TEST_CASE("unknown keys and wrong types are errors naming the key", "[replicate][config_file]")
{
    CHECK(err(R"({"foo": 1})") == "'' has invalid keys: foo");
    CHECK(err(R"({"zeta": 1, "alpha": 2, "log_level": "x"})") == "'' has invalid keys: alpha, zeta");
    CHECK(err(R"(Log_Level = "info")") == "'' has invalid keys: Log_Level");
    CHECK(err(R"({"log-level": "info"})") == "'' has invalid keys: log-level");
    CHECK(err(R"({"consul": {"adress": "x"}})") == "'consul' has invalid keys: adress");
    CHECK(err(R"({"consul": {"ssl": {"x": 1}}})") == "'consul.ssl' has invalid keys: x");
    CHECK(err(R"({"consul": {"auth": {"user": "x"}}})") == "'consul.auth' has invalid keys: user");
    CHECK(err(R"({"consul": {"retry": {"tries": 1}}})") == "'consul.retry' has invalid keys: tries");
    CHECK(err(R"({"consul": {"transport": {"x": 1}}})") == "'consul.transport' has invalid keys: x");
    CHECK(err(R"({"syslog": {"x": 1}})") == "'syslog' has invalid keys: x");
    // consul-template's wait struct is tagged `bool`, so `enabled` is unknown.
    CHECK(err(R"({"wait": {"enabled": true}})") == "'wait' has invalid keys: enabled");
    CHECK(err(R"({"ssl": {"x": 1}})") == "'ssl' has invalid keys: x");
    CHECK(err(R"({"log_level": 5})") == "'log_level' expected type 'string', got unconvertible type 'int'");
    CHECK(err(R"({"dry_run": "true"})") == "'dry_run' expected type 'bool', got unconvertible type 'string'");
    CHECK(
        err(R"({"consul": {"retry": {"attempts": "3"}}})") ==
        "'consul.retry.attempts' expected type 'int', got unconvertible type 'string'"
    );
    CHECK(
        err(R"({"consul": {"retry": {"attempts": 3000000000}}})") ==
        "'consul.retry.attempts' value 3000000000 out of range"
    );
    CHECK(err(R"({"consul": 5})") == "'consul' expected type 'object', got unconvertible type 'int'");
    CHECK(err(R"({"kill_signal": "SIGFOO"})")
              .starts_with(R"('kill_signal': invalid signal "SIGFOO" - valid signals are)"));
    CHECK(err(R"({"wait": "5s:1s"})") == "'wait': wait: min must be less than max");
    CHECK(err(R"({"token": 5})") == "'token' expected type 'string', got unconvertible type 'int'");
    CHECK(err(R"({"retry": "x"})") == R"('retry': time: invalid duration "x")");
    CHECK(
        err("[1]") ==
        "error decoding config: HCL parse error at 1:1: unexpected character '[', expected a key"
    );
}

TEST_CASE("syntax errors say where", "[replicate][config_file]")
{
    CHECK(err(R"({"a": )").starts_with("error decoding config: JSON parse error at offset 6:"));
    CHECK(err("{\"prefix\": \"a@b\",}").starts_with("error decoding config: JSON parse error at offset"));
    CHECK(
        err("consul {\n  address = \"x\"\n") ==
        "error decoding config: HCL parse error at 3:1: expected '}' before the end of the file"
    );
    CHECK(
        err("log_level = info") ==
        "error decoding config: HCL parse error at 1:13: unknown value 'info' (strings must be quoted)"
    );
    CHECK(
        err("log_level = \"info") == "error decoding config: HCL parse error at 1:18: string not terminated"
    );
    CHECK(err("a = [1, 2") == "error decoding config: HCL parse error at 1:10: list not terminated");
    CHECK(err("/* open") == "error decoding config: HCL parse error at 1:1: comment not terminated");
}

TEST_CASE("HCL details: comments, escapes, heredocs, numbers, labelled blocks", "[replicate][config_file]")
{
    auto const l = ok(R"HCL(
# hash comment
// slash comment
/* block
   comment */
consul {
  token = "a\"b\\c\u00e9"  # trailing comment
  retry = {
    attempts = 0x10
    backoff = 1e3
  }
}
pid_file = <<EOF
line one
EOF
status_dir = <<-EOT
    x
    EOT
"log_level" = "info"
max_stale: "3s"
)HCL")
                       .layer;
    CHECK(l.consul.token == "a\"b\\c\xC3\xA9");
    CHECK(l.consul.retry.attempts == 16);
    CHECK(l.consul.retry.backoff == nanos(1000));
    CHECK(l.pid_file == "line one\n");
    CHECK(l.status_dir == "    x\n");
    CHECK(l.log_level == "info");
    CHECK(l.max_stale == nanos(3s));
    // `key "label" {}` reads as a nested key, which the decoder then names.
    CHECK(err(R"(consul "dc1" { address = "x" })") == "'consul' has invalid keys: dc1");
}

TEST_CASE("the gate block, in JSON and in HCL", "[replicate][config_file][gate]")
{
    auto const json = ok(R"({"gate": {"mode": "vault", "vault_service": "v", "vault_tag": "t",
        "vault_addrs": ["https://v1:8200", "https://v2:8200"], "vault_dc_map": {"https://v1:8200": "dc1"},
        "key": "k", "settle": "3s", "interval": 500000000}, "prefix": "vault/"})");
    auto const hcl = ok(R"(
gate {
  mode = "vault"
  vault_service = "v"
  vault_tag = "t"
  vault_addrs = ["https://v1:8200", "https://v2:8200"]
  vault_dc_map = { "https://v1:8200" = "dc1" }
  key = "k"
  settle = "3s"
  interval = "500ms"
}
prefix = "vault/"
)");
    for (auto const* p : {&json, &hcl}) {
        auto const& g = p->layer.gate;
        CHECK(g.mode == "vault");
        CHECK(g.vault_service == "v");
        CHECK(g.vault_tag == "t");
        CHECK(g.vault_addrs == std::vector<std::string>{"https://v1:8200", "https://v2:8200"});
        CHECK(g.vault_dc_map == std::map<std::string, std::string>{{"https://v1:8200", "dc1"}});
        CHECK(g.key == "k");
        CHECK(g.settle == nanos(3s));
        CHECK(g.interval == nanos(500ms));
        CHECK(p->layer.prefixes.size() == 1);
        CHECK(p->layer.prefixes_needing_gate.size() == 1);
    }
    CHECK(ok(R"(gate { mode = "key" })").layer.gate.mode == "key");
    CHECK(
        ok(R"({"gate": {"vault_addrs": "https://v1:8200"}})").layer.gate.vault_addrs ==
        std::vector<std::string>{"https://v1:8200"}
    );
    CHECK(err(R"({"gate": {"mode": "key", "foo": 1}})") == "'gate' has invalid keys: foo");
    CHECK(err(R"({"gate": {"settle": "x"}})") == R"('gate.settle': time: invalid duration "x")");
    CHECK(
        err(R"({"gate": {"vault_addrs": [1]}})") ==
        "'gate.vault_addrs' expected type 'string', got unconvertible type 'int'"
    );
    CHECK(
        err(R"({"gate": {"vault_dc_map": {"https://v1:8200": 1}}})") ==
        "'gate.vault_dc_map.https://v1:8200' expected type 'string', got unconvertible type 'int'"
    );
    CHECK(err(R"({"gate": 5})") == "'gate' expected type 'object', got unconvertible type 'int'");
}

TEST_CASE("deep nesting is an error and no stack overflow", "[replicate][config_file]")
{
    auto const deep = [](std::string_view open, std::string_view close, std::size_t n) {
        std::string s;
        for (std::size_t i = 0; i < n; ++i) s += open;
        for (std::size_t i = 0; i < n; ++i) s += close;
        return s;
    };
    // 100,000 levels: JSON arrays and objects, HCL objects, lists, `=` objects and block labels.
    CHECK(err("{\"a\": " + deep("[", "]", 100000) + "}") ==
          "error decoding config: JSON nested more than 64 levels deep");
    std::string objects;
    for (int i = 0; i < 100000; ++i) objects += "{\"a\":";
    objects += "1";
    objects += std::string(100000, '}');
    CHECK(err(objects) == "error decoding config: JSON nested more than 64 levels deep");
    CHECK(err("a = " + deep("[", "]", 100000)).ends_with("nested more than 64 levels deep"));
    CHECK(err("a = " + deep("{ b = ", "}", 100000)).ends_with("nested more than 64 levels deep"));
    CHECK(err("a " + deep("{ b ", "}", 100000)).ends_with("nested more than 64 levels deep"));
    std::string labels = "a";
    for (int i = 0; i < 100000; ++i) labels += " \"l\"";
    CHECK(err(labels + " { }").ends_with("nested more than 64 levels deep"));
    // Unterminated deep input fails on the depth, before the end of the file is looked for.
    CHECK(err("a = " + std::string(100000, '[')).find("64 levels") != std::string::npos);
    CHECK(err("{\"a\": " + std::string(100000, '[')).find("JSON parse error") != std::string::npos);
    // At the bound, nesting is fine (the decoder then judges the keys).
    CHECK(err("a = " + deep("[", "]", 60)).find("nested") == std::string::npos);
}

// Found by test/fuzz (kvsim_bodies, the same RapidJSON flag): RapidJSON 1.1's full-precision number
// path read `0e41` as -1.9e230 (and called __builtin_clzll(0)); Go's decoder reads 0.
TEST_CASE("JSON numbers with a zero mantissa and a large exponent are zero", "[replicate][config_file][fuzz]")
{
    CHECK(ok(R"({"txn_max_ops": 0e41})").layer.txn_max_ops == 0);
    CHECK(ok(R"({"txn_max_ops": 0.0e30})").layer.txn_max_ops == 0);
    CHECK(ok(R"({"txn_max_ops": 6.4e1})").layer.txn_max_ops == 64);
}
