// tests/support/storage_contract.hpp
// The storage contract cases every shared storage (Redis, SQL state) must pass,
// written once: each takes a ready storage and a test type naming the algorithm
// (static_combo: the algorithm type itself; dynamic_combo: through any_algorithm).
// The storage's own test file adds what only that backend can check.
#pragma once

#include <catch2/catch.hpp>

#include <smart_ratelimit/algorithms/any_algorithm.hpp>
#include <smart_ratelimit/rate.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>
#include <thread>
#include <tuple>
#include <type_traits>
#include <vector>

namespace srl_test::contract {

namespace srl = smart_ratelimit;
using namespace std::chrono_literals;

template <class A>
struct static_combo {
    using algorithm_type = A;
    static A make(srl::rate r) { return A(r); }
    static constexpr bool approx = std::is_same_v<A, srl::sliding_window_approx>;
};
template <class A>
struct dynamic_combo {
    using algorithm_type = srl::any_algorithm;
    static srl::any_algorithm make(srl::rate r) { return srl::any_algorithm(A::algorithm_name, r); }
    static constexpr bool approx = std::is_same_v<A, srl::sliding_window_approx>;
};

using all_combos =
    std::tuple<static_combo<srl::fixed_window>, static_combo<srl::sliding_window>,
               static_combo<srl::sliding_window_approx>, static_combo<srl::token_bucket>,
               static_combo<srl::leaky_bucket>, dynamic_combo<srl::fixed_window>,
               dynamic_combo<srl::sliding_window>, dynamic_combo<srl::sliding_window_approx>,
               dynamic_combo<srl::token_bucket>, dynamic_combo<srl::leaky_bucket>>;
using dynamic_combos =
    std::tuple<dynamic_combo<srl::fixed_window>, dynamic_combo<srl::sliding_window>,
               dynamic_combo<srl::sliding_window_approx>, dynamic_combo<srl::token_bucket>,
               dynamic_combo<srl::leaky_bucket>>;

/// Ten acquires pass with exact counts, the eleventh is denied with a finite wait.
template <class Combo, class Storage>
void admits_exactly_its_limit(Storage& s) {
    const auto a = Combo::make(srl::rate{10, 1h});
    for (std::uint64_t i = 0; i < 10; ++i) {
        const auto o = s.acquire("k", a, 0ns, 1);
        REQUIRE(o.allowed);
        CHECK(o.count == i + 1);
        CHECK(o.remaining == 9 - i);
        CHECK(o.retry_after == 0ns);
        CHECK(o.reset_after > 0ns);
        CHECK(o.reset_after <= 2h);
    }
    const auto denied = s.acquire("k", a, 0ns, 1);
    CHECK_FALSE(denied.allowed);
    CHECK(denied.retryable);
    CHECK(denied.remaining == 0);
    CHECK(denied.count == 10);
    CHECK(denied.retry_after > 0ns);
    CHECK(denied.retry_after <= (Combo::approx ? 2h : 1h));
}

/// A cost takes several units; a cost above the limit is never retryable and
/// consumes nothing; hostile and long keys are keys like any other.
template <class Combo, class Storage>
void cost_counts_several_units(Storage& s) {
    const auto a = Combo::make(srl::rate{10, 1h});
    auto o = s.acquire("k", a, 0ns, 4);
    CHECK(o.allowed);
    CHECK(o.remaining == 6);
    o = s.acquire("k", a, 0ns, 7);
    CHECK_FALSE(o.allowed);
    CHECK(o.retryable);
    CHECK(o.remaining == 6);
    const auto huge = s.acquire("k", a, 0ns, 11);
    CHECK_FALSE(huge.allowed);
    CHECK_FALSE(huge.retryable);
    CHECK(huge.retry_after == srl::never);
    o = s.acquire("k", a, 0ns, 6);
    CHECK(o.allowed);
    CHECK(o.remaining == 0);
    CHECK(s.acquire("other", a, 0ns, 10).allowed);
    CHECK(s.acquire(std::string(300, 'x') + "'; DROP TABLE x; -- {tag}", a, 0ns, 10).allowed);
    CHECK_FALSE(s.acquire("third", a, 0ns, 11).retryable);
}

/// Peek decides without consuming and release gives units back; `exists(key, a)`
/// says whether the backend holds state for the key (peek and release of a key
/// never seen create none).
template <class Combo, class Storage, class Exists>
void peek_and_release(Storage& s, Exists&& exists) {
    const auto a = Combo::make(srl::rate{3, 1h});
    for (int i = 0; i < 5; ++i) CHECK(s.peek("k", a, 0ns, 3).allowed);
    CHECK_FALSE(exists("k", a));
    CHECK(s.acquire("k", a, 0ns, 3).allowed);
    CHECK(exists("k", a));
    CHECK_FALSE(s.peek("k", a, 0ns, 1).allowed);
    s.release("k", a, 0ns, 2);
    CHECK(s.peek("k", a, 0ns, 2).allowed);
    CHECK(s.acquire("k", a, 0ns, 2).allowed);
    CHECK_FALSE(s.acquire("k", a, 0ns, 1).allowed);
    s.release("missing", a, 0ns, 1);  // a no-op
    CHECK_FALSE(exists("missing", a));
}

/// A billion units a year: no overflow in counts, waits or resets. The backend's
/// clock is real and a token bucket refills 32 units a second at this rate, so the
/// denied request asks for a million units (almost nine hours of refill), not one.
template <class Combo, class Storage>
void largest_limits_do_not_overflow(Storage& s) {
    const auto a = Combo::make(srl::rate{1'000'000'000, 365 * 24h});
    auto o = s.acquire("k", a, 0ns, 999'999'999);
    REQUIRE(o.allowed);
    CHECK(o.remaining == 1);
    CHECK(o.reset_after > 0ns);
    CHECK(o.reset_after <= 2 * 365 * 24h);
    CHECK(s.acquire("k", a, 0ns, 1).allowed);
    o = s.acquire("k", a, 0ns, 1'000'000);
    CHECK_FALSE(o.allowed);
    CHECK(o.retry_after > 0ns);
    CHECK(o.retry_after <= 2 * 365 * 24h);
}

/// After the reported retry_after (real time: the backend's clock decides) the
/// request passes.
template <class Combo, class Storage>
void waiting_retry_after_is_enough(Storage& s) {
    const auto a = Combo::make(srl::rate{2, 1s});
    REQUIRE(s.acquire("k", a, 0ns, 2).allowed);
    const auto d = s.acquire("k", a, 0ns, 1);
    REQUIRE_FALSE(d.allowed);
    REQUIRE(d.retry_after > 0ns);
    REQUIRE(d.retry_after <= 2s);
    std::this_thread::sleep_for(d.retry_after + 20ms);
    CHECK(s.acquire("k", a, 0ns, 1).allowed);
}

/// Eight threads, `per_thread` acquires each, on one key at limit 10: exactly 10 pass.
template <class Combo, class Storage>
void eight_threads_admit_exactly_ten(Storage& s, int per_thread) {
    const auto a = Combo::make(srl::rate{10, 1h});
    std::atomic<int> allowed{0};
    std::vector<std::thread> ts;
    for (int t = 0; t < 8; ++t)
        ts.emplace_back([&] {
            for (int i = 0; i < per_thread; ++i)
                if (s.acquire("hot", a, 0ns, 1).allowed) allowed.fetch_add(1);
        });
    for (auto& t : ts) t.join();
    CHECK(allowed.load() == 10);
}

}  // namespace srl_test::contract
