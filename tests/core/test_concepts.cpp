// tests/core/test_concepts.cpp
// The concepts of concepts.hpp: every shipped policy and an archetype satisfy them,
// typical mistakes do not. And the clocks: monotonic, coarse close to precise, the
// manual clock settable, shared between copies and able to step backwards.
#include <catch2/catch.hpp>

#include <smart_ratelimit/smart_ratelimit.hpp>
#include <support/archetypes.hpp>
#include <support/recording_sink.hpp>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

namespace srl = smart_ratelimit;
namespace arch = srl_test::archetype;
using namespace std::chrono_literals;

// ---- archetypes prove the tables ----------------------------------------------------
static_assert(srl::clock<arch::clock>);
static_assert(srl::algorithm<arch::algorithm>);
static_assert(srl::state_store<arch::state_store>);
static_assert(srl::storage_backend<arch::storage_backend>);
static_assert(srl::key_extractor_for<arch::key_extractor, arch::request>);
static_assert(srl::event_sink<arch::event_sink>);
// A limiter can be built from archetypes alone.
using archetype_limiter =
    srl::limiter<arch::key_extractor, arch::storage_backend, arch::event_sink, arch::clock>;
static_assert(sizeof(archetype_limiter) > 0);

// ---- shipped policies ------------------------------------------------------------------
static_assert(srl::clock<srl::steady_clock>);
static_assert(srl::clock<srl::coarse_steady_clock>);
static_assert(srl::clock<srl::manual_clock>);
static_assert(srl::algorithm<srl::fixed_window>);
static_assert(srl::algorithm<srl::sliding_window>);
static_assert(srl::algorithm<srl::sliding_window_approx>);
static_assert(srl::algorithm<srl::token_bucket>);
static_assert(srl::algorithm<srl::leaky_bucket>);
static_assert(srl::algorithm<srl::any_algorithm>);
static_assert(srl::storage_backend<srl::in_memory_storage<>>);
static_assert(srl::storage_backend<srl::in_memory_storage_st<srl::token_bucket>>);
static_assert(srl::starts_lookups<srl::concurrent_storage<srl::gcra>>);
static_assert(!srl::starts_lookups<srl::in_memory_storage<>>);
static_assert(srl::state_store<srl::in_memory_storage<>>);
static_assert(srl::state_store<srl::in_memory_storage<srl::fixed_window, srl::null_mutex>>);
static_assert(srl::event_sink<srl::null_sink>);
static_assert(srl::event_sink<srl::callback_sink<void (*)(const srl::event&)>>);
static_assert(srl::event_sink<srl::function_sink>);
static_assert(srl::event_sink<srl_test::recording_sink>);
static_assert(srl::key_extractor_for<srl::fixed_key, arch::request>);

// Empty policies take no space in a limiter.
static_assert(sizeof(srl::limiter<srl::fixed_key, srl::in_memory_storage<>>) ==
              sizeof(srl::limiter<srl::fixed_key, srl::in_memory_storage<>, srl::null_sink,
                                  srl::coarse_steady_clock>));
static_assert(std::is_trivially_copyable_v<srl::decision>);

// ---- typical mistakes ------------------------------------------------------------------
namespace mistakes {
struct clock_returning_time_point {  // now() must be nanoseconds since an epoch
    std::chrono::steady_clock::time_point now() const { return {}; }
    srl::event_time wall_now() const { return {}; }
};
struct clock_without_wall_time {
    std::chrono::nanoseconds now() const { return {}; }
};
struct algorithm_returning_bool : arch::algorithm {  // a bare bool result
    bool try_acquire(state_type&, std::chrono::nanoseconds, std::uint64_t) const { return true; }
};
struct algorithm_reading_the_clock {  // no `now` parameter
    struct state_type {};
    std::uint64_t limit() const { return 1; }
    std::chrono::nanoseconds period() const { return 1s; }
    srl::outcome try_acquire(state_type&, std::uint64_t) const { return {}; }
    srl::outcome peek(const state_type&, std::uint64_t) const { return {}; }
    void release(state_type&, std::uint64_t) const {}
};
struct get_then_set_store {  // no update-with-callback
    using state_type = int;
    int get(std::string_view) const { return 0; }
    void set(std::string_view, int) {}
};
struct storage_without_peek {
    using algorithm_type = arch::algorithm;
    srl::outcome acquire(std::string_view, const arch::algorithm&, std::chrono::nanoseconds,
                         std::uint64_t) {
        return {};
    }
};
struct extractor_returning_int {
    int operator()(const arch::request&) const { return 0; }
};
struct sink_with_log_method {
    void log(const srl::event&) {}
};
}  // namespace mistakes

static_assert(!srl::clock<mistakes::clock_returning_time_point>);
static_assert(!srl::clock<mistakes::clock_without_wall_time>);
static_assert(!srl::clock<std::chrono::steady_clock>);
static_assert(!srl::algorithm<mistakes::algorithm_returning_bool>);
static_assert(!srl::algorithm<mistakes::algorithm_reading_the_clock>);
static_assert(!srl::state_store<mistakes::get_then_set_store>);
static_assert(!srl::storage_backend<mistakes::storage_without_peek>);
static_assert(!srl::key_extractor_for<mistakes::extractor_returning_int, arch::request>);
static_assert(!srl::key_extractor_for<srl::fixed_key, void>);
static_assert(!srl::event_sink<mistakes::sink_with_log_method>);
static_assert(!srl::event_sink<int>);

