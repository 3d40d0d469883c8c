// tests/storage/test_resilience_policy.cpp
// resilient_storage on its own: degraded answers while the store is down, the breaker's
// closed -> open -> half-open -> closed cycle on a manual clock, a failed probe
// re-opening it, failover to a second storage, slow calls, and every counter.
// The wrapped storage is the real in-memory storage behind a switch that makes it throw.
#include <catch2/catch.hpp>

#include "support/checked_storage.hpp"

#include <smart_ratelimit/algorithms/any_algorithm.hpp>
#include <smart_ratelimit/clock.hpp>
#include <smart_ratelimit/limiter.hpp>
#include <smart_ratelimit/storage/in_memory_storage.hpp>
#include <smart_ratelimit/storage/resilient_storage.hpp>

#include <atomic>
#include <chrono>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace srl = smart_ratelimit;
using namespace std::chrono_literals;

namespace {

// The in-memory storage with an outage switch; copies share the storage and the switch.
struct switchable_storage : srl_test::checked_storage<switchable_storage> {
    std::shared_ptr<std::atomic<bool>> down = std::make_shared<std::atomic<bool>>(false);
    std::shared_ptr<std::atomic<int>> calls = std::make_shared<std::atomic<int>>(0);
    std::chrono::milliseconds delay{0};

    void check() const {
        calls->fetch_add(1);
        if (delay.count() > 0) std::this_thread::sleep_for(delay);
        if (down->load()) throw srl::storage_error("store down");
    }
};

using resilient = srl::resilient_storage<switchable_storage, srl::no_failover, srl::manual_clock>;
using resilient_fo =
    srl::resilient_storage<switchable_storage, switchable_storage, srl::manual_clock>;

const srl::any_algorithm alg("fixed_window", srl::rate{3, 1h});
const std::chrono::nanoseconds t0 = 3600s;

srl::resilience_options opts() {
    srl::resilience_options o;
    o.failure_threshold = 3;
    o.open_for = 10s;
    o.timeout = 5s;
    return o;
}

}  // namespace

static_assert(srl::storage_backend<resilient>);
static_assert(srl::storage_backend<resilient_fo>);

TEST_CASE("a healthy store answers through the decorator unchanged", "[resilience]") {
    switchable_storage s;
    resilient r(s, opts(), {}, srl::manual_clock(t0));
    for (int i = 0; i < 3; ++i) CHECK(r.acquire("k", alg, t0, 1).allowed);
    const auto d = r.acquire("k", alg, t0, 1);
    CHECK_FALSE(d.allowed);
    CHECK(d.retry_after > 0ns);
    CHECK(r.stats().successes == 4);
    CHECK(r.stats().failures == 0);
    CHECK(r.state() == srl::breaker_state::closed);
}

TEST_CASE("while the store is down every call is answered degraded, counted", "[resilience]") {
    switchable_storage s;
    resilient r(s, opts(), {}, srl::manual_clock(t0));
    s.down->store(true);
    const auto o = r.acquire("k", alg, t0, 1);
    const auto p = r.peek("k", alg, t0, 1);
    r.release("k", alg, t0, 1);  // swallowed
    const auto st = r.stats();
    CHECK(st.failures == 3);
    for (const auto& a : {o, p}) {
        CHECK(a.degraded);
        CHECK_FALSE(a.allowed);
        CHECK(a.count == 0);
        CHECK(a.retryable);
        CHECK(a.retry_after > 0ns);
    }
    CHECK(st.degraded_answers == 3);
}

TEST_CASE(
    "the breaker opens after consecutive failures, probes when the period ends, and closes on "
    "success",
    "[resilience][breaker]") {
    switchable_storage s;
    srl::manual_clock clock(t0);
    resilient r(s, opts(), {}, clock);
    s.down->store(true);
    for (int i = 0; i < 3; ++i) CHECK_FALSE(r.acquire("k", alg, t0, 1).allowed);
    CHECK(r.state() == srl::breaker_state::open);
    CHECK(r.stats().opened == 1);

    // Open: the store is not called at all.
    const int calls = s.calls->load();
    for (int i = 0; i < 5; ++i) {
        const auto o = r.acquire("k", alg, t0, 1);
        CHECK_FALSE(o.allowed);
        CHECK(o.retry_after <= 10s);
        CHECK(o.retry_after > 0ns);
    }
    CHECK(s.calls->load() == calls);
    CHECK(r.stats().short_circuited == 5);

    // The period ends while the store is still down: one probe, it fails, open again.
    clock.advance(10s);
    CHECK(r.state() == srl::breaker_state::half_open);
    CHECK_FALSE(r.acquire("k", alg, t0, 1).allowed);
    CHECK(s.calls->load() == calls + 1);
    CHECK(r.stats().probes == 1);
    CHECK(r.stats().opened == 2);
    CHECK(r.state() == srl::breaker_state::open);
    clock.advance(9s);
    CHECK(r.state() == srl::breaker_state::open);

    // The store is back; after the period a probe succeeds and closes the breaker.
    s.down->store(false);
    clock.advance(1s);
    CHECK(r.acquire("k", alg, t0, 1).allowed);
    CHECK(r.state() == srl::breaker_state::closed);
    CHECK(r.stats().recovered == 1);
    CHECK(r.acquire("k", alg, t0, 1).allowed);
    CHECK(r.acquire("k", alg, t0, 1).allowed);
    CHECK_FALSE(r.acquire("k", alg, t0, 1).allowed);  // the real limit again
}

