// fuzz/fuzz_database_url.cpp
// Database URLs (RATELIMIT_DATABASE_URL, --database): parsed or refused with
// config_error; a parsed URL yields a connection string and a redacted form.
#include "fuzz_check.hpp"

#include <smart_ratelimit/soci/database_url.hpp>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    namespace srl = smart_ratelimit;
    try {
        const auto url = srl::soci::parse_database_url(srl_fuzz::text(data, size));
        (void)url.soci_connect_string();
        (void)url.redacted();
    } catch (const srl::config_error&) {}
    return 0;
}
