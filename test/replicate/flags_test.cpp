// Go `flag` semantics of the drop-in consul-replicate command line (compat.md §1).
#include <replicate/flags.hpp>

#include <catch2/catch.hpp>

#include <functional>
#include <string>
#include <vector>

using namespace kvship::replicate;
using namespace std::chrono_literals;
using args = std::vector<std::string>;

namespace {

command_line ok(const args& a)
{
    auto r = parse_command_line(a);
    INFO("args: " << a.size());
    if (!r)
        FAIL("unexpected error: " << r.error().message);
    return std::move(r).value();
}

config_error err(const args& a)
{
    auto r = parse_command_line(a);
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().code == exit_code::parse_flags);
    return r.error();
}

}  // namespace

TEST_CASE("every flag sets its setting", "[replicate][flags]")
{
    struct row
    {
        args in;
        std::function<bool(const command_line&)> check;
    };

    std::vector<row> const rows = {
        {{"-config=/etc/cr"}, [](auto& c) { return c.config_paths == std::vector<std::string>{"/etc/cr"}; }},
        {{"-consul-addr=10.0.0.1:8500"}, [](auto& c) { return c.flags.consul.address == "10.0.0.1:8500"; }},
        {{"-consul-auth=user:pass"},
         [](auto& c) {
             return c.flags.consul.auth.username == "user" && c.flags.consul.auth.password == "pass";
         }},
        {{"-consul-retry=false"}, [](auto& c) { return c.flags.consul.retry.enabled == false; }},
        {{"-consul-retry-attempts=3"}, [](auto& c) { return c.flags.consul.retry.attempts == 3; }},
        {{"-consul-retry-backoff=1s"}, [](auto& c) { return c.flags.consul.retry.backoff == nanos(1s); }},
        {{"-consul-retry-max-backoff=2m"},
         [](auto& c) { return c.flags.consul.retry.max_backoff == nanos(2min); }},
        {{"-consul-ssl"}, [](auto& c) { return c.flags.consul.ssl.enabled == true; }},
        {{"-consul-ssl-ca-cert=ca.pem"}, [](auto& c) { return c.flags.consul.ssl.ca_cert == "ca.pem"; }},
        {{"-consul-ssl-ca-path=/ca"}, [](auto& c) { return c.flags.consul.ssl.ca_path == "/ca"; }},
        {{"-consul-ssl-cert=c.pem"}, [](auto& c) { return c.flags.consul.ssl.cert == "c.pem"; }},
        {{"-consul-ssl-key=k.pem"}, [](auto& c) { return c.flags.consul.ssl.key == "k.pem"; }},
        {{"-consul-ssl-server-name=consul"},
         [](auto& c) { return c.flags.consul.ssl.server_name == "consul"; }},
        {{"-consul-ssl-verify=false"}, [](auto& c) { return c.flags.consul.ssl.verify == false; }},
        {{"-consul-token=abc"}, [](auto& c) { return c.flags.consul.token == "abc"; }},
        {{"-consul-transport-dial-keep-alive=5s"},
         [](auto& c) { return c.flags.consul.transport.dial_keep_alive == nanos(5s); }},
        {{"-consul-transport-dial-timeout=6s"},
         [](auto& c) { return c.flags.consul.transport.dial_timeout == nanos(6s); }},
        {{"-consul-transport-disable-keep-alives"},
         [](auto& c) { return c.flags.consul.transport.disable_keep_alives == true; }},
        {{"-consul-transport-max-idle-conns-per-host=7"},
         [](auto& c) { return c.flags.consul.transport.max_idle_conns_per_host == 7; }},
        {{"-consul-transport-tls-handshake-timeout=8s"},
         [](auto& c) { return c.flags.consul.transport.tls_handshake_timeout == nanos(8s); }},
        {{"-exclude=vault/sys/expire"},
         [](auto& c) { return c.flags.excludes == std::vector<std::string>{"vault/sys/expire"}; }},
        {{"-kill-signal=SIGTERM"}, [](auto& c) { return c.flags.kill_signal == sigterm(); }},
        {{"-kill-signal=sigterm"}, [](auto& c) { return c.flags.kill_signal == sigterm(); }},
        {{"-kill-signal=SIGNULL"}, [](auto& c) { return c.flags.kill_signal->disabled(); }},
        {{"-log-level=debug"}, [](auto& c) { return c.flags.log_level == "debug"; }},
        {{"-max-stale=0"}, [](auto& c) { return c.flags.max_stale == nanos(0); }},
        {{"-once"}, [](auto& c) { return c.once; }},
        {{"-pid-file=/run/cr.pid"}, [](auto& c) { return c.flags.pid_file == "/run/cr.pid"; }},
        {{"-prefix=global@nyc1:backup"},
         [](auto& c) {
             return c.flags.prefixes.size() == 1 && c.flags.prefixes[0].source == "global" &&
                    c.flags.prefixes[0].datacenter == "nyc1" && c.flags.prefixes[0].destination == "backup";
         }},
        {{"-reload-signal=SIGUSR1"}, [](auto& c) { return c.flags.reload_signal->name == "SIGUSR1"; }},
        {{"-status-dir=my/status"}, [](auto& c) { return c.flags.status_dir == "my/status"; }},
        {{"-syslog"}, [](auto& c) { return c.flags.syslog.enabled == true; }},
        {{"-syslog-facility=LOCAL5"}, [](auto& c) { return c.flags.syslog.facility == "LOCAL5"; }},
        {{"-wait=5s:10s"},
         [](auto& c) { return c.flags.wait.min == nanos(5s) && c.flags.wait.max == nanos(10s); }},
        {{"-wait=5s"},
         [](auto& c) { return c.flags.wait.min == nanos(5s) && c.flags.wait.max == nanos(20s); }},
        {{"-v"}, [](auto& c) { return c.version; }},
        {{"-version"}, [](auto& c) { return c.version; }},
        // kvship additions
        {{"-source-addr=https://dc1:8501"},
         [](auto& c) { return c.flags.source_addr == "https://dc1:8501"; }},
        {{"-source-token=s3"}, [](auto& c) { return c.flags.source_token == "s3"; }},
        {{"-metrics-addr=:9100"}, [](auto& c) { return c.flags.metrics_addr == ":9100"; }},
        {{"-dry-run"}, [](auto& c) { return c.flags.dry_run == true; }},
        {{"-diff"}, [](auto& c) { return c.diff == true; }},
        {{"-max-delete-percent=20"}, [](auto& c) { return c.flags.delete_guard.max_delete_percent == 20; }},
        {{"-max-delete-min-keys=0"}, [](auto& c) { return c.flags.delete_guard.min_keys == 0; }},
        {{"-allow-empty-source"}, [](auto& c) { return c.flags.delete_guard.allow_empty_source == true; }},
        {{"-allow-mass-delete"}, [](auto& c) { return c.flags.delete_guard.allow_mass_delete == true; }},
        {{"-txn-max-ops=128"}, [](auto& c) { return c.flags.txn_max_ops == 128; }},
        {{"-log-format=json"}, [](auto& c) { return c.flags.log_format == "json"; }},
    };
    for (auto const& r : rows) {
        INFO(r.in.front());
        auto const c = ok(r.in);
        CHECK(r.check(c));
        CHECK(c.warnings.empty());
    }
}

