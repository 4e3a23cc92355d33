// Defaults, environment, merge order (defaults < env < files < flags), #85, validation.
#include <replicate/config_file.hpp>
#include <replicate/flags.hpp>

#include <catch2/catch.hpp>

#include <algorithm>
#include <string>
#include <vector>

using namespace kvship::replicate;
using namespace std::chrono_literals;
using args = std::vector<std::string>;

namespace {

command_line cli(const args& a)
{
    auto r = parse_command_line(a);
    if (!r)
        FAIL("flags: " << r.error().message);
    return std::move(r).value();
}

config_layer file(std::string_view text)
{
    auto r = parse_config_text(text);
    if (!r)
        FAIL("file: " << r.error().message);
    return std::move(r).value().layer;
}

config_layer files(std::initializer_list<std::string_view> texts)
{
    config_layer all;
    for (auto t : texts) merge_into(all, file(t));
    return all;
}

config build(const args& a, const config_layer& f = {}, const env_map& env = {})
{
    auto r = build_config(cli(a), f, env);
    if (!r)
        FAIL("build: " << r.error().message);
    return std::move(r).value();
}

config_error build_error(const args& a, const config_layer& f = {}, const env_map& env = {})
{
    auto r = build_config(cli(a), f, env);
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().code == exit_code::config);
    return r.error();
}

}  // namespace

TEST_CASE("defaults are consul-replicate v0.4.0's", "[replicate][build]")
{
    auto const c = build({});
    CHECK(c == config{});
    CHECK(c.consul.address == "127.0.0.1:8500");
    CHECK(c.consul.token.empty());
    CHECK_FALSE(c.consul.auth.enabled);
    CHECK(c.consul.retry.enabled);
    CHECK(c.consul.retry.attempts == 12);
    CHECK(c.consul.retry.backoff == nanos(250ms));
    CHECK(c.consul.retry.max_backoff == nanos(1min));
    CHECK_FALSE(c.consul.ssl.enabled);
    CHECK(c.consul.ssl.verify);
    CHECK(c.consul.transport.dial_keep_alive == nanos(30s));
    CHECK(c.consul.transport.dial_timeout == nanos(30s));
    CHECK(c.consul.transport.tls_handshake_timeout == nanos(10s));
    CHECK(c.consul.transport.max_idle_conns_per_host == 100);
    CHECK(c.kill_signal == sigint());
    CHECK(c.reload_signal == sighup());
    CHECK(c.level == log_level::warn);
    CHECK(c.max_stale == nanos(2s));
    CHECK(c.pid_file.empty());
    CHECK(c.status_dir == "service/consul-replicate/statuses");
    CHECK_FALSE(c.syslog.enabled);
    CHECK(c.syslog.facility == "LOCAL0");
    CHECK_FALSE(c.wait.enabled());
    CHECK(c.prefixes.empty());
    CHECK(c.excludes.empty());
    CHECK_FALSE(c.once);
    CHECK(c.source_addr.empty());
    CHECK(c.source_token.empty());
    CHECK(c.metrics_addr.empty());
    CHECK_FALSE(c.dry_run);
    CHECK(c.delete_guard.max_delete_percent == 50);
    CHECK(c.delete_guard.min_keys == 10);
    CHECK_FALSE(c.delete_guard.allow_empty_source);
    CHECK_FALSE(c.delete_guard.allow_mass_delete);
    CHECK(c.txn_max_ops == 0);
    CHECK(c.format == log_format::text);
}

