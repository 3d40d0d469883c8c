// smart_ratelimit/soci/analytics.hpp
// The analytics pushed down into SQL for the SOCI event store, on SQLite and
// PostgreSQL: the same names and results as the in-memory functions, computed by
// the database. This header holds those functions on an event_store and includes
// sql_analytics (soci/sql_analytics.hpp) and the rollups (soci/rollups.hpp).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <smart_ratelimit/analytics/csv.hpp>
#include <smart_ratelimit/analytics/event_range.hpp>
#include <smart_ratelimit/analytics/results.hpp>
#include <smart_ratelimit/soci/event_store.hpp>
#include <smart_ratelimit/soci/migrations/analytics.hpp>
#include <smart_ratelimit/soci/rollups.hpp>
#include <smart_ratelimit/soci/sql_analytics.hpp>

namespace smart_ratelimit::soci {

// ---- the analytics functions on the event store ------------------------------------
// Each opens one connection of the store for the call (see event_store::open_session);
// use sql_analytics directly to run several on one session. Throws storage_error
// when the database fails, std::invalid_argument for a negative limit/recent.

inline traffic_summary get_traffic_summary(const event_store& store, int days = 1,
                                           event_time now = event_clock_now()) {
    auto sql = store.open_session();
    return sql_analytics{*sql, store.sql_dialect()}.traffic_summary_at(days, now);
}

inline std::vector<offender> get_top_offenders(const event_store& store, int days = 7,
                                               int limit = 100,
                                               event_time now = event_clock_now()) {
    auto sql = store.open_session();
    return sql_analytics{*sql, store.sql_dialect()}.top_offenders_at(days, limit, now);
}

inline std::vector<rule_hits> get_rule_hit_counts(const event_store& store, int days = 7,
                                                  int limit = 50,
                                                  event_time now = event_clock_now()) {
    auto sql = store.open_session();
    return sql_analytics{*sql, store.sql_dialect()}.rule_hit_counts_at(days, limit, now);
}

inline std::string offenders_csv(const event_store& store, int days = 7, int limit = 1000,
                                 event_time now = event_clock_now()) {
    return format_offenders_csv(get_top_offenders(store, days, limit, now));
}

inline offender_detail get_offender_detail(const event_store& store, std::string_view key,
                                           int days = 7, int recent = 50,
                                           event_time now = event_clock_now()) {
    auto sql = store.open_session();
    return sql_analytics{*sql, store.sql_dialect()}.offender_detail_at(key, days, recent, now);
}

inline std::vector<offender> find_alertable_offenders(const event_store& store,
                                                      std::int64_t threshold, int days = 1,
                                                      int limit = 100,
                                                      event_time now = event_clock_now()) {
    auto top = get_top_offenders(store, days, limit, now);
    std::erase_if(top, [&](const offender& o) { return o.blocked_count < threshold; });
    return top;
}

}  // namespace smart_ratelimit::soci