TEST_CASE("the flag table lists every flag once, aliases with their replacement", "[replicate][flags]")
{
    auto const table = flag_table();
    std::vector<std::string_view> names;
    for (auto const& f : table) names.push_back(f.name);
    auto sorted = names;
    std::sort(sorted.begin(), sorted.end());
    CHECK(std::adjacent_find(sorted.begin(), sorted.end()) == sorted.end());
    CHECK(std::find(names.begin(), names.end(), "ssl-key") == names.end());
    std::size_t aliases = 0;
    for (auto const& f : table) {
        if (!f.replacement.empty()) {
            ++aliases;
            CHECK(std::find(names.begin(), names.end(), f.replacement) != names.end());
        }
    }
    CHECK(aliases == 10);
    // Every flag appears in the usage text.
    auto const usage = usage_text();
    CHECK(usage.starts_with("Usage: consul-replicate [options]"));
    for (auto const& f : table) {
        if (f.replacement.empty()) {
            INFO(f.name);
            CHECK(usage.find("-" + std::string(f.name)) != std::string::npos);
        }
    }
}

TEST_CASE("Go flag syntax: -f v, -f=v, --f=v, --f v", "[replicate][flags]")
{
    for (auto const& a : std::vector<args>{
             {"-consul-addr", "a:1"},
             {"-consul-addr=a:1"},
             {"--consul-addr=a:1"},
             {"--consul-addr", "a:1"},
         }) {
        CHECK(ok(a).flags.consul.address == "a:1");
    }
    // The value after `=` may be empty, or contain `=`; the next argument is taken whatever it is.
    CHECK(ok({"-consul-token="}).flags.consul.token == "");
    CHECK(ok({"-consul-token=a=b"}).flags.consul.token == "a=b");
    CHECK(ok({"-consul-token", "-once"}).flags.consul.token == "-once");
    CHECK_FALSE(ok({"-consul-token", "-once"}).once);
}

