// A user's program, built against the library the way a user gets it: a limiter
// of 3 requests per minute per user, driven by a manual clock. Checks that the
// fourth request is denied with a retry time, that another user is unaffected and
// that the quota comes back a minute later. Prints "consumer: ok" when all hold.
#include <smart_ratelimit/smart_ratelimit.hpp>

#include <chrono>
#include <cstdio>
#include <string>

// One function per adapter the build links (see <adapter>_check.cpp); each returns 42.
#ifdef CONSUMER_WITH_SOCI
int soci_round_trip();
#endif
#ifdef CONSUMER_WITH_BEAST
int beast_round_trip();
#endif
#ifdef CONSUMER_WITH_REDIS
int redis_round_trip();
#endif
#ifdef CONSUMER_WITH_SMTP
int smtp_round_trip();
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
    expect(soci_round_trip() == 42, "SQLite through SOCI returns 42");
    if (failures == 0) std::puts("adapter soci: ok");
#endif
#ifdef CONSUMER_WITH_BEAST
    expect(beast_round_trip() == 42, "Boost.JSON and Boost.URL read 41 and one query parameter");
    if (failures == 0) std::puts("adapter beast: ok");
#endif
#ifdef CONSUMER_WITH_REDIS
    expect(redis_round_trip() == 42, "hiredis reads the reply :42");
    if (failures == 0) std::puts("adapter redis: ok");
#endif
#ifdef CONSUMER_WITH_SMTP
    expect(smtp_round_trip() == 42, "libcurl supports smtp");
    if (failures == 0) std::puts("adapter smtp: ok");
#endif
    if (failures != 0) return 1;
    std::printf("consumer: ok (smart_ratelimit %s)\n", srl::version_string);
    return 0;
}
