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

#include <charconv>
#include <chrono>
#include <cstdint>
#include <cstring>
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

/// Text formatted on the stack, spilling to the heap past its inline capacity: the
/// header values are built on every limited response, where a std::string per
/// value (and one per number) was most of the cost of dressing it.
class field_text {
public:
    field_text() = default;
    field_text(const field_text&) = delete;
    field_text& operator=(const field_text&) = delete;

    field_text& operator+=(std::string_view s) {
        if (!spilled_ && s.size() <= sizeof buf_ - size_) {
            std::memcpy(buf_ + size_, s.data(), s.size());
            size_ += s.size();
        } else {
            if (!spilled_) heap_.assign(buf_, size_);
            spilled_ = true;
            heap_ += s;
        }
        return *this;
    }
    field_text& operator+=(char c) { return *this += std::string_view(&c, 1); }
    bool empty() const noexcept { return spilled_ ? heap_.empty() : size_ == 0; }
    std::string_view view() const noexcept {
        return spilled_ ? std::string_view(heap_) : std::string_view(buf_, size_);
    }

private:
    char buf_[160];
    std::size_t size_ = 0;
    bool spilled_ = false;
    std::string heap_;
};

template <class Out>
void append_uint(Out& out, std::uint64_t v) {
    char digits[20];
    const auto r = std::to_chars(digits, digits + sizeof digits, v);
    out += std::string_view(digits, static_cast<std::size_t>(r.ptr - digits));
}

// An sf-string: policy names are [A-Za-z0-9_-] (rule.hpp), escaped defensively.
template <class Out>
void append_sf_string(Out& out, std::string_view s) {
    out += '"';
    bool plain = true;
    for (const char c : s) plain = plain && c >= 0x20 && c < 0x7f && c != '"' && c != '\\';
    if (plain) {
        out += s;
        out += '"';
        return;
    }
    for (const char c : s) {
        if (c == '"' || c == '\\') out += '\\';
        if (c >= 0x20 && c < 0x7f) out += c;
    }
    out += '"';
}

// `"name";<a>=<x>;<b>=<y>, ...` for each rule; x and y from `first` and `second`.
template <class Out, class First, class Second>
void append_rule_list(Out& out, std::span<const rule_status> rules, std::string_view default_name,
                      std::string_view a, First first, std::string_view b, Second second) {
    bool more = false;
    for (const auto& r : rules) {
        if (more) out += std::string_view(", ");
        more = true;
        append_sf_string(out, r.policy.empty() ? default_name : r.policy);
        out += a;
        append_uint(out, first(r));
        out += b;
        append_uint(out, second(r));
    }
}

template <class Out>
void append_ratelimit_policy(Out& out, std::span<const rule_status> rules, std::string_view default_name) {
    append_rule_list(out, rules, default_name, ";q=", [](const rule_status& r) { return r.limit; },
                     ";w=", [](const rule_status& r) { return ceil_seconds(r.window); });
}

template <class Out>
void append_ratelimit(Out& out, std::span<const rule_status> rules, std::string_view default_name) {
    append_rule_list(out, rules, default_name, ";r=", [](const rule_status& r) { return r.remaining; },
                     ";t=", [](const rule_status& r) { return ceil_seconds(r.reset_after); });
}

// Replaces the fields named `name` (not one of Beast's known fields) with `value`.
template <class Fields>
void replace_field(http::header<false, Fields>& res, std::string_view name, std::string_view value) {
    res.erase(name);
    res.insert(http::field::unknown, name, value);
}

}  // namespace detail

/// `RateLimit-Policy`: `"login";q=5;w=60, "default";q=100;w=60`.
inline std::string format_ratelimit_policy(std::span<const rule_status> rules,
                                           std::string_view default_name = "default") {
    std::string out;
    detail::append_ratelimit_policy(out, rules, default_name);
    return out;
}

/// `RateLimit`: `"login";r=0;t=42` (remaining units; seconds until the quota resets).
inline std::string format_ratelimit(std::span<const rule_status> rules,
                                    std::string_view default_name = "default") {
    std::string out;
    detail::append_ratelimit(out, rules, default_name);
    return out;
}

/// Sets the rate-limit fields on a response. `binding` is the rule the legacy
/// trio reports (the blocking one, or the one closest to its limit); `wall_now` is
/// the time X-RateLimit-Reset counts from. `policy`, when not empty, is the
/// RateLimit-Policy value already formatted for `rules` (it depends only on the
/// rules). Existing fields of the same names are replaced. With no rules, nothing
/// is set.
template <class Fields>
void set_rate_limit_headers(http::header<false, Fields>& res, std::span<const rule_status> rules,
                            const rule_status& binding, event_time wall_now,
                            const header_options& opts, std::string_view policy = {}) {
    if (rules.empty()) return;
    if (opts.draft_headers) {
        if (!policy.empty()) {
            detail::replace_field(res, "RateLimit-Policy", policy);
        } else {
            detail::field_text v;
            detail::append_ratelimit_policy(v, rules, opts.default_policy_name);
            detail::replace_field(res, "RateLimit-Policy", v.view());
        }
        detail::field_text v;
        detail::append_ratelimit(v, rules, opts.default_policy_name);
        detail::replace_field(res, "RateLimit", v.view());
    }
    if (opts.legacy_headers) {
        char digits[20];
        const auto number = [&](std::uint64_t n) {
            const auto r = std::to_chars(digits, digits + sizeof digits, n);
            return std::string_view(digits, static_cast<std::size_t>(r.ptr - digits));
        };
        detail::replace_field(res, "X-RateLimit-Limit", number(binding.limit));
        detail::replace_field(res, "X-RateLimit-Remaining", number(binding.remaining));
        const auto now_s = std::chrono::duration_cast<std::chrono::seconds>(
                               wall_now.time_since_epoch()).count();
        detail::replace_field(res, "X-RateLimit-Reset",
                              number(static_cast<std::uint64_t>(now_s < 0 ? 0 : now_s) +
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
