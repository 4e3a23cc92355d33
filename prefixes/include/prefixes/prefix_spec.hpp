// Parsing consul-replicate's `-prefix "src@dc[:dest]"` form (compat.md §1.3) into a prefix_spec.
#pragma once

#include <prefixes/result.hpp>

#include <fmt/format.h>

#include <optional>
#include <string>
#include <string_view>

namespace kvship::prefixes {

// One replication pair: keys under `source` in `datacenter` are copied under `destination`.
// `source` never starts with the one `/` the parser strips; `destination` is kept verbatim.
struct prefix_spec
{
    std::string source;
    std::optional<std::string> datacenter;
    std::string destination;

    bool operator==(const prefix_spec&) const = default;
};

enum class prefix_errc
{
    missing_prefix,         // empty or blank input
    missing_datacenter,     // no `@dc` while one is required
    invalid_source_format,  // the source part does not match consul-template's kv.list syntax
};

// Why a prefix did not parse. `message` is consul-replicate's own text (`missing prefix`,
// `missing datacenter`, `invalid source format: "<src>"`), so a CLI can print
// `invalid value "<arg>" for flag -prefix: <message>` exactly as v0.4.0 does.
struct prefix_error
{
    prefix_errc code;
    std::string message;

    bool operator==(const prefix_error&) const = default;
};

struct parse_options
{
    // consul-replicate requires `@dc`. The leader gate may allow leaving it out; the spec then has
    // no datacenter and the caller fills it in.
    bool require_datacenter = true;
};

// Parses `src@dc[:dest]` as consul-replicate v0.4.0 does (consul-template v0.19 kv.list syntax):
//  * split once at the first `:` (a source never contains `:`, a destination may);
//  * source = optional single leading `/` (dropped), then one or more characters other than `@`,
//    then optional `@dc` with dc made of [A-Za-z0-9_.-]; `?` is an ordinary prefix character;
//  * an empty destination means "same as the source prefix"; a destination is not validated.
// Errors: blank input -> missing_prefix; no dc (when required) -> missing_datacenter; anything
// else that does not match -> invalid_source_format. Note that `/@dc` parses to source `/`, as in Go.
[[nodiscard]] result<prefix_spec, prefix_error> parse_prefix_spec(
    std::string_view text, parse_options options = {}
);

// The config-file block form `prefix { source = "..." datacenter = "..." destination = "..." }`:
// consul-replicate rebuilds `source[@datacenter][:destination]` and parses that, so a `source`
// that already has `@dc` plus a `datacenter` fails with invalid_source_format. Empty strings mean
// "not set".
[[nodiscard]] result<prefix_spec, prefix_error> parse_prefix_block(
    std::string_view source,
    std::string_view datacenter,
    std::string_view destination,
    parse_options options = {}
);

// Canonical text of a spec: `source[@dc]:destination`. Parsing it gives the same spec back
// (unless the source is `/`).
[[nodiscard]] std::string to_string(const prefix_spec& spec);

}  // namespace kvship::prefixes

template <>
struct fmt::formatter<kvship::prefixes::prefix_spec>
{
    constexpr auto parse(format_parse_context& ctx) { return ctx.begin(); }

    template <class FormatContext>
    auto format(const kvship::prefixes::prefix_spec& spec, FormatContext& ctx) const
    {
        return fmt::format_to(ctx.out(), "{}", kvship::prefixes::to_string(spec));
    }
};

template <>
struct fmt::formatter<kvship::prefixes::prefix_error>
{
    constexpr auto parse(format_parse_context& ctx) { return ctx.begin(); }

    template <class FormatContext>
    auto format(const kvship::prefixes::prefix_error& err, FormatContext& ctx) const
    {
        return fmt::format_to(ctx.out(), "{}", err.message);
    }
};