TEST_CASE("concepts accept the shipped policies and reject typical mistakes", "[core]") {
    // Everything above is checked at compile time; here the archetype limiter runs.
    std::vector<archetype_limiter::rule_type> rules(1);
    archetype_limiter lim(arch::key_extractor{}, std::move(rules), {});
    CHECK(lim.check(arch::request{}).blocked());  // the archetype algorithm denies
}

// ---- clocks ------------------------------------------------------------------------------

TEST_CASE("the steady and coarse clocks never go backwards and agree closely", "[core][clock]") {
    const srl::steady_clock precise;
    const srl::coarse_steady_clock coarse;
    auto p = precise.now();
    auto c = coarse.now();
    for (int i = 0; i < 10000; ++i) {
        const auto p2 = precise.now();
        const auto c2 = coarse.now();
        REQUIRE(p2 >= p);
        REQUIRE(c2 >= c);
        p = p2;
        c = c2;
    }
    // Same epoch (CLOCK_MONOTONIC); the coarse one lags by at most a tick. Generous bound.
    const auto diff = precise.now() - coarse.now();
    CHECK(diff > -1s);
    CHECK(diff < 1s);
    const auto wall = precise.wall_now();
    CHECK(wall.time_since_epoch() > std::chrono::hours(24 * 365 * 50));
}

TEST_CASE("the TSC clock never goes backwards and keeps the steady clock's time and rate",
          "[core][clock]") {
    static_assert(srl::clock<srl::tsc_clock>);
    const srl::tsc_clock tsc;
    const srl::steady_clock steady;
#if defined(__x86_64__)
    // Every x86-64 machine these tests run on has an invariant counter; elsewhere the
    // clock reads steady_clock, which the rest of the test also checks.
    CHECK(tsc.reads_counter() == srl::detail::invariant_tsc());
#endif
    auto t = tsc.now();
    for (int i = 0; i < 100000; ++i) {
        const auto t2 = tsc.now();
        REQUIRE(t2 >= t);
        t = t2;
    }
    // Same time line as steady_clock: within a millisecond of it, and over 100 ms by
    // steady_clock (waited for by reading it, no sleep), the same span to 0.1%.
    const auto s0 = steady.now();
    const auto t0 = tsc.now();
    CHECK(std::chrono::abs(t0 - s0) < 1ms);
    while (steady.now() - s0 < 100ms) {}
    const auto t1 = tsc.now();
    const auto s1 = steady.now();
    const double ratio =
        static_cast<double>((t1 - t0).count()) / static_cast<double>((s1 - s0).count());
    CHECK(ratio > 0.999);
    CHECK(ratio < 1.001);
    // A copy reads the same scale; the wall time is the system's.
    const srl::tsc_clock copy = tsc;
    CHECK(std::chrono::abs(copy.now() - tsc.now()) < 1ms);
    CHECK(tsc.wall_now().time_since_epoch() > std::chrono::hours(24 * 365 * 50));
}

TEST_CASE("a limiter on the TSC clock refills as time passes", "[core][clock]") {
    srl::limiter<srl::fixed_key, srl::concurrent_storage<srl::token_bucket>, srl::null_sink,
                 srl::tsc_clock>
        lim(srl::fixed_key("k"), {{"", "10/s", "token_bucket"}});
    int admitted = 0;
    for (int i = 0; i < 20; ++i) admitted += lim.check(0).allowed() ? 1 : 0;
    CHECK(admitted >= 10);
    CHECK(admitted <= 11);  // at most one token refilled while the loop ran
    const auto start = srl::steady_clock{}.now();
    while (srl::steady_clock{}.now() - start < 250ms) {}
    CHECK(lim.check(0).allowed());  // 2.5 tokens refilled
}

TEST_CASE("the manual clock is set by hand, shared by copies and can step backwards",
          "[core][clock]") {
    srl::manual_clock clock(100s, srl::event_time(std::chrono::seconds(1'700'000'000)));
    const srl::manual_clock copy = clock;
    CHECK(copy.now() == 100s);
    CHECK(copy.wall_now() == srl::event_time(std::chrono::seconds(1'700'000'000)));
    clock.advance(1500ms);
    CHECK(copy.now() == 101500ms);
    CHECK(copy.wall_now() == srl::event_time(std::chrono::milliseconds(1'700'000'001'500)));
    clock.set(50s);
    CHECK(copy.now() == 50s);
    clock.advance(-10s);
    CHECK(copy.now() == 40s);
    clock.set_wall(srl::event_time(std::chrono::seconds(1'800'000'000)));
    CHECK(copy.now() == 40s);
    CHECK(copy.wall_now() == srl::event_time(std::chrono::seconds(1'800'000'000)));

    // Advanced concurrently from several threads, no step is lost.
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t)
        threads.emplace_back([&] {
            for (int i = 0; i < 1000; ++i) clock.advance(1ns);
        });
    for (auto& t : threads) t.join();
    CHECK(copy.now() == 40s + 4000ns);
}

TEST_CASE("a limiter on a manual clock follows it, backwards steps included",
          "[core][clock][limiter]") {
    srl::manual_clock clock;
    srl::manual_in_memory_limiter<srl::fixed_key> lim(
        srl::fixed_key("k"), {{"", "2/s", "token_bucket"}}, {}, {}, {}, clock);
    CHECK(lim.check(0).allowed());
    CHECK(lim.check(0).allowed());
    CHECK(lim.check(0).blocked());
    clock.advance(-1h);
    const auto v = lim.check(0);
    CHECK(v.blocked());  // no drain, no refill from the step
    CHECK(v.retry_after() > 0ns);
    CHECK(v.retry_after() <= 500ms);
    clock.advance(500ms);
    CHECK(lim.check(0).allowed());
}
