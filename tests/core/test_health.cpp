// tests/core/test_health.cpp
// The checks of health_checks.hpp: a resilient storage's breaker read as a check
// (closed ok; open and half-open not, named in the detail) on a manual clock, and
// an async_sink's writer thread (ok while running, not once stopped, drops shown
// in the detail), plus how such checks combine in a health_report and its JSON.
#include <catch2/catch.hpp>

#include "support/checked_storage.hpp"
#include "support/sink_test_writer.hpp"

#include <smart_ratelimit/algorithms/any_algorithm.hpp>
#include <smart_ratelimit/clock.hpp>
#include <smart_ratelimit/health.hpp>
#include <smart_ratelimit/health_checks.hpp>
#include <smart_ratelimit/storage/resilient_storage.hpp>

#include <atomic>
#include <chrono>
#include <memory>

namespace srl = smart_ratelimit;
using namespace std::chrono_literals;

namespace {

// The in-memory storage behind an outage switch shared by copies.
struct outage_storage : srl_test::checked_storage<outage_storage> {
    std::shared_ptr<std::atomic<bool>> down = std::make_shared<std::atomic<bool>>(false);
    void check() const {
        if (down->load()) throw srl::storage_error("store down");
    }
};

using resilient = srl::resilient_storage<outage_storage, srl::no_failover, srl::manual_clock>;

const srl::any_algorithm alg("fixed_window", srl::rate{100, 1h});

}  // namespace

TEST_CASE("a breaker check is ok while closed and names the state otherwise", "[health]") {
    CHECK(srl::check_breaker("breaker:redis", srl::breaker_state::closed) ==
          srl::health_check{"breaker:redis", true, "closed"});
    CHECK(srl::check_breaker("breaker:redis", srl::breaker_state::open) ==
          srl::health_check{"breaker:redis", false, "open"});
    CHECK(srl::check_breaker("breaker:redis", srl::breaker_state::half_open) ==
          srl::health_check{"breaker:redis", false, "half_open"});
}

TEST_CASE("a breaker check follows a resilient storage through open, half-open and closed",
          "[health]") {
    outage_storage s;
    srl::manual_clock clock(3600s);
    srl::resilience_options o;
    o.failure_threshold = 2;
    o.open_for = 10s;
    o.timeout = 1h;  // latency never counts as a failure here
    resilient r(s, o, {}, clock);

    CHECK(srl::check_breaker("breaker:sql", r).ok);
    CHECK(srl::check_breaker("breaker:sql", r).detail == "closed");

    *s.down = true;
    r.acquire("k", alg, clock.now(), 1);
    r.acquire("k", alg, clock.now(), 1);
    CHECK(srl::check_breaker("breaker:sql", r) == srl::health_check{"breaker:sql", false, "open"});

    clock.advance(10s);  // the open period is over: the next call is a probe
    CHECK(srl::check_breaker("breaker:sql", r) ==
          srl::health_check{"breaker:sql", false, "half_open"});

    *s.down = false;
    r.acquire("k", alg, clock.now(), 1);  // the probe succeeds and closes the breaker
    CHECK(srl::check_breaker("breaker:sql", r) == srl::health_check{"breaker:sql", true, "closed"});
}

TEST_CASE("an event writer check is ok while the sink runs and fails once it is stopped",
          "[health]") {
    srl_test::controlled_writer w;
    srl::async_sink_options o;
    o.queue_capacity = 1;
    o.max_delay = 1h;
    o.shutdown_timeout = 1h;
    srl::async_sink<srl_test::controlled_writer&> sink(w, o);

    CHECK(srl::check_event_writer("event_writer", sink) ==
          srl::health_check{"event_writer", true, "running"});

    w.close_gate();
    sink.record(srl_test::make_test_event("k", 1));
    sink.record(srl_test::make_test_event("k", 2));  // the queue holds one: dropped
    CHECK(srl::check_event_writer("event_writer", sink) ==
          srl::health_check{"event_writer", true, "running, 1 of 2 events dropped"});

    w.open_gate();
    sink.stop();
    const auto stopped = srl::check_event_writer("event_writer", sink);
    CHECK_FALSE(stopped.ok);
    CHECK(stopped.detail == "stopped, 1 of 2 events dropped");

    srl::health_report report;
    report.checks.push_back(srl::check_breaker("breaker:redis", srl::breaker_state::closed));
    report.checks.push_back(stopped);
    CHECK_FALSE(report.ok());
    CHECK(report.to_json() ==
          R"({"status":"unhealthy","checks":[{"name":"breaker:redis","ok":true,"detail":"closed"},)"
          R"({"name":"event_writer","ok":false,"detail":"stopped, 1 of 2 events dropped"}]})");
}
