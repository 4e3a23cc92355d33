// parse_config_text: one config file's text, JSON when it starts with `{`, else HCL (the corpus holds
// both). A file that parses is then resolved with build_config (no flags, no environment), which runs
// validate(), lint() and the redacted summary.
#include <replicate/config.hpp>
#include <replicate/config_file.hpp>

#include <cstddef>
#include <cstdint>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(std::uint8_t const* data, std::size_t size)
{
    std::string_view text(reinterpret_cast<char const*>(data), size);
    auto parsed = kvship::replicate::parse_config_text(text);
    if (parsed) {
        auto cfg = kvship::replicate::build_config(kvship::replicate::command_line{}, parsed->layer, {});
        if (cfg) {
            (void)kvship::replicate::lint(*cfg);
            (void)kvship::replicate::redacted_summary(*cfg);
        }
    }
    return 0;
}
