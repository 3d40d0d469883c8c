// tests/support/storage_contract.hpp
// The storage contract cases every storage (in memory, Redis, SQL state) must pass,
// written once: each takes a ready storage and a test type naming the algorithm
// (static_combo: the algorithm type itself; dynamic_combo: through any_algorithm).
// The cases outside `manual_clock` pass `now` = 0 and hold on any clock; the
// `manual_clock` ones move `now` themselves, for storages that decide on the caller's
// `now` (in memory). The storage's own test file adds what only that backend can check.
#pragma once

#include <catch2/catch.hpp>

#include <smart_ratelimit/algorithms/any_algorithm.hpp>
#include <smart_ratelimit/rate.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <initializer_list>
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

/// A key filled under a higher limit and then decided under a lower one (a rule
/// lowered by new settings over the same store) is over the new limit: denied,
/// retryable, nothing remaining, never admitted by a wrapped-around remainder.
template <class Combo, class Storage>
void lowered_limit_denies_a_full_key(Storage& s) {
    const auto high = Combo::make(srl::rate{10, 1h});
    const auto low = Combo::make(srl::rate{4, 1h});
    for (int i = 0; i < 10; ++i) REQUIRE(s.acquire("k", high, 0ns, 1).allowed);
    CHECK_FALSE(s.peek("k", low, 0ns, 1).allowed);
    const auto o = s.acquire("k", low, 0ns, 1);
    CHECK_FALSE(o.allowed);
    CHECK(o.retryable);
    CHECK(o.remaining == 0);
    CHECK(o.retry_after > 0ns);
    CHECK_FALSE(s.acquire("k", low, 0ns, 4).allowed);
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
    CHECK(huge.remaining == 6);
    o = s.acquire("k", a, 0ns, 6);
    CHECK(o.allowed);
    CHECK(o.remaining == 0);
    CHECK(s.acquire("other", a, 0ns, 10).allowed);
    CHECK(s.acquire(std::string(300, 'x') + "'; DROP TABLE x; -- {tag}", a, 0ns, 10).allowed);
    CHECK_FALSE(s.acquire("third", a, 0ns, 11).retryable);
}

/// Keys are independent: exhausting one leaves the others whole, long keys and keys
/// with braces (a Redis hash tag) and spaces included.
template <class Combo, class Storage>
void keys_are_independent(Storage& s) {
    const auto a = Combo::make(srl::rate{2, 1h});
    CHECK(s.acquire("a", a, 0ns, 2).allowed);
    CHECK_FALSE(s.acquire("a", a, 0ns, 1).allowed);
    CHECK(s.acquire("b", a, 0ns, 2).allowed);
    CHECK(s.acquire(std::string(300, 'x'), a, 0ns, 2).allowed);
    CHECK(s.acquire("with {braces} and spaces", a, 0ns, 2).allowed);
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
    const auto never = s.acquire("k", a, 0ns, std::uint64_t{1} << 62);
    CHECK_FALSE(never.allowed);
    CHECK_FALSE(never.retryable);
}

