// -lock, -lock-ttl, -lock-delay, -lock-name and the `lock { }` block: parsing (flags, JSON, HCL),
// merging, the consul lock key derivation and the up-front refusals.
#include <replicate/config_file.hpp>
#include <replicate/flags.hpp>

#include <catch2/catch.hpp>

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
    INFO(text);
    if (!r)
        FAIL("file: " << r.error().message);
    return std::move(r).value().layer;
}

config build(const args& a, const config_layer& f = {})
{
    auto r = build_config(cli(a), f, {});
    if (!r)
        FAIL("build: " << r.error().message);
    return std::move(r).value();
}

std::string build_error(const args& a, const config_layer& f = {})
{
    auto r = build_config(cli(a), f, {});
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().code == exit_code::config);
    return r.error().message;
}

}  // namespace

TEST_CASE("lock: off by default", "[replicate][lock]")
{
    auto const c = build({});
    CHECK_FALSE(c.lock.enabled());
    CHECK(c.lock.ttl == 15s);
    CHECK_FALSE(c.lock.delay.has_value());
    CHECK(c.lock.name.empty());
}

TEST_CASE("lock: flags", "[replicate][lock]")
{
    auto const c = build(
        {"-lock",
         "service/consul-replicate/leader",
         "-lock-ttl=20s",
         "-lock-delay",
         "5s",
         "-lock-name",
         "replicator dc2"}
    );
    CHECK(c.lock.enabled());
    CHECK(c.lock.prefix == "service/consul-replicate/leader");
    CHECK(c.lock.ttl == 20s);
    REQUIRE(c.lock.delay.has_value());
    CHECK(*c.lock.delay == 5s);
    CHECK(c.lock.name == "replicator dc2");

    // -lock-delay=0 is sent (no lock-delay), unlike leaving it out (server default).
    auto const zero = build({"-lock", "x", "-lock-delay", "0s"});
    REQUIRE(zero.lock.delay.has_value());
    CHECK(zero.lock.delay->count() == 0);
}

TEST_CASE("lock: flag value errors are exit 13", "[replicate][lock]")
{
    auto r = parse_command_line(args{"-lock-ttl", "soon"});
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().code == exit_code::parse_flags);
    CHECK(r.error().message == "invalid value \"soon\" for flag -lock-ttl: time: invalid duration \"soon\"");
    auto m = parse_command_line(args{"-lock"});
    REQUIRE_FALSE(m.has_value());
    CHECK(m.error().message == "flag needs an argument: -lock");
}

TEST_CASE("lock: the block in JSON and HCL", "[replicate][lock]")
{
    for (std::string_view text : {
             R"({"lock": {"prefix": "service/r/leader", "ttl": "30s", "delay": "1s", "name": "n"}})",
             R"(lock { prefix = "service/r/leader" ttl = "30s" delay = "1s" name = "n" })",
         }) {
        auto const c = build({}, file(text));
        CHECK(c.lock.prefix == "service/r/leader");
        CHECK(c.lock.ttl == 30s);
        REQUIRE(c.lock.delay.has_value());
        CHECK(*c.lock.delay == 1s);
        CHECK(c.lock.name == "n");
    }
    // Flags win over the file, key by key.
    auto const c = build({"-lock-ttl", "12s"}, file(R"(lock { prefix = "p" ttl = "30s" })"));
    CHECK(c.lock.prefix == "p");
    CHECK(c.lock.ttl == 12s);
}

TEST_CASE("lock: block errors", "[replicate][lock]")
{
    auto err = [](std::string_view text) {
        auto r = parse_config_text(text);
        INFO(text);
        REQUIRE_FALSE(r.has_value());
        CHECK(r.error().code == exit_code::config);
        return r.error().message;
    };
    CHECK(err(R"(lock { prefix = "p" tll = "15s" })") == "'lock' has invalid keys: tll");
    CHECK(err(R"(lock { prefix = "p" ttl = "fast" })") == "'lock.ttl': time: invalid duration \"fast\"");
    CHECK(
        err(R"({"lock": {"prefix": 5}})") ==
        "'lock.prefix' expected type 'string', got unconvertible type 'int'"
    );
    CHECK(err(R"({"lock": "p"})") == "'lock' expected type 'object', got unconvertible type 'string'");
}

