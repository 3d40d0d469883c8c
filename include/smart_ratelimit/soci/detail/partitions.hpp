// smart_ratelimit/soci/detail/partitions.hpp
// The PostgreSQL event log's day partitions (events v4): UTC day numbers, the
// partition names ratelimit_event_pYYYYMMDD, and the rollup corrections that
// dropping whole days needs, since a dropped partition fires no trigger.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <smart_ratelimit/event.hpp>
#include <smart_ratelimit/soci/detail/sql_time.hpp>

namespace smart_ratelimit::soci::detail {

/// The UTC day of `t`, in days since 1970-01-01 (floor, so exact before 1970 too).
inline std::int64_t utc_day(event_time t) noexcept {
    constexpr std::int64_t per_day = 86'400'000'000;
    const std::int64_t us = t.time_since_epoch().count();
    return us / per_day - (us % per_day < 0 ? 1 : 0);
}

/// Day `day` as YYYY-MM-DD (`separator` "-"), or YYYYMMDD (separator "").
inline std::string day_text(std::int64_t day, std::string_view separator = "-") {
    const std::chrono::year_month_day ymd{
        std::chrono::sys_days{std::chrono::days{static_cast<int>(day)}}};
    std::string out;
    put_digits(out, static_cast<int>(ymd.year()), 4);
    out += separator;
    put_digits(out, static_cast<unsigned>(ymd.month()), 2);
    out += separator;
    put_digits(out, static_cast<unsigned>(ymd.day()), 2);
    return out;
}

/// The partition that holds day `day`.
inline std::string partition_name(std::int64_t day) {
    return "ratelimit_event_p" + day_text(day, "");
}

/// The day of a partition name, nullopt when `name` is not ratelimit_event_pYYYYMMDD.
inline std::optional<std::int64_t> partition_day(std::string_view name) {
    constexpr std::string_view prefix = "ratelimit_event_p";
    if (name.size() != prefix.size() + 8 || !name.starts_with(prefix)) return std::nullopt;
    int digits[8];
    for (std::size_t i = 0; i < 8; ++i) {
        const char c = name[prefix.size() + i];
        if (c < '0' || c > '9') return std::nullopt;
        digits[i] = c - '0';
    }
    const int y = digits[0] * 1000 + digits[1] * 100 + digits[2] * 10 + digits[3];
    const unsigned m = static_cast<unsigned>(digits[4] * 10 + digits[5]);
    const unsigned d = static_cast<unsigned>(digits[6] * 10 + digits[7]);
    const std::chrono::year_month_day ymd{std::chrono::year{y}, std::chrono::month{m},
                                          std::chrono::day{d}};
    if (!ymd.ok()) return std::nullopt;
    return std::chrono::sys_days{ymd}.time_since_epoch().count();
}

// ---- the rollups of dropped days ----------------------------------------------------
//
// :days binds the dropped days as a bigint[] literal ("{20000,20001}"). Hours and
// days align, so the hour, rule-hour (and analytics v1's key-hour and key-day) rows
// of a dropped day go whole. Key spans of 4^level hours do not all align with days:
// every span loses exactly the level-0 counts (per key per hour) of the dropped hours
// inside it, which is what the DELETE trigger would subtract, then spans that reach
// zero go (the level-0 rows of the dropped hours among them).

/// (hour = the rollup table's hour column) inside a dropped day.
inline constexpr std::string_view dropped_hours =
    " USING unnest(CAST(:days AS bigint[])) AS dd(day)"
    " WHERE r.hour >= dd.day * 24 AND r.hour < dd.day * 24 + 24";

/// The spans of every level over the level-0 rows of the dropped hours: columns lv,
/// b (bucket), key_id and n (the blocked count to subtract).
inline constexpr std::string_view dropped_span_groups =
    "(SELECT l AS lv, s.bucket >> (2 * l) AS b, s.key_id, CAST(SUM(s.blocked) AS bigint) AS n"
    " FROM ratelimit_rollup_key_span s"
    " JOIN unnest(CAST(:days AS bigint[])) AS dd(day)"
    "  ON s.bucket >= dd.day * 24 AND s.bucket < dd.day * 24 + 24"
    " CROSS JOIN generate_series(0, 4) AS l"
    " WHERE s.level = 0 GROUP BY 1, 2, 3 ORDER BY 1, 2, 3) g";

inline constexpr std::string_view dropped_span_match =
    " WHERE r.level = g.lv AND r.bucket = g.b AND r.key_id = g.key_id";

}  // namespace smart_ratelimit::soci::detail
