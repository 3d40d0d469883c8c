// fuzz/fuzz_rate.cpp
// Rate strings ("5/m", "100/3h", settings and rule configs): parse_rate either throws
// config_error or returns a rate inside the documented bounds.
#include "fuzz_check.hpp"

#include <smart_ratelimit/rate.hpp>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    namespace srl = smart_ratelimit;
    try {
        const srl::rate r = srl::parse_rate(srl_fuzz::text(data, size));
        srl_fuzz::require(r.limit >= 1 && r.limit <= srl::rate::max_limit, "limit in range");
        srl_fuzz::require(r.period.count() > 0 && r.period <= srl::rate::max_period,
                          "period in range");
    } catch (const srl::config_error&) {}
    return 0;
}
