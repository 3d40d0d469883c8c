// smart_ratelimit/beast/soci_dashboard_source.hpp
// The dashboard's data source over the SOCI event store: every report runs in SQL
// (the store's analytics overloads), including the traffic timeline, which is
// grouped into buckets by the database with bound parameters only; its degraded
// series comes from `get_degraded_timeline`. Needs both the Beast and the SOCI
// adapter targets.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <smart_ratelimit/beast/dashboard_source.hpp>
#include <smart_ratelimit/beast/traffic_timeline.hpp>
#include <smart_ratelimit/soci/analytics.hpp>
#include <smart_ratelimit/soci/detail/outcome_sql.hpp>
#include <smart_ratelimit/soci/event_store.hpp>

namespace smart_ratelimit::soci {

/// The degraded events of each bucket of `layout` (`layout.buckets` counts, oldest
/// first), read on `sql`, a connection of `store`. A degraded row has `allowed`
/// true, so get_traffic_timeline moves these counts from `allowed` to `degraded`.
/// Counts the rows whose outcome is 'degraded' (NULL, in rows older than the
/// column, is never degraded) in one GROUP BY over the partial index of degraded
/// rows, placed like the blocked counts (`layout.index_of_unit`). All zeros on a
/// database without the outcome column. Throws storage_error when the database fails.
inline std::vector<std::int64_t> get_degraded_timeline(const event_store& store,
                                                       ::soci::session& sql,
                                                       const timeline_layout& layout) {
    std::vector<std::int64_t> out(layout.buckets, 0);
    if (out.empty() || !detail::outcome_column_ready(sql)) return out;
    const dialect d = store.sql_dialect();
    detail::analytics::bound_query q(d);
    const std::string width_us = q.integer(layout.width.count());
    const std::string since = q.time(layout.start);
    const std::string text = "SELECT " + time_column_micros(d) + " / " + width_us +
                             ", CAST(COUNT(*) AS BIGINT) FROM ratelimit_event WHERE " +
                             detail::degraded_condition(d, true) + " AND timestamp >= " + since +
                             " GROUP BY 1";
    long long unit = 0, n = 0;
    q.run(
        sql, text,
        [&](::soci::statement& st) {
            st.exchange(::soci::into(unit));
            st.exchange(::soci::into(n));
        },
        [&] { out[layout.index_of_unit(unit)] += n; });
    return out;
}

/// `get_traffic_timeline` computed by the database, with the same buckets and results
/// as the in-memory version on the same data. With the hourly rollups (migrated by
/// `smart-ratelimit migrate`) it reads one row per hour of the window plus the raw
/// rows of the window's first, partial hour; without them, one GROUP BY over the
/// timestamp index; the degraded series from get_degraded_timeline. Bound parameters
/// only; one connection of the store.
/// Throws config_error for days < 1 or a bad width, storage_error when the database fails.
inline std::vector<traffic_bucket> get_traffic_timeline(
    const event_store& store, int days = 7, std::chrono::hours width = std::chrono::hours{0},
    event_time now = event_clock_now()) {
    const auto layout =
        timeline_layout::make(now, days, width.count() == 0 ? default_timeline_width(days) : width);
    auto out = layout.empty();
    const dialect d = store.sql_dialect();
    const std::int64_t w = layout.width.count();
    auto sql = store.open_session();
    auto add = [&](std::size_t i, long long total, long long blocked) {
        out[i].allowed += total - blocked;
        out[i].blocked += blocked;
    };
    auto with_degraded = [&] {
        const auto degraded = get_degraded_timeline(store, *sql, layout);
        for (std::size_t i = 0; i < out.size() && i < degraded.size(); ++i) {
            out[i].degraded = degraded[i];
            out[i].allowed -= degraded[i];
        }
        return std::move(out);
    };
    long long unit = 0, total = 0, blocked = 0;
    if (detail::analytics::rollups_ready(*sql)) {
        constexpr std::int64_t hour_us = 3'600'000'000LL;
        const std::int64_t s = layout.start.time_since_epoch().count();
        const std::int64_t first_hour = s / hour_us + ((s % hour_us) > 0 ? 1 : 0);  // ceil
        const event_time first_hour_at{std::chrono::microseconds{first_hour * hour_us}};
        if (layout.start < first_hour_at) {  // the partial first hour: raw rows, all in bucket 0
            detail::analytics::bound_query q(d);
            const std::string text =
                "SELECT CAST(COUNT(*) AS BIGINT), CAST(COALESCE(SUM(" + q.blocked_int() +
                "), 0) AS BIGINT) FROM ratelimit_event WHERE timestamp >= " + q.time(layout.start) +
                " AND timestamp < " + q.time(first_hour_at);
            q.run(
                *sql, text,
                [&](::soci::statement& st) {
                    st.exchange(::soci::into(total));
                    st.exchange(::soci::into(blocked));
                },
                [&] { add(0, total, blocked); });
        }
        detail::analytics::bound_query q(d);
        long long hour = 0;
        const std::string text =
            "SELECT CAST(hour AS BIGINT), CAST(total AS BIGINT), CAST(blocked AS BIGINT)"
            " FROM ratelimit_rollup_hour WHERE hour >= " +
            q.integer(first_hour);
        q.run(
            *sql, text,
            [&](::soci::statement& st) {
                st.exchange(::soci::into(hour));
                st.exchange(::soci::into(total));
                st.exchange(::soci::into(blocked));
            },
            [&] {
                const event_time at{
                    std::chrono::microseconds{static_cast<std::int64_t>(hour) * hour_us}};
                add(layout.index_of(at), total, blocked);
            });
        return with_degraded();
    }
    detail::analytics::bound_query q(d);
    const std::string width_us = q.integer(w);
    const std::string since = q.time(layout.start);
    const std::string text = "SELECT " + time_column_micros(d) + " / " + width_us +
                             ", CAST(COUNT(*) AS BIGINT), CAST(SUM(" + q.blocked_int() +
                             ") AS BIGINT) FROM ratelimit_event WHERE timestamp >= " + since +
                             " GROUP BY 1";
    q.run(
        *sql, text,
        [&](::soci::statement& st) {
            st.exchange(::soci::into(unit));
            st.exchange(::soci::into(total));
            st.exchange(::soci::into(blocked));
        },
        [&] { add(layout.index_of_unit(unit), total, blocked); });
    return with_degraded();
}

}  // namespace smart_ratelimit::soci

