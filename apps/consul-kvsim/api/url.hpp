// URL handling the way Go's net/http and net/url do it, so the sim cleans, decodes and splits request
// targets exactly as Consul's HTTP server does (shared/docs/consul-api.md §0-§1). Pure functions.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace kvship::kvsim::api {

// url.Values: every value of every key; a key given without `=` has one empty value.
class query_params
{
public:
    // Go's url.ParseQuery: pairs split on '&', '+' is a space, pairs that do not decode (bad escape, or a
    // ';' in them) are skipped.
    static query_params parse(std::string_view raw_query);

    [[nodiscard]] bool has(std::string_view key) const { return values_.find(key) != values_.end(); }

    // The first value of `key`, or "" (url.Values.Get).
    [[nodiscard]] std::string get(std::string_view key) const;
    // Every value of `key`, in order (url.Values[key]).
    [[nodiscard]] std::vector<std::string> all(std::string_view key) const;
    // url.Values.Encode: keys sorted, each pair query-escaped, joined by '&'.
    [[nodiscard]] std::string encode() const;

    [[nodiscard]] bool empty() const { return values_.empty(); }

private:
    std::map<std::string, std::vector<std::string>, std::less<>> values_;
};

// A request target split as Go's url.ParseRequestURI does: the decoded path and the raw query.
struct request_target
{
    std::string path;       // percent-decoded ('+' stays '+')
    std::string raw_query;  // after the first '?', undecoded
};

// nullopt when the path holds a bad %-escape (Go's server answers 400 then).
[[nodiscard]] std::optional<request_target> split_target(std::string_view target);

// Go's url.PathUnescape / url.QueryUnescape; nullopt on a malformed escape.
[[nodiscard]] std::optional<std::string> path_unescape(std::string_view s);
[[nodiscard]] std::optional<std::string> query_unescape(std::string_view s);
// url.QueryEscape and the path escaping of url.URL.String().
[[nodiscard]] std::string query_escape(std::string_view s);
[[nodiscard]] std::string path_escape(std::string_view s);

// http.ServeMux's cleanPath: path.Clean plus the trailing slash kept.
[[nodiscard]] std::string clean_path(std::string_view p);

// go-cleanhttp's PrintablePathCheckHandler: false when a rune of the path is not printable (unicode.IsPrint).
[[nodiscard]] bool is_printable_path(std::string_view path);

// One UTF-8 rune at s[i] and its length; (U+FFFD, 1) for an invalid byte, as Go's range over a string.
[[nodiscard]] std::pair<char32_t, std::size_t> decode_rune(std::string_view s, std::size_t i);

// strconv.ParseUint(s, 10, 64); the error is Go's text, e.g. `strconv.ParseUint: parsing "x": invalid
// syntax`.
[[nodiscard]] std::variant<std::uint64_t, std::string> parse_uint_go(std::string_view s);

}  // namespace kvship::kvsim::api
