// smart_ratelimit/soci/detail/analytics/window_plan.hpp
// How the SQL analytics cut a time window: raw rows at its partial-hour edges,
// whole rollup hours in between, and the whole hours split into the fewest
// aligned key spans of 4^level hours (ratelimit_rollup_key_span).
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <vector>

#include <smart_ratelimit/event.hpp>
#include <smart_ratelimit/soci/detail/sql_time.hpp>

namespace smart_ratelimit::soci::detail::analytics {

inline constexpr std::int64_t hour_us = 3'600'000'000LL;

inline std::int64_t floor_div(std::int64_t a, std::int64_t b) {
    const std::int64_t q = a / b;
    return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
}

/// A window [start, end] (end inclusive, open when empty) split into raw-row
/// ranges at the edges and whole rollup hours [hour_from, hour_to) in between.
struct window_plan {
    struct raw_range {
        event_time lo, hi;  // inclusive; hi empty = open
        bool open_end = false;
    };
    std::vector<raw_range> raw;
    bool use_rollup = false;
    std::int64_t hour_from = 0;
    std::optional<std::int64_t> hour_to;  // exclusive
};

inline std::int64_t floor_mod(std::int64_t a, std::int64_t b) { return a - floor_div(a, b) * b; }

/// Levels of ratelimit_rollup_key_span: a span of level L covers 4^L hours
/// starting at a multiple of 4^L (bucket = hour >> 2L).
inline constexpr int key_span_levels = 5;

struct key_span {
    int level;
    std::int64_t bucket;
    friend bool operator==(const key_span&, const key_span&) = default;
};

/// Whole hours [from, to) as the fewest aligned spans (at most 3 per level on each
/// side, plus whole top-level spans in between), in order.
inline std::vector<key_span> split_spans(std::int64_t from, std::int64_t to) {
    std::vector<key_span> out;
    while (from < to) {
        int level = key_span_levels - 1;
        for (; level > 0; --level) {
            const std::int64_t size = std::int64_t{1} << (2 * level);
            if (floor_mod(from, size) == 0 && to - from >= size) break;
        }
        out.push_back({level, floor_div(from, std::int64_t{1} << (2 * level))});
        from += std::int64_t{1} << (2 * level);
    }
    return out;
}

inline window_plan plan_window(event_time start, std::optional<event_time> end, bool rollups) {
    window_plan p;
    // Stored timestamps lie in years 1..9999: clamping keeps the hour arithmetic
    // far from overflow without changing which rows match.
    if (start < detail::min_event_time) start = detail::min_event_time;
    if (end && *end > detail::max_event_time) end = detail::max_event_time;
    const std::int64_t s = start.time_since_epoch().count();
    if (!rollups) {
        p.raw.push_back({start, end.value_or(start), !end.has_value()});
        return p;
    }
    const std::int64_t hs = floor_div(s, hour_us) + (s % hour_us != 0 ? 1 : 0);  // ceil
    const event_time hs_t{std::chrono::microseconds{hs * hour_us}};
    if (!end) {
        if (hs_t > start) p.raw.push_back({start, hs_t - std::chrono::microseconds{1}, false});
        p.use_rollup = true;
        p.hour_from = hs;
        return p;
    }
    const std::int64_t e = end->time_since_epoch().count();
    const std::int64_t he = floor_div(e, hour_us);
    if (hs > he) {
        p.raw.push_back({start, *end, false});
        return p;
    }
    if (hs_t > start) p.raw.push_back({start, hs_t - std::chrono::microseconds{1}, false});
    if (he > hs) {
        p.use_rollup = true;
        p.hour_from = hs;
        p.hour_to = he;
    }
    p.raw.push_back({event_time{std::chrono::microseconds{he * hour_us}}, *end, false});
    return p;
}

/// A window that starts after the last storable instant matches nothing; one that
/// starts before the first is clamped (time_value does it) without changing results.
inline bool window_empty(event_time start, std::optional<event_time> end) {
    return start > detail::max_event_time || (end && *end < start) ||
           (end && *end < detail::min_event_time);
}

}  // namespace smart_ratelimit::soci::detail::analytics
