#include <prefixes/key_map.hpp>
#include <gotext/go_string.hpp>
#include <prefixes/rule.hpp>
#include <prefixes/status_key.hpp>

#include <fmt/format.h>

#include <algorithm>

namespace kvship::prefixes {

rule make_rule(prefix_spec spec, key_filter filter, std::string_view status_dir)
{
    rule r;
    r.status_key = status_key(status_dir, spec);
    r.spec = std::move(spec);
    r.filter = std::move(filter);
    r.status_prefix = std::string(trim_status_dir(status_dir)) + "/";
    return r;
}

std::vector<rule> make_rules(
    const std::vector<prefix_spec>& specs, const key_filter& filter, std::string_view status_dir
)
{
    std::vector<rule> rules;
    rules.reserve(specs.size());
    for (auto const& spec : specs) {
        rule r = make_rule(spec, filter, status_dir);
        for (auto const& other : specs) {
            if (other.destination.size() > spec.destination.size() &&
                std::string_view(other.destination).starts_with(spec.destination)) {
                r.protected_prefixes.push_back(other.destination);
            }
        }
        std::sort(r.protected_prefixes.begin(), r.protected_prefixes.end());
        r.protected_prefixes.erase(
            std::unique(r.protected_prefixes.begin(), r.protected_prefixes.end()), r.protected_prefixes.end()
        );
        rules.push_back(std::move(r));
    }
    return rules;
}

bool is_status_key(const rule& r, std::string_view destination_key)
{
    // Empty fields (a hand-built rule) protect nothing rather than everything.
    if (!r.status_key.empty() && destination_key == r.status_key)
        return true;
    return !r.status_prefix.empty() && destination_key.starts_with(r.status_prefix);
}

bool is_protected(const rule& r, std::string_view destination_key)
{
    if (is_status_key(r, destination_key))
        return true;
    return std::any_of(r.protected_prefixes.begin(), r.protected_prefixes.end(), [&](auto const& p) {
        return !p.empty() && destination_key.starts_with(p);
    });
}

bool is_status_key(const rule& r, std::string_view head, std::string_view tail)
{
    if (!r.status_key.empty() && equals_split(head, tail, r.status_key))
        return true;
    return !r.status_prefix.empty() && starts_with_split(head, tail, r.status_prefix);
}

bool is_protected(const rule& r, std::string_view head, std::string_view tail)
{
    if (is_status_key(r, head, tail))
        return true;
    return std::any_of(r.protected_prefixes.begin(), r.protected_prefixes.end(), [&](auto const& p) {
        return !p.empty() && starts_with_split(head, tail, p);
    });
}

std::vector<std::string> check_pairs(const std::vector<prefix_spec>& specs)
{
    std::vector<std::string> problems;
    for (std::size_t i = 0; i < specs.size(); ++i) {
        for (std::size_t j = i + 1; j < specs.size(); ++j) {
            if (specs[i].destination == specs[j].destination) {
                problems.push_back(fmt::format(
                    "prefixes {} and {} both replicate into destination {}",
                    gotext::go_quote(to_string(specs[i])),
                    gotext::go_quote(to_string(specs[j])),
                    gotext::go_quote(specs[i].destination)
                ));
            }
        }
    }
    return problems;
}

}  // namespace kvship::prefixes
