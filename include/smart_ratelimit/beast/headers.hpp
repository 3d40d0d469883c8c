// smart_ratelimit/beast/headers.hpp
// The rate-limit response header fields: IETF `RateLimit-Policy` and `RateLimit`
// in the syntax of draft-ietf-httpapi-ratelimit-headers-10 (Structured Field lists
// of quoted policy names with q/w and r/t parameters, unchanged since -08), the
// legacy `X-RateLimit-Limit/Remaining/Reset` trio the reference sends, and
// `Retry-After`. Each group is switchable through header_options.
#pragma once

#include <smart_ratelimit/decision.hpp>
#include <smart_ratelimit/event.hpp>

#include <boost/beast/http/field.hpp>
#include <boost/beast/http/message.hpp>

#include <chrono>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace smart_ratelimit::beast {

namespace http = boost::beast::http;

/// Which header fields a limited response carries.
struct header_options {
    /// `RateLimit-Policy` and `RateLimit` (draft-ietf-httpapi-ratelimit-headers-10).
    bool draft_headers = true;
    /// `X-RateLimit-Limit`, `X-RateLimit-Remaining`, `X-RateLimit-Reset` (Unix time).
    bool legacy_headers = true;
    /// The policy name of an unnamed rule.
    std::string default_policy_name = "default";
};

/// One rule's state as the headers report it.
struct rule_status {
    std::string_view policy;               ///< the rule name ("" = unnamed)
    std::uint64_t limit = 0;               ///< quota units per window
    std::uint64_t remaining = 0;
    std::chrono::nanoseconds window{0};    ///< the rule's period
    std::chrono::nanoseconds reset_after{0};
};

/// Whole seconds, rounded up; a positive duration is at least 1. `never` and
/// overflowing values saturate at one year (RFC 9110 allows any delay-seconds).
constexpr std::uint64_t ceil_seconds(std::chrono::nanoseconds d) noexcept {
    if (d.count() <= 0) return 0;
    constexpr std::int64_t ns_per_s = 1'000'000'000;
    constexpr std::uint64_t cap = 365ull * 24 * 3600;
    const std::uint64_t s = static_cast<std::uint64_t>(d.count() / ns_per_s) +
                            (d.count() % ns_per_s != 0 ? 1u : 0u);
    return s > cap ? cap : s;
}

namespace detail {
// An sf-string: policy names are [A-Za-z0-9_-] (rule.hpp), escaped defensively.
inline void append_sf_string(std::string& out, std::string_view s) {
    out += '"';
    for (const char c : s) {
        if (c == '"' || c == '\\') out += '\\';
        if (c >= 0x20 && c < 0x7f) out += c;
    }
    out += '"';
}
}  // namespace detail

/// `RateLimit-Policy`: `"login";q=5;w=60, "default";q=100;w=60`.
inline std::string format_ratelimit_policy(std::span<const rule_status> rules,
                                           std::string_view default_name = "default") {
    std::string out;
    for (const auto& r : rules) {
        if (!out.empty()) out += ", ";
        detail::append_sf_string(out, r.policy.empty() ? default_name : r.policy);
        out += ";q=";
        out += std::to_string(r.limit);
        out += ";w=";
        out += std::to_string(ceil_seconds(r.window));
    }
    return out;
}

/// `RateLimit`: `"login";r=0;t=42` (remaining units; seconds until the quota resets).
inline std::string format_ratelimit(std::span<const rule_status> rules,
                                    std::string_view default_name = "default") {
    std::string out;
    for (const auto& r : rules) {
        if (!out.empty()) out += ", ";
        detail::append_sf_string(out, r.policy.empty() ? default_name : r.policy);
        out += ";r=";
        out += std::to_string(r.remaining);
        out += ";t=";
        out += std::to_string(ceil_seconds(r.reset_after));
    }
    return out;
}

/// Sets the rate-limit fields on a response. `binding` is the rule the legacy
/// trio reports (the blocking one, or the one closest to its limit); `wall_now` is
/// the time X-RateLimit-Reset counts from. Existing fields of the same names are
/// replaced. With no rules, nothing is set.
template <class Fields>
void set_rate_limit_headers(http::header<false, Fields>& res, std::span<const rule_status> rules,
                            const rule_status& binding, event_time wall_now,
                            const header_options& opts) {
    if (rules.empty()) return;
    if (opts.draft_headers) {
        res.set("RateLimit-Policy", format_ratelimit_policy(rules, opts.default_policy_name));
        res.set("RateLimit", format_ratelimit(rules, opts.default_policy_name));
    }
    if (opts.legacy_headers) {
        res.set("X-RateLimit-Limit", std::to_string(binding.limit));
        res.set("X-RateLimit-Remaining", std::to_string(binding.remaining));
        const auto now_s = std::chrono::duration_cast<std::chrono::seconds>(
                               wall_now.time_since_epoch()).count();
        res.set("X-RateLimit-Reset",
                std::to_string(static_cast<std::uint64_t>(now_s < 0 ? 0 : now_s) +
                               ceil_seconds(binding.reset_after)));
    }
}

/// `Retry-After` in whole seconds, at least 1.
template <class Fields>
void set_retry_after(http::header<false, Fields>& res, std::chrono::nanoseconds wait) {
    const std::uint64_t s = ceil_seconds(wait);
    res.set(http::field::retry_after, std::to_string(s < 1 ? 1 : s));
}

}  // namespace smart_ratelimit::beast
