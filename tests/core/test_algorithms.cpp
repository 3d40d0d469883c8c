// tests/core/test_algorithms.cpp
// The contract suite: every algorithm over every in-memory storage, through the
// storage_backend interface with `now` passed in. Then the behaviour specific to
// each algorithm (window edges, refill rates, the approximate estimate, GCRA spacing).
#include <catch2/catch.hpp>

#include <smart_ratelimit/algorithms/any_algorithm.hpp>
#include <smart_ratelimit/storage/in_memory_storage.hpp>

#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>
#include <tuple>
#include <type_traits>

namespace srl = smart_ratelimit;
using namespace std::chrono_literals;
using std::chrono::nanoseconds;

namespace {

// One algorithm (a static type, or any_algorithm selected by name) over one storage.
template <class A, class Mutex>
struct static_combo {
    using storage_type = srl::in_memory_storage<A, Mutex>;
    static A make(srl::rate r) { return A(r); }
    static constexpr bool exact_log = std::is_same_v<A, srl::sliding_window>;
    static constexpr bool approx = std::is_same_v<A, srl::sliding_window_approx>;
};

template <class A, class Mutex>
struct dynamic_combo {
    using storage_type = srl::in_memory_storage<srl::any_algorithm, Mutex>;
    static srl::any_algorithm make(srl::rate r) { return srl::any_algorithm(A::algorithm_name, r); }
    static constexpr bool exact_log = std::is_same_v<A, srl::sliding_window>;
    static constexpr bool approx = std::is_same_v<A, srl::sliding_window_approx>;
};

#define SRL_COMBOS(M)                                                                     \
    static_combo<srl::fixed_window, M>, static_combo<srl::sliding_window, M>,             \
        static_combo<srl::sliding_window_approx, M>, static_combo<srl::token_bucket, M>,  \
        static_combo<srl::leaky_bucket, M>, dynamic_combo<srl::fixed_window, M>,          \
        dynamic_combo<srl::sliding_window, M>, dynamic_combo<srl::sliding_window_approx, M>, \
        dynamic_combo<srl::token_bucket, M>, dynamic_combo<srl::leaky_bucket, M>

using all_combos = std::tuple<SRL_COMBOS(std::mutex), SRL_COMBOS(srl::null_mutex)>;

const nanoseconds t0 = 864000s;  // ten days: a window boundary for every period below but a year

template <class C>
typename C::storage_type make_storage() {
    srl::in_memory_options o;
    o.max_keys = 1000;
    o.shards = 4;
    return typename C::storage_type(o);
}

}  // namespace

TEMPLATE_LIST_TEST_CASE("an algorithm admits exactly its limit, then denies with a finite wait",
                        "[algorithm][storage]", all_combos) {
    auto s = make_storage<TestType>();
    const auto a = TestType::make(srl::rate{10, 10s});
    for (std::uint64_t i = 0; i < 10; ++i) {
        const auto o = s.acquire("k", a, t0, 1);
        REQUIRE(o.allowed);
        CHECK(o.count == i + 1);
        CHECK(o.remaining == 9 - i);
        CHECK(o.retry_after == 0ns);
        CHECK(o.reset_after > 0ns);
        CHECK(o.reset_after <= 20s);
    }
    const auto denied = s.acquire("k", a, t0, 1);
    CHECK_FALSE(denied.allowed);
    CHECK(denied.retryable);
    CHECK(denied.remaining == 0);
    CHECK(denied.count == 10);
    CHECK(denied.retry_after > 0ns);
    // The weighted counter may need a nanosecond into the next window.
    CHECK(denied.retry_after <= (TestType::approx ? 20s : 10s));

    // Waiting retry_after is enough, and one nanosecond less is not.
    if (denied.retry_after > 1ns) CHECK_FALSE(s.peek("k", a, t0 + denied.retry_after - 1ns, 1).allowed);
    CHECK(s.acquire("k", a, t0 + denied.retry_after, 1).allowed);
}

TEMPLATE_LIST_TEST_CASE("after reset_after the full quota is back", "[algorithm][storage]", all_combos) {
    auto s = make_storage<TestType>();
    const auto a = TestType::make(srl::rate{5, 1min});
    srl::outcome last;
    for (int i = 0; i < 5; ++i) last = s.acquire("k", a, t0 + 1s, 1);
    REQUIRE(last.allowed);
    const nanoseconds later = t0 + 1s + last.reset_after;
    for (int i = 0; i < 5; ++i) REQUIRE(s.acquire("k", a, later, 1).allowed);
    CHECK_FALSE(s.acquire("k", a, later, 1).allowed);
}

TEMPLATE_LIST_TEST_CASE("cost counts several units and a cost above the limit is never retryable",
                        "[algorithm][storage]", all_combos) {
    auto s = make_storage<TestType>();
    const auto a = TestType::make(srl::rate{10, 1s});
    auto o = s.acquire("k", a, t0, 4);
    CHECK(o.allowed);
    CHECK(o.remaining == 6);
    o = s.acquire("k", a, t0, 7);
    CHECK_FALSE(o.allowed);
    CHECK(o.retryable);
    CHECK(o.remaining == 6);

    const auto huge = s.acquire("k", a, t0, 11);
    CHECK_FALSE(huge.allowed);
    CHECK_FALSE(huge.retryable);
    CHECK(huge.retry_after == srl::never);
    CHECK(huge.remaining == 6);  // consumed nothing

    o = s.acquire("k", a, t0, 6);
    CHECK(o.allowed);
    CHECK(o.remaining == 0);

    // A fresh key: cost == limit passes, cost == limit + 1 never does.
    CHECK(s.acquire("other", a, t0, 10).allowed);
    CHECK_FALSE(s.acquire("third", a, t0, 11).retryable);
}

