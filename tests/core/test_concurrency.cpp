// tests/core/test_concurrency.cpp
// Exactness under concurrency: eight threads hammer one key with the clock frozen
// and every algorithm admits exactly its limit, through the whole limiter; the same
// with two rules (all-or-nothing must not over- or under-admit, and a request one rule
// refuses after another was charged gives that charge back). On in_memory_storage
// (the algorithm chosen by name, each key under its shard's mutex) and on
// concurrent_storage (each algorithm as its static type: a decision on a copy of the
// state written back with one CAS, the exact sliding window under the key's spin lock;
// and any_algorithm).
#include <catch2/catch.hpp>

#include <smart_ratelimit/smart_ratelimit.hpp>

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

namespace srl = smart_ratelimit;

namespace {

// Runs `threads` threads that each call f() `per_thread` times after a common start;
// returns how many calls returned true.
template <class F>
std::uint64_t hammer(int threads, int per_thread, F f) {
    std::atomic<int> ready{0};
    std::atomic<std::uint64_t> admitted{0};
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t) {
        pool.emplace_back([&] {
            ready.fetch_add(1);
            while (ready.load() < threads) std::this_thread::yield();
            std::uint64_t mine = 0;
            for (int i = 0; i < per_thread; ++i) mine += f() ? 1 : 0;
            admitted.fetch_add(mine);
        });
    }
    for (auto& th : pool) th.join();
    return admitted.load();
}

// The wide rule first: a request that passed both peeks, acquired the wide unit and
// then lost the tight rule's last unit to another thread must give the wide unit back.
// Each round crosses the tight limit once, hence many rounds.
template <class MakeLimiter>
void wide_rule_first_gives_back(MakeLimiter make) {
    for (int round = 0; round < 50; ++round) {
        auto lim = make();
        REQUIRE(hammer(8, 10, [&] { return lim->check(0).allowed(); }) == 20);
        const auto v = lim->check(0);
        REQUIRE(v[0].count == 21);  // 20 admitted plus this peek
    }
}

}  // namespace

TEST_CASE("eight threads on one key with a frozen clock: each algorithm admits exactly its limit",
          "[limiter][concurrency]") {
    for (const auto name : srl::any_algorithm::names) {
        INFO(name);
        srl::manual_clock clock;
        srl::manual_in_memory_limiter<srl::fixed_key> lim(
            srl::fixed_key("hot"), {{"", "1000/h", std::string(name)}}, {}, {}, {}, clock);
        const auto admitted = hammer(8, 400, [&] { return lim.check(0).allowed(); });
        CHECK(admitted == 1000);
        CHECK(lim.check(0).blocked());
    }
}

TEST_CASE("eight threads with cost 3 admit exactly floor(limit / 3) requests",
          "[limiter][concurrency]") {
    for (const auto name : srl::any_algorithm::names) {
        INFO(name);
        srl::manual_in_memory_limiter<srl::fixed_key> lim(srl::fixed_key("hot"),
                                                          {{"", "1000/h", std::string(name)}});
        CHECK(hammer(8, 200, [&] { return lim.check(0, 3).allowed(); }) == 333);
    }
}

TEST_CASE("eight threads through two rules admit exactly the tighter limit",
          "[limiter][concurrency]") {
    for (const auto name : srl::any_algorithm::names) {
        INFO(name);
        srl::manual_in_memory_limiter<srl::fixed_key> lim(
            srl::fixed_key("hot"),
            {{"tight", "300/h", std::string(name)}, {"wide", "5000/h", "fixed_window"}});
        CHECK(hammer(8, 200, [&] { return lim.check(0).allowed(); }) == 300);
        // The wide rule was charged for admitted requests only.
        const auto v = lim.check(0);
        CHECK(v[1].count == 301);  // 300 admitted plus this peek
    }
}

TEST_CASE("two rules, the wide one first: a request refused by the tight one is not charged",
          "[limiter][concurrency]") {
    for (const auto name : srl::any_algorithm::names) {
        INFO(name);
        wide_rule_first_gives_back([&] {
            return std::make_unique<srl::manual_in_memory_limiter<srl::fixed_key>>(
                srl::fixed_key("hot"),
                std::vector<srl::rule_config>{{"wide", "5000/h", "fixed_window"},
                                              {"tight", "20/h", std::string(name)}});
        });
    }
}

namespace {

template <class Algorithm>
using concurrent_limiter = srl::limiter<srl::fixed_key, srl::concurrent_storage<Algorithm>,
                                        srl::null_sink, srl::manual_clock>;

// A limiter on concurrent_storage<Algorithm> whose rules are (name, rate) with the
// algorithm's own name (the storage holds one algorithm's states), or the names given
// for any_algorithm.
template <class Algorithm>
std::unique_ptr<concurrent_limiter<Algorithm>> concurrent_on(std::vector<srl::rule_config> rules) {
    if constexpr (!std::is_same_v<Algorithm, srl::any_algorithm>)
        for (auto& r : rules) r.algorithm = std::string(Algorithm::algorithm_name);
    return std::make_unique<concurrent_limiter<Algorithm>>(
        srl::fixed_key("hot"), rules, srl::limiter_options{}, srl::concurrent_storage<Algorithm>{},
        srl::null_sink{}, srl::manual_clock{});
}

}  // namespace

TEMPLATE_TEST_CASE("concurrent_storage: eight threads on one key admit exactly the limit",
                   "[limiter][concurrency]", srl::fixed_window, srl::sliding_window,
                   srl::sliding_window_approx, srl::token_bucket, srl::leaky_bucket, srl::gcra,
                   srl::any_algorithm) {
    SECTION("one rule, the clock frozen") {
        auto lim = concurrent_on<TestType>({{"", "1000/h", "token_bucket"}});
        CHECK(hammer(8, 400, [&] { return lim->check(0).allowed(); }) == 1000);
        CHECK(lim->check(0).blocked());
    }
    SECTION("one rule, allow(): a yes or no with no verdict, the same admissions") {
        auto lim = concurrent_on<TestType>({{"", "1000/h", "token_bucket"}});
        CHECK(hammer(8, 400, [&] { return lim->allow(0); }) == 1000);
        CHECK(lim->check(0).blocked());
    }
    SECTION("cost 3") {
        auto lim = concurrent_on<TestType>({{"", "1000/h", "sliding_window"}});
        CHECK(hammer(8, 200, [&] { return lim->check(0, 3).allowed(); }) == 333);
    }
    SECTION("cost 3, allow(), a named rule") {
        auto lim = concurrent_on<TestType>({{"api", "1000/h", "sliding_window"}});
        CHECK(hammer(8, 200, [&] { return lim->allow(0, 3); }) == 333);
    }
    SECTION("two rules, the wide one first: a request refused by the tight one is not charged") {
        wide_rule_first_gives_back([] {
            return concurrent_on<TestType>(
                {{"wide", "5000/h", "fixed_window"}, {"tight", "20/h", "leaky_bucket"}});
        });
    }
}
