// File and environment access for the configuration; the rest of the library is pure.
#include <replicate/loader.hpp>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <system_error>

namespace kvship::replicate {

namespace {

namespace fs = std::filesystem;

result<parsed_config> load_file(const fs::path& path)
{
    std::string const shown = path.string();
    std::error_code ec;
    if (fs::is_directory(path, ec))
        return file_error("from file: " + shown + ": read " + shown + ": is a directory");
    std::ifstream in(path, std::ios::binary);
    if (!in)
        return file_error("from file: " + shown + ": cannot open file");
    std::ostringstream buffer;
    buffer << in.rdbuf();
    if (in.bad())
        return file_error("from file: " + shown + ": read error");
    auto parsed = parse_config_text(buffer.str());
    if (!parsed)
        return file_error("from file: " + shown + ": " + parsed.error().message);
    return parsed;
}

void merge(parsed_config& into, parsed_config&& from)
{
    merge_into(into.layer, from.layer);
    for (auto& w : from.warnings) into.warnings.push_back(std::move(w));
}

// filepath.Walk: entries of each directory in lexical order, depth first; a symlink is not
// followed into (it is read as a file).
std::optional<config_error> walk(const fs::path& dir, parsed_config& out)
{
    std::error_code ec;
    std::vector<fs::path> entries;
    for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec))
        entries.push_back(it->path());
    if (ec)
        return file_error("failed listing dir: " + dir.string() + ": " + ec.message());
    std::sort(entries.begin(), entries.end(), [](const fs::path& a, const fs::path& b) {
        return a.filename().string() < b.filename().string();
    });
    for (auto const& entry : entries) {
        auto const status = fs::symlink_status(entry, ec);
        if (ec)
            return file_error("walk error: " + entry.string() + ": " + ec.message());
        if (fs::is_directory(status)) {
            if (auto err = walk(entry, out))
                return err;
            continue;
        }
        auto parsed = load_file(entry);
        if (!parsed)
            return parsed.error();
        merge(out, std::move(parsed).value());
    }
    return std::nullopt;
}

}  // namespace

result<parsed_config> load_config_paths(const std::vector<std::string>& paths)
{
    parsed_config all;
    for (auto const& p : paths) {
        fs::path const path(p);
        std::error_code ec;
        auto const status = fs::status(path, ec);
        if (!fs::exists(status))
            return file_error("missing file/folder: " + p);
        if (fs::is_directory(status)) {
            if (auto err = walk(path, all))
                return *err;
        } else if (fs::is_regular_file(status)) {
            auto parsed = load_file(path);
            if (!parsed)
                return parsed.error();
            merge(all, std::move(parsed).value());
        } else {
            return file_error("unknown filetype: " + p);
        }
    }
    return all;
}

env_map process_environment()
{
    env_map env;
    for (char const* name :
         {"CONSUL_HTTP_ADDR", "CONSUL_TOKEN", "CONSUL_HTTP_TOKEN", "CR_LOG", "CONSUL_REPLICATE_LOG"}) {
        if (char const* v = std::getenv(name))
            env.emplace(name, v);
    }
    return env;
}

result<config> load_config(const command_line& cli, const env_map& env, std::vector<std::string>& warnings)
{
    auto files = load_config_paths(cli.config_paths);
    if (!files)
        return files.error();
    for (auto const& w : files->warnings) warnings.push_back(w);
    return build_config(cli, files->layer, env);
}

}  // namespace kvship::replicate