TEST_CASE("lock: TTL and delay ranges are refused up front", "[replicate][lock]")
{
    CHECK(
        build_error({"-lock", "p", "-lock-ttl", "9s"}) ==
        "lock ttl 9s is out of range: Consul accepts a session TTL between 10s and 24h"
    );
    CHECK(
        build_error({"-lock", "p", "-lock-ttl", "25h"}) ==
        "lock ttl 25h0m0s is out of range: Consul accepts a session TTL between 10s and 24h"
    );
    CHECK(
        build_error({"-lock", "p", "-lock-ttl", "0s"}) ==
        "lock ttl 0s is out of range: Consul accepts a session TTL between 10s and 24h"
    );
    CHECK(build({"-lock", "p", "-lock-ttl", "10s"}).lock.ttl == 10s);
    CHECK(build({"-lock", "p", "-lock-ttl", "24h"}).lock.ttl == 24h);

    CHECK(
        build_error({"-lock", "p", "-lock-delay", "61s"}) ==
        "lock delay 1m1s is out of range: Consul uses a lock-delay between 0 and 60s"
    );
    CHECK(
        build_error({"-lock", "p", "-lock-delay", "-1s"}) ==
        "lock delay -1s is out of range: Consul uses a lock-delay between 0 and 60s"
    );
    CHECK(
        build_error({"-lock", "p", "-lock-delay", "500ns"}) ==
        "lock delay 500ns is below 1µs, which Consul would read as seconds"
    );
    CHECK(*build({"-lock", "p", "-lock-delay", "60s"}).lock.delay == 60s);
}

TEST_CASE("lock: settings without a prefix, an empty prefix, a key under a destination", "[replicate][lock]")
{
    CHECK(
        build_error({"-lock-ttl", "20s"}) ==
        "lock ttl, delay or name given without a lock prefix (-lock or lock { prefix = ... })"
    );
    CHECK(
        build_error({}, file(R"(lock { name = "n" })")) ==
        "lock ttl, delay or name given without a lock prefix (-lock or lock { prefix = ... })"
    );
    CHECK(build_error({"-lock", "/"}) == "lock prefix \"/\" is empty once its leading \"/\" are stripped");

    CHECK(
        build_error({"-lock", "backup/leader", "-prefix", "app/@dc1:backup/"}) ==
        "lock key \"backup/leader/.lock\" lies under destination \"backup/\" of prefix \"app/@dc1:backup/\": "
        "each pass would delete it"
    );
    // Excluded from the pair: the pair neither writes nor deletes there.
    auto const ok =
        build({"-lock", "backup/leader", "-prefix", "app/@dc1:backup/", "-exclude", "app/leader/"});
    CHECK(ok.lock.enabled());
    CHECK(build({"-lock", "service/r", "-prefix", "app/@dc1:backup/"}).lock.enabled());
}

TEST_CASE("lock: the key is consul lock's", "[replicate][lock]")
{
    CHECK(lock_key("service/consul-replicate/leader") == "service/consul-replicate/leader/.lock");
    CHECK(lock_key("/service/x") == "service/x/.lock");
    CHECK(lock_key("service/x/") == "service/x/.lock");
    CHECK(lock_key("a//b") == "a/b/.lock");
    CHECK(default_lock_name("/service/x") == "Consul lock for 'consul-replicate' at 'service/x'");
}

TEST_CASE("lock: the summary shows the block only when set", "[replicate][lock]")
{
    CHECK(redacted_summary(build({})).find("lock {") == std::string::npos);
    auto const s = redacted_summary(build({"-lock", "service/r"}));
    CHECK(s.find("lock {\n  prefix = \"service/r\"\n  ttl = \"15s\"") != std::string::npos);
}
