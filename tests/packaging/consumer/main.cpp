// A user's program, built against the library the way a user gets it: a limiter
// of 3 requests per minute per user, driven by a manual clock. Checks that the
// fourth request is denied with a retry time, that another user is unaffected and
// that the quota comes back a minute later. Prints "consumer: ok" when all hold.
#include <smart_ratelimit/smart_ratelimit.hpp>

#include <chrono>
#include <cstdio>
#include <string>

#ifdef CONSUMER_WITH_SOCI
int soci_round_trip();
#endif

namespace srl = smart_ratelimit;

namespace {

struct request {
    std::string user;
};

int failures = 0;

void expect(bool ok, const char* what) {
    if (!ok) {
        std::printf("consumer: FAILED: %s\n", what);
        ++failures;
    }
}

}  // namespace

int main() {
    auto by_user = srl::key_function([](const request& r) { return r.user; }, "user:");
    srl::manual_clock clock;
    srl::manual_in_memory_limiter<decltype(by_user)> limiter(
        by_user, {srl::rule_config{"api", "3/m", "fixed_window"}}, srl::limiter_options{},
        srl::in_memory_storage<>{}, srl::null_sink{}, clock);

    const request alice{"alice"}, bob{"bob"};
    for (int i = 0; i < 3; ++i) expect(limiter.check(alice).allowed(), "the first 3 requests pass");
    const srl::verdict denied = limiter.check(alice);
    expect(denied.blocked(), "the 4th request in the minute is denied");
    expect(denied.retry_after() > std::chrono::nanoseconds(0), "a denial says when to retry");
    expect(denied.decisions()[0].key.view() == "rule:api:user:alice", "the key carries the rule");
    expect(limiter.check(bob).allowed(), "another user has their own quota");
    clock.advance(std::chrono::minutes(1));
    expect(limiter.check(alice).allowed(), "the quota comes back after the window");

    bool rejected = false;
    try {
        (void)srl::parse_rate("5/10x");
    } catch (const srl::config_error&) {
        rejected = true;
    }
    expect(rejected, "a bad rate string is rejected");

#ifdef CONSUMER_WITH_SOCI
    expect(soci_round_trip() == 42, "the SOCI round trip returns 42");
    if (failures == 0) std::puts("soci: ok");
#endif
    if (failures != 0) return 1;
    std::printf("consumer: ok (smart_ratelimit %s)\n", srl::version_string);
    return 0;
}
