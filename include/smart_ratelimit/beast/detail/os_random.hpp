// smart_ratelimit/beast/detail/os_random.hpp
// Bytes from the operating system's CSPRNG, for the dashboard's session ids, CSRF
// tokens and CSP nonces: getrandom(2) on Linux, std::random_device elsewhere (and
// where the kernel lacks getrandom). Standard and POSIX headers only.
#pragma once

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <random>
#include <string>
#include <string_view>
#include <system_error>

#if defined(__linux__) && __has_include(<sys/random.h>)
#include <sys/random.h>
#endif

namespace smart_ratelimit::beast::detail {

/// Fills `out[0, n)` with bytes from the operating system's CSPRNG. Throws
/// std::system_error when the system cannot provide them.
inline void os_random(unsigned char* out, std::size_t n) {
#if defined(__linux__) && __has_include(<sys/random.h>)
    while (n > 0) {
        const ssize_t got = ::getrandom(out, n, 0);
        if (got > 0) {
            out += got;
            n -= static_cast<std::size_t>(got);
            continue;
        }
        if (got < 0 && errno == EINTR) continue;
        if (got < 0 && errno == ENOSYS) break;  // an old kernel: fall back below
        throw std::system_error(errno, std::generic_category(), "getrandom");
    }
    if (n == 0) return;
#endif
    std::random_device rd;  // libstdc++ and libc++: the OS's entropy source
    while (n > 0) {
        std::uint32_t v = rd();
        for (int i = 0; i < 4 && n > 0; ++i, --n, v >>= 8) *out++ = static_cast<unsigned char>(v);
    }
}

/// `bytes` random bytes as lowercase hex (2 * bytes characters).
inline std::string random_hex(std::size_t bytes) {
    static constexpr char digits[] = "0123456789abcdef";
    unsigned char buf[64];
    std::string out;
    out.reserve(2 * bytes);
    while (bytes > 0) {
        const std::size_t n = bytes < sizeof buf ? bytes : sizeof buf;
        os_random(buf, n);
        for (std::size_t i = 0; i < n; ++i) {
            out += digits[buf[i] >> 4];
            out += digits[buf[i] & 15u];
        }
        bytes -= n;
    }
    return out;
}

/// True when `s` is `n` lowercase hex digits.
constexpr bool is_lower_hex(std::string_view s, std::size_t n) noexcept {
    if (s.size() != n) return false;
    for (const char c : s)
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
    return true;
}

}  // namespace smart_ratelimit::beast::detail
