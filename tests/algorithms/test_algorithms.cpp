// tests/algorithms/test_algorithms.cpp
// The behaviour specific to each algorithm, on its state directly: window edges,
// refill rates, the approximate estimate, GCRA spacing, and any_algorithm's names.
// What every algorithm must do over every storage is the storage contract
// (support/storage_contract.hpp), run over the in-memory storage in
// test_storage_contract.cpp.
#include <catch2/catch.hpp>

#include <smart_ratelimit/algorithms/any_algorithm.hpp>

#include <chrono>
#include <cstdint>
#include <string>
#include <type_traits>

namespace srl = smart_ratelimit;
using namespace std::chrono_literals;
using std::chrono::nanoseconds;

namespace {

const nanoseconds t0 = 864000s;  // ten days: a window boundary for every period below

}  // namespace

TEST_CASE("fixed window resets at the aligned window boundary", "[algorithm]") {
    const srl::fixed_window a(srl::rate{2, 10s});
    srl::fixed_window::state_type s;
    CHECK(a.try_acquire(s, t0 + 9s, 1).allowed);
    CHECK(a.try_acquire(s, t0 + 9s, 1).allowed);
    const auto d = a.try_acquire(s, t0 + 9s, 1);
    CHECK_FALSE(d.allowed);
    CHECK(d.retry_after == 1s);
    CHECK(a.try_acquire(s, t0 + 10s, 2).allowed);  // a new window: the burst at the edge
    static_assert(std::is_trivially_copyable_v<srl::fixed_window::state_type>);
}

TEST_CASE("token bucket refills one token per interval without drift", "[algorithm]") {
    const srl::token_bucket a(srl::rate{3, 1s});  // one token every 333333333.33 ns
    srl::token_bucket::state_type s;
    for (int i = 0; i < 3; ++i) REQUIRE(a.try_acquire(s, t0, 1).allowed);
    const auto d = a.try_acquire(s, t0, 1);
    CHECK_FALSE(d.allowed);
    CHECK(d.retry_after == 333'333'334ns);
    CHECK_FALSE(a.try_acquire(s, t0 + 333'333'333ns, 1).allowed);
    CHECK(a.try_acquire(s, t0 + 333'333'334ns, 1).allowed);
    // Over 3000 seconds sampled every 1 ns-odd step the admissions add up exactly.
    srl::token_bucket::state_type t;
    std::uint64_t admitted = 0;
    for (std::int64_t ns = 0; ns <= 3000'000'000'000; ns += 7'777'777) {
        while (a.try_acquire(t, t0 + nanoseconds(ns), 1).allowed) ++admitted;
    }
    // 3 to start with, then 3 per second for ~3000 s.
    CHECK(admitted >= 9000);
    CHECK(admitted <= 9003);
    static_assert(std::is_trivially_copyable_v<srl::token_bucket::state_type>);
}

TEST_CASE(
    "token bucket: a denial writes nothing, and a clock read that lost a race to "
    "another thread's refills nothing twice",
    "[algorithm]") {
    const srl::token_bucket a(srl::rate{2, 1s});  // one token every 500 ms
    srl::token_bucket::state_type s;
    REQUIRE(a.try_acquire(s, t0, 1).allowed);
    REQUIRE(a.try_acquire(s, t0 + 100ms, 1).allowed);
    const auto at = [](const srl::token_bucket::state_type& x) { return x.last; };
    REQUIRE(at(s) == (t0 + 100ms).count());
    // A denial later on leaves the state as it was (its refill is recomputed next time).
    const srl::token_bucket::state_type before = s;
    const auto d = a.try_acquire(s, t0 + 300ms, 1);
    CHECK_FALSE(d.allowed);
    CHECK(d.retry_after == 200ms);
    CHECK(at(s) == at(before));
    CHECK(s.used == before.used);
    CHECK(s.credit == before.credit);
    // 300 us behind the state's time: no rebase (that would refill 300 us twice), and
    // the wait counts from the state's time.
    const auto late = a.try_acquire(s, t0 + 100ms - 300us, 1);
    CHECK_FALSE(late.allowed);
    CHECK(late.retry_after == 400ms + 300us);
    CHECK(at(s) == at(before));
    // From the state's time (t0 + 100 ms, with 100 ms of refill carried): exactly one
    // token by t0 + 500 ms, not a second one for the late read's 300 us.
    CHECK(a.try_acquire(s, t0 + 500ms, 1).allowed);
    CHECK_FALSE(a.try_acquire(s, t0 + 500ms, 1).allowed);
    // Further back than the window: a clock step, rebased (test_storage_contract.cpp).
    const auto stepped = a.try_acquire(s, t0 + 500ms - 2ms, 1);
    CHECK_FALSE(stepped.allowed);
    CHECK(at(s) == (t0 + 498ms).count());
}

TEST_CASE("leaky bucket (GCRA) spaces requests at period / limit after a burst", "[algorithm]") {
    const srl::leaky_bucket a(srl::rate{4, 1s});
    srl::leaky_bucket::state_type s;
    for (int i = 0; i < 4; ++i) REQUIRE(a.try_acquire(s, t0, 1).allowed);
    const auto d = a.try_acquire(s, t0, 1);
    CHECK_FALSE(d.allowed);
    CHECK(d.retry_after == 250ms);
    CHECK(d.count == 4);
    CHECK(a.try_acquire(s, t0 + 250ms, 1).allowed);
    CHECK_FALSE(a.try_acquire(s, t0 + 250ms, 1).allowed);
    CHECK(a.try_acquire(s, t0 + 500ms, 1).allowed);
    static_assert(std::is_trivially_copyable_v<srl::leaky_bucket::state_type>);
}

