// smart_ratelimit/beast/dashboard_source.hpp
// Where the dashboard reads its numbers: the `dashboard_data_source` concept and
// `event_range_source`, which runs the in-memory analytics over any event range a
// callable returns (a ring buffer snapshot, a vector). The SOCI event store's
// source, which pushes the work into SQL, is in beast/soci_dashboard_source.hpp.
#pragma once

#include <chrono>
#include <concepts>
#include <cstddef>
#include <string_view>
#include <utility>
#include <vector>

#include <smart_ratelimit/analytics/functions.hpp>
#include <smart_ratelimit/analytics/results.hpp>
#include <smart_ratelimit/beast/traffic_timeline.hpp>

namespace smart_ratelimit::beast {

/// dashboard_data_source: the reports behind the dashboard, with the semantics of the
/// in-memory analytics functions of the same names.
///
/// | expression                                  | type                           |
/// |---------------------------------------------|--------------------------------|
/// | `s.summary(days, now)`                      | `traffic_summary`              |
/// | `s.top_offenders(days, limit, now)`         | `std::vector<offender>`        |
/// | `s.rule_hit_counts(days, limit, now)`       | `std::vector<rule_hits>`       |
/// | `s.drill_down(key, days, recent, now)`      | `offender_detail`              |
/// | `s.timeline(days, width, now)`              | `std::vector<traffic_bucket>`  |
///
/// `s` is a `const S&`, `days`, `limit` and `recent` are `int`, `width` a
/// `std::chrono::hours` (see timeline_layout), `key` a `std::string_view`, `now` an
/// `event_time`. Each timeline bucket counts allowed, blocked and degraded events
/// apart, as traffic_summary does (a degraded event is neither allowed nor blocked),
/// so the buckets add up to `s.summary(days, now)`. The calls may
/// block (SQL): the dashboard makes them off the I/O thread when asked to. They may
/// throw; the dashboard answers 503 without details.
/// Thread safety: called concurrently from the dashboard's worker threads.
template <class S>
concept dashboard_data_source = requires(const S& s, int n, std::chrono::hours width,
                                         std::string_view key, event_time now) {
    { s.summary(n, now) } -> std::same_as<traffic_summary>;
    { s.top_offenders(n, n, now) } -> std::same_as<std::vector<offender>>;
    { s.rule_hit_counts(n, n, now) } -> std::same_as<std::vector<rule_hits>>;
    { s.drill_down(key, n, n, now) } -> std::same_as<offender_detail>;
    { s.timeline(n, width, now) } -> std::same_as<std::vector<traffic_bucket>>;
};

/// A data source over the event range returned by a callable, e.g.
/// `event_range_source{[&sink] { return sink.snapshot(); }}` for a ring buffer.
/// Each report calls `get()` once and runs the in-memory analytics on the result;
/// degraded counts come from each event's outcome (`outcome_of`).
/// Thread safety: as the callable (a ring buffer's `snapshot()` is safe).
template <class Get>
class event_range_source {
public:
    explicit event_range_source(Get get) : get_(std::move(get)) {}

    traffic_summary summary(int days, event_time now) const {
        return get_traffic_summary(get_(), days, now);
    }
    std::vector<offender> top_offenders(int days, int limit, event_time now) const {
        return get_top_offenders(get_(), days, limit, now);
    }
    std::vector<rule_hits> rule_hit_counts(int days, int limit, event_time now) const {
        return get_rule_hit_counts(get_(), days, limit, now);
    }
    offender_detail drill_down(std::string_view key, int days, int recent, event_time now) const {
        return get_offender_detail(get_(), key, days, recent, now);
    }
    std::vector<traffic_bucket> timeline(int days, std::chrono::hours width, event_time now) const {
        return get_traffic_timeline(get_(), days, width, now);
    }

    const Get& getter() const noexcept { return get_; }

private:
    Get get_;
};

}  // namespace smart_ratelimit::beast