TEST_CASE("boolean flags: bare, =value, and a separate value is a stray argument", "[replicate][flags]")
{
    CHECK(ok({"-once"}).once);
    CHECK(ok({"--once"}).once);
    CHECK_FALSE(ok({"-once", "-once=false"}).once);
    for (auto const* t : {"1", "t", "T", "TRUE", "true", "True"})
        CHECK(ok({std::string("-consul-ssl=") + t}).flags.consul.ssl.enabled == true);
    for (auto const* f : {"0", "f", "F", "FALSE", "false", "False"})
        CHECK(ok({std::string("-consul-ssl=") + f}).flags.consul.ssl.enabled == false);

    CHECK(err({"-once", "false"}).message == R"(cli: extra argument(s): ["false"])");
    CHECK(err({"-consul-ssl", "false"}).message == R"(cli: extra argument(s): ["false"])");
    CHECK(
        err({"-consul-ssl=yes"}).message ==
        R"(invalid boolean value "yes" for -consul-ssl: strconv.ParseBool: parsing "yes": invalid syntax)"
    );
    CHECK(
        err({"-consul-ssl="}).message ==
        R"(invalid boolean value "" for -consul-ssl: strconv.ParseBool: parsing "": invalid syntax)"
    );
    // -once, -v and -version are flag.BoolVar: Go's own text.
    CHECK(err({"-once=2"}).message == R"(invalid boolean value "2" for -once: parse error)");
    CHECK(err({"-version=x"}).message == R"(invalid boolean value "x" for -version: parse error)");
}

TEST_CASE("repeatable flags accumulate, the others: last one wins", "[replicate][flags]")
{
    auto const c =
        ok({"-prefix=a@dc1",
            "-config=one",
            "-prefix",
            "b@dc2:c",
            "-exclude=a/x",
            "-config",
            "two",
            "-exclude=b/y",
            "-consul-addr=first",
            "-consul-addr=second",
            "-max-stale=1s",
            "-max-stale=3s"});
    REQUIRE(c.flags.prefixes.size() == 2);
    CHECK(c.flags.prefixes[0].source == "a");
    CHECK(c.flags.prefixes[1].destination == "c");
    CHECK(c.config_paths == std::vector<std::string>{"one", "two"});
    CHECK(c.flags.excludes == std::vector<std::string>{"a/x", "b/y"});
    CHECK(c.flags.consul.address == "second");
    CHECK(c.flags.max_stale == nanos(3s));
}

TEST_CASE("durations use Go syntax", "[replicate][flags]")
{
    CHECK(ok({"-max-stale=1m30s"}).flags.max_stale == nanos(90s));
    CHECK(ok({"-max-stale=250ms"}).flags.max_stale == nanos(250ms));
    CHECK(ok({"-max-stale=1.5h"}).flags.max_stale == nanos(90min));
    CHECK(ok({"-max-stale=10us"}).flags.max_stale == nanos(10us));
    CHECK(
        err({"-max-stale=5"}).message ==
        R"(invalid value "5" for flag -max-stale: time: missing unit in duration "5")"
    );
    CHECK(
        err({"-max-stale=x"}).message ==
        R"(invalid value "x" for flag -max-stale: time: invalid duration "x")"
    );
    CHECK(
        err({"-consul-retry-backoff=5y"}).message ==
        R"(invalid value "5y" for flag -consul-retry-backoff: time: unknown unit "y" in duration "5y")"
    );
}

