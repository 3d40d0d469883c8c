// tests/sinks/test_sinks_with_limiter.cpp
// The sinks as a limiter uses them: the umbrella header alongside the core one,
// a limiter recording into a fan-out of a ring buffer and an async sink, and the
// ring buffer's snapshot fed straight to the analytics.
#include <catch2/catch.hpp>

#include <smart_ratelimit/analytics.hpp>
#include <smart_ratelimit/sinks.hpp>
#include <smart_ratelimit/smart_ratelimit.hpp>

#include <string>
#include <string_view>

#include "support/sink_test_writer.hpp"

namespace srl = smart_ratelimit;

namespace {
struct user_request {
    std::string user;
};
struct user_key {
    std::string operator()(const user_request& r) const { return "user:" + r.user; }
};
}  // namespace

TEST_CASE(
    "a limiter records every decision through a fan-out to a ring buffer and an "
    "async sink",
    "[sinks][limiter]") {
    srl::ring_buffer_sink_mt recent(100);
    srl_test::controlled_writer store;
    srl::async_sink<srl_test::controlled_writer&> log(store);
    using fanout =
        srl::fanout_sink<srl::ring_buffer_sink_mt&, srl::async_sink<srl_test::controlled_writer&>&>;
    srl::manual_clock clock;
    srl::limiter<user_key, srl::in_memory_storage<>, fanout, srl::manual_clock> limiter(
        user_key{}, std::vector<srl::rule_config>{{"login", "3/m"}}, srl::limiter_options{},
        srl::in_memory_storage<>{}, fanout(recent, log), clock);

    const srl::request_info info{"/login", "POST", "203.0.113.5", std::nullopt, {}};
    int allowed = 0;
    for (int i = 0; i < 5; ++i)
        allowed += limiter.check_and_record(user_request{"ann"}, info).allowed();
    CHECK(allowed == 3);
    log.flush();

    const auto events = recent.snapshot();
    REQUIRE(events.size() == 5);
    CHECK(store.written() == events);
    CHECK(events.front().key == "rule:login:user:ann");
    CHECK(events.front().rule_name == "login");
    CHECK(events.back().allowed == false);
    CHECK(log.stats().written == 5);
    CHECK(limiter.sink_failures() == 0);

    const auto summary = srl::get_traffic_summary(recent.snapshot(), 1, clock.wall_now());
    CHECK(summary.total == 5);
    CHECK(summary.allowed == 3);
    CHECK(summary.blocked == 2);
    const auto offenders = srl::get_top_offenders(recent.snapshot(), 7, 10, clock.wall_now());
    REQUIRE(offenders.size() == 1);
    CHECK(offenders[0].key == "rule:login:user:ann");
    CHECK(offenders[0].blocked_count == 2);
}

TEST_CASE("a limiter can own a ring buffer sink and a fan-out by value", "[sinks][limiter]") {
    using fanout = srl::fanout_sink<srl::ring_buffer_sink_st, srl::ring_buffer_sink_mt>;
    srl::manual_clock clock;
    srl::limiter<user_key, srl::in_memory_storage<>, fanout, srl::manual_clock> limiter(
        user_key{}, std::vector<srl::rule_config>{{"", "1/m"}}, srl::limiter_options{},
        srl::in_memory_storage<>{}, fanout(srl::ring_buffer_sink_st(1), srl::ring_buffer_sink_mt()),
        clock);
    const srl::request_info info{"/", "GET", std::nullopt, std::nullopt, {}};
    limiter.check_and_record(user_request{"bob"}, info);
    limiter.check_and_record(user_request{"bob"}, info);
    const auto& sinks = limiter.sink();
    CHECK(sinks.sink<0>().size() == 1);
    CHECK(sinks.sink<0>().snapshot().front().allowed == false);
    CHECK(sinks.sink<1>().capacity() == srl::ring_buffer_sink_mt::default_capacity);
    CHECK(sinks.sink<1>().recorded() == 2);
    CHECK(sinks.sink<1>().snapshot().front().rule_name == "");

    srl::ring_buffer_sink_mt moved_from(4);
    moved_from.record(srl_test::make_test_event("ip:1", 1));
    srl::ring_buffer_sink_mt moved_to(std::move(moved_from));
    CHECK(moved_to.size() == 1);
    CHECK(moved_to.recorded() == 1);
    CHECK(moved_from.size() == 0);  // NOLINT(bugprone-use-after-move): documented state
    moved_from.record(srl_test::make_test_event("ip:1", 2));
    CHECK(moved_from.size() == 1);
}
