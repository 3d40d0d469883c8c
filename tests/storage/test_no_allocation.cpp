// tests/storage/test_no_allocation.cpp
// A decision on a key an in-memory storage (in_memory_storage, concurrent_storage)
// already holds allocates nothing: the key is formatted into the verdict's own buffer
// and looked up by string_view. Proven with a counting replacement of the global
// operator new, which is why this test is an executable of its own.
#include <catch2/catch.hpp>

#include <smart_ratelimit/smart_ratelimit.hpp>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <new>
#include <string>
#include <vector>

namespace {
std::atomic<std::size_t> allocations{0};
}  // namespace

void* operator new(std::size_t n) {
    allocations.fetch_add(1, std::memory_order_relaxed);
    if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
    throw std::bad_alloc();
}
void* operator new[](std::size_t n) { return ::operator new(n); }
// The nothrow forms too: every form this program can free with the deletes below must
// come from malloc (a sanitizer's own operator new would not match std::free).
void* operator new(std::size_t n, const std::nothrow_t&) noexcept {
    allocations.fetch_add(1, std::memory_order_relaxed);
    return std::malloc(n == 0 ? 1 : n);
}
void* operator new[](std::size_t n, const std::nothrow_t& t) noexcept {
    return ::operator new(n, t);
}
void operator delete(void* p, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }

namespace srl = smart_ratelimit;

TEST_CASE("decisions on stored keys allocate nothing, for every algorithm", "[storage]") {
    for (const auto name : srl::any_algorithm::names) {
        INFO(name);
        srl::manual_clock clock;
        // Two named rules, so each decision formats "rule:<name>:<key>" twice.
        srl::manual_in_memory_limiter<srl::fixed_key> lim(
            srl::fixed_key("unused"),
            {{"burst", "50/s", std::string(name)}, {"hourly", "100000/h", "token_bucket"}}, {}, {},
            {}, clock);
        std::vector<std::string> users;
        for (int i = 0; i < 64; ++i) users.push_back("user-" + std::to_string(i));
        for (const auto& u : users) REQUIRE(lim.check_key(u).allowed());  // inserts each key

        const std::size_t before = allocations.load();
        std::size_t allowed = 0, denied = 0;
        for (int round = 0; round < 200; ++round) {
            for (const auto& u : users) {
                const srl::verdict v = lim.check_key(u);
                (v.allowed() ? allowed : denied) += 1;
            }
            clock.advance(std::chrono::milliseconds(5));
        }
        const std::size_t during = allocations.load() - before;
        CHECK(allowed > 0);
        CHECK(denied > 0);
        if (name == srl::sliding_window::algorithm_name) {
            // The exact log grows with admissions until its entries start to expire;
            // after that it reuses its storage.
            CHECK(during <= users.size() * 8);
        } else {
            CHECK(during == 0);
        }
    }
}

TEST_CASE("decisions on stored keys of concurrent_storage allocate nothing", "[storage]") {
    // Every algorithm whose state is a few words (the exact sliding window's log grows).
    const auto run = [](auto algorithm) {
        using A = decltype(algorithm);
        srl::manual_clock clock;
        srl::limiter<srl::fixed_key, srl::concurrent_storage<A>, srl::null_sink, srl::manual_clock>
            lim(srl::fixed_key("unused"), {{"burst", "50/s", std::string(A::algorithm_name)}}, {},
                {}, {}, clock);
        std::vector<std::string> users;
        for (int i = 0; i < 64; ++i) users.push_back("user-" + std::to_string(i));
        for (const auto& u : users) REQUIRE(lim.check_key(u).allowed());
        INFO(A::algorithm_name);  // (Catch's message allocates: before counting)
        const std::size_t before = allocations.load();
        std::size_t allowed = 0, denied = 0;
        for (int round = 0; round < 200; ++round) {
            for (const auto& u : users)  // check, then allow (no verdict), in turns
                ((round % 2 == 0 ? lim.check_key(u).allowed() : lim.allow_key(u)) ? allowed
                                                                                  : denied) += 1;
            clock.advance(std::chrono::milliseconds(5));
        }
        CHECK(allowed > 0);
        CHECK(denied > 0);
        CHECK(allocations.load() - before == 0);
    };
    run(srl::fixed_window(srl::rate{1, std::chrono::seconds(1)}));
    run(srl::sliding_window_approx(srl::rate{1, std::chrono::seconds(1)}));
    run(srl::token_bucket(srl::rate{1, std::chrono::seconds(1)}));
    run(srl::leaky_bucket(srl::rate{1, std::chrono::seconds(1)}));
    run(srl::gcra(srl::rate{1, std::chrono::seconds(1)}));
}
