#include <replicate/duration.hpp>
#include <gotext/go_duration.hpp>

#include <variant>

namespace kvship::replicate {

prefixes::result<nanos, std::string> parse_go_duration(std::string_view text)
{
    auto parsed = gotext::parse_go_duration_or_error(text);
    if (auto* error = std::get_if<std::string>(&parsed)) {
        return std::move(*error);
    }
    return std::get<nanos>(parsed);
}

std::string format_go_duration(nanos d)
{
    return gotext::format_go_duration(d);
}

}  // namespace kvship::replicate
