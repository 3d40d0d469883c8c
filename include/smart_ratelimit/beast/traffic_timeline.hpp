// smart_ratelimit/beast/traffic_timeline.hpp
// Allowed, blocked and degraded requests over time across the analytics window, in
// buckets aligned to whole UTC hours or days: the data behind the dashboard's chart
// and `dashboard/timeline.json` (`format_timeline_json`). `get_traffic_timeline`
// works over any event range; the SOCI event store has a SQL version (hourly
// rollups when present) in beast/soci_dashboard_source.hpp. Standard headers only.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <ranges>
#include <string>
#include <vector>

#include <smart_ratelimit/analytics/format.hpp>
#include <smart_ratelimit/analytics/event_range.hpp>
#include <smart_ratelimit/error.hpp>
#include <smart_ratelimit/event.hpp>

namespace smart_ratelimit {

/// One bucket of the timeline: events with `start <= timestamp <` the next bucket's start.
/// As in traffic_summary, a degraded event (the store could not decide) is neither
/// allowed nor blocked: total() = allowed + blocked + degraded.
struct traffic_bucket {
    event_time start{};
    std::int64_t allowed = 0;
    std::int64_t blocked = 0;
    std::int64_t degraded = 0;

    std::int64_t total() const noexcept { return allowed + blocked + degraded; }

    friend bool operator==(const traffic_bucket&, const traffic_bucket&) = default;
};

/// The buckets of a window: the window `[window_start(now, days), ...)` cut at every
/// multiple of `width` since the Unix epoch (whole UTC hours or days). The first
/// bucket starts at the window start and may be partial; the last one holds `now`
/// and also takes events stamped after it (clock skew), so the buckets add up to
/// `get_traffic_summary`. Aligned cuts let the SQL store answer from its hourly rollups.
struct timeline_layout {
    event_time start{};
    std::chrono::microseconds width{};
    std::int64_t first_unit = 0;  // floor(start / width)
    std::size_t buckets = 0;

    /// Throws config_error when days < 1 or width is not 1 hour to 366 days.
    static timeline_layout make(event_time now, int days, std::chrono::hours width) {
        if (days < 1) throw config_error("get_traffic_timeline: days must be at least 1");
        if (width < std::chrono::hours{1} || width > std::chrono::hours{24 * 366})
            throw config_error("get_traffic_timeline: the bucket width must be 1 hour to 366 days");
        timeline_layout l;
        l.start = window_start(now, days);
        l.width = width;
        l.first_unit = unit_of(l.start, l.width);
        const std::int64_t last = unit_of(std::max(now, l.start), l.width);
        l.buckets = static_cast<std::size_t>(last - l.first_unit + 1);
        return l;
    }

    /// floor(t / w), also for times before the epoch.
    static std::int64_t unit_of(event_time t, std::chrono::microseconds w) noexcept {
        const std::int64_t c = t.time_since_epoch().count(), d = w.count();
        return c / d - ((c % d) < 0 ? 1 : 0);
    }

    /// The bucket of a timestamp inside the window (`t >= start`).
    std::size_t index_of(event_time t) const noexcept { return index_of_unit(unit_of(t, width)); }

    /// The bucket of the aligned unit number `u` (clamped to the first and last bucket).
    std::size_t index_of_unit(std::int64_t u) const noexcept {
        if (u <= first_unit) return 0;
        return std::min(static_cast<std::size_t>(u - first_unit), buckets - 1);
    }

    /// Empty buckets with their start times filled in.
    std::vector<traffic_bucket> empty() const {
        std::vector<traffic_bucket> out(buckets);
        for (std::size_t i = 0; i < buckets; ++i)
            out[i].start =
                i == 0 ? start : event_time{width * (first_unit + static_cast<std::int64_t>(i))};
        return out;
    }
};

/// The bucket width the dashboard uses for a window: hourly up to 2 days, then daily.
constexpr std::chrono::hours default_timeline_width(int days) noexcept {
    return days <= 2 ? std::chrono::hours{1} : std::chrono::hours{24};
}

/// Allowed, blocked and degraded counts of `events` in the `days`-day window ending at `now`,
/// per bucket of `width` (see timeline_layout), oldest first. Events older than the
/// window are skipped. Throws config_error for days < 1 or a bad width.
template <event_range R>
std::vector<traffic_bucket> get_traffic_timeline(R&& events, int days = 7,
                                                 std::chrono::hours width = std::chrono::hours{0},
                                                 event_time now = event_clock_now()) {
    const auto layout =
        timeline_layout::make(now, days, width.count() == 0 ? default_timeline_width(days) : width);
    auto out = layout.empty();
    using traits = event_traits<range_event_t<R>>;
    for (auto&& e : events) {
        const event_time t = traits::timestamp(e);
        if (t < layout.start) continue;
        auto& b = out[layout.index_of(t)];
        if (!traits::allowed(e))
            ++b.blocked;
        else if (outcome_of(e) == outcome_kind::degraded)
            ++b.degraded;
        else
            ++b.allowed;
    }
    return out;
}

/// The timeline as the JSON of `dashboard/timeline.json`:
/// `{"days":N,"bucket":"hour"|"day","buckets":[{"start":"<RFC 3339, ms, Z>","total":..,
/// "blocked":..,"degraded":..}]}`, oldest first; `bucket` names `width` (hour when
/// shorter than a day). Only numbers and fixed keys: nothing to escape.
inline std::string format_timeline_json(int days, std::chrono::hours width,
                                        const std::vector<traffic_bucket>& buckets) {
    std::string out = "{\"days\":" + std::to_string(days) + ",\"bucket\":\"";
    out += width < std::chrono::hours{24} ? "hour" : "day";
    out += "\",\"buckets\":[";
    out.reserve(out.size() + buckets.size() * 90);
    for (std::size_t i = 0; i < buckets.size(); ++i) {
        const auto& b = buckets[i];
        if (i != 0) out += ',';
        out += "{\"start\":\"";
        out += format_rfc3339(b.start);
        out += "\",\"total\":";
        out += std::to_string(b.total());
        out += ",\"blocked\":";
        out += std::to_string(b.blocked);
        out += ",\"degraded\":";
        out += std::to_string(b.degraded);
        out += '}';
    }
    out += "]}";
    return out;
}

}  // namespace smart_ratelimit
