// A user's program: parses a rate and checks the library's version, using only the
// installed headers. Prints "consumer: ok" when every check holds.
#include <smart_ratelimit/rate.hpp>
#include <smart_ratelimit/version.hpp>

#include <chrono>
#include <cstdio>

#ifdef CONSUMER_WITH_SOCI
int soci_round_trip();
#endif

namespace srl = smart_ratelimit;

int main() {
    const srl::rate r = srl::parse_rate("5/10s");
    if (r.limit != 5 || r.period != std::chrono::seconds(10)) {
        std::puts("consumer: parse_rate gave the wrong rate");
        return 1;
    }
    bool rejected = false;
    try {
        (void)srl::parse_rate("5/10x");
    } catch (const srl::config_error&) {
        rejected = true;
    }
    if (!rejected) {
        std::puts("consumer: a bad rate string was accepted");
        return 1;
    }
#ifdef CONSUMER_WITH_SOCI
    if (soci_round_trip() != 42) {
        std::puts("consumer: the SOCI round trip failed");
        return 1;
    }
    std::puts("soci: ok");
#endif
    std::printf("consumer: ok (smart_ratelimit %s)\n", srl::version_string);
    return 0;
}
