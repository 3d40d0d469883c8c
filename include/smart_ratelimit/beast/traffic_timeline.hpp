// smart_ratelimit/beast/traffic_timeline.hpp
// Allowed and blocked requests over time, in equal buckets across the analytics
// window: the data behind the dashboard's chart. `get_traffic_timeline` works over
// any event range; the SOCI event store has a SQL version in beast/soci_source.hpp.
// Standard headers only.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <ranges>
#include <vector>

#include <smart_ratelimit/analytics/event_range.hpp>
#include <smart_ratelimit/error.hpp>
#include <smart_ratelimit/event.hpp>

namespace smart_ratelimit {

/// One bucket of the timeline: events with `start <= timestamp < start + width`.
struct traffic_bucket {
    event_time start{};
    std::int64_t allowed = 0;
    std::int64_t blocked = 0;

    friend bool operator==(const traffic_bucket&, const traffic_bucket&) = default;
};

/// The bucket layout of a window: `buckets` equal intervals from
/// `window_start(now, days)` to `now`. The last bucket also takes events stamped
/// after `now` (clock skew), so the buckets add up to `get_traffic_summary`.
struct timeline_layout {
    event_time start{};
    std::chrono::microseconds width{};
    std::size_t buckets = 0;

    /// Throws config_error when days < 1 or buckets is 0 or over 10000.
    static timeline_layout make(event_time now, int days, std::size_t buckets) {
        if (days < 1) throw config_error("get_traffic_timeline: days must be at least 1");
        if (buckets == 0 || buckets > 10000)
            throw config_error("get_traffic_timeline: buckets must be between 1 and 10000");
        timeline_layout l;
        l.start = window_start(now, days);
        const auto span = now - l.start;
        l.width = std::chrono::microseconds{
            std::max<std::int64_t>(1, (span.count() + static_cast<std::int64_t>(buckets) - 1) /
                                          static_cast<std::int64_t>(buckets))};
        l.buckets = buckets;
        return l;
    }

    /// The bucket index of a timestamp inside the window (`t >= start`).
    std::size_t index_of(event_time t) const noexcept {
        const auto i = static_cast<std::size_t>((t - start) / width);
        return std::min(i, buckets - 1);
    }

    /// Empty buckets with their start times filled in.
    std::vector<traffic_bucket> empty() const {
        std::vector<traffic_bucket> out(buckets);
        for (std::size_t i = 0; i < buckets; ++i)
            out[i].start = start + width * static_cast<std::int64_t>(i);
        return out;
    }
};

/// The bucket count the dashboard uses for a window: hourly up to 3 days, then daily.
constexpr std::size_t default_timeline_buckets(int days) noexcept {
    if (days <= 3) return static_cast<std::size_t>(days < 1 ? 24 : days * 24);
    return static_cast<std::size_t>(days);
}

/// Allowed and blocked counts of `events` in the `days`-day window ending at `now`,
/// in `buckets` equal intervals, oldest first. Events older than the window are
/// skipped. Throws config_error for days < 1 or a bucket count outside 1..10000.
template <event_range R>
std::vector<traffic_bucket> get_traffic_timeline(R&& events, int days = 7,
                                                 std::size_t buckets = 0,
                                                 event_time now = event_clock_now()) {
    const auto layout = timeline_layout::make(now, days, buckets == 0 ? default_timeline_buckets(days) : buckets);
    auto out = layout.empty();
    using traits = event_traits<range_event_t<R>>;
    for (auto&& e : events) {
        const event_time t = traits::timestamp(e);
        if (t < layout.start) continue;
        auto& b = out[layout.index_of(t)];
        if (traits::allowed(e)) ++b.allowed;
        else ++b.blocked;
    }
    return out;
}

}  // namespace smart_ratelimit
