// tests/storage/test_storage.cpp
// In-memory storage: the state_store interface, the key bound with idle-first then
// LRU eviction (over-limit keys last: test_key_flooding.cpp), key churn far beyond the bound, the per-process seed, two threads
// creating the same new key, the short-key copy and compare, and saturating idle times.
#include <catch2/catch.hpp>

#include <smart_ratelimit/algorithms/any_algorithm.hpp>
#include <smart_ratelimit/detail/hash.hpp>
#include <smart_ratelimit/detail/time_math.hpp>
#include <smart_ratelimit/storage/in_memory_storage.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <set>
#include <string>
#include <thread>
#include <vector>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace srl = smart_ratelimit;
using namespace std::chrono_literals;

namespace {
const std::chrono::nanoseconds t0 = 864000s;

srl::in_memory_options opts(std::size_t max_keys, std::size_t shards) {
    srl::in_memory_options o;
    o.max_keys = max_keys;
    o.shards = shards;
    return o;
}

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr bool sanitized = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
constexpr bool sanitized = true;
#else
constexpr bool sanitized = false;
#endif
#else
constexpr bool sanitized = false;
#endif

std::size_t heap_in_use() {
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 33))
    return mallinfo2().uordblks;
#else
    return 0;
#endif
}
}  // namespace

TEST_CASE("update inserts the initial state once and runs the callback under the lock",
          "[storage]") {
    srl::in_memory_storage<srl::fixed_window> s(opts(100, 4));
    srl::fixed_window::state_type init;
    init.count = 5;
    const auto r1 = s.update("k", init, [](auto& st) { return ++st.count; });
    const auto r2 = s.update("k", init, [](auto& st) { return ++st.count; });
    CHECK(r1 == 6);
    CHECK(r2 == 7);
    CHECK(s.visit("k", [](const auto* st) { return st ? st->count : 0; }) == 7);
    CHECK(s.visit("absent", [](const auto* st) { return st == nullptr; }));
    CHECK(s.size() == 1);
    CHECK(s.erase("k"));
    CHECK_FALSE(s.erase("k"));
    CHECK(s.size() == 0);
}

TEST_CASE("a full shard evicts an idle key before a least recently used one", "[storage]") {
    srl::in_memory_storage<srl::any_algorithm> s(opts(3, 1));
    const srl::any_algorithm hourly("fixed_window", srl::rate{1, 1h});
    const srl::any_algorithm per_second("fixed_window", srl::rate{1, 1s});
    REQUIRE(s.acquire("old-but-active", hourly, t0, 1).allowed);
    REQUIRE(s.acquire("idle-soon", per_second, t0, 1).allowed);
    REQUIRE(s.acquire("recent", hourly, t0, 1).allowed);
    // Two seconds later "idle-soon" is as good as fresh; the LRU key still holds quota.
    REQUIRE(s.acquire("new", hourly, t0 + 2s, 1).allowed);
    auto st = s.stats();
    CHECK(st.keys == 3);
    CHECK(st.evictions_idle == 1);
    CHECK(st.evictions_lru == 0);
    CHECK(s.visit("idle-soon", [](const auto* p) { return p == nullptr; }));
    CHECK_FALSE(s.acquire("old-but-active", hourly, t0 + 2s, 1).allowed);  // state kept

    // No idle key left: the least recently used one goes ("recent" was used before "new"
    // and "old-but-active" was touched just now). Each has spent its quota of one, so
    // it counts as an over-limit eviction: the shard held no key with quota left.
    REQUIRE(s.acquire("newer", hourly, t0 + 3s, 1).allowed);
    st = s.stats();
    CHECK(st.keys == 3);
    CHECK(st.evictions_over_limit == 1);
    CHECK(s.visit("recent", [](const auto* p) { return p == nullptr; }));
    CHECK_FALSE(s.visit("old-but-active", [](const auto* p) { return p == nullptr; }));
}

