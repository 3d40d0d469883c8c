// smart_ratelimit/detail/hash.hpp
// A keyed 64-bit string hash (multiply-mix in the style of wyhash) used by the
// in-memory storage with a per-process random seed, so that keys chosen by a client
// cannot be made to collide, and, with fixed seeds, as the digest of over-long keys.
// Also the short-key copy and compare helpers of the storage's hot path.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>

namespace smart_ratelimit::detail {

__extension__ typedef unsigned __int128 uint128;

inline std::uint64_t mum(std::uint64_t a, std::uint64_t b) noexcept {
    const uint128 r = static_cast<uint128>(a) * b;
    return static_cast<std::uint64_t>(r) ^ static_cast<std::uint64_t>(r >> 64);
}

inline std::uint64_t read64(const char* p) noexcept {
    std::uint64_t v;
    std::memcpy(&v, p, 8);
    return v;
}

inline std::uint64_t read32(const char* p) noexcept {
    std::uint32_t v;
    std::memcpy(&v, p, 4);
    return v;
}

/// memcpy for short keys: sizes 4 to 16 (most keys) move with two overlapping word
/// loads and stores instead of a library call.
inline void copy_bytes(char* dst, const char* src, std::size_t n) noexcept {
    if (n >= 8 && n <= 16) {
        const std::uint64_t a = read64(src), b = read64(src + n - 8);
        std::memcpy(dst, &a, 8);
        std::memcpy(dst + n - 8, &b, 8);
    } else if (n >= 4 && n < 8) {
        const auto a = static_cast<std::uint32_t>(read32(src));
        const auto b = static_cast<std::uint32_t>(read32(src + n - 4));
        std::memcpy(dst, &a, 4);
        std::memcpy(dst + n - 4, &b, 4);
    } else if (n != 0) {
        std::memcpy(dst, src, n);
    }
}

/// memcmp(a, b, n) == 0, with the same short-key fast path as copy_bytes.
inline bool equal_bytes(const char* a, const char* b, std::size_t n) noexcept {
    if (n >= 8 && n <= 16)
        return ((read64(a) ^ read64(b)) | (read64(a + n - 8) ^ read64(b + n - 8))) == 0;
    if (n >= 4 && n < 8)
        return ((read32(a) ^ read32(b)) | (read32(a + n - 4) ^ read32(b + n - 4))) == 0;
    return n == 0 || std::memcmp(a, b, n) == 0;
}

/// The per-seed part of hash_bytes, for callers that hash many keys under one seed:
/// hash_bytes(s, seed) == hash_bytes_mixed(s, mix_seed(seed)).
inline std::uint64_t mix_seed(std::uint64_t seed) noexcept {
    return seed ^ mum(seed ^ 0xa0761d6478bd642full, 0xe7037ed1a0b428dbull);
}

/// hash_bytes with the seed already passed through mix_seed.
inline std::uint64_t hash_bytes_mixed(std::string_view s, std::uint64_t seed) noexcept {
    constexpr std::uint64_t p0 = 0xa0761d6478bd642full, p1 = 0xe7037ed1a0b428dbull,
                            p2 = 0x8ebc6af09c88c6e3ull, p3 = 0x589965cc75374cc3ull;
    const char* p = s.data();
    std::size_t n = s.size();
    std::uint64_t a, b;
    if (n <= 16) {
        if (n >= 4) {
            a = (read32(p) << 32) | read32(p + ((n >> 3) << 2));
            b = (read32(p + n - 4) << 32) | read32(p + n - 4 - ((n >> 3) << 2));
        } else if (n > 0) {
            a = (static_cast<std::uint64_t>(static_cast<unsigned char>(p[0])) << 16) |
                (static_cast<std::uint64_t>(static_cast<unsigned char>(p[n >> 1])) << 8) |
                static_cast<unsigned char>(p[n - 1]);
            b = 0;
        } else {
            a = b = 0;
        }
    } else {
        std::size_t i = n;
        if (i > 48) {
            std::uint64_t s1 = seed, s2 = seed;
            do {
                seed = mum(read64(p) ^ p1, read64(p + 8) ^ seed);
                s1 = mum(read64(p + 16) ^ p2, read64(p + 24) ^ s1);
                s2 = mum(read64(p + 32) ^ p3, read64(p + 40) ^ s2);
                p += 48;
                i -= 48;
            } while (i > 48);
            seed ^= s1 ^ s2;
        }
        while (i > 16) {
            seed = mum(read64(p) ^ p1, read64(p + 8) ^ seed);
            i -= 16;
            p += 16;
        }
        a = read64(p + i - 16);
        b = read64(p + i - 8);
    }
    a ^= p1;
    b ^= seed;
    const uint128 r = static_cast<uint128>(a) * b;
    a = static_cast<std::uint64_t>(r);
    b = static_cast<std::uint64_t>(r >> 64);
    return mum(a ^ p0 ^ n, b ^ p1);
}

/// Keyed hash of `s` under `seed`. Not a MAC, but without the seed an attacker cannot
/// predict which keys share a shard or a bucket.
inline std::uint64_t hash_bytes(std::string_view s, std::uint64_t seed) noexcept {
    return hash_bytes_mixed(s, mix_seed(seed));
}

/// Final avalanche of a 64-bit value (splitmix64); used to derive seeds.
inline std::uint64_t mix64(std::uint64_t x) noexcept {
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

/// A 128-bit digest of `s` with fixed seeds, written as 32 lowercase hex digits into
/// `out` (which must hold 32 chars). Stable across processes and machines, so a
/// shortened key names the same state in shared (SQL, Redis) storage.
inline void digest_hex(std::string_view s, char* out) noexcept {
    const std::uint64_t h[2] = {hash_bytes(s, 0x243f6a8885a308d3ull),
                                hash_bytes(s, 0x13198a2e03707344ull)};
    constexpr char hex[] = "0123456789abcdef";
    for (int w = 0; w < 2; ++w)
        for (int i = 0; i < 16; ++i) out[w * 16 + i] = hex[(h[w] >> (60 - 4 * i)) & 0xF];
}

}  // namespace smart_ratelimit::detail
