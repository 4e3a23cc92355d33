#include <prefixes/key_map.hpp>

namespace kvship::prefixes {

namespace {

std::optional<std::string> replace_leading(std::string_view from, std::string_view to, std::string_view key)
{
    if (!key.starts_with(from))
        return std::nullopt;
    std::string out;
    out.reserve(to.size() + key.size() - from.size());
    out.append(to);
    out.append(key.substr(from.size()));
    return out;
}

}  // namespace

std::optional<std::string> map_key(
    std::string_view source, std::string_view destination, std::string_view source_key
)
{
    return replace_leading(source, destination, source_key);
}

std::optional<std::string> map_key(const prefix_spec& spec, std::string_view source_key)
{
    return replace_leading(spec.source, spec.destination, source_key);
}

std::optional<std::string> unmap_key(
    std::string_view source, std::string_view destination, std::string_view destination_key
)
{
    return replace_leading(destination, source, destination_key);
}

std::optional<std::string> unmap_key(const prefix_spec& spec, std::string_view destination_key)
{
    return replace_leading(spec.destination, spec.source, destination_key);
}

bool starts_with_split(std::string_view head, std::string_view tail, std::string_view prefix)
{
    if (prefix.size() <= head.size())
        return head.starts_with(prefix);
    return prefix.starts_with(head) && tail.starts_with(prefix.substr(head.size()));
}

bool equals_split(std::string_view head, std::string_view tail, std::string_view text)
{
    return text.size() == head.size() + tail.size() && starts_with_split(head, tail, text);
}

}  // namespace kvship::prefixes