TEST_CASE("a million distinct keys through a 100k-key storage stay within the bound", "[storage]") {
    srl::in_memory_storage<srl::any_algorithm> s(opts(100'000, 64));
    const srl::any_algorithm a("token_bucket", srl::rate{10, 1min});
    REQUIRE(s.max_keys() <= 100'000);
    char buf[32];
    std::size_t heap_at_cap = 0;
    for (int i = 0; i < 1'000'000; ++i) {
        const int n =
            std::snprintf(buf, sizeof buf, "ip:10.%d.%d.%d", i >> 16, (i >> 8) & 255, i & 255);
        REQUIRE(s.acquire(std::string_view(buf, static_cast<std::size_t>(n)), a,
                          t0 + std::chrono::microseconds(i), 1)
                    .allowed);
        if (i == 200'000) heap_at_cap = heap_in_use();
    }
    const auto st = s.stats();
    CHECK(st.keys <= 100'000);
    CHECK(st.keys >= 90'000);  // the shards fill up, none is left empty
    CHECK(st.evictions() == 1'000'000 - st.keys);
    if (!sanitized && heap_at_cap != 0) {
        // Past the bound, 800k more keys must not grow the heap by more than a few MB.
        const std::size_t heap_end = heap_in_use();
        INFO("heap at 200k keys: " << heap_at_cap << ", at 1M keys: " << heap_end);
        CHECK(heap_end < heap_at_cap + 8 * 1024 * 1024);
    }
}

TEST_CASE("two threads creating the same new key create one state", "[storage][concurrency]") {
    srl::in_memory_storage<srl::any_algorithm> s(opts(10'000, 8));
    const srl::any_algorithm a("fixed_window", srl::rate{1, 1h});
    for (int round = 0; round < 200; ++round) {
        const std::string key = "race:" + std::to_string(round);
        std::atomic<int> ready{0};
        std::atomic<int> allowed{0};
        auto worker = [&] {
            ready.fetch_add(1);
            while (ready.load() < 2) {}
            if (s.acquire(key, a, t0, 1).allowed) allowed.fetch_add(1);
        };
        std::thread t1(worker), t2(worker);
        t1.join();
        t2.join();
        REQUIRE(allowed.load() == 1);
    }
    CHECK(s.size() == 200);
}

TEST_CASE("each storage draws its own hash seed", "[storage]") {
    srl::in_memory_storage<srl::fixed_window> a, b;
    CHECK(a.options().seed != 0);
    CHECK(a.options().seed != b.options().seed);
    CHECK(srl::detail::hash_bytes("ip:203.0.113.5", 1) !=
          srl::detail::hash_bytes("ip:203.0.113.5", 2));
    srl::in_memory_options o;
    o.seed = 42;
    srl::in_memory_storage<srl::fixed_window> c(o);
    CHECK(c.options().seed == 42);
}

TEST_CASE("shard counts are powers of two within the key bound", "[storage]") {
    CHECK(srl::in_memory_storage<srl::fixed_window>(opts(100'000, 64)).shard_count() == 64);
    CHECK(srl::in_memory_storage<srl::fixed_window>(opts(100'000, 100)).shard_count() == 64);
    CHECK(srl::in_memory_storage<srl::fixed_window>(opts(1000, 64)).shard_count() == 32);
    CHECK(srl::in_memory_storage<srl::fixed_window>(opts(10, 64)).shard_count() == 1);
    CHECK(srl::in_memory_storage<srl::fixed_window>(opts(10, 64)).max_keys() == 10);
    CHECK(srl::in_memory_storage<srl::fixed_window>(opts(0, 64)).max_keys() == 1);
    srl::in_memory_storage_st<srl::fixed_window> st(opts(4, 1));
    const srl::fixed_window fw(srl::rate{1, 1h});
    for (int i = 0; i < 10; ++i) st.acquire("k" + std::to_string(i), fw, t0, 1);
    CHECK(st.size() == 4);
}

TEST_CASE("the seeded hash spreads similar keys evenly over shards", "[storage]") {
    const std::uint64_t seed = 0x1234567890abcdefull;
    std::vector<int> buckets(64, 0);
    for (int i = 0; i < 64'000; ++i) {
        const std::string k =
            "ip:192.168." + std::to_string(i / 256) + "." + std::to_string(i % 256);
        ++buckets[srl::detail::hash_bytes(k, seed) >> 58];
    }
    for (const int b : buckets) {
        CHECK(b > 800);
        CHECK(b < 1200);
    }
    std::set<std::string> digests;
    char out[32];
    for (int i = 0; i < 1000; ++i) {
        srl::detail::digest_hex(std::string(400, 'a') + std::to_string(i), out);
        digests.emplace(out, 32);
    }
    CHECK(digests.size() == 1000);
}

TEST_CASE("keys of every short length that differ in one byte are distinct states", "[storage]") {
    // The table copies and compares keys of 4 to 16 bytes with word loads; every length
    // and every differing position must still tell keys apart.
    srl::in_memory_storage_st<srl::fixed_window> s(opts(100'000, 1));
    const srl::fixed_window fw(srl::rate{1, 1h});
    std::size_t expected = 0;
    for (std::size_t n = 0; n <= 24; ++n) {
        const std::string base = "k" + std::string(n, 'a');
        REQUIRE(s.acquire(base, fw, t0, 1).allowed);
        ++expected;
        for (std::size_t p = 0; p < base.size(); ++p) {
            std::string other = base;
            other[p] = 'b';
            INFO("length " << base.size() << ", position " << p);
            REQUIRE(s.acquire(other, fw, t0, 1).allowed);  // a fresh key: not base's state
            ++expected;
            CHECK_FALSE(s.acquire(other, fw, t0, 1).allowed);  // found again: its own state
            CHECK(s.erase(other));
            --expected;
        }
        CHECK_FALSE(s.acquire(base, fw, t0, 1).allowed);
        CHECK(s.visit(base, [](const auto* st) { return st != nullptr; }));
    }
    CHECK(s.size() == expected);
    CHECK_FALSE(s.erase(""));  // the empty key was never stored ("k" prefixes every key)
}

TEST_CASE("the short-key copy and compare helpers match memcpy and memcmp", "[storage]") {
    const std::string src = "0123456789abcdefghijklmnopqrstuvwxyz";
    for (std::size_t n = 0; n <= 32; ++n) {
        std::string dst(40, '.');
        srl::detail::copy_bytes(dst.data() + 3, src.data() + 1, n);
        CHECK(dst == std::string(3, '.') + src.substr(1, n) + std::string(37 - n, '.'));
        CHECK(srl::detail::equal_bytes(dst.data() + 3, src.data() + 1, n));
        for (std::size_t p = 0; p < n; ++p) {
            std::string other = dst;
            other[3 + p] = '#';
            INFO("size " << n << ", position " << p);
            CHECK_FALSE(srl::detail::equal_bytes(other.data() + 3, src.data() + 1, n));
        }
    }
}

TEST_CASE("the storage's hoisted seed mixing gives the documented seeded hash", "[storage]") {
    for (const std::uint64_t seed : {1ull, 42ull, 0x1234567890abcdefull}) {
        for (const char* k : {"", "a", "ip:1.2.3.4", "rule:login:ip:203.0.113.5", "user:42"}) {
            CHECK(srl::detail::hash_bytes_mixed(k, srl::detail::mix_seed(seed)) ==
                  srl::detail::hash_bytes(k, seed));
        }
    }
}

TEST_CASE("idle times saturate at both ends of the 64-bit range", "[storage]") {
    constexpr auto max = std::numeric_limits<std::int64_t>::max();
    constexpr auto min = std::numeric_limits<std::int64_t>::min();
    CHECK(srl::detail::sat_add(1, 2) == 3);
    CHECK(srl::detail::sat_add(-5, 2) == -3);
    CHECK(srl::detail::sat_add(max - 1, 1) == max);
    CHECK(srl::detail::sat_add(max - 1, 2) == max);
    CHECK(srl::detail::sat_add(max, max) == max);
    CHECK(srl::detail::sat_add(min + 1, -1) == min);
    CHECK(srl::detail::sat_add(min, -1) == min);
    CHECK(srl::detail::sat_add(min, min) == min);
    CHECK(srl::detail::sat_add(max, min) == -1);
}