TEST_CASE("integers are base 10 and fit in 32 bits", "[replicate][flags]")
{
    CHECK(ok({"-consul-retry-attempts=2147483647"}).flags.consul.retry.attempts == 2147483647);
    CHECK(ok({"-consul-retry-attempts=-2147483648"}).flags.consul.retry.attempts == -2147483647 - 1);
    CHECK(ok({"-consul-retry-attempts=+5"}).flags.consul.retry.attempts == 5);
    CHECK(ok({"-consul-retry-attempts=007"}).flags.consul.retry.attempts == 7);
    CHECK(
        err({"-consul-retry-attempts=2147483648"}).message ==
        R"(invalid value "2147483648" for flag -consul-retry-attempts: strconv.ParseInt: parsing "2147483648": value out of range)"
    );
    CHECK(
        err({"-consul-retry-attempts=-2147483649"}).message ==
        R"(invalid value "-2147483649" for flag -consul-retry-attempts: strconv.ParseInt: parsing "-2147483649": value out of range)"
    );
    CHECK(
        err({"-consul-retry-attempts=0x10"}).message ==
        R"(invalid value "0x10" for flag -consul-retry-attempts: strconv.ParseInt: parsing "0x10": invalid syntax)"
    );
    CHECK(
        err({"-consul-retry-attempts="}).message ==
        R"(invalid value "" for flag -consul-retry-attempts: strconv.ParseInt: parsing "": invalid syntax)"
    );
    CHECK(
        err({"-consul-retry-attempts=1_000"}).message ==
        R"(invalid value "1_000" for flag -consul-retry-attempts: strconv.ParseInt: parsing "1_000": invalid syntax)"
    );
    // Go reports the overflow before it sees the bad character.
    CHECK(
        err({"-consul-retry-attempts=99999999999x"}).message ==
        R"(invalid value "99999999999x" for flag -consul-retry-attempts: strconv.ParseInt: parsing "99999999999x": value out of range)"
    );
}

TEST_CASE("deprecated aliases work and warn", "[replicate][flags]")
{
    struct row
    {
        args in;
        std::string warning;
        std::function<bool(const command_line&)> check;
    };

    std::vector<row> const rows = {
        {{"-auth=u:p"},
         "-auth is now -consul-auth",
         [](auto& c) { return c.flags.consul.auth.username == "u" && c.flags.consul.auth.password == "p"; }},
        {{"-consul=h:1"},
         "-consul is now -consul-addr",
         [](auto& c) { return c.flags.consul.address == "h:1"; }},
        {{"-token=t"}, "-token is now -consul-token", [](auto& c) { return c.flags.consul.token == "t"; }},
        {{"-ssl"}, "-ssl is now -consul-ssl-*", [](auto& c) { return c.flags.consul.ssl.enabled == true; }},
        {{"-ssl-verify=false"},
         "-ssl-verify is now -consul-ssl-verify",
         [](auto& c) { return c.flags.consul.ssl.verify == false; }},
        {{"-ssl-ca-cert=ca"},
         "-ssl-ca-cert is now -consul-ssl-ca-cert",
         [](auto& c) { return c.flags.consul.ssl.ca_cert == "ca"; }},
        {{"-ssl-ca-path=cp"},
         "-ssl-ca-path is now -consul-ssl-ca-path",
         [](auto& c) { return c.flags.consul.ssl.ca_path == "cp"; }},
        {{"-ssl-cert=c"},
         "-ssl-cert is now -consul-ssl-cert",
         [](auto& c) { return c.flags.consul.ssl.cert == "c"; }},
        {{"-ssl-server-name=n"},
         "-ssl-server-name is now -consul-ssl-server-name",
         [](auto& c) { return c.flags.consul.ssl.server_name == "n"; }},
        {{"-retry=5s"},
         "-retry is now -consul-retry-*",
         [](auto& c) {
             return c.flags.consul.retry.backoff == nanos(5s) &&
                    c.flags.consul.retry.max_backoff == nanos(5s);
         }},
    };
    for (auto const& r : rows) {
        INFO(r.in.front());
        auto const c = ok(r.in);
        CHECK(r.check(c));
        CHECK(c.warnings == std::vector<std::string>{r.warning});
    }
    CHECK(err({"-ssl-key=k.pem"}).message == "flag provided but not defined: -ssl-key");
    CHECK(
        err({"-retry=5"}).message ==
        R"(invalid value "5" for flag -retry: time: missing unit in duration "5")"
    );
}