TEST_CASE("environment defaults apply only where nothing is configured", "[replicate][build][env]")
{
    env_map const env = {
        {"CONSUL_HTTP_ADDR", " env:8500 "},
        {"CONSUL_TOKEN", "tok1"},
        {"CONSUL_HTTP_TOKEN", "tok2"},
        {"CR_LOG", "debug"},
        {"CONSUL_REPLICATE_LOG", "err"},
    };
    auto const c = build({}, {}, env);
    CHECK(c.consul.address == "env:8500");  // trimmed
    CHECK(c.consul.token == "tok1");
    CHECK(c.level == log_level::debug);

    // The second variable of each pair when the first is unset or empty.
    auto const second =
        build({}, {}, {{"CONSUL_TOKEN", ""}, {"CONSUL_HTTP_TOKEN", "tok2"}, {"CONSUL_REPLICATE_LOG", "err"}});
    CHECK(second.consul.token == "tok2");
    CHECK(second.level == log_level::err);

    // A file or a flag beats the environment.
    auto const from_file =
        build({}, file(R"({"consul": {"address": "f:1", "token": "ft"}, "log_level": "info"})"), env);
    CHECK(from_file.consul.address == "f:1");
    CHECK(from_file.consul.token == "ft");
    CHECK(from_file.level == log_level::info);
    auto const from_flags = build({"-consul-addr=c:1", "-consul-token=ct", "-log-level=trace"}, {}, env);
    CHECK(from_flags.consul.address == "c:1");
    CHECK(from_flags.consul.token == "ct");
    CHECK(from_flags.level == log_level::trace);

    // An explicitly empty token stays empty; an empty address means the default.
    CHECK(build({"-consul-token="}, {}, env).consul.token.empty());
    CHECK(build({"-consul-addr="}, {}, env).consul.address == "127.0.0.1:8500");

    CHECK(
        build_error({}, {}, {{"CR_LOG", "verbose"}}).message ==
        R"(invalid log level "VERBOSE", valid log levels are TRACE, DEBUG, INFO, WARN, ERR)"
    );
}

TEST_CASE("merge order: defaults < files in order < flags - lists concatenate", "[replicate][build][merge]")
{
    auto const f = files({
        R"({"max_stale": "5s", "pid_file": "/one", "prefix": "a@dc1:x", "exclude": "a/1"})",
        R"({"max_stale": "6s", "prefix": "b@dc1:y", "exclude": "b/1"})",
    });
    auto const c = build({"-pid-file=/cli", "-prefix=c@dc1:z", "-exclude=c/1"}, f);
    CHECK(c.max_stale == nanos(6s));  // the later file
    CHECK(c.pid_file == "/cli");      // the flag
    REQUIRE(c.prefixes.size() == 3);
    CHECK(c.prefixes[0].source == "a");
    CHECK(c.prefixes[1].source == "b");
    CHECK(c.prefixes[2].source == "c");
    CHECK(c.excludes == std::vector<std::string>{"a/1", "b/1", "c/1"});

    // A later file that does not set a value keeps the earlier one.
    auto const g = files({R"({"log_level": "info"})", R"({"max_stale": "1s"})"});
    CHECK(build({}, g).level == log_level::info);

    // Within a block, only the keys set are laid over.
    auto const h = files({
        R"({"consul": {"retry": {"attempts": 3, "backoff": "1s"}}})",
        R"({"consul": {"retry": {"attempts": 4}}})",
    });
    auto const r = build({"-consul-retry-max-backoff=9s"}, h).consul.retry;
    CHECK(r.attempts == 4);
    CHECK(r.backoff == nanos(1s));
    CHECK(r.max_backoff == nanos(9s));
}

TEST_CASE(
    "#85 fixed: status_dir from a file is honoured unless the flag sets it", "[replicate][build][merge]"
)
{
    auto const f = file(R"({"status_dir": "from/file"})");
    CHECK(build({}, f).status_dir == "from/file");
    CHECK(build({"-status-dir=from/cli"}, f).status_dir == "from/cli");
}

