// Data the engine decides on: KV entries, snapshots of a prefix, and consul-replicate's checkpoint.
#pragma once

#include <prefixes/result.hpp>

#include <fmt/format.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace kvship::engine {

using prefixes::result;

// consul/api's flag values that mark lock and semaphore keys (api.LockFlagValue / SemaphoreFlagValue).
inline constexpr std::uint64_t lock_flag_value = 0x2ddccbc058a50c18ULL;
inline constexpr std::uint64_t semaphore_flag_value = 0xe0f69a2baa414de0ULL;

// One KV pair as Consul lists it. `value` is the raw (base64-decoded) bytes.
struct kv_entry
{
    std::string key;
    std::string value;
    std::uint64_t flags = 0;
    std::uint64_t modify_index = 0;
    std::optional<std::string> session;

    bool operator==(const kv_entry&) const = default;
};

// A prefix listing: the X-Consul-Index of the read plus its entries. Producers keep entries sorted
// by key with unique keys (sort_entries() does it); the engine tolerates other input (see make_plan).
struct snapshot
{
    std::uint64_t index = 0;
    std::vector<kv_entry> entries;

    bool operator==(const snapshot&) const = default;
};

// consul-replicate's status record, stored as JSON in the destination KV at the pair's status key:
//   {
//     "LastReplicated": <source X-Consul-Index>,
//     "Source": "<source prefix, no dc>",
//     "Destination": "<destination prefix>"
//   }
// (Go json.MarshalIndent, 2-space indent, this field order, no trailing newline; encoded by transport).
// A missing key means last_replicated = 0. kvship's gated runs add two fields after those three
// (consul-replicate ignores them): "SourceDatacenter" (the DC read from) and "MirroredIndex" (every
// source key with a ModifyIndex at or below it is in the destination; the index of the last full
// source read, which grouped rounds keep as their LastReplicated too). Written only when
// source_datacenter is set, so ungated records stay byte-identical to consul-replicate's.
struct checkpoint
{
    std::uint64_t last_replicated = 0;
    std::string source;
    std::string destination;
    std::string source_datacenter{};
    std::uint64_t mirrored_index = 0;

    bool operator==(const checkpoint&) const = default;
};

// Sorts by key; of duplicate keys the first one in input order is kept.
void sort_entries(std::vector<kv_entry>& entries);

// True when both hold the same keys with the same value, flags, ModifyIndex and session (the
// index of the read itself is ignored): consul-template's "new index but deep-equal data" test,
// under which a wake-up is not an event.
[[nodiscard]] bool same_entries(const snapshot& a, const snapshot& b);

}  // namespace kvship::engine

template <>
struct fmt::formatter<kvship::engine::kv_entry>
{
    constexpr auto parse(format_parse_context& ctx) { return ctx.begin(); }

    template <class FormatContext>
    auto format(const kvship::engine::kv_entry& e, FormatContext& ctx) const
    {
        auto out = fmt::format_to(
            ctx.out(),
            "{{key={:?} value={:?} flags={} modify_index={}",
            e.key,
            e.value,
            e.flags,
            e.modify_index
        );
        if (e.session)
            out = fmt::format_to(out, " session={:?}", *e.session);
        return fmt::format_to(out, "}}");
    }
};

template <>
struct fmt::formatter<kvship::engine::snapshot>
{
    constexpr auto parse(format_parse_context& ctx) { return ctx.begin(); }

    template <class FormatContext>
    auto format(const kvship::engine::snapshot& s, FormatContext& ctx) const
    {
        auto out = fmt::format_to(ctx.out(), "snapshot{{index={} entries=[", s.index);
        for (std::size_t i = 0; i < s.entries.size(); ++i)
            out = fmt::format_to(out, "{}{}", i == 0 ? "" : ", ", s.entries[i]);
        return fmt::format_to(out, "]}}");
    }
};

template <>
struct fmt::formatter<kvship::engine::checkpoint>
{
    constexpr auto parse(format_parse_context& ctx) { return ctx.begin(); }

    template <class FormatContext>
    auto format(const kvship::engine::checkpoint& c, FormatContext& ctx) const
    {
        auto out = fmt::format_to(
            ctx.out(),
            "checkpoint{{last_replicated={} source={:?} destination={:?}",
            c.last_replicated,
            c.source,
            c.destination
        );
        if (!c.source_datacenter.empty())
            out = fmt::format_to(out, " source_dc={:?} mirrored={}", c.source_datacenter, c.mirrored_index);
        return fmt::format_to(out, "}}");
    }
};
