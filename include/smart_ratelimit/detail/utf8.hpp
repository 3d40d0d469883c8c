// smart_ratelimit/detail/utf8.hpp
// UTF-8 for every text the library checks, stores or escapes: the length of a
// valid sequence (overlong forms, surrogates and code points above U+10FFFF are
// invalid), the U+FFFD replacement, and truncation on a character boundary.
// Standard headers only.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace smart_ratelimit::detail {

/// U+FFFD REPLACEMENT CHARACTER, as UTF-8; written once per invalid byte.
inline constexpr std::string_view replacement_character = "\xEF\xBF\xBD";

/// Length of the valid UTF-8 sequence starting at `s[i]` (1 for any ASCII byte,
/// NUL included; 2-4 otherwise), or 0 when the bytes there are not valid UTF-8.
/// Requires `i < s.size()`.
constexpr std::size_t utf8_sequence(std::string_view s, std::size_t i = 0) noexcept {
    const auto b = [&](std::size_t k) { return static_cast<unsigned char>(s[k]); };
    const unsigned char c = b(i);
    if (c < 0x80) return 1;
    std::size_t n = 0;
    unsigned char lo = 0x80, hi = 0xBF;  // range of the second byte
    if (c >= 0xC2 && c <= 0xDF) {
        n = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        if (c == 0xE0) lo = 0xA0;  // overlong
        if (c == 0xED) hi = 0x9F;  // surrogates
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        if (c == 0xF0) lo = 0x90;  // overlong
        if (c == 0xF4) hi = 0x8F;  // above U+10FFFF
    } else {
        return 0;
    }
    if (s.size() - i < n) return 0;
    if (b(i + 1) < lo || b(i + 1) > hi) return 0;
    for (std::size_t k = 2; k < n; ++k)
        if (b(i + k) < 0x80 || b(i + k) > 0xBF) return 0;
    return n;
}

/// True when all of `s` is valid UTF-8.
constexpr bool valid_utf8(std::string_view s) noexcept {
    for (std::size_t i = 0; i < s.size();) {
        const std::size_t n = utf8_sequence(s, i);
        if (n == 0) return false;
        i += n;
    }
    return true;
}

/// The largest length <= `n` that does not end inside a UTF-8 sequence of `s`
/// (continuation bytes are stepped back over). Requires `n <= s.size()`.
constexpr std::size_t utf8_boundary(std::string_view s, std::size_t n) noexcept {
    while (n > 0 && n < s.size() && (static_cast<unsigned char>(s[n]) & 0xC0u) == 0x80u) --n;
    return n;
}

/// `s` truncated to at most `cap` bytes without splitting a UTF-8 sequence.
inline std::string capped(std::string_view s, std::size_t cap) {
    if (s.size() <= cap) return std::string(s);
    return std::string(s.substr(0, utf8_boundary(s, cap)));
}

}  // namespace smart_ratelimit::detail
