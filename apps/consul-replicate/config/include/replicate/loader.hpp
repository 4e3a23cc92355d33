// The only part of replicate_config that touches the system: reading -config paths and the
// environment. Everything else is pure.
#pragma once

#include <replicate/config.hpp>
#include <replicate/config_file.hpp>

#include <string>
#include <vector>

namespace kvship::replicate {

// Reads each path in order and merges what it finds (compat.md §2.3):
//  * a file is parsed whatever its extension;
//  * a directory is walked recursively in lexical order (Go filepath.Walk) and every file in it
//    is parsed; a symlink to a file is read, a symlink to a directory is an error, as in Go;
//  * a missing path: `missing file/folder: <path>`; a bad file: `from file: <path>: <problem>`.
// All errors are exit 15. Warnings come back in load order.
[[nodiscard]] result<parsed_config> load_config_paths(const std::vector<std::string>& paths);

// The environment variables build_config looks at, read from the process environment.
[[nodiscard]] env_map process_environment();

// The whole start-up sequence for main(): load cli.config_paths, then build_config. Warnings from
// the files are appended to `warnings`.
[[nodiscard]] result<config> load_config(
    const command_line& cli, const env_map& env, std::vector<std::string>& warnings
);

}  // namespace kvship::replicate
