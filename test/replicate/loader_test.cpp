// -config paths: files, directories (recursive, lexical order), missing paths, symlinks.
#include <replicate/flags.hpp>
#include <replicate/loader.hpp>

#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <random>

using namespace kvship::replicate;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

// A fresh directory under the system temp dir, removed at the end of the test.
class temp_dir
{
public:
    temp_dir()
    {
        std::random_device rd;
        path_ = fs::temp_directory_path() /
                ("kvship-replicate-config-" + std::to_string(rd()) + std::to_string(rd()));
        fs::create_directories(path_);
    }

    ~temp_dir()
    {
        std::error_code ec;
        fs::remove_all(path_, ec);
    }

    temp_dir(const temp_dir&) = delete;
    temp_dir& operator=(const temp_dir&) = delete;

    fs::path write(const std::string& relative, std::string_view text) const
    {
        fs::path const p = path_ / relative;
        fs::create_directories(p.parent_path());
        std::ofstream(p, std::ios::binary) << text;
        return p;
    }

    const fs::path& path() const { return path_; }

private:
    fs::path path_;
};

}  // namespace

TEST_CASE("a single file, whatever its extension", "[replicate][loader]")
{
    temp_dir dir;
    auto const p = dir.write("replicate.conf", R"(prefix = "a@dc1")");
    auto r = load_config_paths({p.string()});
    REQUIRE(r.has_value());
    REQUIRE(r->layer.prefixes.size() == 1);
    CHECK(r->layer.prefixes[0].source == "a");
}

TEST_CASE("a directory: every file, recursively, in lexical order", "[replicate][loader]")
{
    temp_dir dir;
    dir.write("b.json", R"({"log_level": "info", "prefix": "b@dc1", "max_stale": "2s"})");
    dir.write("a.hcl", R"(log_level = "debug"
prefix = "a@dc1")");
    dir.write("a/z.txt", R"(prefix = "az@dc1"
max_stale = "9s")");
    dir.write("c/d/e", R"({"prefix": "cde@dc1"})");
    auto r = load_config_paths({dir.path().string()});
    if (!r)
        FAIL(r.error().message);
    std::vector<std::string> sources;
    for (auto const& p : r->layer.prefixes) sources.push_back(p.source);
    // filepath.Walk order: "a" (dir) < "a.hcl" < "b.json" < "c" (dir)
    CHECK(sources == std::vector<std::string>{"az", "a", "b", "cde"});
    CHECK(r->layer.log_level == "info");
    CHECK(r->layer.max_stale == nanos(2s));
}

TEST_CASE("paths merge in command-line order - the CLI wins", "[replicate][loader]")
{
    temp_dir dir;
    auto const one =
        dir.write("one.json", R"({"pid_file": "/one", "status_dir": "st/one", "prefix": "a@dc1"})");
    auto const two = dir.write("two.json", R"({"pid_file": "/two", "prefix": "b@dc1"})");
    auto cli = parse_command_line(std::vector<std::string>{
        "-config", one.string(), "-config=" + two.string(), "-prefix=c@dc1", "-pid-file=/cli"});
    REQUIRE(cli.has_value());
    std::vector<std::string> warnings;
    auto cfg = load_config(*cli, {}, warnings);
    if (!cfg)
        FAIL(cfg.error().message);
    CHECK(cfg->pid_file == "/cli");
    CHECK(cfg->status_dir == "st/one");  // #85: the file value holds
    REQUIRE(cfg->prefixes.size() == 3);
    CHECK(cfg->prefixes[0].source == "a");
    CHECK(cfg->prefixes[2].source == "c");
    CHECK(warnings.empty());
}

TEST_CASE("loader errors exit 15 and name the path", "[replicate][loader]")
{
    temp_dir dir;
    auto const missing = (dir.path() / "nope").string();
    auto r = load_config_paths({missing});
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().message == "missing file/folder: " + missing);
    CHECK(r.error().code == exit_code::config);

    auto const bad = dir.write("bad.json", R"({"foo": 1})");
    r = load_config_paths({bad.string()});
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().message == "from file: " + bad.string() + ": '' has invalid keys: foo");
    CHECK(r.error().code == exit_code::config);

    // A bad file inside a directory stops the walk.
    temp_dir tree;
    tree.write("a.json", R"({"prefix": "a@dc1"})");
    auto const broken = tree.write("b/c.hcl", "prefix = ");
    r = load_config_paths({tree.path().string()});
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().message.starts_with("from file: " + broken.string() + ": error decoding config:"));

    // The load error wins over -version, as in v0.4.0: load_config fails before anything else.
    auto cli = parse_command_line(std::vector<std::string>{"-v", "-config=" + missing});
    REQUIRE(cli.has_value());
    std::vector<std::string> warnings;
    auto cfg = load_config(*cli, {}, warnings);
    REQUIRE_FALSE(cfg.has_value());
    CHECK(cfg.error().code == exit_code::config);
}

TEST_CASE("symlinks: a link to a file is read, a link to a directory is an error", "[replicate][loader]")
{
    temp_dir target;
    auto const real = target.write("real.json", R"({"prefix": "s@dc1"})");
    temp_dir dir;
    fs::create_symlink(real, dir.path() / "link.json");
    auto r = load_config_paths({dir.path().string()});
    REQUIRE(r.has_value());
    CHECK(r->layer.prefixes.size() == 1);

    temp_dir dir2;
    fs::create_directory_symlink(target.path(), dir2.path() / "linked-dir");
    r = load_config_paths({dir2.path().string()});
    REQUIRE_FALSE(r.has_value());
    auto const shown = (dir2.path() / "linked-dir").string();
    CHECK(r.error().message == "from file: " + shown + ": read " + shown + ": is a directory");

    // Given directly on the command line, a link to a directory is followed.
    r = load_config_paths({(dir2.path() / "linked-dir").string()});
    REQUIRE(r.has_value());
    CHECK(r->layer.prefixes.size() == 1);
}

TEST_CASE("deprecation warnings come back in load order", "[replicate][loader]")
{
    temp_dir dir;
    dir.write("1.json", R"({"token": "t"})");
    dir.write("2.json", R"({"consul": "a:1"})");
    auto r = load_config_paths({dir.path().string()});
    REQUIRE(r.has_value());
    REQUIRE(r->warnings.size() == 2);
    CHECK(r->warnings[0].starts_with("token is now"));
    CHECK(r->warnings[1].starts_with("consul now accepts"));
    CHECK(r->layer.consul.token == "t");
    CHECK(r->layer.consul.address == "a:1");
}

TEST_CASE("process_environment reads only the variables build_config uses", "[replicate][loader][env]")
{
    auto const env = process_environment();
    for (auto const& [k, v] : env) {
        bool const known = k == "CONSUL_HTTP_ADDR" || k == "CONSUL_TOKEN" || k == "CONSUL_HTTP_TOKEN" ||
                           k == "CR_LOG" || k == "CONSUL_REPLICATE_LOG";
        CHECK(known);
    }
}
