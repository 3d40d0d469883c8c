// tests/storage/test_key_flooding.cpp
// The in-memory storage against clients that choose their keys: SipHash checked on the
// paper's vectors, keys built to collide for every seed of the public-constant hash
// (as scripts in the security review build them) stay separate states with short
// probes, a table fed one slot switches to SipHash, random keys never reach the probe
// cap, and a flood of a million fresh keys cannot evict a key that is over its limit
// (in both in-memory storages).
#include <catch2/catch.hpp>

#include <smart_ratelimit/algorithms/any_algorithm.hpp>
#include <smart_ratelimit/detail/hash.hpp>
#include <smart_ratelimit/detail/key_table.hpp>
#include <smart_ratelimit/storage/concurrent_storage.hpp>
#include <smart_ratelimit/storage/in_memory_storage.hpp>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace srl = smart_ratelimit;
namespace detail = smart_ratelimit::detail;
using namespace std::chrono_literals;

namespace {

const std::chrono::nanoseconds t0 = 864000s;

std::uint64_t splitmix(std::uint64_t& state) {
    state += 0x9e3779b97f4a7c15ull;
    return detail::mix64(state);
}

bool header_safe(std::uint64_t word) {
    for (int i = 0; i < 8; ++i) {
        const auto c = static_cast<unsigned char>(word >> (8 * i));
        if (c < 0x20 || c == 0x7f) return false;
    }
    return true;
}

std::string word(std::uint64_t w) {
    std::string s(8, '\0');
    std::memcpy(s.data(), &w, 8);
    return s;
}

// The keys of tests/.../hash_collision_poc.py (security review, finding H3), built the
// same way: "rule:api:header:X-Api-Key:<value>" where block 2 zeroes the hash's side
// lanes with the public constants and block 3 feeds a factor pair (x, y) of one number P,
// so every key has the same hash_bytes for any seed. Every byte is a valid header byte.
std::vector<std::string> colliding_keys(std::size_t count) {
    const std::uint64_t p2 = detail::public_mix[2], p3 = detail::public_mix[3];
    constexpr std::uint64_t primes[] = {2,  3,  5,  7,  11, 13, 17, 19, 23, 29, 31, 37,  41, 43,
                                        47, 53, 59, 61, 67, 71, 73, 79, 83, 89, 97, 101, 103};
    detail::uint128 big = 1;
    std::vector<std::uint64_t> used;
    for (const std::uint64_t q : primes) {
        if (big * q >= detail::uint128{1} << 126) break;
        big *= q;
        used.push_back(q);
    }
    const auto hi = static_cast<std::uint64_t>(big >> 64);
    std::uint64_t rng = 1;
    std::set<std::uint64_t> seen;
    std::vector<std::string> keys;
    while (keys.size() < count) {
        detail::uint128 d = 1;
        for (const std::uint64_t q : used)
            if (splitmix(rng) & 1) d *= q;
        if (d <= hi || d > ~std::uint64_t{0}) continue;
        const detail::uint128 e = big / d;
        if (e <= hi || e > ~std::uint64_t{0}) continue;
        const auto x = static_cast<std::uint64_t>(d), y = static_cast<std::uint64_t>(e);
        if (!seen.insert(x).second || !header_safe(x ^ p2) || !header_safe(y)) continue;
        std::string k = "rule:api:header:X-Api-Key:";
        k.append(48 - k.size(), 'a');
        k += std::string(16, 'b') + word(p2) + std::string(8, 'c') + word(p3) + std::string(8, 'd');
        k += std::string(16, 'e') + word(x ^ p2) + word(y) + std::string(16, 'f');
        for (int i = 0; i < 10; ++i) k += "tail";
        keys.push_back(std::move(k));
    }
    return keys;
}

std::vector<std::string> random_keys(std::size_t count, std::size_t size, std::uint64_t seed) {
    std::vector<std::string> keys;
    for (std::size_t i = 0; i < count; ++i) {
        std::string k = "rule:api:header:X-Api-Key:";
        while (k.size() < size) k += static_cast<char>(0x21 + splitmix(seed) % 94);
        keys.push_back(std::move(k));
    }
    return keys;
}

}  // namespace