TEMPLATE_LIST_TEST_CASE("keys are independent", "[algorithm][storage]", all_combos) {
    auto s = make_storage<TestType>();
    const auto a = TestType::make(srl::rate{2, 1min});
    CHECK(s.acquire("a", a, t0, 2).allowed);
    CHECK_FALSE(s.acquire("a", a, t0, 1).allowed);
    CHECK(s.acquire("b", a, t0, 2).allowed);
    CHECK(s.acquire(std::string(300, 'x'), a, t0, 2).allowed);
}

TEMPLATE_LIST_TEST_CASE("peek decides without consuming and release gives units back",
                        "[algorithm][storage]", all_combos) {
    auto s = make_storage<TestType>();
    const auto a = TestType::make(srl::rate{3, 1min});
    for (int i = 0; i < 10; ++i) CHECK(s.peek("k", a, t0, 3).allowed);
    CHECK(s.size() == 0);  // peeking a new key creates nothing
    CHECK(s.acquire("k", a, t0, 3).allowed);
    CHECK_FALSE(s.peek("k", a, t0, 1).allowed);
    s.release("k", a, t0, 2);
    CHECK(s.peek("k", a, t0, 2).allowed);
    CHECK(s.acquire("k", a, t0, 2).allowed);
    CHECK_FALSE(s.acquire("k", a, t0, 1).allowed);
    s.release("missing", a, t0, 1);  // a no-op
    CHECK(s.size() == 1);
}

TEMPLATE_LIST_TEST_CASE("peek reports the outcome the next acquire makes",
                        "[algorithm][storage]", all_combos) {
    auto s = make_storage<TestType>();
    const auto a = TestType::make(srl::rate{5, 1min});
    for (int i = 0; i < 7; ++i) {
        const nanoseconds now = t0 + i * 5s;
        for (const std::uint64_t cost : {std::uint64_t{1}, std::uint64_t{2}, std::uint64_t{9}}) {
            const auto p = s.peek("k", a, now, cost);
            auto copy = make_storage<TestType>();  // same history, then the acquire
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

TEMPLATE_LIST_TEST_CASE("a backwards clock step neither drains quota nor gives a negative wait",
                        "[algorithm][storage]", all_combos) {
    auto s = make_storage<TestType>();
    const auto a = TestType::make(srl::rate{10, 1min});
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

TEMPLATE_LIST_TEST_CASE("a huge forward jump refills at most to capacity", "[algorithm][storage]",
                        all_combos) {
    auto s = make_storage<TestType>();
    const auto a = TestType::make(srl::rate{7, 1s});
    for (int i = 0; i < 7; ++i) REQUIRE(s.acquire("k", a, t0, 1).allowed);
    for (const nanoseconds jump : {nanoseconds(100 * 365 * 24h), nanoseconds(200 * 365 * 24h)}) {
        const nanoseconds later = t0 + jump;
        for (int i = 0; i < 7; ++i) REQUIRE(s.acquire("k", a, later, 1).allowed);
        CHECK_FALSE(s.acquire("k", a, later, 1).allowed);
    }
}

TEMPLATE_LIST_TEST_CASE("the largest limits and periods do not overflow", "[algorithm][storage]",
                        all_combos) {
    auto s = make_storage<TestType>();
    const auto a = TestType::make(srl::rate{1'000'000'000, 365 * 24h});
    auto o = s.acquire("k", a, t0, 999'999'999);
    REQUIRE(o.allowed);
    CHECK(o.remaining == 1);
    CHECK(o.reset_after > 0ns);
    CHECK(o.reset_after <= 2 * 365 * 24h);
    CHECK(s.acquire("k", a, t0 + 1h, 1).allowed);
    o = s.acquire("k", a, t0 + 1h, 1);
    if (!o.allowed) {
        CHECK(o.retry_after > 0ns);
        CHECK(o.retry_after <= 2 * 365 * 24h);
    }
    const auto never = s.acquire("k", a, t0 + 1h, std::uint64_t{1} << 63);
    CHECK_FALSE(never.allowed);
    CHECK_FALSE(never.retryable);
    // Tiny periods with big limits: sub-nanosecond intervals.
    const auto fast = TestType::make(srl::rate{1'000'000'000, 1s});
    for (int i = 0; i < 3; ++i) CHECK(s.acquire("f", fast, t0 + nanoseconds(i), 300'000'000).allowed);
    const auto f = s.acquire("f", fast, t0 + 3ns, 300'000'000);
    CHECK_FALSE(f.allowed);
    CHECK(f.retry_after > 0ns);
    CHECK(f.retry_after <= (TestType::approx ? 2s : 1s));
}

TEMPLATE_LIST_TEST_CASE("count plus remaining is the limit on every decision", "[algorithm][storage]",
                        all_combos) {
    auto s = make_storage<TestType>();
    const auto a = TestType::make(srl::rate{13, 1s});
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

// ---- algorithm-specific behaviour ---------------------------------------------------

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
    for (const auto name : srl::any_algorithm::names) CHECK(srl::any_algorithm(name, r).name() == name);
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
