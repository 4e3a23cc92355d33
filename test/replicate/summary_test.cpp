// The DEBUG config dump never shows a secret (consul-replicate's did: compat.md §4).
#include <replicate/config_file.hpp>
#include <replicate/flags.hpp>

#include <catch2/catch.hpp>

using namespace kvship::replicate;

TEST_CASE("redacted_summary hides tokens, passwords and address credentials", "[replicate][summary]")
{
    auto cli = parse_command_line(std::vector<std::string>{
        "-consul-token=SECRET-TOKEN-1",
        "-consul-auth=alice:SECRET-PASSWORD-2",
        "-source-token=SECRET-TOKEN-3",
        "-source-addr=https://bob:SECRET-PASSWORD-4@dc1.example:8501/x",
        "-consul-addr=http://carol:SECRET-PASSWORD-5@127.0.0.1:8500",
        "-prefix=vault/@dc1:vault/",
        "-exclude=vault/sys/expire",
    });
    REQUIRE(cli.has_value());
    auto cfg = build_config(*cli, {}, {});
    REQUIRE(cfg.has_value());
    auto const text = redacted_summary(*cfg);
    INFO(text);
    for (auto const* secret :
         {"SECRET-TOKEN-1",
          "SECRET-PASSWORD-2",
          "SECRET-TOKEN-3",
          "SECRET-PASSWORD-4",
          "SECRET-PASSWORD-5",
          "bob",
          "carol"}) {
        CHECK(text.find(secret) == std::string::npos);
    }
    CHECK(text.find(R"(token = "<redacted>")") != std::string::npos);
    CHECK(text.find(R"(password = "<redacted>")") != std::string::npos);
    CHECK(text.find(R"(source_token = "<redacted>")") != std::string::npos);
    CHECK(text.find(R"(address = "http://<redacted>@127.0.0.1:8500")") != std::string::npos);
    CHECK(text.find(R"(source_addr = "https://<redacted>@dc1.example:8501/x")") != std::string::npos);
    // What is not secret is shown.
    CHECK(text.find(R"(username = "alice")") != std::string::npos);
    CHECK(
        text.find(R"(prefix { source = "vault/" datacenter = "dc1" destination = "vault/" })") !=
        std::string::npos
    );
    CHECK(text.find(R"(exclude { source = "vault/sys/expire" })") != std::string::npos);
    CHECK(text.find(R"(max_stale = "2s")") != std::string::npos);
    CHECK(text.find(R"(kill_signal = "SIGINT")") != std::string::npos);
    CHECK(text.find(R"(log_level = "WARN")") != std::string::npos);
}

TEST_CASE("redacted_summary shows unset secrets as empty", "[replicate][summary]")
{
    auto const text = redacted_summary(config{});
    CHECK(text.find(R"(token = "")") != std::string::npos);
    CHECK(text.find("<redacted>") == std::string::npos);
    CHECK(text.find(R"(address = "127.0.0.1:8500")") != std::string::npos);
}

TEST_CASE("redacted_summary: tokens from files and the environment are hidden too", "[replicate][summary]")
{
    auto file = parse_config_text(R"(consul { token = "FILE-SECRET" auth { password = "FILE-PASS" } })");
    REQUIRE(file.has_value());
    auto cli = parse_command_line(std::vector<std::string>{});
    REQUIRE(cli.has_value());
    auto cfg = build_config(*cli, file->layer, {});
    REQUIRE(cfg.has_value());
    auto text = redacted_summary(*cfg);
    CHECK(text.find("FILE-SECRET") == std::string::npos);
    CHECK(text.find("FILE-PASS") == std::string::npos);

    cfg = build_config(*cli, {}, {{"CONSUL_HTTP_TOKEN", "ENV-SECRET"}});
    REQUIRE(cfg.has_value());
    CHECK(cfg->consul.token == "ENV-SECRET");
    text = redacted_summary(*cfg);
    CHECK(text.find("ENV-SECRET") == std::string::npos);
}
