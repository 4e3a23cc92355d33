// Tiny builders and printers for engine tests.
#pragma once

#include <engine/batch.hpp>
#include <engine/plan.hpp>
#include <engine/types.hpp>
#include <prefixes/rule.hpp>
#include <prefixes/status_key.hpp>

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <vector>

namespace kvship::engine::test {

inline kv_entry kv(
    std::string key, std::string value, std::uint64_t modify_index = 1, std::uint64_t flags = 0
)
{
    return kv_entry{std::move(key), std::move(value), flags, modify_index, std::nullopt};
}

inline kv_entry with_session(kv_entry e, std::string session)
{
    e.session = std::move(session);
    return e;
}

inline snapshot snap(std::uint64_t index, std::vector<kv_entry> entries)
{
    return snapshot{index, std::move(entries)};
}

inline prefixes::rule pair_rule(
    std::string source,
    std::string destination,
    std::vector<std::string> excludes = {},
    std::vector<std::string> includes = {}
)
{
    return prefixes::make_rule(
        prefixes::prefix_spec{std::move(source), "dc1", std::move(destination)},
        prefixes::key_filter{std::move(excludes), std::move(includes)},
        prefixes::default_status_dir
    );
}

inline put_op put(std::string key, std::string value, std::uint64_t source_index = 1, std::uint64_t flags = 0)
{
    return put_op{std::move(key), std::move(value), flags, source_index};
}

inline std::vector<std::string> keys_of(const std::vector<delete_op>& deletes)
{
    std::vector<std::string> out;
    for (auto const& d : deletes) out.push_back(d.key);
    return out;
}

inline std::vector<std::string> keys_of(const std::vector<put_op>& puts)
{
    std::vector<std::string> out;
    for (auto const& p : puts) out.push_back(p.key);
    return out;
}

}  // namespace kvship::engine::test

// Readable failure output for Catch2 through the fmt formatters.
namespace Catch {

#define KVSHIP_FMT_STRING_MAKER(type)                                              \
    template <>                                                                    \
    struct StringMaker<type>                                                       \
    {                                                                              \
        static std::string convert(const type& v) { return fmt::format("{}", v); } \
    };

KVSHIP_FMT_STRING_MAKER(kvship::engine::kv_entry)
KVSHIP_FMT_STRING_MAKER(kvship::engine::snapshot)
KVSHIP_FMT_STRING_MAKER(kvship::engine::checkpoint)
KVSHIP_FMT_STRING_MAKER(kvship::engine::put_op)
KVSHIP_FMT_STRING_MAKER(kvship::engine::delete_op)
KVSHIP_FMT_STRING_MAKER(kvship::engine::warning)
KVSHIP_FMT_STRING_MAKER(kvship::engine::refusal)
KVSHIP_FMT_STRING_MAKER(kvship::engine::plan)
KVSHIP_FMT_STRING_MAKER(kvship::engine::txn_op)
KVSHIP_FMT_STRING_MAKER(kvship::engine::batch_error)

#undef KVSHIP_FMT_STRING_MAKER

}  // namespace Catch
