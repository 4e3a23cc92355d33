// parse_command_line: argv[1..] is the input split on NUL bytes. A parse that succeeds is then
// resolved with build_config (defaults, no files, no environment), which runs validate().
#include <replicate/config.hpp>
#include <replicate/flags.hpp>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(std::uint8_t const* data, std::size_t size)
{
    std::string_view in(reinterpret_cast<char const*>(data), size);
    std::vector<std::string> args;
    while (!in.empty()) {
        auto nul = in.find('\0');
        args.emplace_back(in.substr(0, nul));
        if (nul == std::string_view::npos)
            break;
        in.remove_prefix(nul + 1);
    }
    auto cli = kvship::replicate::parse_command_line(args);
    if (cli)
        (void)kvship::replicate::build_config(*cli, kvship::replicate::config_layer{}, {});
    return 0;
}
