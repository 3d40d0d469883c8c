// smart_ratelimit/beast/detail/constant_time.hpp
// The comparison of secrets (staff tokens, session secrets, CSRF tokens) in time
// that does not depend on where the first difference is. Standard headers only.
#pragma once

#include <cstddef>
#include <string_view>

namespace smart_ratelimit::beast::detail {

/// Compares `candidate` with `secret` in time that depends only on the secret's
/// length (which is not itself secret), never on where the first difference is.
inline bool constant_time_equals(std::string_view candidate, std::string_view secret) noexcept {
    std::size_t diff = candidate.size() ^ secret.size();
    const std::size_t n = secret.size();
    for (std::size_t i = 0; i < n; ++i) {
        const unsigned char c =
            i < candidate.size() ? static_cast<unsigned char>(candidate[i]) : 0u;
        diff |= static_cast<std::size_t>(c ^ static_cast<unsigned char>(secret[i]));
    }
    return diff == 0;
}

}  // namespace smart_ratelimit::beast::detail
