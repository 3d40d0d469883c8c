// examples/quick_start.cpp
// Quick start (the README shows this very file): limit a user to a burst of 3 per
// second and 100 per hour, in memory, and read what each decision says.
#include <smart_ratelimit/smart_ratelimit.hpp>

#include <chrono>
#include <cstdio>
#include <string>

namespace srl = smart_ratelimit;

struct request {
    std::string user_id;
};

int main() {
    // The key: "user:<id>". A request without a user falls back to one shared key.
    const auto by_user = srl::key_function([](const request& r) { return r.user_id; }, "user:");

    // Two named rules; a request spends quota only when both pass.
    srl::in_memory_limiter<decltype(by_user)> limiter(
        by_user, {{"burst", "3/s", "token_bucket"}, {"hourly", "100/h", "sliding_window"}});

    for (int i = 1; i <= 5; ++i) {
        const srl::verdict v = limiter.check(request{"alice"});
        const srl::decision& d = v.binding();  // the rule that decided
        if (v.allowed()) {
            std::printf("request %d: allowed, %llu left (%s)\n", i,
                        static_cast<unsigned long long>(d.remaining),
                        std::string(d.key.view()).c_str());
        } else {
            const auto ms =
                std::chrono::duration_cast<std::chrono::milliseconds>(d.retry_after).count();
            std::printf("request %d: denied by rule \"%s\", retry in %lld ms\n", i,
                        std::string(d.rule).c_str(), static_cast<long long>(ms));
        }
    }

    // Bad configuration fails at construction, naming the culprit.
    try {
        srl::in_memory_limiter<decltype(by_user)> bad(by_user, {{"login", "5/minutes"}});
    } catch (const srl::config_error& e) {
        std::printf("config error: %s\n", e.what());
    }
    return 0;
}
