// fuzz/fuzz_settings.cpp
// The settings file (JSON) and single settings from the environment or a flag: each
// input is applied or refused with config_error, never anything else.
#include "fuzz_check.hpp"

#include <smart_ratelimit/settings.hpp>

#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    namespace srl = smart_ratelimit;
    const std::string_view in = srl_fuzz::text(data, size);
    srl::settings s;
    try {
        srl::apply_settings_json(s, in, "fuzz.json");
    } catch (const srl::config_error&) {}
    // "KEY=value": one setting as the environment would give it.
    if (const auto eq = in.find('='); eq != std::string_view::npos) {
        try {
            srl::apply_setting(s, in.substr(0, eq), in.substr(eq + 1), "environment");
        } catch (const srl::config_error&) {}
    }
    return 0;
}
