// smart_ratelimit/detail/hash.hpp
// The string hashes of the in-memory storage and of key digests: a fast 64-bit
// multiply-mix hash in the style of wyhash, keyed by a hash_secret drawn per process
// (its seed and all four mixing constants), SipHash-c-d (the strong keyed fallback of a
// shard whose probes grow too long), and the fixed-constant variant behind digest_hex.
// Also the short-key copy and compare helpers of the storage's hot path.
#pragma once

#include <cstddef>
#include <cstdint>
#include <bit>
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

/// The fixed public mixing constants of hash_bytes (wyhash's defaults).
inline constexpr std::uint64_t public_mix[4] = {0xa0761d6478bd642full, 0xe7037ed1a0b428dbull,
                                                0x8ebc6af09c88c6e3ull, 0x589965cc75374cc3ull};

/// The multiply-mix body shared by hash_bytes_mixed and keyed_hash: `seed` already
/// mixed, `m` the four mixing constants.
inline std::uint64_t mix_hash(std::string_view s, std::uint64_t seed,
                              const std::uint64_t (&m)[4]) noexcept {
    const std::uint64_t p0 = m[0], p1 = m[1], p2 = m[2], p3 = m[3];
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

/// The per-seed part of hash_bytes, for callers that hash many keys under one seed:
/// hash_bytes(s, seed) == hash_bytes_mixed(s, mix_seed(seed)).
inline std::uint64_t mix_seed(std::uint64_t seed) noexcept {
    return seed ^ mum(seed ^ public_mix[0], public_mix[1]);
}

/// hash_bytes with the seed already passed through mix_seed.
inline std::uint64_t hash_bytes_mixed(std::string_view s, std::uint64_t seed) noexcept {
    return mix_hash(s, seed, public_mix);
}

/// Hash of `s` under `seed` with the public mixing constants: stable across processes
/// and machines, hence fit for digests (digest_hex) but NOT for a table that clients
/// fill. Keys longer than 16 bytes can be built to collide for every seed (an 8-byte
/// block equal to a public constant zeroes a lane); tables use keyed_hash.
inline std::uint64_t hash_bytes(std::string_view s, std::uint64_t seed) noexcept {
    return hash_bytes_mixed(s, mix_seed(seed));
}

/// SipHash-C-D (Aumasson and Bernstein, "SipHash: a fast short-input PRF", 2012) of `s`
/// under the 128-bit key (k0, k1): C compression rounds per 8-byte block, D finalization
/// rounds. siphash<2, 4> is the paper's SipHash-2-4; siphash<1, 3> the faster variant
/// that Rust and Python use for their hash tables.
template <int C = 1, int D = 3>
inline std::uint64_t siphash(std::string_view s, std::uint64_t k0, std::uint64_t k1) noexcept {
    std::uint64_t v0 = k0 ^ 0x736f6d6570736575ull, v1 = k1 ^ 0x646f72616e646f6dull,
                  v2 = k0 ^ 0x6c7967656e657261ull, v3 = k1 ^ 0x7465646279746573ull;
    const auto round = [&]() noexcept {
        v0 += v1;
        v1 = std::rotl(v1, 13);
        v1 ^= v0;
        v0 = std::rotl(v0, 32);
        v2 += v3;
        v3 = std::rotl(v3, 16);
        v3 ^= v2;
        v0 += v3;
        v3 = std::rotl(v3, 21);
        v3 ^= v0;
        v2 += v1;
        v1 = std::rotl(v1, 17);
        v1 ^= v2;
        v2 = std::rotl(v2, 32);
    };
    const auto compress = [&](std::uint64_t m) noexcept {
        v3 ^= m;
        for (int i = 0; i < C; ++i) round();
        v0 ^= m;
    };
    const char* p = s.data();
    const std::size_t n = s.size();
    const char* const end = p + (n & ~std::size_t{7});
    for (; p != end; p += 8) compress(read64(p));  // little-endian words (x86, ARM)
    // The last block: the remaining 0-7 bytes, little-endian, and n mod 256 on top.
    std::uint64_t b = static_cast<std::uint64_t>(n) << 56;
    for (std::size_t i = 0; i < (n & 7); ++i)
        b |= static_cast<std::uint64_t>(static_cast<unsigned char>(p[i])) << (8 * i);
    compress(b);
    v2 ^= 0xff;
    for (int i = 0; i < D; ++i) round();
    return v0 ^ v1 ^ v2 ^ v3;
}

/// The secrets of a table's key hashes, all drawn per process (or derived from an
/// explicit seed): the fast hash's seed and its four mixing constants, and the 128-bit
/// key of the SipHash-1-3 fallback. Knowing none of them, a client cannot choose keys
/// that share a slot or a shard except by chance.
struct hash_secret {
    std::uint64_t seed = 0;     ///< already passed through the mixing
    std::uint64_t mix[4] = {};  ///< odd, with 28-36 bits set (no weak multiplier)
    std::uint64_t sip[2] = {};
};

/// Final avalanche of a 64-bit value (splitmix64); used to derive seeds.
inline std::uint64_t mix64(std::uint64_t x) noexcept {
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

/// A hash_secret derived from `seed` by splitmix64: random when `seed` is (the storage
/// draws it from std::random_device), reproducible when a test fixes it.
inline hash_secret make_hash_secret(std::uint64_t seed) noexcept {
    std::uint64_t state = seed;
    const auto next = [&state]() noexcept {
        state += 0x9e3779b97f4a7c15ull;
        return mix64(state);
    };
    hash_secret k;
    for (std::uint64_t& m : k.mix) {
        // A multiplier with few or many bits set, or an even one, mixes poorly.
        do m = next() | 1;
        while (std::popcount(m) < 28 || std::popcount(m) > 36);
    }
    k.seed = next();
    k.seed ^= mum(k.seed ^ k.mix[0], k.mix[1]);
    k.sip[0] = next();
    k.sip[1] = next();
    return k;
}

/// The fast keyed hash: mix_hash under a per-process hash_secret.
inline std::uint64_t keyed_hash(std::string_view s, const hash_secret& k) noexcept {
    return mix_hash(s, k.seed, k.mix);
}

/// The strong keyed hash: SipHash-1-3 under the secret's 128-bit key.
inline std::uint64_t strong_hash(std::string_view s, const hash_secret& k) noexcept {
    return siphash<1, 3>(s, k.sip[0], k.sip[1]);
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