TEST_CASE("data given turns auth, ssl and syslog on unless enabled is set", "[replicate][build]")
{
    CHECK(build({"-consul-auth=u"}).consul.auth.enabled);
    CHECK(build({}, file(R"(consul { auth { password = "p" } })")).consul.auth.enabled);
    CHECK_FALSE(build({}, file(R"(consul { auth { enabled = false username = "u" } })")).consul.auth.enabled);

    for (auto const& a : std::vector<args>{
             {"-consul-ssl-cert=c"},
             {"-consul-ssl-key=k"},
             {"-consul-ssl-ca-cert=ca"},
             {"-consul-ssl-ca-path=cp"},
             {"-consul-ssl-server-name=n"},
             {"-consul-ssl-verify=false"},
             {"-consul-ssl-verify=true"},
         }) {
        INFO(a.front());
        CHECK(build(a).consul.ssl.enabled);
    }
    CHECK_FALSE(build({"-consul-ssl-cert="}).consul.ssl.enabled);
    CHECK_FALSE(build({"-consul-ssl=false", "-consul-ssl-cert=c"}).consul.ssl.enabled);

    CHECK(build({"-syslog-facility=LOCAL1"}).syslog.enabled);
    CHECK_FALSE(build({"-syslog=false", "-syslog-facility=LOCAL1"}).syslog.enabled);
    CHECK(build({"-syslog"}).syslog.facility == "LOCAL0");
}

TEST_CASE("wait: max defaults to 4 x min - quiescence needs both", "[replicate][build]")
{
    auto const w = build({}, file(R"(wait { min = "2s" })")).wait;
    CHECK(w.max == nanos(8s));
    CHECK(w.enabled());
    CHECK(build({"-wait=1s:3s"}).wait.max == nanos(3s));
    // A flag replaces both values.
    CHECK(build({"-wait=1s"}, file(R"(wait { min = "2s" max = "30s" })")).wait.max == nanos(4s));
}

TEST_CASE("once, config paths and deprecated -retry reach the config", "[replicate][build]")
{
    auto const c = build({"-once", "-prefix=a@dc1", "-config=x", "-retry=2s"});
    CHECK(c.once);
    CHECK(c.config_paths == std::vector<std::string>{"x"});
    CHECK(c.consul.retry.backoff == nanos(2s));
    CHECK(c.consul.retry.max_backoff == nanos(2s));
}