TEST_CASE("positional arguments and --", "[replicate][flags]")
{
    CHECK(err({"foo"}).message == R"(cli: extra argument(s): ["foo"])");
    CHECK(
        err({"-once", "foo", "-prefix", "a@b"}).message ==
        R"(cli: extra argument(s): ["foo" "-prefix" "a@b"])"
    );
    CHECK(err({"-"}).message == R"(cli: extra argument(s): ["-"])");
    CHECK(err({"--", "-once"}).message == R"(cli: extra argument(s): ["-once"])");
    CHECK_FALSE(ok({"-once", "--"}).help);
    CHECK(err({"a\"b"}).message == R"(cli: extra argument(s): ["a\"b"])");
}

TEST_CASE("unknown flags, bad syntax, missing values", "[replicate][flags]")
{
    CHECK(err({"-foo"}).message == "flag provided but not defined: -foo");
    CHECK(err({"--foo=1"}).message == "flag provided but not defined: -foo");
    CHECK(err({"-Once"}).message == "flag provided but not defined: -Once");
    CHECK(err({"---once"}).message == "bad flag syntax: ---once");
    CHECK(err({"-=x"}).message == "bad flag syntax: -=x");
    CHECK(err({"--=x"}).message == "bad flag syntax: --=x");
    CHECK(err({"-prefix"}).message == "flag needs an argument: -prefix");
    CHECK(err({"-once", "-max-stale"}).message == "flag needs an argument: -max-stale");
    // Parsing stops at the first error.
    CHECK(err({"-foo", "-bar"}).message == "flag provided but not defined: -foo");
}

TEST_CASE("help flags (h, help) ask for the usage text and stop parsing", "[replicate][flags]")
{
    for (auto const& a : std::vector<args>{
             {"-h"}, {"-help"}, {"--help"}, {"-help=false"}, {"-h", "-foo"}, {"-once", "-h", "x"}})
        CHECK(ok(a).help);
    CHECK(err({"-foo", "-h"}).message == "flag provided but not defined: -foo");
}

TEST_CASE("flag values are checked as consul-replicate checks them", "[replicate][flags]")
{
    // `-prefix=global` (no @dc) parses: it is an error only without a gate (build_config_test).
    CHECK(
        ok({"-prefix=global"}).flags.prefixes_needing_gate ==
        std::vector<config_error>{
            flag_error(R"(invalid value "global" for flag -prefix: missing datacenter)")}
    );
    CHECK(err({"-prefix="}).message == R"(invalid value "" for flag -prefix: missing prefix)");
    CHECK(err({"-prefix= "}).message == R"(invalid value " " for flag -prefix: missing prefix)");
    CHECK(
        err({"-prefix=@dc1"}).message ==
        R"(invalid value "@dc1" for flag -prefix: invalid source format: "@dc1")"
    );
    CHECK(err({"-exclude="}).message == R"(invalid value "" for flag -exclude: missing exclude)");
    CHECK(
        err({"-consul-auth="}).message == R"(invalid value "" for flag -consul-auth: auth: cannot be empty)"
    );
    CHECK(err({"-wait="}).message == R"(invalid value "" for flag -wait: wait: cannot be empty)");
    CHECK(
        err({"-wait=1s:2s:3s"}).message == R"(invalid value "1s:2s:3s" for flag -wait: wait: invalid format)"
    );
    CHECK(err({"-wait=-1s"}).message == R"(invalid value "-1s" for flag -wait: wait: cannot be negative)");
    CHECK(
        err({"-wait=5s:1s"}).message ==
        R"(invalid value "5s:1s" for flag -wait: wait: min must be less than max)"
    );
    CHECK(err({"-wait=x"}).message == R"(invalid value "x" for flag -wait: time: invalid duration "x")");
    CHECK(
        err({"-kill-signal="})
            .message.starts_with(
                R"(invalid value "" for flag -kill-signal: invalid signal "" - valid signals are ["SIGABRT" "SIGALRM")"
            )
    );
    CHECK(err({"-reload-signal=HUP"})
              .message.starts_with(R"(invalid value "HUP" for flag -reload-signal: invalid signal "HUP")"));
    CHECK(
        err({"-max-delete-percent=101"}).message ==
        R"(invalid value "101" for flag -max-delete-percent: must be between 0 and 100)"
    );
    CHECK(
        err({"-max-delete-min-keys=-1"}).message ==
        R"(invalid value "-1" for flag -max-delete-min-keys: must not be negative)"
    );
    CHECK(
        err({"-txn-max-ops=-1"}).message ==
        R"(invalid value "-1" for flag -txn-max-ops: must not be negative)"
    );

    // Accepted forms.
    auto const auth = ok({"-consul-auth=user:pa:ss"}).flags.consul.auth;
    CHECK(auth.username == "user");
    CHECK(auth.password == "pa:ss");
    auto const user_only = ok({"-consul-auth=user"}).flags.consul.auth;
    CHECK(user_only.username == "user");
    CHECK_FALSE(user_only.password.has_value());
    CHECK(ok({"-wait= 1s : 2s "}).flags.wait.max == nanos(2s));
    CHECK(ok({"-wait=0s"}).flags.wait.max == nanos(0));
    CHECK(ok({"-prefix=/global@nyc1"}).flags.prefixes[0].source == "global");
    CHECK(ok({"-exclude=/keep/slash"}).flags.excludes[0] == "/keep/slash");
}