/// count + remaining is the limit on every decision, allowed or denied, and the
/// reset stays within twice the period.
template <class Combo, class Storage>
void count_plus_remaining_is_the_limit(Storage& s) {
    const auto a = Combo::make(srl::rate{13, 1h});
    for (int i = 0; i < 40; ++i) {
        const auto o = s.acquire("k", a, 0ns, 1 + (i % 3));
        INFO("step " << i);
        REQUIRE(o.count + o.remaining == 13);
        REQUIRE(o.retry_after >= 0ns);
        REQUIRE(o.reset_after >= 0ns);
        REQUIRE(o.reset_after <= 2h);
    }
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

/// Eight threads, `per_thread` acquires each, on one key at limit `limit`, started
/// together (each waits for all eight before its first acquire, so they race from the
/// first decision on): exactly `limit` pass.
template <class Combo, class Storage>
void eight_threads_admit_exactly(Storage& s, std::uint64_t limit, int per_thread) {
    const auto a = Combo::make(srl::rate{limit, 1h});
    std::atomic<int> ready{0};
    std::atomic<std::uint64_t> allowed{0};
    std::vector<std::thread> ts;
    for (int t = 0; t < 8; ++t)
        ts.emplace_back([&] {
            ready.fetch_add(1);
            while (ready.load() < 8) std::this_thread::yield();
            std::uint64_t mine = 0;
            for (int i = 0; i < per_thread; ++i)
                mine += s.acquire("hot", a, 0ns, 1).allowed ? 1 : 0;
            allowed.fetch_add(mine);
        });
    for (auto& t : ts) t.join();
    CHECK(allowed.load() == limit);
}

/// Eight threads, `per_thread` acquires each, on one key at limit 10: exactly 10 pass.
template <class Combo, class Storage>
void eight_threads_admit_exactly_ten(Storage& s, int per_thread) {
    eight_threads_admit_exactly<Combo>(s, 10, per_thread);
}

// ---- on a manual clock ----------------------------------------------------------------
// For storages that decide on the `now` they are given: these cases step it themselves.
namespace manual_clock {

using std::chrono::nanoseconds;

/// Ten days: a window boundary for every period below but a year.
inline constexpr nanoseconds t0 = 864000s;

/// Waiting exactly the reported retry_after is enough, and one nanosecond less is not.
template <class Combo, class Storage>
void retry_after_is_exact(Storage& s) {
    const auto a = Combo::make(srl::rate{10, 10s});
    for (int i = 0; i < 10; ++i) REQUIRE(s.acquire("k", a, t0, 1).allowed);
    const auto denied = s.acquire("k", a, t0, 1);
    REQUIRE_FALSE(denied.allowed);
    REQUIRE(denied.retry_after > 0ns);
    // The weighted counter may need a nanosecond into the next window.
    CHECK(denied.retry_after <= (Combo::approx ? 20s : 10s));
    if (denied.retry_after > 1ns)
        CHECK_FALSE(s.peek("k", a, t0 + denied.retry_after - 1ns, 1).allowed);
    CHECK(s.acquire("k", a, t0 + denied.retry_after, 1).allowed);
}

/// After the reported reset_after the full quota is back.
template <class Combo, class Storage>
void full_quota_after_reset_after(Storage& s) {
    const auto a = Combo::make(srl::rate{5, 1min});
    srl::outcome last;
    for (int i = 0; i < 5; ++i) last = s.acquire("k", a, t0 + 1s, 1);
    REQUIRE(last.allowed);
    const nanoseconds later = t0 + 1s + last.reset_after;
    for (int i = 0; i < 5; ++i) REQUIRE(s.acquire("k", a, later, 1).allowed);
    CHECK_FALSE(s.acquire("k", a, later, 1).allowed);
}

/// Peek reports the outcome the next acquire makes: at each step, a fresh storage from
/// `make()` replays the same history and then acquires what was peeked.
template <class Combo, class Make>
void peek_reports_the_next_acquire(Make&& make) {
    auto s = make();
    const auto a = Combo::make(srl::rate{5, 1min});
    for (int i = 0; i < 7; ++i) {
        const nanoseconds now = t0 + i * 5s;
        for (const std::uint64_t cost : {std::uint64_t{1}, std::uint64_t{2}, std::uint64_t{9}}) {
            const auto p = s.peek("k", a, now, cost);
            auto copy = make();
            for (int j = 0; j < i; ++j) copy.acquire("k", a, t0 + j * 5s, 1);
            const auto q = copy.acquire("k", a, now, cost);
            INFO("step " << i << " cost " << cost);
            CHECK(p.allowed == q.allowed);
            CHECK(p.count == q.count);
            CHECK(p.remaining == q.remaining);
            CHECK(p.reset_after == q.reset_after);
            CHECK(p.retry_after == q.retry_after);
        }
        s.acquire("k", a, now, 1);
    }
}

/// A backwards clock step neither drains quota nor gives a negative wait.
template <class Combo, class Storage>
void backwards_clock_step(Storage& s) {
    const auto a = Combo::make(srl::rate{10, 1min});
    for (int i = 0; i < 4; ++i) REQUIRE(s.acquire("k", a, t0 + 30s, 1).allowed);
    for (const nanoseconds back : {t0 + 29s, t0, t0 - 1h, t0 - 100 * 24h}) {
        const auto p = s.peek("k", a, back, 1);
        CHECK(p.allowed);
        CHECK(p.remaining >= 5);
        CHECK(p.retry_after >= 0ns);
        CHECK(p.reset_after >= 0ns);
        CHECK(p.reset_after <= 2min);
    }
    // Stepped back an hour: exactly the 6 units left still pass, then a finite wait.
    const nanoseconds back = t0 - 1h;
    for (int i = 0; i < 6; ++i) REQUIRE(s.acquire("k", a, back, 1).allowed);
    const auto d = s.acquire("k", a, back, 1);
    CHECK_FALSE(d.allowed);
    CHECK(d.retry_after > 0ns);
    CHECK(d.retry_after <= 2min);
    CHECK(s.acquire("k", a, back + d.retry_after, 1).allowed);
}

/// A jump of a century or two refills at most to capacity.
template <class Combo, class Storage>
void huge_forward_jump(Storage& s) {
    const auto a = Combo::make(srl::rate{7, 1s});
    for (int i = 0; i < 7; ++i) REQUIRE(s.acquire("k", a, t0, 1).allowed);
    for (const nanoseconds jump : {nanoseconds(100 * 365 * 24h), nanoseconds(200 * 365 * 24h)}) {
        const nanoseconds later = t0 + jump;
        for (int i = 0; i < 7; ++i) REQUIRE(s.acquire("k", a, later, 1).allowed);
        CHECK_FALSE(s.acquire("k", a, later, 1).allowed);
    }
}

/// The largest limits an hour on, the full 64-bit cost range, and tiny periods with
/// big limits (sub-nanosecond intervals) do not overflow.
template <class Combo, class Storage>
void largest_limits_do_not_overflow(Storage& s) {
    const auto a = Combo::make(srl::rate{1'000'000'000, 365 * 24h});
    REQUIRE(s.acquire("k", a, t0, 999'999'999).allowed);
    CHECK(s.acquire("k", a, t0 + 1h, 1).allowed);
    const auto o = s.acquire("k", a, t0 + 1h, 1);
    if (!o.allowed) {
        CHECK(o.retry_after > 0ns);
        CHECK(o.retry_after <= 2 * 365 * 24h);
    }
    const auto never = s.acquire("k", a, t0 + 1h, std::uint64_t{1} << 63);
    CHECK_FALSE(never.allowed);
    CHECK_FALSE(never.retryable);
    const auto fast = Combo::make(srl::rate{1'000'000'000, 1s});
    for (int i = 0; i < 3; ++i)
        CHECK(s.acquire("f", fast, t0 + nanoseconds(i), 300'000'000).allowed);
    const auto f = s.acquire("f", fast, t0 + 3ns, 300'000'000);
    CHECK_FALSE(f.allowed);
    CHECK(f.retry_after > 0ns);
    CHECK(f.retry_after <= (Combo::approx ? 2s : 1s));
}

/// count + remaining is the limit on every decision while time moves on by uneven
/// steps across many windows.
template <class Combo, class Storage>
void count_plus_remaining_as_time_moves(Storage& s) {
    const auto a = Combo::make(srl::rate{13, 1s});
    nanoseconds now = t0;
    for (int i = 0; i < 200; ++i) {
        now += nanoseconds((i * 7919) % 97'000'000);
        const auto o = s.acquire("k", a, now, 1 + (i % 3));
        INFO("step " << i);
        REQUIRE(o.count + o.remaining == 13);
        REQUIRE(o.retry_after >= 0ns);
        REQUIRE(o.reset_after >= 0ns);
        REQUIRE(o.reset_after <= 2s);
    }
}

}  // namespace manual_clock

}  // namespace srl_test::contract
