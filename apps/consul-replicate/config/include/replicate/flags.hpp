// consul-replicate's command line, parsed with Go `flag` semantics (compat.md §1).
#pragma once

#include <replicate/config.hpp>

#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace kvship::replicate {

// What kind of value a flag takes; `boolean` flags may be given bare (`-once`).
enum class flag_kind
{
    string,
    boolean,
    duration,
    integer,
};

// One entry of the flag table (for usage text, docs and tests).
struct flag_info
{
    std::string_view name;  // without the dash
    flag_kind kind = flag_kind::string;
    std::string_view replacement{};  // deprecated alias: the flag to use instead; else empty
    bool kvship = false;             // a kvship addition, not in consul-replicate v0.4.0
};

// Every flag the binary accepts, aliases included, in usage order.
[[nodiscard]] std::span<const flag_info> flag_table();

// Parses argv[1..] as Go's flag.Parse with ContinueOnError does for consul-replicate v0.4.0:
//  * `-f v`, `-f=v`, `--f=v`, `--f v`; bare booleans (`-once`, `-once=false`); `-once false`
//    leaves `false` as an argument; `--` ends the flags; `-` alone is an argument;
//  * -config, -prefix and -exclude accumulate, every other flag: the last one wins;
//  * -h / -help (with or without a value) stop parsing and set `help`;
//  * deprecated aliases work and add their WARN text to `warnings` (`-token is now -consul-token`);
//    -retry=<dur> sets both retry backoff and max backoff; -ssl-key is not defined (as v0.4.0).
// Errors carry exit 13 and Go's text:
//   `flag provided but not defined: -foo`, `flag needs an argument: -prefix`,
//   `bad flag syntax: ---x`, `invalid value "x" for flag -prefix: missing datacenter`,
//   `invalid boolean value "x" for -consul-ssl: strconv.ParseBool: parsing "x": invalid syntax`,
//   `invalid value "9999999999" for flag -consul-retry-attempts: strconv.ParseInt: parsing
//   "9999999999": value out of range`, `cli: extra argument(s): ["foo"]`.
[[nodiscard]] result<command_line> parse_command_line(std::span<const std::string> args);

[[nodiscard]] inline result<command_line> parse_command_line(const std::vector<std::string>& args)
{
    return parse_command_line(std::span<const std::string>(args.data(), args.size()));
}

// The -h text (our own wording), starting `Usage: consul-replicate [options]`.
[[nodiscard]] std::string usage_text();

// `consul-replicate v0.4.0 (<revision>)`, what -v prints on stderr. The first two words stay
// v0.4.0's so scripts that parse them keep working; put kvship's own version in `revision`.
[[nodiscard]] std::string version_text(std::string_view revision);

}  // namespace kvship::replicate
