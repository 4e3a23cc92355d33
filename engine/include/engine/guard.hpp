// The delete guard: a plan that would empty or mostly wipe a destination is held back, as data.
#pragma once

#include <engine/plan.hpp>

#include <cstddef>
#include <optional>

namespace kvship::engine {

// Defaults: refuse when the source turned empty, or when more than 50% of a destination with more
// than 10 managed keys would be deleted. consul-replicate had no guard (#82, #110, #111).
struct guard_params
{
    unsigned max_delete_percent = 50;  // refuse when deletes * 100 > max_delete_percent * destination_keys
    std::size_t min_keys = 10;         // the percentage rule applies only above this many destination keys
    bool allow_empty_source = false;   // operator confirmed: an empty source may empty the destination
    bool allow_mass_delete = false;    // operator confirmed: any share may be deleted
};

// The refusal the guard would give `p`, or nullopt when it may go ahead. Rules, first match wins:
//  * empty_source: no selected source key (stats.selected_keys == 0) and at least one delete,
//    unless allow_empty_source (which then also waives the percentage rule);
//  * mass_delete: stats.destination_keys > min_keys and deletes * 100 > max_delete_percent *
//    destination_keys, unless allow_mass_delete.
// A plan without deletes is never refused.
[[nodiscard]] std::optional<refusal> check_guard(const plan& p, const guard_params& params);

// Applies check_guard. A refused plan keeps its puts (writing what the source does hold never
// loses data), drops every delete, has next_checkpoint = nullopt (the checkpoint must not advance
// past a destination that does not mirror the source) and carries the refusal. Nothing is deleted
// until the operator allows it and a later round plans again. Other plans come back unchanged.
[[nodiscard]] plan guard_plan(plan p, const guard_params& params);

}  // namespace kvship::engine