namespace smart_ratelimit::beast {

/// The dashboard data source of a SOCI event store: the reports run in SQL, on a
/// connection of their own per call (so they may run on several worker threads).
/// The store must outlive the source.
/// Thread safety: safe to call concurrently (see event_store).
class soci_event_store_source {
public:
    explicit soci_event_store_source(const smart_ratelimit::soci::event_store& store) noexcept
        : store_(&store) {}

    traffic_summary summary(int days, event_time now) const {
        return smart_ratelimit::soci::get_traffic_summary(*store_, days, now);
    }
    std::vector<offender> top_offenders(int days, int limit, event_time now) const {
        return smart_ratelimit::soci::get_top_offenders(*store_, days, limit, now);
    }
    std::vector<rule_hits> rule_hit_counts(int days, int limit, event_time now) const {
        return smart_ratelimit::soci::get_rule_hit_counts(*store_, days, limit, now);
    }
    offender_detail drill_down(std::string_view key, int days, int recent, event_time now) const {
        return smart_ratelimit::soci::get_offender_detail(*store_, key, days, recent, now);
    }
    std::vector<traffic_bucket> timeline(int days, std::chrono::hours width, event_time now) const {
        return smart_ratelimit::soci::get_traffic_timeline(*store_, days, width, now);
    }

    const smart_ratelimit::soci::event_store& store() const noexcept { return *store_; }

private:
    const smart_ratelimit::soci::event_store* store_;
};

static_assert(dashboard_data_source<soci_event_store_source>);

}  // namespace smart_ratelimit::beast
