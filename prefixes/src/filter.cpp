#include <prefixes/filter.hpp>
#include <prefixes/key_map.hpp>

#include <algorithm>

namespace kvship::prefixes {

bool is_excluded(const key_filter& filter, std::string_view source_key)
{
    return matching_exclude(filter, source_key).has_value();
}

std::optional<std::string_view> matching_exclude(const key_filter& filter, std::string_view source_key)
{
    for (auto const& e : filter.excludes) {
        if (source_key.starts_with(e))
            return std::string_view(e);
    }
    return std::nullopt;
}

bool is_included(const key_filter& filter, std::string_view source_key)
{
    if (filter.includes.empty())
        return true;
    return std::any_of(filter.includes.begin(), filter.includes.end(), [&](auto const& i) {
        return source_key.starts_with(i);
    });
}

bool is_selected(const key_filter& filter, std::string_view source_key)
{
    return is_included(filter, source_key) && !is_excluded(filter, source_key);
}

bool is_excluded(const key_filter& filter, std::string_view head, std::string_view tail)
{
    return std::any_of(filter.excludes.begin(), filter.excludes.end(), [&](auto const& e) {
        return starts_with_split(head, tail, e);
    });
}

bool is_included(const key_filter& filter, std::string_view head, std::string_view tail)
{
    if (filter.includes.empty())
        return true;
    return std::any_of(filter.includes.begin(), filter.includes.end(), [&](auto const& i) {
        return starts_with_split(head, tail, i);
    });
}

bool is_selected(const key_filter& filter, std::string_view head, std::string_view tail)
{
    return is_included(filter, head, tail) && !is_excluded(filter, head, tail);
}

result<std::string, filter_error> parse_exclude(std::string_view text)
{
    bool const blank = std::all_of(text.begin(), text.end(), [](char c) {
        return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
    });
    if (blank)
        return filter_error{"missing exclude"};
    return std::string(text);
}

}  // namespace kvship::prefixes
