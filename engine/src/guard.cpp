#include <engine/guard.hpp>

#include <fmt/format.h>

namespace kvship::engine {

std::optional<refusal> check_guard(const plan& p, const guard_params& params)
{
    std::size_t const deletes = p.deletes.size();
    std::size_t const total = p.stats.destination_keys;
    if (deletes == 0)
        return std::nullopt;

    if (p.stats.selected_keys == 0) {
        // An allowed empty source is a confirmed wipe; the percentage rule would only repeat it.
        if (params.allow_empty_source)
            return std::nullopt;
        return refusal{
            refusal_reason::empty_source,
            deletes,
            total,
            fmt::format(
                "source has no keys but {} of {} destination keys would be deleted; "
                "allow an empty source to proceed",
                deletes,
                total
            ),
        };
    }

    // Widen before multiplying so huge counts cannot wrap.
    auto const lhs = static_cast<unsigned long long>(deletes) * 100ULL;
    auto const rhs =
        static_cast<unsigned long long>(params.max_delete_percent) * static_cast<unsigned long long>(total);
    if (total > params.min_keys && lhs > rhs && !params.allow_mass_delete) {
        return refusal{
            refusal_reason::mass_delete,
            deletes,
            total,
            fmt::format(
                "{} of {} destination keys would be deleted, more than the {}% allowed; "
                "allow mass deletes to proceed",
                deletes,
                total,
                params.max_delete_percent
            ),
        };
    }
    return std::nullopt;
}

plan guard_plan(plan p, const guard_params& params)
{
    auto verdict = check_guard(p, params);
    if (!verdict)
        return p;
    p.deletes.clear();
    p.next_checkpoint.reset();
    p.refused = std::move(verdict);
    return p;
}

}  // namespace kvship::engine