TEST_CASE("validation errors name the problem and exit 15", "[replicate][build][validate]")
{
    struct row
    {
        args flags;
        std::string file_text;
        std::string message;
    };

    std::vector<row> const rows = {
        {{"-log-level=verbose"},
         "",
         R"(invalid log level "VERBOSE", valid log levels are TRACE, DEBUG, INFO, WARN, ERR)"},
        {{"-log-format=xml"}, "", R"(invalid log format "xml", valid log formats are text, json)"},
        {{}, R"(wait { min = "5s" max = "1s" })", "wait: min must be less than max"},
        {{}, R"(wait { min = "-5s" })", "wait: cannot be negative"},
        {{"-prefix=a@dc1:/b"},
         "",
         R"(prefix "a@dc1:/b": destination "/b" must not begin with "/" (Consul refuses such keys))"},
        {{"-prefix=a@dc1:x", "-prefix=a@dc2:x"},
         "",
         R"(prefixes "a@dc1:x" and "a@dc2:x" copy the same source into the same destination (they would share one checkpoint))"},
        {{"-prefix=a@dc1:x", "-prefix=b@dc1:x"},
         "",
         R"(prefixes "a@dc1:x" and "b@dc1:x" both replicate into destination "x")"},
        {{"-prefix=app@dc1", "-prefix=app2@dc1"},
         "",
         R"(prefixes "app@dc1:app" and "app2@dc1:app2" overlap: destination "app" is a prefix of "app2", so each pass of the first would delete the second's keys)"},
        {{"-prefix=b@dc1:app/x", "-prefix=a@dc1:app/"},
         "",
         R"(prefixes "a@dc1:app/" and "b@dc1:app/x" overlap: destination "app/" is a prefix of "app/x", so each pass of the first would delete the second's keys)"},
        {{"-prefix=service@dc1"},
         "",
         R"(status_dir "service/consul-replicate/statuses" lies under destination "service" of prefix "service@dc1:service": each pass would delete the checkpoints)"},
        {{"-prefix=a@dc1:st/x", "-status-dir=st/"},
         "",
         R"(destination "st/x" of prefix "a@dc1:st/x" lies under status_dir "st/": replicated keys would mix with the checkpoints)"},
        {{"-status-dir=/"}, "", R"(status_dir "/" is empty)"},
        {{"-status-dir=/abs"}, "", R"(status_dir "/abs" must not begin with "/")"},
        {{"-once"}, "", "-once needs at least one prefix (none given by -prefix or a config file)"},
        {{"-kill-signal=SIGHUP"},
         "",
         "kill_signal and reload_signal are both SIGHUP: one signal cannot both stop and reload"},
        {{"-consul-retry-attempts=-1"}, "", "consul.retry.attempts must not be negative, got -1"},
        {{"-consul-retry-backoff=-1s"}, "", "consul.retry.backoff must not be negative, got -1s"},
        {{"-max-stale=-2s"}, "", "max_stale must not be negative, got -2s"},
        {{"-consul-transport-max-idle-conns-per-host=-1"},
         "",
         "consul.transport.max_idle_conns_per_host must not be negative, got -1"},
        {{}, R"(max_delete_percent = 101)", "max_delete_percent must be between 0 and 100, got 101"},
        {{}, R"(max_delete_min_keys = -1)", "max_delete_min_keys must not be negative, got -1"},
        {{}, R"(txn_max_ops = -5)", "txn_max_ops must not be negative, got -5"},
        {{"-consul-addr=ftp://x"},
         "",
         R"(consul address "ftp://x": unsupported scheme "ftp" (use host:port, http://, https:// or unix://))"},
        {{"-source-addr=tcp://x"},
         "",
         R"(source_addr "tcp://x": unsupported scheme "tcp" (use host:port, http://, https:// or unix://))"},
        {{"-metrics-addr=9100"}, "", R"(metrics_addr "9100": want host:port, e.g. 127.0.0.1:9100 or :9100)"},
        {{"-metrics-addr=:99999"},
         "",
         R"(metrics_addr ":99999": want host:port, e.g. 127.0.0.1:9100 or :9100)"},
        {{"-syslog-facility=LOCAL9"}, "", R"(invalid syslog facility "LOCAL9")"},
    };
    for (auto const& r : rows) {
        INFO(r.message);
        config_layer const f = r.file_text.empty() ? config_layer{} : file(r.file_text);
        CHECK(build_error(r.flags, f).message == r.message);
    }
}

TEST_CASE("accepted edge cases", "[replicate][build][validate]")
{
    // Different destinations that share no string prefix; dests with a query or a colon.
    CHECK(build({"-prefix=a@dc1:x/", "-prefix=b@dc1:y/", "-prefix=c@dc1:z:1"}).prefixes.size() == 3);
    // Same source into two destinations is fine (compat.md §3.8's -once hang is a runtime matter).
    CHECK(build({"-prefix=a@dc1:x", "-prefix=a@dc1:y"}).prefixes.size() == 2);
    CHECK(build({"-once", "-prefix=a@dc1"}).once);
    CHECK(build({"-kill-signal=SIGNULL", "-reload-signal=SIGNULL"}).kill_signal.disabled());
    CHECK(build({"-metrics-addr=127.0.0.1:9100"}).metrics_addr == "127.0.0.1:9100");
    CHECK(build({"-metrics-addr=[::1]:0"}).metrics_addr == "[::1]:0");
    CHECK(build({"-metrics-addr=localhost:9100"}).metrics_addr == "localhost:9100");
    CHECK(build({"-consul-addr=unix:///run/consul.sock"}).consul.address == "unix:///run/consul.sock");
    CHECK(build({"-consul-addr=https://c:8501"}).consul.address == "https://c:8501");
    CHECK(build({"-syslog-facility=local7"}).syslog.enabled);
    CHECK(build({"-status-dir=a/b///"}).status_dir == "a/b///");
    CHECK(build({"-max-delete-percent=0", "-max-delete-min-keys=0"}).delete_guard.max_delete_percent == 0);
    // A nesting is fine when an exclude keeps the outer pair out of the inner part.
    CHECK(build({"-prefix=app@dc1", "-prefix=app2@dc1", "-exclude=app2"}).prefixes.size() == 2);
    CHECK(build({"-prefix=a@dc1:x", "-prefix=b@dc1:x/y", "-exclude=a/y"}).prefixes.size() == 2);
    CHECK(build({"-prefix=service/@dc1", "-exclude=service/consul-replicate/"}).prefixes.size() == 1);
    CHECK(build({"-prefix=s/@dc1:service/", "-exclude=s/consul-replicate/statuses/"}).prefixes.size() == 1);
    // ... but not one that leaves part of it uncovered.
    CHECK(build_error({"-prefix=service/@dc1", "-exclude=service/consul-replicate/statuses/x"})
              .message.starts_with(
                  R"(status_dir "service/consul-replicate/statuses" lies under destination "service/")"
              ));
}

TEST_CASE("lint: warnings that are not errors", "[replicate][build][validate]")
{
    auto has = [](const std::vector<std::string>& v, std::string_view s) {
        return std::find(v.begin(), v.end(), s) != v.end();
    };
    CHECK(has(lint(build({})), "no prefix configured: nothing will be replicated"));
    CHECK(lint(build({"-prefix=a@dc1"})).empty());
    CHECK(has(
        lint(build({"-prefix=vault/@dc1", "-exclude=sys/expire"})),
        R"(exclude "sys/expire" matches no prefix's source (excludes are matched against the full source key))"
    ));
    CHECK(lint(build({"-prefix=vault/@dc1", "-exclude=vault/sys/expire"})).empty());
    CHECK(has(lint(build({"-prefix=a@dc1", "-consul-ssl-verify=false"})), "disabling consul SSL verification")
    );
    CHECK(
        has(lint(build({"-prefix=a@dc1", "-consul-ssl-key=k"})),
            "consul ssl key is set without a certificate and is ignored")
    );
    CHECK(
        has(lint(build({"-prefix=a@dc1"}, file(R"(wait { min = "0s" max = "5s" })"))),
            "wait: min and max must both be non-zero for quiescence; it is off")
    );
    CHECK(
        lint(build({"-prefix=a@dc1", "-dry-run", "-allow-empty-source", "-allow-mass-delete"})).size() == 3
    );
}

TEST_CASE("gate: settings resolve, files below flags", "[replicate][build][gate]")
{
    auto const f = file(R"(gate { mode = "key" key = "ops/primary" settle = "5s" } prefix = "vault/")");
    auto const c = build({"-gate-settle=2s", "-prefix=app/:copy/"}, f);
    CHECK(c.gate.mode == gate_mode::key);
    CHECK(c.gate.key == "ops/primary");
    CHECK(c.gate.settle == nanos(2s));
    CHECK(c.gate.interval == nanos(1s));
    REQUIRE(c.prefixes.size() == 2);
    CHECK_FALSE(c.prefixes[0].datacenter);
    CHECK(c.prefixes[1].destination == "copy/");

    auto const d = build({});
    CHECK_FALSE(d.gate.enabled());
    CHECK(d.gate.vault_service == "vault");
    CHECK(d.gate.vault_tag == "active");
    CHECK(d.gate.key == "service/kvship/primary");
    CHECK(d.gate.settle == nanos(10s));

    // a later layer's address list replaces the earlier one
    auto const v = build(
        {"-gate=vault", "-gate-vault-addr=http://b:1", "-prefix=v/"},
        file(R"(gate { vault_addrs = ["http://a:1"] })")
    );
    CHECK(v.gate.vault_addrs == std::vector<std::string>{"http://b:1"});
    CHECK(
        build({"-gate=vault", "-prefix=v/"}, file(R"(gate { vault_addrs = ["http://a:1"] })"))
            .gate.vault_addrs == std::vector<std::string>{"http://a:1"}
    );
}

TEST_CASE(
    "gate: a prefix without @dc needs a gate, one with @dc is refused with a gate", "[replicate][build][gate]"
)
{
    // consul-replicate's own text and exit code for a flag ...
    auto r = build_config(cli({"-prefix=global"}), {}, {});
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error() == flag_error(R"(invalid value "global" for flag -prefix: missing datacenter)"));
    // ... and for a file
    r = build_config(cli({}), file(R"(prefix = "global")"), {});
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error() == file_error(R"(prefix "global": missing datacenter)"));
    // a gate in a file makes a DC-less flag prefix fine
    CHECK(build({"-prefix=global"}, file(R"(gate { mode = "vault" })")).prefixes.size() == 1);

    CHECK(
        build_error({"-gate=vault", "-prefix=global@dc1"}).message ==
        R"(prefix "global@dc1:global" names the source datacenter "dc1", but with a gate the source is the primary datacenter: leave "@dc1" out)"
    );
    CHECK(
        build_error({}, file(R"(gate { mode = "primary" })")).message ==
        R"(invalid gate mode "primary", valid gate modes are vault, key)"
    );
}

TEST_CASE("gate: validation", "[replicate][build][gate][validate]")
{
    struct row
    {
        args in;
        std::string message;
    };

    for (auto const& [in, message] : std::vector<row>{
             {{"-gate=key", "-prefix=v/", "-source-addr=dc1:8500"},
              "source_addr does not apply with a gate: sources are read through the local agent with "
              "?dc=<primary>"},
             {{"-gate=key", "-prefix=v/", "-once"},
              "-once cannot be combined with a gate (the gate runs until stopped)"},
             {{"-gate=key", "-prefix=v/", "-gate-settle=-1s"}, "gate settle must not be negative, got -1s"},
             {{"-gate=key", "-prefix=v/", "-gate-interval=0s"}, "gate interval must be positive, got 0s"},
             {{"-gate=key", "-prefix=v/", "-gate-key="},
              R"(gate key "" must be a KV key not starting with "/")"},
             {{"-gate=key", "-prefix=v/", "-gate-key=/k"},
              R"(gate key "/k" must be a KV key not starting with "/")"},
             {{"-gate=key", "-prefix=v/", "-gate-vault-addr=http://v:1"},
              "gate vault_addrs and vault_dc_map apply only to the vault mode"},
             {{"-gate=vault", "-prefix=v/", "-gate-vault-service="}, "gate vault_service is empty"},
             {{"-gate=vault", "-prefix=v/", "-gate-vault-addr=v:8200"},
              R"(gate vault address "v:8200": want http://host:port or https://host:port)"},
             {{"-gate=vault", "-prefix=v/", "-gate-vault-dc=http://v:1=dc1"},
              "gate vault_dc_map needs vault_addrs (the map belongs to the Vault way)"},
             {{"-gate=vault", "-prefix=v/", "-gate-vault-addr=http://v:1", "-gate-vault-dc=v:1=dc1"},
              R"(gate vault_dc_map key "v:1": want an http(s):// leader address)"},
             {{"-gate=vault", "-prefix=v/", "-gate-vault-addr=http://v:1", "-gate-vault-dc=http://v:1=dc 1"},
              R"(gate vault_dc_map "http://v:1": "dc 1" is not a datacenter name)"},
         }) {
        CAPTURE(in);
        CHECK(build_error(in).message == message);
    }
    CHECK(build({"-gate=key", "-prefix=v/", "-gate-settle=0s"}).gate.settle == nanos(0));
    CHECK(
        build({"-gate=vault", "-prefix=v/", "-gate-vault-addr=https://v:1", "-gate-vault-dc=https://v:1=dc-1"}
        )
            .gate.vault_dc_map.at("https://v:1") == "dc-1"
    );
}

TEST_CASE("gate: the summary shows the gate, credentials redacted", "[replicate][build][gate]")
{
    auto const text =
        redacted_summary(build({"-gate=vault", "-prefix=v/", "-gate-vault-addr=https://u:p@v:1"}));
    CHECK(text.find("gate {\n  mode = \"vault\"") != std::string::npos);
    CHECK(text.find(R"(vault_addrs = ["https://<redacted>@v:1"])") != std::string::npos);
    CHECK(text.find("u:p") == std::string::npos);
    CHECK(redacted_summary(build({})).find("gate {") == std::string::npos);
}

TEST_CASE("gate: lint warns about gate settings without a gate", "[replicate][build][gate]")
{
    auto const warn = "gate settings are given without -gate (gate mode): they have no effect";
    auto has = [&](const config& c) {
        auto const w = lint(c);
        return std::find(w.begin(), w.end(), warn) != w.end();
    };
    CHECK(has(build({"-gate-settle=1s", "-prefix=a@dc1"})));
    CHECK_FALSE(has(build({"-prefix=a@dc1"})));
    CHECK_FALSE(has(build({"-gate=key", "-gate-settle=1s", "-prefix=a"})));
}

TEST_CASE("vault: the preset sets the pair, the DC-local excludes, the designated gate and the lock",
          "[replicate][build][vault]")
{
    auto const c = build({}, file(R"(vault { path = "vault/" datacenters = ["dc1", "dc2"] })"));
    CHECK(c.vault.enabled());
    CHECK(c.vault.datacenters == std::vector<std::string>{"dc1", "dc2"});
    CHECK(c.vault.record_key == "service/kvship/vault/primary");
    CHECK(c.vault.proxy_ttl == nanos(1h));
    CHECK(c.vault.failover_after == nanos(0s));
    CHECK(c.gate.mode == gate_mode::designated);
    CHECK(c.gate.settle == nanos(2s));
    REQUIRE(c.prefixes.size() == 1);
    CHECK(c.prefixes[0].source == "vault/");
    CHECK(c.prefixes[0].destination == "vault/");
    CHECK_FALSE(c.prefixes[0].datacenter);
    CHECK(c.excludes == std::vector<std::string>{"vault/core/lock", "vault/core/migration", "vault/sys/expire/"});
    CHECK(c.lock.prefix == "locks/consul-replicate");

    // Flags over the file; an explicit gate settle and lock stay.
    auto const f = build(
        {"-vault-path=secrets/", "-vault-datacenters=east, west ,north", "-vault-failover-after=1m",
         "-gate-settle=5s", "-lock=ops/kv"},
        file(R"(vault { path = "vault/" datacenters = ["dc1", "dc2"] proxy_ttl = "30m" })")
    );
    CHECK(f.vault.path == "secrets/");
    CHECK(f.vault.datacenters == std::vector<std::string>{"east", "west", "north"});
    CHECK(f.vault.failover_after == nanos(1min));
    CHECK(f.vault.proxy_ttl == nanos(30min));
    CHECK(f.gate.settle == nanos(5s));
    CHECK(f.lock.prefix == "ops/kv");
    CHECK(f.excludes.front() == "secrets/core/lock");

    auto const p = build({"-vault-path=vault/", "-vault-datacenters=dc1,dc2", "-promote=dc2", "-promote-force"});
    CHECK(p.promote == "dc2");
    CHECK(p.promote_force);
}

TEST_CASE("vault: bad settings are refused with the setting named", "[replicate][build][vault]")
{
    auto has = [](const config_error& e, std::string_view text) {
        INFO(e.message);
        CHECK(e.message.find(text) != std::string::npos);
    };
    has(build_error({"-vault-path=vault", "-vault-datacenters=dc1,dc2"}), "ending in \"/\"");
    has(build_error({"-vault-path=vault/"}), "vault datacenters is empty");
    has(build_error({"-vault-path=vault/", "-vault-datacenters=dc1"}), "at least two");
    has(build_error({"-vault-path=vault/", "-vault-datacenters=dc1,dc1"}), "listed twice");
    has(build_error({"-vault-path=vault/", "-vault-datacenters=dc1,dc2", "-vault-proxy-ttl=5s"}), "10s and 24h");
    has(build_error({"-vault-path=vault/", "-vault-datacenters=dc1,dc2", "-vault-failover-after=1s"}),
        "shorter than three gate intervals");
    has(build_error({"-vault-path=vault/", "-vault-datacenters=dc1,dc2", "-gate=key"}),
        "decides the primary datacenter itself");
    has(build_error({"-vault-path=vault/", "-vault-datacenters=dc1,dc2", "-promote=dc3"}),
        "-promote=dc3 is not one of the vault datacenters (dc1, dc2)");
    has(build_error({"-vault-path=vault/", "-vault-datacenters=dc1,dc2", "-vault-record-key=vault/primary"}),
        "lies under the replicated prefix");
    has(build_error({"-promote=dc2"}), "-promote needs the vault configuration");
    has(build_error({"-vault-datacenters=dc1,dc2"}), "without vault path");
    auto flag = parse_command_line({"-vault-datacenters=dc1,,dc2"});
    REQUIRE_FALSE(flag);
    CHECK(flag.error().message.find("comma-separated") != std::string::npos);
}

TEST_CASE("lost_found_prefix: default, flag, file, and refused where it overlaps a destination", "[replicate][build][validate]")
{
    CHECK(build({}).lost_found_prefix == "service/kvship/lost+found/");
    CHECK(build({"-lost-found-prefix=lf"}).lost_found_prefix == "lf/");
    CHECK(build({}, file(R"(lost_found_prefix = "kv/lf/")")).lost_found_prefix == "kv/lf/");
    CHECK(build({"-lost-found-prefix=a/"}, file(R"(lost_found_prefix = "b/")")).lost_found_prefix == "a/");
    // Ungated runs never save anything: an overlap is not an error there.
    CHECK(build({"-prefix=service@dc1:service/kvship/", "-status-dir=st"}).prefixes.size() == 1);

    CHECK(
        build_error({"-gate=key", "-gate-key=p", "-prefix=vault/", "-lost-found-prefix=vault/lf/"}).message ==
        R"(lost_found_prefix "vault/lf/" overlaps destination "vault/" of prefix "vault/:vault/": a round would delete or overwrite the saved keys; choose a prefix outside every replicated one)"
    );
    CHECK(
        build_error({"-gate=key", "-gate-key=p", "-prefix=service/kvship/lost+found/x/"}).message.starts_with(
            R"(lost_found_prefix "service/kvship/lost+found/" overlaps destination)"
        )
    );
    CHECK(build_error({"-gate=key", "-gate-key=p", "-prefix=vault/", "-lost-found-prefix=/x"}).message ==
          R"(lost_found_prefix "/x/" must not begin with "/")");
    CHECK(build_error({"-gate=key", "-gate-key=p", "-prefix=vault/", "-lost-found-prefix=service/consul-replicate/"})
              .message.starts_with(R"(lost_found_prefix "service/consul-replicate/" overlaps status_dir)"));
    CHECK(build({"-gate=key", "-gate-key=p", "-prefix=vault/"}).lost_found_prefix == "service/kvship/lost+found/");
}

TEST_CASE("lost+found commands are command-line flags", "[replicate][flags]")
{
    auto cli = parse_command_line({"-lost-found-list"});
    REQUIRE(cli.has_value());
    CHECK(cli->lost_found_list);
    cli = parse_command_line({"-lost-found-restore=12-dc1-to-dc2/vault/x", "-force"});
    REQUIRE(cli.has_value());
    CHECK(cli->lost_found_restore == std::optional<std::string>("12-dc1-to-dc2/vault/x"));
    CHECK(cli->force);
    CHECK_FALSE(parse_command_line({"-lost-found-restore="}).has_value());
}
