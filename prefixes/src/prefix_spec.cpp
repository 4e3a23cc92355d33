#include <prefixes/prefix_spec.hpp>
#include <gotext/go_string.hpp>

#include <algorithm>

namespace kvship::prefixes {

namespace {

bool is_go_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

bool is_dc_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '.' || c == '-';
}

struct source_match
{
    std::string_view prefix;
    std::optional<std::string_view> dc;
};

// `prefix(@dc)?` with prefix = [^@]+ and dc = [A-Za-z0-9_.-]+, anchored at both ends.
std::optional<source_match> match_body(std::string_view s)
{
    auto const at = s.find('@');
    std::string_view const prefix = s.substr(0, at);
    if (prefix.empty())
        return std::nullopt;
    if (at == std::string_view::npos)
        return source_match{prefix, std::nullopt};
    std::string_view const dc = s.substr(at + 1);
    if (dc.empty() || !std::all_of(dc.begin(), dc.end(), is_dc_char))
        return std::nullopt;
    return source_match{prefix, dc};
}

// `\A/?body\z`: the optional `/` is greedy, so try with it consumed first, then without.
std::optional<source_match> match_source(std::string_view s)
{
    if (!s.empty() && s.front() == '/') {
        if (auto m = match_body(s.substr(1)))
            return m;
    }
    return match_body(s);
}

prefix_error make_error(prefix_errc code, std::string message)
{
    return prefix_error{code, std::move(message)};
}

}  // namespace

result<prefix_spec, prefix_error> parse_prefix_spec(std::string_view text, parse_options options)
{
    if (std::all_of(text.begin(), text.end(), is_go_space))
        return make_error(prefix_errc::missing_prefix, "missing prefix");

    auto const colon = text.find(':');
    std::string_view const source = text.substr(0, colon);
    std::string_view const destination =
        colon == std::string_view::npos ? std::string_view{} : text.substr(colon + 1);

    auto const m = match_source(source);
    if (!m)
        return make_error(prefix_errc::invalid_source_format, "invalid source format: " + gotext::go_quote(source));
    if (!m->dc && options.require_datacenter)
        return make_error(prefix_errc::missing_datacenter, "missing datacenter");

    prefix_spec spec;
    spec.source = std::string(m->prefix);
    if (m->dc)
        spec.datacenter = std::string(*m->dc);
    spec.destination = destination.empty() ? spec.source : std::string(destination);
    return spec;
}

result<prefix_spec, prefix_error> parse_prefix_block(
    std::string_view source, std::string_view datacenter, std::string_view destination, parse_options options
)
{
    std::string text(source);
    if (!datacenter.empty()) {
        text += '@';
        text += datacenter;
    }
    if (!destination.empty()) {
        text += ':';
        text += destination;
    }
    return parse_prefix_spec(text, options);
}

std::string to_string(const prefix_spec& spec)
{
    std::string out = spec.source;
    if (spec.datacenter) {
        out += '@';
        out += *spec.datacenter;
    }
    out += ':';
    out += spec.destination;
    return out;
}

}  // namespace kvship::prefixes
