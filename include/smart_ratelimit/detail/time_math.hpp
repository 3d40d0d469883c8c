// smart_ratelimit/detail/time_math.hpp
// Overflow-free helpers for the algorithms: window alignment, 128-bit products and
// ceiling division. Limits are at most 10^9 and periods at most 365 days, so every
// product of a count and a period fits in 128 bits.
#pragma once

#include <smart_ratelimit/detail/hash.hpp>

#include <chrono>
#include <cstdint>
#include <limits>

namespace smart_ratelimit::detail {

__extension__ typedef __int128 int128;

/// The marker for "never used" in algorithm states.
inline constexpr std::int64_t fresh_time = std::numeric_limits<std::int64_t>::min();

/// The start of the period-aligned window containing `now` (floor, also for negatives).
inline std::int64_t align_down(std::int64_t now, std::int64_t period) noexcept {
    std::int64_t r = now % period;
    if (r < 0) r += period;
    return now - r;
}

/// The units left under `limit` with `used` taken. A state filled under a higher limit
/// (a rule lowered over the same storage) can hold more than `limit`: none are left
/// then, rather than `limit - used` wrapped around.
inline constexpr std::uint64_t headroom(std::uint64_t limit, std::uint64_t used) noexcept {
    return used < limit ? limit - used : 0;
}

inline uint128 mul(std::uint64_t a, std::uint64_t b) noexcept {
    return static_cast<uint128>(a) * b;
}

/// a / b and a % b for b > 0, with a 64-bit fast path (the common case: a 128-bit
/// division is a library call costing tens of nanoseconds).
struct quot_rem {
    uint128 quot;
    std::uint64_t rem;
};
inline quot_rem divmod(uint128 a, std::uint64_t b) noexcept {
    if ((a >> 64) == 0) {
        const auto a64 = static_cast<std::uint64_t>(a);
        return {a64 / b, a64 % b};
    }
    return {a / b, static_cast<std::uint64_t>(a % b)};
}
inline uint128 div(uint128 a, std::uint64_t b) noexcept { return divmod(a, b).quot; }

/// ceil(a / b) for b > 0.
inline uint128 ceil_div(uint128 a, std::uint64_t b) noexcept {
    const quot_rem qr = divmod(a, b);
    return qr.quot + (qr.rem != 0);
}

/// Saturating conversion of a non-negative 128-bit nanosecond count.
inline std::chrono::nanoseconds to_ns(uint128 v) noexcept {
    constexpr auto max = static_cast<uint128>(std::numeric_limits<std::int64_t>::max());
    return std::chrono::nanoseconds(static_cast<std::int64_t>(v > max ? max : v));
}

/// max(0, a - b) as nanoseconds, without overflow.
inline std::chrono::nanoseconds positive_diff(std::int64_t a, std::int64_t b) noexcept {
    if (a <= b) return std::chrono::nanoseconds(0);
    return to_ns(static_cast<uint128>(static_cast<int128>(a) - b));
}

/// a + b saturating at the int64 limits.
inline std::int64_t sat_add(std::int64_t a, std::int64_t b) noexcept {
    std::int64_t r;
    if (!__builtin_add_overflow(a, b, &r)) return r;
    // Overflow needs both operands of one sign, so b's sign gives the direction.
    return b > 0 ? std::numeric_limits<std::int64_t>::max()
                 : std::numeric_limits<std::int64_t>::min();
}

}  // namespace smart_ratelimit::detail
