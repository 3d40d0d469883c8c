// fuzz/fuzz_rfc3339.cpp
// RFC 3339 timestamps (report --since, the JSON-lines import, the dashboard): a time
// that parses formats as text that parses back to the same time.
#include "fuzz_check.hpp"

#include <smart_ratelimit/analytics/format.hpp>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    namespace srl = smart_ratelimit;
    if (const auto t = srl::parse_rfc3339(srl_fuzz::text(data, size))) {
        const auto again = srl::parse_rfc3339(srl::format_rfc3339(*t, 6));
        srl_fuzz::require(again && *again == *t, "RFC 3339 round trip");
    }
    return 0;
}
