// The limiter at work: the four algorithms side by side on the same traffic.
// One client sends a request every 250 ms for 6 simulated seconds against a limit
// of 4 per 2 s; a manual clock makes the run instant and repeatable. Each row
// shows which requests passed ('#') and which were denied ('.'), then a second
// client shows that keys are independent and what a denial tells the caller.
#include <smart_ratelimit/smart_ratelimit.hpp>

#include <chrono>
#include <cstdio>
#include <string>
#include <string_view>

namespace srl = smart_ratelimit;
using namespace std::chrono_literals;

int main() {
    const auto by_client = srl::key_function([](const std::string& ip) { return ip; }, "ip:");
    using demo_limiter = srl::manual_in_memory_limiter<decltype(by_client)>;

    std::printf("limit 4/2s, one request every 250 ms; '#' passed, '.' denied\n");
    std::printf("%-22s 0s  1s  2s  3s  4s  5s\n", "");
    for (const std::string_view algorithm : srl::any_algorithm::names) {
        srl::manual_clock clock;
        demo_limiter limiter(by_client, {srl::rule_config{"", "4/2s", std::string(algorithm)}}, {},
                             srl::in_memory_storage<>{}, srl::null_sink{}, clock);
        std::string row;
        int passed = 0;
        for (int i = 0; i < 24; ++i) {
            const bool ok = limiter.check(std::string("203.0.113.5")).allowed();
            row += ok ? '#' : '.';
            passed += ok ? 1 : 0;
            clock.advance(250ms);
        }
        std::printf("%-22s %s  %2d passed\n", std::string(algorithm).c_str(), row.c_str(), passed);
    }

    // Two named rules on one limiter: a burst rule and a slower sustained rule.
    srl::manual_clock clock;
    demo_limiter limiter(by_client,
                         {srl::rule_config{"burst", "3/s", "token_bucket"},
                          srl::rule_config{"sustained", "10/m", "sliding_window"}},
                         {}, srl::in_memory_storage<>{}, srl::null_sink{}, clock);
    std::printf("\nrules burst=3/s (token bucket) and sustained=10/m (sliding window):\n");
    for (const char* ip :
         {"198.51.100.7", "198.51.100.7", "198.51.100.7", "198.51.100.7", "192.0.2.44"}) {
        const srl::verdict v = limiter.check(std::string(ip));
        const auto& d = v.decisions();
        std::printf("  %-13s %-7s", ip, v.allowed() ? "allowed" : "denied");
        for (const srl::decision& r : d)
            std::printf("  [%.*s: %llu left]", static_cast<int>(r.key.view().size()),
                        r.key.view().data(), static_cast<unsigned long long>(r.remaining));
        if (v.blocked())
            std::printf("  retry after %lld ms",
                        static_cast<long long>(
                            std::chrono::duration_cast<std::chrono::milliseconds>(v.retry_after())
                                .count()));
        std::printf("\n");
    }
    return 0;
}