TEST_CASE("half-open lets only the configured number of probes through at once",
          "[resilience][breaker]") {
    switchable_storage s;
    s.delay = 300ms;
    srl::manual_clock clock(t0);
    auto o = opts();
    o.half_open_probes = 1;
    resilient r(s, o, {}, clock);
    s.down->store(true);
    for (int i = 0; i < 3; ++i) r.acquire("k", alg, t0, 1);
    s.down->store(false);
    clock.advance(10s);
    const int before = s.calls->load();
    std::vector<std::thread> ts;
    std::atomic<int> allowed{0};
    for (int i = 0; i < 4; ++i)
        ts.emplace_back([&, i] {
            if (r.acquire("p" + std::to_string(i), alg, t0, 1).allowed) allowed.fetch_add(1);
        });
    for (auto& t : ts) t.join();
    // Exactly one call reached the store while half-open (the others were short-circuited
    // unless they arrived after the probe closed the breaker).
    CHECK(r.stats().probes == 1);
    CHECK(s.calls->load() - before >= 1);
    CHECK(r.stats().short_circuited + (s.calls->load() - before) == 4);
    CHECK(allowed.load() == s.calls->load() - before);
    CHECK(r.state() == srl::breaker_state::closed);
}

TEST_CASE("a failover storage answers while the primary is down", "[resilience][failover]") {
    switchable_storage primary, backup;
    srl::manual_clock clock(t0);
    resilient_fo r(primary, opts(), backup, clock);
    primary.down->store(true);
    for (int i = 0; i < 3; ++i) CHECK(r.acquire("k", alg, t0, 1).allowed);  // the backup's quota
    CHECK_FALSE(r.acquire("k", alg, t0, 1).allowed);                        // the backup's limit
    CHECK(r.stats().failover_answers == 4);
    CHECK(r.state() == srl::breaker_state::open);

    backup.down->store(true);
    CHECK_FALSE(r.acquire("k", alg, t0, 1).allowed);
    CHECK(r.stats().failover_failures == 1);
    CHECK(r.stats().degraded_answers == 1);
}

TEST_CASE("a call slower than the timeout counts as a failure but keeps its answer",
          "[resilience]") {
    switchable_storage s;
    s.delay = 50ms;
    auto o = opts();
    o.timeout = 1ms;
    o.failure_threshold = 2;
    resilient r(s, o, {}, srl::manual_clock(t0));
    CHECK(r.acquire("k", alg, t0, 1).allowed);
    CHECK(r.acquire("k", alg, t0, 1).allowed);
    CHECK(r.stats().slow_calls == 2);
    CHECK(r.state() == srl::breaker_state::open);
    CHECK_FALSE(r.acquire("k", alg, t0, 1).allowed);
    CHECK(r.stats().short_circuited == 1);
}

TEST_CASE("a limiter over a resilient storage follows its failure policy, never blocking",
          "[resilience][limiter]") {
    struct key_of {
        std::string_view operator()(std::string_view s) const { return s; }
    };
    for (const auto policy : {srl::failure_policy::fail_open, srl::failure_policy::fail_closed}) {
        switchable_storage s;
        srl::limiter_options lo;
        lo.on_store_failure = policy;
        srl::limiter<key_of, resilient> lim(
            key_of{}, std::vector<srl::rule_config>{{"a", "2/h"}, {"b", "5/h"}}, lo,
            resilient(s, opts(), {}, srl::manual_clock(t0)));
        CHECK(lim.check_key("u").allowed());
        s.down->store(true);
        for (int i = 0; i < 10; ++i) {
            const auto v = lim.check_key("u");
            CHECK(v.allowed() == (policy == srl::failure_policy::fail_open));
            CHECK(v.degraded());
            CHECK_FALSE(v.blocked());
            for (const auto& d : v.decisions()) CHECK(d.kind() == srl::outcome_kind::degraded);
        }
        CHECK(lim.storage().stats().degraded_answers > 0);
    }
}
