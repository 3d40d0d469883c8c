// smart_ratelimit/beast/detail/dashboard_http.hpp
// Request-side helpers of the dashboard: decoding form and query components,
// reading one parameter, and the per-response CSP nonce from the operating
// system's CSPRNG. Standard and POSIX headers only.
#pragma once

#include <smart_ratelimit/beast/detail/os_random.hpp>
#include <smart_ratelimit/detail/text.hpp>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace smart_ratelimit::beast::detail {

/// Decodes one `application/x-www-form-urlencoded` component: `+` is a space,
/// `%XX` a byte; a malformed escape is kept as it is.
inline std::string form_decode(std::string_view s) {
    return smart_ratelimit::detail::percent_decode(s, true);
}

/// The first value of parameter `name` in a query string or form body, decoded.
inline std::optional<std::string> form_param(std::string_view query, std::string_view name) {
    while (!query.empty()) {
        const auto amp = query.find('&');
        const std::string_view pair = query.substr(0, amp);
        query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
        const auto eq = pair.find('=');
        const std::string_view k = pair.substr(0, eq);
        if (form_decode(k) != name) continue;
        return eq == std::string_view::npos ? std::string{} : form_decode(pair.substr(eq + 1));
    }
    return std::nullopt;
}

/// A base64url nonce of 120 random bits (20 characters) from the operating system's
/// CSPRNG.
inline std::string make_nonce() {
    static constexpr char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    unsigned char bytes[15];
    os_random(bytes, sizeof bytes);
    std::string out;
    out.reserve(20);
    for (std::size_t i = 0; i < sizeof bytes; i += 3) {
        const std::uint32_t v =
            (std::uint32_t{bytes[i]} << 16) | (std::uint32_t{bytes[i + 1]} << 8) | bytes[i + 2];
        for (int shift = 18; shift >= 0; shift -= 6) out += alphabet[(v >> shift) & 63u];
    }
    return out;
}

/// The path of a request target (before any `?`).
constexpr std::string_view path_of_target(std::string_view target) noexcept {
    return target.substr(0, target.find('?'));
}

/// The query of a request target (after the first `?`), or empty.
constexpr std::string_view query_of_target(std::string_view target) noexcept {
    const auto q = target.find('?');
    return q == std::string_view::npos ? std::string_view{} : target.substr(q + 1);
}

}  // namespace smart_ratelimit::beast::detail
