// tests/core/test_concurrency.cpp
// Exactness under concurrency: eight threads hammer one key with the clock frozen
// and every algorithm admits exactly its limit, through the whole limiter; the same
// with two rules (all-or-nothing must not over- or under-admit).
#include <catch2/catch.hpp>

#include <smart_ratelimit/smart_ratelimit.hpp>

#include <atomic>
#include <cstdint>
#include <string>
#include <thread>
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
