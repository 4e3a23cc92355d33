#include <gotext/go_string.hpp>
#include <replicate/signals.hpp>

#include <algorithm>
#include <array>
#include <csignal>
#include <utility>

namespace kvship::replicate {

namespace {

struct named_signal
{
    std::string_view name;
    int number;
};

// consul-template's Unix table (signals_unix.go), sorted by name.
constexpr std::array<named_signal, 28> signal_table{{
    {"SIGABRT", SIGABRT}, {"SIGALRM", SIGALRM},   {"SIGBUS", SIGBUS},   {"SIGCONT", SIGCONT},
    {"SIGFPE", SIGFPE},   {"SIGHUP", SIGHUP},     {"SIGILL", SIGILL},   {"SIGINT", SIGINT},
    {"SIGIO", SIGIO},     {"SIGIOT", SIGIOT},     {"SIGKILL", SIGKILL}, {"SIGNULL", 0},
    {"SIGPIPE", SIGPIPE}, {"SIGPROF", SIGPROF},   {"SIGQUIT", SIGQUIT}, {"SIGSEGV", SIGSEGV},
    {"SIGSTOP", SIGSTOP}, {"SIGSYS", SIGSYS},     {"SIGTERM", SIGTERM}, {"SIGTRAP", SIGTRAP},
    {"SIGTSTP", SIGTSTP}, {"SIGTTIN", SIGTTIN},   {"SIGTTOU", SIGTTOU}, {"SIGUSR1", SIGUSR1},
    {"SIGUSR2", SIGUSR2}, {"SIGWINCH", SIGWINCH}, {"SIGXCPU", SIGXCPU}, {"SIGXFSZ", SIGXFSZ},
}};

std::string to_upper(std::string_view s)
{
    std::string out(s);
    std::transform(out.begin(), out.end(), out.begin(), [](char c) {
        return (c >= 'a' && c <= 'z') ? static_cast<char>(c - 'a' + 'A') : c;
    });
    return out;
}

signal_spec lookup(std::string_view name)
{
    for (auto const& s : signal_table) {
        if (s.name == name)
            return signal_spec{std::string(s.name), s.number};
    }
    return {};
}

}  // namespace

const std::vector<std::string>& valid_signal_names()
{
    static const std::vector<std::string> names = [] {
        std::vector<std::string> v;
        for (auto const& s : signal_table) v.emplace_back(s.name);
        std::sort(v.begin(), v.end());
        return v;
    }();
    return names;
}

prefixes::result<signal_spec, std::string> parse_signal(std::string_view name)
{
    std::string const upper = to_upper(name);
    auto const& names = valid_signal_names();
    if (std::find(names.begin(), names.end(), upper) == names.end()) {
        // consul-template prints the looked-up (nil) signal here; we print the name given.
        std::string list = "[";
        for (std::size_t i = 0; i < names.size(); ++i) {
            if (i != 0)
                list += ' ';
            list += gotext::go_quote(names[i]);
        }
        list += ']';
        return "invalid signal " + gotext::go_quote(name) + " - valid signals are " + list;
    }
    return lookup(upper);
}

signal_spec sigint()
{
    return lookup("SIGINT");
}

signal_spec sighup()
{
    return lookup("SIGHUP");
}

signal_spec sigterm()
{
    return lookup("SIGTERM");
}

signal_spec signull()
{
    return lookup("SIGNULL");
}

}  // namespace kvship::replicate
