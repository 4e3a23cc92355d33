// consul-replicate's exit codes and the error value every parsing and validation step returns.
#pragma once

#include <prefixes/result.hpp>

#include <fmt/format.h>

#include <string>

namespace kvship::replicate {

// consul-replicate v0.4.0's exit codes (cli.go), compat.md §3.7.
enum class exit_code : int
{
    ok = 0,
    error = 11,        // generic (defined, unused by v0.4.0)
    interrupt = 12,    // the kill signal arrived
    parse_flags = 13,  // bad command line
    runner = 14,       // replication failed
    config = 15,       // config file, merge or validation problem
};

// Why the configuration was refused: a message that names the problem (Go's own text where
// consul-replicate has one) and the exit code the binary must end with.
struct config_error
{
    std::string message;
    exit_code code = exit_code::config;

    bool operator==(const config_error&) const = default;
};

template <class T>
using result = prefixes::result<T, config_error>;

[[nodiscard]] inline config_error flag_error(std::string message)
{
    return config_error{std::move(message), exit_code::parse_flags};
}

[[nodiscard]] inline config_error file_error(std::string message)
{
    return config_error{std::move(message), exit_code::config};
}

}  // namespace kvship::replicate

template <>
struct fmt::formatter<kvship::replicate::config_error>
{
    constexpr auto parse(format_parse_context& ctx) { return ctx.begin(); }

    template <class FormatContext>
    auto format(const kvship::replicate::config_error& err, FormatContext& ctx) const
    {
        return fmt::format_to(ctx.out(), "{} (exit {})", err.message, static_cast<int>(err.code));
    }
};
