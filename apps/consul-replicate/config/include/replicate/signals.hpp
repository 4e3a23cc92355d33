// Signal names as consul-template parses them: `SIGxxx`, case-insensitive; SIGNULL disables.
#pragma once

#include <prefixes/result.hpp>

#include <string>
#include <string_view>
#include <vector>

namespace kvship::replicate {

// A signal chosen by name. number == 0 is SIGNULL: the action is disabled (never triggered).
struct signal_spec
{
    std::string name;  // canonical upper-case name, e.g. "SIGINT"
    int number = 0;

    [[nodiscard]] bool disabled() const noexcept { return number == 0; }

    bool operator==(const signal_spec&) const = default;
};

// The names consul-template accepts on Unix, sorted: SIGABRT ... SIGXFSZ, including SIGNULL.
[[nodiscard]] const std::vector<std::string>& valid_signal_names();

// Looks the name up case-insensitively. Error text (consul-template's, with the bad name shown):
// `invalid signal "SIGFOO" - valid signals are ["SIGABRT" "SIGALRM" ...]`. An empty name is an
// error here (the command line); config files map "" to SIGNULL before calling this.
[[nodiscard]] prefixes::result<signal_spec, std::string> parse_signal(std::string_view name);

[[nodiscard]] signal_spec sigint();
[[nodiscard]] signal_spec sighup();
[[nodiscard]] signal_spec sigterm();
[[nodiscard]] signal_spec signull();

}  // namespace kvship::replicate
