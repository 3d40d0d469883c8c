// smart_ratelimit/analytics/format.hpp
// Text forms shared by the analytics outputs (JSON, CSV, terminal tables) and the
// command-line program (report, export, import): RFC 3339 UTC timestamps (format
// and the one parser) and plain shortest-round-trip decimals (`0.6`, `0.0`, never
// `6E-1`). Standard headers only.
#pragma once

#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>

#include <smart_ratelimit/event.hpp>

namespace smart_ratelimit {

/// `d` in plain decimal notation, the shortest that reads back as the same
/// double, always with a fractional part: 0.6 -> "0.6", 0 -> "0.0", 1 -> "1.0".
/// Non-finite values give "null" (JSON has no NaN or infinity).
inline std::string format_plain_decimal(double d) {
    if (!std::isfinite(d)) return "null";
    char buf[400];  // fixed notation of the largest double fits in 310 chars
    const auto r = std::to_chars(buf, buf + sizeof buf, d, std::chars_format::fixed);
    std::string s(buf, r.ptr);
    if (s.find('.') == std::string::npos) s += ".0";
    return s;
}

/// `t` as RFC 3339 UTC with `Z`: `YYYY-MM-DDTHH:MM:SS` then `fraction_digits`
/// (0, 3 or 6) digits of the second, truncated toward the past.
inline std::string format_rfc3339(event_time t, int fraction_digits = 3) {
    using namespace std::chrono;
    const sys_days day = floor<days>(t);
    const year_month_day ymd(day);
    const auto us = (t - day).count();  // microseconds into the day, >= 0
    const auto secs = us / 1'000'000;
    const auto frac = us % 1'000'000;
    char buf[48];
    auto two = [](char* p, long v) {
        p[0] = static_cast<char>('0' + v / 10);
        p[1] = static_cast<char>('0' + v % 10);
    };
    int y = static_cast<int>(ymd.year());
    std::string out;
    out.reserve(32);
    if (y < 0) {
        out.push_back('-');
        y = -y;
    }
    const auto yr = std::to_chars(buf, buf + 16, y);
    out.append(static_cast<std::size_t>(4 - std::min<std::ptrdiff_t>(4, yr.ptr - buf)), '0');
    out.append(buf, yr.ptr);
    char rest[32] = "-MM-DDTHH:MM:SS";
    two(rest + 1, static_cast<long>(static_cast<unsigned>(ymd.month())));
    two(rest + 4, static_cast<long>(static_cast<unsigned>(ymd.day())));
    two(rest + 7, static_cast<long>(secs / 3600));
    two(rest + 10, static_cast<long>(secs / 60 % 60));
    two(rest + 13, static_cast<long>(secs % 60));
    out.append(rest, 15);
    if (fraction_digits == 3 || fraction_digits == 6) {
        long f = static_cast<long>(frac);
        if (fraction_digits == 3) f /= 1000;
        char fb[8];
        for (int i = fraction_digits - 1; i >= 0; --i) {
            fb[i] = static_cast<char>('0' + f % 10);
            f /= 10;
        }
        out.push_back('.');
        out.append(fb, static_cast<std::size_t>(fraction_digits));
    }
    out.push_back('Z');
    return out;
}

/// Parses an RFC 3339 date-time: `YYYY-MM-DD` `T` `HH:MM:SS` `[.fraction]` then `Z`
/// or `+HH:MM`/`-HH:MM` (`2026-05-07T22:41:55Z`, `...55.123456Z`, `...55+02:00`).
/// Also accepted: `t`/`z` in lower case and a space instead of `T`. The rules:
/// - years 0000-9999, a real calendar date, hours 00-23, minutes 00-59;
/// - seconds 00-60: a leap second (`:60`) is read as `:59` with its fraction,
///   since event_time has no leap seconds;
/// - a fraction has one digit or more, any number; digits past the microsecond
///   are truncated (toward the past), never rounded, so a time is never moved
///   into the next second, day or year;
/// - an offset is at most 23:59, and the instant it gives is within years 0000-9999
///   UTC (`0000-01-01T00:00:00+01:00` is refused: it is in year -1).
/// Returns nullopt on anything else. Thread safety: pure function.
inline std::optional<event_time> parse_rfc3339(std::string_view s) {
    using namespace std::chrono;
    std::size_t i = 0;
    auto num = [&](std::size_t n, int& v) {
        if (i + n > s.size()) return false;
        v = 0;
        for (std::size_t k = 0; k < n; ++k) {
            const char c = s[i + k];
            if (c < '0' || c > '9') return false;
            v = v * 10 + (c - '0');
        }
        i += n;
        return true;
    };
    auto lit = [&](char c) {
        if (i >= s.size() || s[i] != c) return false;
        ++i;
        return true;
    };
    int Y, M, D, h, m, sec;
    if (!num(4, Y) || !lit('-') || !num(2, M) || !lit('-') || !num(2, D)) return std::nullopt;
    if (i >= s.size() || (s[i] != 'T' && s[i] != 't' && s[i] != ' ')) return std::nullopt;
    ++i;
    if (!num(2, h) || !lit(':') || !num(2, m) || !lit(':') || !num(2, sec)) return std::nullopt;
    std::int64_t us = 0;
    if (i < s.size() && s[i] == '.') {
        ++i;
        int digits = 0;
        while (i < s.size() && s[i] >= '0' && s[i] <= '9') {
            if (digits < 6) us = us * 10 + (s[i] - '0');
            ++digits;
            ++i;
        }
        if (digits == 0) return std::nullopt;
        for (int k = digits; k < 6; ++k) us *= 10;
    }
    std::int64_t offset_min = 0;
    if (i < s.size() && (s[i] == 'Z' || s[i] == 'z')) {
        ++i;
    } else if (i < s.size() && (s[i] == '+' || s[i] == '-')) {
        const bool neg = s[i] == '-';
        ++i;
        int oh, om;
        if (!num(2, oh) || !lit(':') || !num(2, om) || oh > 23 || om > 59) return std::nullopt;
        offset_min = (neg ? -1 : 1) * (oh * 60 + om);
    } else {
        return std::nullopt;
    }
    if (i != s.size()) return std::nullopt;
    const year_month_day ymd{year{Y}, month{static_cast<unsigned>(M)},
                             day{static_cast<unsigned>(D)}};
    if (!ymd.ok() || h > 23 || m > 59 || sec > 60) return std::nullopt;
    if (sec == 60) sec = 59;
    const auto tp = sys_days(ymd) + hours{h} + minutes{m} + seconds{sec} + microseconds{us} -
                    minutes{offset_min};
    // The instant itself must be writable with a four-digit year (format_rfc3339):
    // an offset may not carry it before 0000-01-01 or past 9999-12-31 UTC.
    constexpr sys_days first = year{0} / January / 1;
    constexpr sys_days after_last = year{10000} / January / 1;
    if (tp < first || tp >= after_last) return std::nullopt;
    return event_time(duration_cast<microseconds>(tp.time_since_epoch()));
}

}  // namespace smart_ratelimit
