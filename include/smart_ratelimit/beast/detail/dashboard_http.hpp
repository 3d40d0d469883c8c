// smart_ratelimit/beast/detail/dashboard_http.hpp
// Request-side helpers of the dashboard: decoding form and query components,
// reading one parameter, and the per-response CSP nonce from the operating
// system's randomness. Standard headers only.
#pragma once

#include <smart_ratelimit/detail/text.hpp>

#include <cstdint>
#include <optional>
#include <random>
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

/// A base64url nonce from 16 bytes of the operating system's randomness.
inline std::string make_nonce() {
    static constexpr char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    thread_local std::random_device rd;
    std::string out;
    out.reserve(24);
    for (int i = 0; i < 4; ++i) {
        std::uint32_t v = rd();
        for (int j = 0; j < 5; ++j) {
            out += alphabet[v & 63u];
            v >>= 6;
        }
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