TEST_CASE("the consul-auth flag replaces the whole auth setting", "[replicate][flags]")
{
    auto const c = ok({"-consul-auth=a:b", "-consul-auth=c"});
    CHECK(c.flags.consul.auth.username == "c");
    CHECK_FALSE(c.flags.consul.auth.password.has_value());
}

TEST_CASE("version text", "[replicate][flags]")
{
    CHECK(version_text("kvship 0.1.0") == "consul-replicate v0.4.0 (kvship 0.1.0)");
}

TEST_CASE("gate flags", "[replicate][flags][gate]")
{
    auto const c =
        ok({"-gate=vault",
            "-gate-vault-service=v",
            "-gate-vault-tag=leader",
            "-gate-vault-addr=https://v1:8200",
            "-gate-vault-addr",
            "http://v2:8200",
            "-gate-vault-dc=https://v1:8200=dc1",
            "-gate-vault-dc=http://v2:8200=dc2",
            "-gate-key=k/primary",
            "-gate-settle=2s",
            "-gate-interval=200ms",
            "-prefix=vault/",
            "-prefix=/a:b/"});
    auto const& g = c.flags.gate;
    CHECK(g.mode == "vault");
    CHECK(g.vault_service == "v");
    CHECK(g.vault_tag == "leader");
    CHECK(g.vault_addrs == std::vector<std::string>{"https://v1:8200", "http://v2:8200"});
    CHECK(
        g.vault_dc_map ==
        std::map<std::string, std::string>{{"https://v1:8200", "dc1"}, {"http://v2:8200", "dc2"}}
    );
    CHECK(g.key == "k/primary");
    CHECK(g.settle == nanos(2s));
    CHECK(g.interval == nanos(200ms));
    REQUIRE(c.flags.prefixes.size() == 2);
    CHECK(c.flags.prefixes[1] == kvship::prefixes::prefix_spec{"a", std::nullopt, "b/"});
    CHECK(c.flags.prefixes_needing_gate.size() == 2);
    CHECK(
        c.flags.prefixes_needing_gate[1].message ==
        R"(invalid value "/a:b/" for flag -prefix: missing datacenter)"
    );

    CHECK(
        err({"-gate=leader"}).message == R"(invalid value "leader" for flag -gate: must be "vault" or "key")"
    );
    CHECK(err({"-gate="}).message == R"(invalid value "" for flag -gate: must be "vault" or "key")");
    CHECK(
        err({"-gate-vault-dc=https://v1:8200"}).message ==
        R"(invalid value "https://v1:8200" for flag -gate-vault-dc: want URL=DC)"
    );
    CHECK(err({"-gate-vault-dc=x="}).message == R"(invalid value "x=" for flag -gate-vault-dc: want URL=DC)");
    CHECK(err({"-gate-settle=x"}).code == exit_code::parse_flags);
}
