// tests/algorithms/test_algorithms.cpp
// The behaviour specific to each algorithm, on its state directly: window edges,
// refill rates, the approximate estimate, GCRA spacing (leaky_bucket, and gcra against
// the token bucket), and any_algorithm's names.
// What every algorithm must do over every storage is the storage contract
// (support/storage_contract.hpp), run over the in-memory storage in
// test_storage_contract.cpp.
#include <catch2/catch.hpp>

#include <smart_ratelimit/algorithms/any_algorithm.hpp>
#include <smart_ratelimit/algorithms/gcra.hpp>

#include <chrono>
#include <cstdint>
#include <random>
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
    // The window's edge: exactly reorder_window behind is still a race; 1 ns more is a
    // clock step, which rebases the state's time.
    srl::token_bucket::state_type edge = s;
    CHECK(a.try_acquire(edge, t0 + 100ms - 1ms, 1).retry_after == 401ms);
    CHECK(at(edge) == at(before));
    CHECK_FALSE(a.try_acquire(edge, t0 + 100ms - 1ms - 1ns, 1).allowed);
    CHECK(at(edge) == (t0 + 99ms - 1ns).count());
    // From the state's time (t0 + 100 ms, with 100 ms of refill carried): exactly one
    // token by t0 + 500 ms, not a second one for the late read's 300 us.
    CHECK(a.try_acquire(s, t0 + 500ms, 1).allowed);
    CHECK_FALSE(a.try_acquire(s, t0 + 500ms, 1).allowed);
    // Further back than the window: a clock step, rebased (test_storage_contract.cpp).
    const auto stepped = a.try_acquire(s, t0 + 500ms - 2ms, 1);
    CHECK_FALSE(stepped.allowed);
    CHECK(at(s) == (t0 + 498ms).count());
}

namespace {

// The token bucket's arithmetic written plainly, in 128 bits with no shortcut: the
// model its fast paths (no division before a whole token; one division when a token is
// a whole number of ns) must agree with on every output and every state.
struct token_model {
    std::uint64_t limit;
    std::uint64_t period;
    using state = srl::token_bucket::state_type;
    using u128 = srl::detail::uint128;