TEST_CASE("siphash 2-4 gives the reference implementation's vectors", "[storage][hash]") {
    // vectors_sip64 of the reference implementation: key 00..0f, message 00..n-1.
    constexpr std::uint64_t expected[] = {
        0x726fdb47dd0e0e31, 0x74f839c593dc67fd, 0x0d6c8009d9a94f5a, 0x85676696d7fb7e2d,
        0xcf2794e0277187b7, 0x18765564cd99a68d, 0xcbc9466e58fee3ce, 0xab0200f58b01d137,
        0x93f5f5799a932462, 0x9e0082df0ba9e4b0, 0x7a5dbbc594ddb9f3, 0xf4b32f46226bada7,
        0x751e8fbc860ee5fb, 0x14ea5627c0843d90, 0xf723ca908e7af2ee, 0xa129ca6149be45e5,
        0x3f2acc7f57c29bdb, 0x699ae9f52cbe4794, 0x4bc1b3f0968dd39c, 0xbb6dc91da77961bd,
        0xbed65cf21aa2ee98, 0xd0f2cbb02e3b67c7, 0x93536795e3a33e88, 0xa80c038ccd5ccec8,
        0xb8ad50c6f649af94, 0xbce192de8a85b8ea, 0x17d835b85bbb15f3, 0x2f2e6163076bcfad,
        0xde4daaaca71dc9a5};
    const std::uint64_t k0 = 0x0706050403020100ull, k1 = 0x0f0e0d0c0b0a0908ull;
    char msg[64];
    for (int i = 0; i < 64; ++i) msg[i] = static_cast<char>(i);
    for (std::size_t n = 0; n < std::size(expected); ++n) {
        INFO("message of " << n << " bytes");
        CHECK(detail::siphash<2, 4>(std::string_view(msg, n), k0, k1) == expected[n]);
    }
    // The rounds are a parameter: SipHash-1-3 is another function of the same input.
    CHECK(detail::siphash<1, 3>(std::string_view(msg, 15), k0, k1) != expected[15]);
    CHECK(detail::siphash<1, 3>("", k0, k1) != detail::siphash<1, 3>("", k0, k1 ^ 1));
}

TEST_CASE("each storage's hash secrets differ and none is a public constant", "[storage][hash]") {
    const detail::hash_secret a = detail::make_hash_secret(1), b = detail::make_hash_secret(2);
    for (int i = 0; i < 4; ++i) {
        CHECK(a.mix[i] != b.mix[i]);
        CHECK(a.mix[i] % 2 == 1);
        CHECK(a.mix[i] != detail::public_mix[i]);
    }
    CHECK(a.sip[0] != b.sip[0]);
    CHECK(detail::keyed_hash("ip:203.0.113.5", a) != detail::keyed_hash("ip:203.0.113.5", b));
    CHECK(detail::strong_hash("ip:203.0.113.5", a) != detail::strong_hash("ip:203.0.113.5", b));
    // A fixed seed gives the same secrets (reproducible tests); seed 0 draws them.
    CHECK(detail::make_hash_secret(1).mix[2] == a.mix[2]);
}

TEST_CASE("keys built to collide for every seed of the public-constant hash stay apart",
          "[storage][hash]") {
    const std::vector<std::string> evil = colliding_keys(300);
    REQUIRE(evil.size() == 300);
    REQUIRE(std::set<std::string>(evil.begin(), evil.end()).size() == 300);
    // They are what the review says: one hash_bytes for any seed...
    for (const std::uint64_t seed : {1ull, 0x243f6a8885a308d3ull, 0xdeadbeefcafef00dull}) {
        std::set<std::uint64_t> hashes;
        for (const auto& k : evil) hashes.insert(detail::hash_bytes(k, seed));
        CHECK(hashes.size() == 1);
    }
    // ...but not under the storage's keyed hash.
    const detail::hash_secret secret = detail::make_hash_secret(7);
    std::set<std::uint64_t> keyed;
    for (const auto& k : evil) keyed.insert(detail::keyed_hash(k, secret));
    CHECK(keyed.size() == 300);

    // In a storage beside as many random keys: every key its own state, probes short.
    std::vector<std::string> all = random_keys(300, evil[0].size(), 3);
    all.insert(all.end(), evil.begin(), evil.end());
    srl::in_memory_options o;
    o.max_keys = 10'000;
    o.shards = 1;  // one table, so any pile-up shows
    srl::in_memory_storage<srl::fixed_window> s(o);
    const srl::fixed_window once_an_hour(srl::rate{1, 1h});
    for (const auto& k : all) REQUIRE(s.acquire(k, once_an_hour, t0, 1).allowed);
    for (const auto& k : all) {
        REQUIRE_FALSE(s.acquire(k, once_an_hour, t0, 1).allowed);
        REQUIRE(s.visit(k, [](const auto* st) { return st ? st->count : 0; }) == 1);
    }
    const srl::in_memory_stats st = s.stats();
    CHECK(st.keys == 600);
    CHECK(st.longest_probe <= detail::key_table<int>::default_probe_cap);
}