TEST_CASE("exact sliding window counts exactly the last period", "[algorithm]") {
    const srl::sliding_window a(srl::rate{3, 10s});
    srl::sliding_window::state_type s;
    CHECK(a.try_acquire(s, t0 + 1s, 1).allowed);
    CHECK(a.try_acquire(s, t0 + 5s, 1).allowed);
    CHECK(a.try_acquire(s, t0 + 9s, 1).allowed);
    const auto d = a.try_acquire(s, t0 + 10s, 1);
    CHECK_FALSE(d.allowed);
    CHECK(d.retry_after == 1s);  // the entry at 1 s leaves the window at 11 s
    CHECK_FALSE(a.try_acquire(s, t0 + 11s - 1ns, 1).allowed);
    CHECK(a.try_acquire(s, t0 + 11s, 1).allowed);
    CHECK_FALSE(a.try_acquire(s, t0 + 14s, 1).allowed);
    CHECK(a.try_acquire(s, t0 + 15s, 1).allowed);
    // Same-instant admissions share one entry: memory stays bounded by distinct times.
    srl::sliding_window::state_type same;
    const srl::sliding_window big(srl::rate{1000, 1s});
    for (int i = 0; i < 1000; ++i) REQUIRE(big.try_acquire(same, t0, 1).allowed);
    CHECK(same.log.size() - same.head == 1);
}

TEST_CASE("approximate sliding window weights the previous window", "[algorithm]") {
    const srl::sliding_window_approx a(srl::rate{10, 10s});
    srl::sliding_window_approx::state_type s;
    CHECK(a.try_acquire(s, t0 + 9s, 10).allowed);
    // 2.5 s into the next window, the previous 10 weigh floor(10 * 0.75) = 7.
    auto o = a.peek(s, t0 + 12500ms, 3);
    CHECK(o.allowed);
    CHECK(o.count == 10);
    o = a.try_acquire(s, t0 + 12500ms, 4);
    CHECK_FALSE(o.allowed);
    CHECK(o.count == 7);
    // 4 units pass once the weight drops to 6: floor(10 * (10 s - e) / 10 s) <= 6 for e > 3 s.
    CHECK(o.retry_after == 500ms + 1ns);
    CHECK_FALSE(a.peek(s, t0 + 13s, 4).allowed);
    CHECK(a.peek(s, t0 + 13s + 1ns, 4).allowed);
    CHECK(a.try_acquire(s, t0 + 14s, 4).allowed);
    static_assert(std::is_trivially_copyable_v<srl::sliding_window_approx::state_type>);
}

TEST_CASE("any_algorithm selects by name and rejects unknown names", "[algorithm]") {
    const srl::rate r{1, 1s};
    for (const auto name : srl::any_algorithm::names)
        CHECK(srl::any_algorithm(name, r).name() == name);
    CHECK(srl::any_algorithm("gcra", r).name() == "leaky_bucket");
    for (const char* bad : {"", "Fixed_Window", "token-bucket", "sliding", "fixed_window "}) {
        INFO(bad);
        try {
            srl::any_algorithm(bad, r);
            FAIL("accepted");
        } catch (const srl::config_error& e) {
            CHECK(std::string(e.what()).find("\"" + std::string(bad) + "\"") != std::string::npos);
        }
    }
    // A state left by another algorithm is treated as fresh.
    srl::any_algorithm::state_type st;
    const srl::any_algorithm fw("fixed_window", srl::rate{1, 1min});
    const srl::any_algorithm tb("token_bucket", srl::rate{2, 1min});
    CHECK(fw.try_acquire(st, t0, 1).allowed);
    CHECK_FALSE(fw.try_acquire(st, t0, 1).allowed);
    CHECK(tb.try_acquire(st, t0, 2).allowed);
}

// A state filled under a higher limit (a rule lowered by new settings over the same
// storage) is over the new limit: every algorithm denies and reports nothing remaining,
// rather than wrapping `limit - count` around to a huge number of units left.
TEMPLATE_TEST_CASE("a state already over a lowered limit is denied", "[algorithm]",
                   srl::fixed_window, srl::sliding_window, srl::sliding_window_approx,
                   srl::token_bucket, srl::leaky_bucket) {
    const TestType high(srl::rate{10, 10s});
    const TestType low(srl::rate{4, 10s});
    typename TestType::state_type s;
    for (int i = 0; i < 10; ++i) REQUIRE(high.try_acquire(s, t0 + 1s, 1).allowed);

    const auto seen = low.peek(s, t0 + 1s, 1);
    CHECK_FALSE(seen.allowed);
    CHECK(seen.remaining == 0);
    const auto d = low.try_acquire(s, t0 + 1s, 1);
    CHECK_FALSE(d.allowed);
    CHECK(d.retryable);
    CHECK(d.remaining == 0);
    CHECK(d.retry_after > 0ns);
    CHECK_FALSE(low.try_acquire(s, t0 + 1s, 4).allowed);
}
