#include <engine/index.hpp>

#include <algorithm>

namespace kvship::engine {

index_step next_wait_index(std::uint64_t prev, std::uint64_t returned)
{
    returned = std::max<std::uint64_t>(returned, 1);
    if (prev == 0)
        return {returned, index_change::first};
    if (returned < prev)
        return {0, index_change::reset};
    if (returned == prev)
        return {prev, index_change::unchanged};
    return {returned, index_change::advanced};
}

bool is_new_data(const index_step& step)
{
    return step.change == index_change::first || step.change == index_change::advanced;
}

std::string_view to_string(index_change change)
{
    switch (change) {
        case index_change::first:
            return "first";
        case index_change::unchanged:
            return "unchanged";
        case index_change::advanced:
            return "advanced";
        case index_change::reset:
            return "reset";
    }
    return "unknown";
}

}  // namespace kvship::engine
