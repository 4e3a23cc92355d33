#include <prefixes/status_key.hpp>

namespace kvship::prefixes {

std::string_view trim_status_dir(std::string_view status_dir)
{
    while (!status_dir.empty() && status_dir.back() == '/') status_dir.remove_suffix(1);
    return status_dir;
}

std::string status_key(std::string_view status_dir, std::string_view source, std::string_view destination)
{
    std::string plain;
    plain.reserve(source.size() + 1 + destination.size());
    plain.append(source);
    plain.push_back('-');
    plain.append(destination);

    std::string out(trim_status_dir(status_dir));
    out.push_back('/');
    out += md5_hex(plain);
    return out;
}

std::string status_key(std::string_view status_dir, const prefix_spec& spec)
{
    return status_key(status_dir, spec.source, spec.destination);
}

}  // namespace kvship::prefixes