    static nanoseconds ns(u128 v) {
        const u128 max = INT64_MAX;
        return nanoseconds(static_cast<std::int64_t>(v > max ? max : v));
    }
    void refill(state& s, std::int64_t now) const {
        if (s.last == srl::detail::fresh_time) {
            s.last = now;
            return;
        }
        if (now <= s.last) {
            if (static_cast<srl::detail::int128>(s.last) - now > srl::token_bucket::reorder_window)
                s.last = now;
            return;
        }
        const u128 elapsed = static_cast<u128>(static_cast<srl::detail::int128>(now) - s.last);
        const u128 c = (elapsed < period ? elapsed : period) * limit + s.credit;
        const u128 added = c / period;
        if (s.used == 0 || added >= s.used) {
            s.used = 0;
            s.credit = 0;
        } else {
            s.used -= static_cast<std::uint64_t>(added);
            s.credit = static_cast<std::uint64_t>(c % period);
        }
        s.last = now;
    }
    nanoseconds until(const state& s, std::uint64_t n) const {
        if (n == 0) return nanoseconds(0);
        const u128 need = static_cast<u128>(n) * period - s.credit;
        return ns((need + limit - 1) / limit);
    }
    srl::outcome try_acquire(state& s, std::int64_t now, std::uint64_t cost) const {
        state r = s;
        refill(r, now);
        srl::outcome o;
        const std::uint64_t tokens = r.used < limit ? limit - r.used : 0;
        if (cost > limit) {
            o.allowed = false;
            o.retryable = false;
            o.retry_after = srl::never;
        } else if (cost <= tokens) {
            o.allowed = true;
            r.used += cost;
        } else {
            o.allowed = false;
            o.retry_after = until(r, r.used - (limit - cost));
        }
        o.count = r.used;
        o.remaining = r.used < limit ? limit - r.used : 0;
        o.reset_after = until(r, r.used);
        if (r.last > now) {
            const std::int64_t lag = r.last - now;
            o.reset_after = nanoseconds(srl::detail::sat_add(o.reset_after.count(), lag));
            if (!o.allowed && o.retry_after != srl::never)
                o.retry_after = nanoseconds(srl::detail::sat_add(o.retry_after.count(), lag));
        }
        if (o.allowed || r.last < s.last) s = r;
        return o;
    }
};

// The next clock reading of a random decision sequence: mostly steps of up to two
// intervals (crossing and missing unit boundaries), and now and then a read that lost a
// race (back by up to reorder_window, its edge included), a longer step back, or a jump
// of a period or more. Wraps to t0 before the year-long rates run off the int64 range.
std::int64_t next_now(std::mt19937_64& rng, std::int64_t now, nanoseconds period,
                      std::int64_t interval) {
    switch (rng() % 16) {
        case 0:  // a read that lost a race: back by reorder_window at most
            now -= static_cast<std::int64_t>(rng() % 1'000'001);
            break;
        case 1:  // a step back, mostly longer than reorder_window
            now -= static_cast<std::int64_t>(rng() % 5'000'000'000);
            break;
        case 2:  // a period or more: a full bucket
            now += period.count() + static_cast<std::int64_t>(rng() % 1000);
            break;
        default:
            now += static_cast<std::int64_t>(rng() % (2 * static_cast<std::uint64_t>(interval)));
            break;
    }
    return now > INT64_MAX / 4 ? t0.count() : now;
}

}  // namespace

TEST_CASE("token bucket agrees with its plain arithmetic on random decisions", "[algorithm]") {
    // Whole ns per token (1000, 500 ms, 12 s, 1 ns) and not (333333333.3, 142857142.8,
    // 31536000000000000 / 999999937), each hammered with steps that cross and miss
    // token boundaries, reordered reads, steps back and jumps ahead.
    const srl::rate rates[] = {{1'000'000, 1s},          {2, 1s},       {5, 1min},
                               {1'000'000'000, 1s},      {3, 1s},       {7, 1s},
                               {999'999'937, 365 * 24h}, {1, 365 * 24h}};
    std::mt19937_64 rng(20261205);
    for (const srl::rate r : rates) {
        CAPTURE(r.limit, r.period.count());
        const srl::token_bucket a(r);
        const token_model m{r.limit, static_cast<std::uint64_t>(r.period.count())};
        const auto interval = static_cast<std::int64_t>(r.period.count() / r.limit) + 1;
        srl::token_bucket::state_type s, ms;
        std::int64_t now = t0.count();
        for (int i = 0; i < 20000; ++i) {
            now = next_now(rng, now, r.period, interval);
            const std::uint64_t cost = rng() % 64 == 0 ? r.limit + 1 : 1 + rng() % 3;
            CAPTURE(i, now, cost);
            const srl::outcome got = a.try_acquire(s, nanoseconds(now), cost);
            const srl::outcome want = m.try_acquire(ms, now, cost);
            REQUIRE(got == want);
            REQUIRE(s.last == ms.last);
            REQUIRE(s.used == ms.used);
            REQUIRE(s.credit == ms.credit);
        }
    }
}

TEST_CASE("gcra decides as the token bucket on every random decision", "[algorithm][gcra]") {
    // Whole ns per unit, and intervals of 1 ms or more that are not (rounded up: the
    // token bucket of the rounded rate), under the same steps as the test above, with
    // releases among them.
    const srl::rate rates[] = {{1'000'000, 1s},
                               {2, 1s},
                               {5, 1min},
                               {1'000'000'000, 1s},
                               {1000, 1h},
                               {3, 1s},
                               {7, 1s},
                               {1, 365 * 24h},
                               {999, 1s},
                               {10, 1ms},
                               {1'000'000'000, 365 * 24h}};
    std::mt19937_64 rng(20261206);
    for (const srl::rate r : rates) {
        CAPTURE(r.limit, r.period.count());
        const srl::gcra g(r);
        const srl::token_bucket tb(srl::rate{r.limit, g.interval() * r.limit});
        CHECK(g.interval().count() * static_cast<std::int64_t>(r.limit) - r.period.count() <
              static_cast<std::int64_t>(r.limit));
        const auto interval = g.interval().count();
        srl::gcra::state_type s;
        srl::token_bucket::state_type ts;
        std::int64_t now = t0.count();
        for (int i = 0; i < 20000; ++i) {
            now = next_now(rng, now, r.period, interval);
            const std::uint64_t cost = rng() % 64 == 0 ? r.limit + 1 : 1 + rng() % 3;
            CAPTURE(i, now, cost);
            if (rng() % 16 == 0) {
                g.release(s, nanoseconds(now), cost);
                tb.release(ts, nanoseconds(now), cost);
                continue;
            }
            const srl::gcra::state_type before = s;
            const srl::outcome got = g.try_acquire(s, nanoseconds(now), cost);
            REQUIRE(got == tb.try_acquire(ts, nanoseconds(now), cost));
            REQUIRE(got == g.peek(before, nanoseconds(now), cost));
            // try_admit: the same decision and state, what a store keeps of the outcome
            srl::gcra::state_type admitted = before;
            REQUIRE(g.try_admit(admitted, nanoseconds(now), cost) == srl::admission::of(got));
            REQUIRE((admitted.tat == s.tat && admitted.last == s.last));
            if (!got.allowed && s.last == before.last) {  // a denial writes only a rebase
                REQUIRE(s.tat == before.tat);
            }
            REQUIRE(s.last == ts.last);
        }
    }
    static_assert(std::is_trivially_copyable_v<srl::gcra::state_type>);
    static_assert(sizeof(srl::gcra::state_type) == 16);
}

TEST_CASE("gcra refuses rates it would distort, and names the algorithm that takes them",
          "[algorithm][gcra]") {
    CHECK(srl::gcra(srl::rate{1'000'000, 1s}).interval() == 1000ns);
    CHECK(srl::gcra(srl::rate{3, 1s}).interval() == 333'333'334ns);
    CHECK(srl::gcra(srl::rate{1000, 1s}).interval() == 1ms);
    CHECK(srl::gcra(srl::rate{1'000'000'000, 1s}).interval() == 1ns);
    CHECK_THROWS_WITH(
        srl::gcra(srl::rate{3'000'000, 1s}),
        Catch::Contains("3000000 per 1000000000 ns") && Catch::Contains("use token_bucket"));
    CHECK_THROWS_AS(srl::gcra(srl::rate{1001, 1s}), srl::config_error);  // 999000.999 ns
    CHECK_THROWS_AS(srl::gcra(srl::rate{0, 1s}), srl::config_error);
    CHECK_THROWS_AS(srl::gcra(srl::rate{1, 0s}), srl::config_error);
    CHECK_THROWS_AS(srl::gcra(srl::rate{1, 366 * 24h}), srl::config_error);
}

TEST_CASE("gcra: clock steps, reordered reads and the ends of time", "[algorithm][gcra]") {
    const srl::gcra a(srl::rate{2, 1s});  // one unit every 500 ms
    srl::gcra::state_type s;
    REQUIRE(a.try_acquire(s, t0, 1).allowed);
    REQUIRE(a.try_acquire(s, t0 + 100ms, 1).allowed);
    CHECK(s.last == (t0 + 100ms).count());
    CHECK(s.tat == (t0 + 1s).count());
    // 300 us behind the latest write: decided at that write's time, waits from there.
    const auto late = a.try_acquire(s, t0 + 100ms - 300us, 1);
    CHECK_FALSE(late.allowed);
    CHECK(late.retry_after == 400ms + 300us);
    CHECK(late.reset_after == 900ms + 300us);
    CHECK(s.tat == (t0 + 1s).count());
    // The window's edge: exactly reorder_window behind is still a race; 1 ns more is a
    // step of the clock, which moves the state.
    srl::gcra::state_type edge = s;
    CHECK(a.try_acquire(edge, t0 + 100ms - 1ms, 1).retry_after == 401ms);
    CHECK(edge.last == s.last);
    CHECK(a.try_acquire(edge, t0 + 100ms - 1ms - 1ns, 1).retry_after == 400ms);
    CHECK(edge.last == (t0 + 99ms - 1ns).count());
    // A step back of a minute: the bucket keeps its level (nothing refilled, nothing
    // drained) and the state moves with the clock.
    const auto back = a.try_acquire(s, t0 - 1min, 1);
    CHECK_FALSE(back.allowed);
    CHECK(back.retry_after == 400ms);
    CHECK(back.count == 2);
    CHECK(s.last == (t0 - 1min).count());
    CHECK(s.tat == (t0 - 1min + 900ms).count());
    // More than the capacity never passes, and is never retryable.
    const auto huge = a.try_acquire(s, t0, 3);
    CHECK_FALSE(huge.allowed);
    CHECK_FALSE(huge.retryable);
    CHECK(huge.retry_after == srl::never);
    // At the end of representable time nothing overflows: the last admissions pass,
    // then nothing does, and the waits saturate.
    srl::gcra::state_type end;
    const nanoseconds last(INT64_MAX - 600'000'000);
    CHECK(a.try_acquire(end, last, 1).allowed);
    const auto at_end = a.try_acquire(end, last, 2);
    CHECK_FALSE(at_end.allowed);
    CHECK(at_end.retry_after > 0ns);
    CHECK(at_end.count == 1);
    // And at its start.
    srl::gcra::state_type start;
    CHECK(a.try_acquire(start, nanoseconds(INT64_MIN + 1), 2).allowed);
    CHECK_FALSE(a.try_acquire(start, nanoseconds(INT64_MIN + 1), 1).allowed);
    CHECK(a.try_acquire(start, nanoseconds(INT64_MAX - 1'000'000'000), 2).allowed);
    CHECK_FALSE(a.try_acquire(start, nanoseconds(INT64_MAX), 1).allowed);  // tat would pass it
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
                   srl::token_bucket, srl::leaky_bucket, srl::gcra) {
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
