// smart_ratelimit/soci/detail/partitions.hpp
// The PostgreSQL event log's day partitions (events v4): UTC day numbers and the
// partition names ratelimit_event_pYYYYMMDD.
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

/// Day partitions are named a prefix and the day as YYYYMMDD: `partition_prefix` while
/// attached to ratelimit_event, `detached_prefix` once cleanup has detached them, until
/// the transaction that corrects the rollups drops them.
inline constexpr std::string_view partition_prefix = "ratelimit_event_p";
inline constexpr std::string_view detached_prefix = "ratelimit_event_gone_p";

/// The partition that holds day `day`.
inline std::string partition_name(std::int64_t day) {
    return std::string(partition_prefix) + day_text(day, "");
}

/// The name cleanup gives day `day`'s partition once it has detached it.
inline std::string detached_partition_name(std::int64_t day) {
    return std::string(detached_prefix) + day_text(day, "");
}

/// The day of a partition name, nullopt when `name` is not `prefix` followed by
/// YYYYMMDD.
inline std::optional<std::int64_t> partition_day(std::string_view name,
                                                 std::string_view prefix = partition_prefix) {
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

}  // namespace smart_ratelimit::soci::detail
