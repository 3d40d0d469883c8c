// smart_ratelimit/beast/soci_dashboard_source.hpp
// The dashboard's data source over the SOCI event store: every report runs in SQL
// (the store's analytics overloads), including the traffic timeline, which is
// grouped into buckets by the database with bound parameters only.
// Needs both the Beast and the SOCI adapter targets.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <smart_ratelimit/beast/dashboard_source.hpp>
#include <smart_ratelimit/beast/traffic_timeline.hpp>
#include <smart_ratelimit/soci/analytics.hpp>
#include <smart_ratelimit/soci/event_store.hpp>

namespace smart_ratelimit::soci {

/// `get_traffic_timeline` computed by the database: the events of the window are
/// counted per bucket with one GROUP BY over the timestamp index; same buckets and
/// results as the in-memory version on the same data. Opens one connection of the
/// store. Throws config_error for days < 1 or bad bucket counts, storage_error when
/// the database fails.
inline std::vector<traffic_bucket> get_traffic_timeline(const event_store& store, int days = 7,
                                                        std::size_t buckets = 0,
                                                        event_time now = event_clock_now()) {
    const auto layout =
        timeline_layout::make(now, days, buckets == 0 ? default_timeline_buckets(days) : buckets);
    auto out = layout.empty();
    const dialect d = store.sql_dialect();
    analytics_detail::bound_query q(d);
    const std::string start_us = q.integer(layout.start.time_since_epoch().count());
    const std::string width_us = q.integer(layout.width.count());
    const std::string since = q.time(layout.start);
    const std::string text = "SELECT (" + time_column_micros(d) + " - " + start_us + ") / " + width_us +
                             " AS bucket, CAST(COUNT(*) AS BIGINT), CAST(SUM(" + q.blocked_int() +
                             ") AS BIGINT) FROM ratelimit_event WHERE timestamp >= " + since +
                             " GROUP BY 1";
    auto sql = store.open_session();
    long long bucket = 0, total = 0, blocked = 0;
    q.run(
        *sql, text,
        [&](::soci::statement& st) {
            st.exchange(::soci::into(bucket));
            st.exchange(::soci::into(total));
            st.exchange(::soci::into(blocked));
        },
        [&] {
            const std::size_t i =
                bucket < 0 ? 0 : std::min(static_cast<std::size_t>(bucket), layout.buckets - 1);
            out[i].allowed += total - blocked;
            out[i].blocked += blocked;
        });
    return out;
}

}  // namespace smart_ratelimit::soci

namespace smart_ratelimit::beast {

/// The dashboard data source of a SOCI event store: the reports run in SQL, on a
/// connection of their own per call (so they may run on several worker threads).
/// The store must outlive the source.
/// Thread safety: safe to call concurrently (see event_store).
class soci_event_store_source {
public:
    explicit soci_event_store_source(const smart_ratelimit::soci::event_store& store) noexcept : store_(&store) {}

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
    std::vector<traffic_bucket> timeline(int days, std::size_t buckets, event_time now) const {
        return smart_ratelimit::soci::get_traffic_timeline(*store_, days, buckets, now);
    }

    const smart_ratelimit::soci::event_store& store() const noexcept { return *store_; }

private:
    const smart_ratelimit::soci::event_store* store_;
};

static_assert(dashboard_data_source<soci_event_store_source>);

}  // namespace smart_ratelimit::beast
