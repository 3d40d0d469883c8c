// smart_ratelimit/soci/detail/sql_time.hpp
// Event timestamps in SQL: INTEGER microseconds since the Unix epoch on SQLite,
// TIMESTAMPTZ on PostgreSQL. Formats the PostgreSQL text form exactly (no
// floating point anywhere), and bounds timestamps to the years 1..9999.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include <smart_ratelimit/event.hpp>

namespace smart_ratelimit::soci::detail {

/// The earliest and latest timestamps the event log stores (years 1 and 9999, UTC).
inline constexpr event_time min_event_time{
    std::chrono::sys_days{std::chrono::year{1} / 1 / 1}.time_since_epoch()};
inline constexpr event_time max_event_time{
    std::chrono::sys_days{std::chrono::year{9999} / 12 / 31}.time_since_epoch() +
    std::chrono::hours{24} - std::chrono::microseconds{1}};

inline bool storable_time(event_time t) noexcept {
    return t >= min_event_time && t <= max_event_time;
}

inline event_time clamp_time(event_time t) noexcept {
    return t < min_event_time ? min_event_time : (t > max_event_time ? max_event_time : t);
}

inline void put_digits(std::string& out, std::int64_t v, int width) {
    char buf[24];
    int n = 0;
    do {
        buf[n++] = static_cast<char>('0' + v % 10);
        v /= 10;
    } while (v > 0 || n < width);
    while (n > 0) out += buf[--n];
}

/// Appends `t` (clamped to the storable range) as `YYYY-MM-DD HH:MM:SS.ffffff+00`,
/// the form PostgreSQL reads back exactly into a timestamptz.
inline void append_pg_time(std::string& out, event_time t) {
    using namespace std::chrono;
    t = clamp_time(t);
    const auto day = floor<days>(t);
    const year_month_day ymd{day};
    const auto us = (t - day).count();  // microseconds into the day
    put_digits(out, static_cast<int>(ymd.year()), 4);
    out += '-';
    put_digits(out, static_cast<unsigned>(ymd.month()), 2);
    out += '-';
    put_digits(out, static_cast<unsigned>(ymd.day()), 2);
    out += ' ';
    put_digits(out, us / 3'600'000'000LL, 2);
    out += ':';
    put_digits(out, us / 60'000'000LL % 60, 2);
    out += ':';
    put_digits(out, us / 1'000'000LL % 60, 2);
    out += '.';
    put_digits(out, us % 1'000'000LL, 6);
    out += "+00";
}

inline std::string pg_time(event_time t) {
    std::string s;
    s.reserve(32);
    append_pg_time(s, t);
    return s;
}

}  // namespace smart_ratelimit::soci::detail
