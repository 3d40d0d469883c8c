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

#include <array>
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
    std::string_view policy;  ///< the rule name ("" = unnamed)
    std::uint64_t limit = 0;  ///< quota units per window
    std::uint64_t remaining = 0;
    std::chrono::nanoseconds window{0};  ///< the rule's period
    std::chrono::nanoseconds reset_after{0};
};

/// Whole seconds, rounded up; a positive duration is at least 1. `never` and
/// overflowing values saturate at one year (RFC 9110 allows any delay-seconds).
constexpr std::uint64_t ceil_seconds(std::chrono::nanoseconds d) noexcept {
    if (d.count() <= 0) return 0;
    constexpr std::int64_t ns_per_s = 1'000'000'000;
    constexpr std::uint64_t cap = 365ull * 24 * 3600;
    const std::uint64_t s =
        static_cast<std::uint64_t>(d.count() / ns_per_s) + (d.count() % ns_per_s != 0 ? 1u : 0u);
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

/// The decimal text of an unsigned number, formatted right to left two digits at
/// a time (std::to_chars measures the length first; these fields are formatted
/// on every limited response).
class decimal {
public:
    explicit decimal(std::uint64_t v) noexcept {
        static constexpr auto pairs = [] {
            std::array<char, 200> t{};
            for (int i = 0; i < 100; ++i) {
                t[2 * i] = char('0' + i / 10);
                t[2 * i + 1] = char('0' + i % 10);
            }
            return t;
        }();
        char* p = buf_ + sizeof buf_;
        while (v >= 100) {
            const auto i = static_cast<std::size_t>(v % 100) * 2;
            v /= 100;
            p -= 2;
            p[0] = pairs[i];
            p[1] = pairs[i + 1];
        }
        if (v >= 10) {
            p -= 2;
            p[0] = pairs[2 * v];
            p[1] = pairs[2 * v + 1];
        } else {
            *--p = char('0' + v);
        }
        begin_ = static_cast<std::uint8_t>(p - buf_);
    }
    std::string_view view() const noexcept { return {buf_ + begin_, sizeof buf_ - begin_}; }

private:
    char buf_[20];  // 2^64 - 1 has 20 digits
    std::uint8_t begin_;
};

template <class Out>
void append_uint(Out& out, std::uint64_t v) {
    out += decimal(v).view();
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
void append_ratelimit_policy(Out& out, std::span<const rule_status> rules,
                             std::string_view default_name) {
    append_rule_list(
        out, rules, default_name, ";q=", [](const rule_status& r) { return r.limit; },
        ";w=", [](const rule_status& r) { return ceil_seconds(r.window); });
}

template <class Out>
void append_ratelimit(Out& out, std::span<const rule_status> rules, std::string_view default_name) {
    append_rule_list(
        out, rules, default_name, ";r=", [](const rule_status& r) { return r.remaining; },
        ";t=", [](const rule_status& r) { return ceil_seconds(r.reset_after); });
}

// Replaces the fields named `name` (not one of Beast's known fields) with `value`.
template <class Fields>
void replace_field(http::header<false, Fields>& res, std::string_view name,
                   std::string_view value) {
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

namespace detail {

// X-RateLimit-Reset: the Unix time at which the binding rule's window resets.
inline std::uint64_t reset_epoch_seconds(const rule_status& binding, event_time wall_now) noexcept {
    const auto now_s =
        std::chrono::duration_cast<std::chrono::seconds>(wall_now.time_since_epoch()).count();
    return static_cast<std::uint64_t>(now_s < 0 ? 0 : now_s) + ceil_seconds(binding.reset_after);
}

}  // namespace detail

/// Calls `fn(name, value)` (two std::string_views, valid during the call) for each
/// rate-limit field, in the order RateLimit-Policy, RateLimit, X-RateLimit-Limit,
/// X-RateLimit-Remaining, X-RateLimit-Reset, as `opts` switches them. `binding` is
/// the rule the legacy trio reports (the blocking one, or the one closest to its
/// limit); `wall_now` is the time X-RateLimit-Reset counts from. `policy`, when not
/// empty, is the RateLimit-Policy value already formatted for `rules` (it depends
/// only on the rules). With no rules, `fn` is not called. For servers that write
/// their responses themselves; a Beast response uses set_rate_limit_headers.
template <class Fn>
void for_each_rate_limit_field(std::span<const rule_status> rules, const rule_status& binding,
                               event_time wall_now, const header_options& opts,
                               std::string_view policy, Fn&& fn) {
    if (rules.empty()) return;
    if (opts.draft_headers) {
        if (!policy.empty()) {
            fn(std::string_view("RateLimit-Policy"), policy);
        } else {
            detail::field_text v;
            detail::append_ratelimit_policy(v, rules, opts.default_policy_name);
            fn(std::string_view("RateLimit-Policy"), v.view());
        }
        detail::field_text v;
        detail::append_ratelimit(v, rules, opts.default_policy_name);
        fn(std::string_view("RateLimit"), v.view());
    }
    if (opts.legacy_headers) {
        fn(std::string_view("X-RateLimit-Limit"), detail::decimal(binding.limit).view());
        fn(std::string_view("X-RateLimit-Remaining"), detail::decimal(binding.remaining).view());
        fn(std::string_view("X-RateLimit-Reset"),
           detail::decimal(detail::reset_epoch_seconds(binding, wall_now)).view());
    }
}

/// Appends the fields for_each_rate_limit_field visits, in the same order, as
/// HTTP/1.1 header lines (`Name: value` and CRLF each) to `out`: anything with
/// `out += std::string_view` and `out += char` (std::string, a fixed buffer). The
/// fastest way for a server that serializes its responses itself; the values are
/// written straight into `out` (built on for_each_rate_limit_field, the demo
/// server spent about 480 more instructions per request, on the copies).
template <class Out>
void append_rate_limit_fields(Out& out, std::span<const rule_status> rules,
                              const rule_status& binding, event_time wall_now,
                              const header_options& opts, std::string_view policy = {}) {
    if (rules.empty()) return;
    if (opts.draft_headers) {
        out += std::string_view("RateLimit-Policy: ");
        if (!policy.empty())
            out += policy;
        else
            detail::append_ratelimit_policy(out, rules, opts.default_policy_name);
        out += std::string_view("\r\nRateLimit: ");
        detail::append_ratelimit(out, rules, opts.default_policy_name);
        out += std::string_view("\r\n");
    }
    if (opts.legacy_headers) {
        out += std::string_view("X-RateLimit-Limit: ");
        out += detail::decimal(binding.limit).view();
        out += std::string_view("\r\nX-RateLimit-Remaining: ");
        out += detail::decimal(binding.remaining).view();
        out += std::string_view("\r\nX-RateLimit-Reset: ");
        out += detail::decimal(detail::reset_epoch_seconds(binding, wall_now)).view();
        out += std::string_view("\r\n");
    }
}

/// Sets the rate-limit fields on a response (see for_each_rate_limit_field for the
/// arguments). Existing fields of the same names are replaced. With no rules,
/// nothing is set.
template <class Fields>
void set_rate_limit_headers(http::header<false, Fields>& res, std::span<const rule_status> rules,
                            const rule_status& binding, event_time wall_now,
                            const header_options& opts, std::string_view policy = {}) {
    for_each_rate_limit_field(rules, binding, wall_now, opts, policy,
                              [&res](std::string_view name, std::string_view value) {
                                  detail::replace_field(res, name, value);
                              });
}

/// `Retry-After` in whole seconds, at least 1.
template <class Fields>
void set_retry_after(http::header<false, Fields>& res, std::chrono::nanoseconds wait) {
    const std::uint64_t s = ceil_seconds(wait);
    res.set(http::field::retry_after, std::to_string(s < 1 ? 1 : s));
}

}  // namespace smart_ratelimit::beast