TEST_CASE("a table whose keys all share one hash switches to siphash and stays short",
          "[storage][hash]") {
    const std::uint64_t sip_key[2] = {0x0123456789abcdefull, 0xfedcba9876543210ull};
    detail::key_table<int> t(sip_key);
    std::vector<std::string> keys;
    for (int i = 0; i < 2000; ++i) keys.push_back("k" + std::to_string(i));
    // Every key claims fast hash 0, as if the fast hash had been beaten.
    for (std::size_t i = 0; i < keys.size(); ++i) {
        t.insert(keys[i], 0, static_cast<int>(i));
        if (i == detail::key_table<int>::default_probe_cap) CHECK_FALSE(t.strong());
    }
    CHECK(t.strong());
    CHECK(t.size() == keys.size());
    CHECK(t.longest_probe() < 32);
    for (std::size_t i = 0; i < keys.size(); ++i) {
        const auto* n = t.find(keys[i], 0);
        REQUIRE(n != nullptr);
        REQUIRE(n->value == static_cast<int>(i));
    }
    CHECK(t.find("absent", 0) == nullptr);
    for (std::size_t i = 0; i < keys.size(); i += 2) t.erase(t.find(keys[i], 0));
    for (std::size_t i = 0; i < keys.size(); ++i)
        REQUIRE((t.find(keys[i], 0) != nullptr) == (i % 2 == 1));
}

TEST_CASE("random keys never reach the probe cap", "[storage][hash]") {
    // 200k keys in four shards of room for 100k (the default store has 15,625 keys per
    // shard): the fast hash keeps every probe far below the cap, so no shard pays for
    // SipHash.
    srl::in_memory_options o;
    o.max_keys = 400'000;
    o.shards = 4;
    srl::in_memory_storage_st<srl::fixed_window> s(o);
    const srl::fixed_window fw(srl::rate{1, 1h});
    char buf[32];
    for (int i = 0; i < 200'000; ++i) {
        const int n =
            std::snprintf(buf, sizeof buf, "ip:10.%d.%d.%d", i >> 16, (i >> 8) & 255, i & 255);
        s.acquire(std::string_view(buf, static_cast<std::size_t>(n)), fw, t0, 1);
    }
    const srl::in_memory_stats st = s.stats();
    CHECK(st.keys == 200'000);
    CHECK(st.strong_hash_shards == 0);
    CHECK(st.longest_probe < detail::key_table<int>::default_probe_cap);
}

TEMPLATE_TEST_CASE("a million fresh keys cannot evict a key that is over its limit", "[storage]",
                   srl::in_memory_storage_st<srl::any_algorithm>,
                   srl::concurrent_storage_st<srl::any_algorithm>) {
    srl::in_memory_options o;
    o.max_keys = 4096;
    o.shards = 4;
    TestType s(o);
    const srl::any_algorithm login("token_bucket", srl::rate{5, 1h});
    const srl::any_algorithm api("token_bucket", srl::rate{100, 1min});
    for (int i = 0; i < 5; ++i) REQUIRE(s.acquire("login:victim", login, t0, 1).allowed);
    REQUIRE_FALSE(s.acquire("login:victim", login, t0, 1).allowed);
    // The flood: each key used once (quota left), an hour's worth of microseconds apart,
    // and the blocked key is not asked again until the end.
    char buf[32];
    for (int i = 0; i < 1'000'000; ++i) {
        const int n =
            std::snprintf(buf, sizeof buf, "ip:10.%d.%d.%d", i >> 16, (i >> 8) & 255, i & 255);
        s.acquire(std::string_view(buf, static_cast<std::size_t>(n)), api,
                  t0 + std::chrono::microseconds(i), 1);
    }
    const srl::in_memory_stats st = s.stats();
    CHECK(st.evictions() >= 1'000'000 - 4096);
    CHECK(st.evictions_over_limit == 0);
    CHECK(st.keys <= 4096);
    CHECK(st.longest_probe < detail::key_table<int>::default_probe_cap);
    const srl::outcome after = s.acquire("login:victim", login, t0 + 1s, 1);
    CHECK_FALSE(after.allowed);
    CHECK(after.remaining == 0);
}

TEST_CASE("a full shard of keys over their limit evicts the least recently used of them",
          "[storage]") {
    srl::in_memory_options o;
    o.max_keys = 4;
    o.shards = 1;
    srl::in_memory_storage_st<srl::fixed_window> s(o);
    const srl::fixed_window once(srl::rate{1, 1h});
    const srl::fixed_window often(srl::rate{10, 1h});
    for (const char* k : {"a", "b", "c", "d"}) REQUIRE(s.acquire(k, once, t0, 1).allowed);
    REQUIRE_FALSE(s.acquire("a", once, t0, 1).allowed);  // "a" is asked again: kept
    // Every key is out of quota: a new key must take one of them, the least recent.
    REQUIRE(s.acquire("e", often, t0 + 1s, 1).allowed);
    CHECK(s.stats().evictions_over_limit == 1);
    CHECK(s.visit("b", [](const auto* p) { return p == nullptr; }));
    // "e" has quota left, so the next newcomer takes it, not an over-limit key.
    REQUIRE(s.acquire("f", often, t0 + 2s, 1).allowed);
    CHECK(s.visit("e", [](const auto* p) { return p == nullptr; }));
    CHECK(s.stats().evictions_over_limit == 1);
    CHECK(s.stats().evictions_lru == 1);
    for (const char* k : {"a", "c", "d"}) CHECK_FALSE(s.acquire(k, once, t0 + 3s, 1).allowed);
}
