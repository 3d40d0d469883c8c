// smart_ratelimit/rate.hpp
// A rate: at most `limit` units per `period`, and parse_rate(), which reads the
// "<limit>/<period>" rate strings ("100/m", "10/30s", "10000/7d").
// Everything that is not exactly that grammar is a config_error quoting the input.
#pragma once

#include <smart_ratelimit/detail/text.hpp>
#include <smart_ratelimit/error.hpp>

#include <charconv>
#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <system_error>

namespace smart_ratelimit {

/// At most `limit` units per `period`. A plain value; `parse_rate` and
/// `make_rate` produce only valid ones (1 <= limit <= max_limit, 0 < period <= max_period).
struct rate {
    std::uint64_t limit = 0;
    std::chrono::nanoseconds period{0};

    /// The largest accepted limit (10^9).
    static constexpr std::uint64_t max_limit = 1'000'000'000;
    /// The longest accepted period (365 days).
    static constexpr std::chrono::nanoseconds max_period = std::chrono::hours(24 * 365);

    friend bool operator==(const rate&, const rate&) = default;
};

namespace detail {

[[noreturn]] inline void bad_rate(std::string_view text, std::string_view why) {
    std::string msg = "invalid rate \"";
    append_printable(msg, text);
    msg += "\": ";
    msg.append(why);
    throw config_error(msg);
}

/// Parses a whole string of ASCII digits; false on anything else or overflow.
inline bool parse_digits(std::string_view s, std::uint64_t& out) noexcept {
    if (s.empty()) return false;
    for (const char c : s)
        if (c < '0' || c > '9') return false;
    const auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
    return ec == std::errc{} && ptr == s.data() + s.size();
}

/// Seconds in one period unit, or 0 for an unknown unit.
constexpr std::uint64_t unit_seconds(std::string_view u) noexcept {
    if (u == "s" || u == "sec" || u == "second") return 1;
    if (u == "m" || u == "min" || u == "minute") return 60;
    if (u == "h" || u == "hr" || u == "hour") return 3600;
    if (u == "d" || u == "day") return 86400;
    return 0;
}

}  // namespace detail

/// Checks a limit and period against the accepted ranges; throws config_error.
inline rate make_rate(std::uint64_t limit, std::chrono::nanoseconds period) {
    if (limit == 0 || limit > rate::max_limit)
        throw config_error("invalid rate: limit " + std::to_string(limit) +
                           " is outside 1..1000000000");
    if (period.count() <= 0 || period > rate::max_period)
        throw config_error("invalid rate: period of " + std::to_string(period.count()) +
                           " ns is outside (0, 365 days]");
    return rate{limit, period};
}

/// Parses "<limit>/<period>": period is s, m, h, d, sec, second, min, minute, hr,
/// hour, day, or <N><s|m|h|d>. Digits only, whole-string match, no whitespace,
/// signs, decimals, plurals or upper case; limit 1..10^9; period 1 s..365 days.
/// Throws config_error whose message quotes `text`.
inline rate parse_rate(std::string_view text) {
    using detail::bad_rate;
    if (text.empty()) bad_rate(text, "empty rate string");
    const auto slash = text.find('/');
    if (slash == std::string_view::npos) bad_rate(text, "expected \"<limit>/<period>\"");
    const std::string_view limit_part = text.substr(0, slash);
    const std::string_view period_part = text.substr(slash + 1);

    std::uint64_t limit = 0;
    if (!detail::parse_digits(limit_part, limit))
        bad_rate(text, "the limit must be a whole number of ASCII digits");
    if (limit == 0) bad_rate(text, "the limit must be at least 1");
    if (limit > rate::max_limit) bad_rate(text, "the limit must be at most 1000000000");

    if (period_part.empty()) bad_rate(text, "missing period");
    std::uint64_t multiplier = 1;
    std::uint64_t unit = detail::unit_seconds(period_part);
    if (unit == 0) {
        // <N><s|m|h|d>
        const std::string_view digits = period_part.substr(0, period_part.size() - 1);
        const std::string_view suffix = period_part.substr(period_part.size() - 1);
        unit = (suffix == "s" || suffix == "m" || suffix == "h" || suffix == "d")
                   ? detail::unit_seconds(suffix)
                   : 0;
        if (unit == 0 || !detail::parse_digits(digits, multiplier))
            bad_rate(text,
                     "the period must be s, m, h, d, sec, second, min, minute, hr, hour, "
                     "day or <N><s|m|h|d>");
        if (multiplier == 0) bad_rate(text, "the period must be longer than zero");
    }
    constexpr std::uint64_t max_seconds = 365ull * 86400ull;
    if (multiplier > max_seconds / unit) bad_rate(text, "the period must be at most 365 days");
    const std::uint64_t seconds = multiplier * unit;
    return rate{limit, std::chrono::seconds(static_cast<std::int64_t>(seconds))};
}

}  // namespace smart_ratelimit
