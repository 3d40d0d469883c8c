// smart_ratelimit/soci/rollups.hpp
// The rollups behind the SQL analytics: hourly and per-key counters kept by
// triggers, which make the dashboard's queries independent of the table size.
// migrate_analytics() applies their migration set (soci/migrations/analytics.hpp);
// rollups_ready() tells whether a database has them.
#pragma once

#include <span>

#include <soci/soci.h>

#include <smart_ratelimit/soci/database_url.hpp>
#include <smart_ratelimit/soci/event_store.hpp>
#include <smart_ratelimit/soci/migrations/analytics.hpp>
#include <smart_ratelimit/soci/schema.hpp>

namespace smart_ratelimit::soci {

// ---- the rollup schema ------------------------------------------------------------
//
// Counters, `hour` = floor(timestamp / 1 h) since the epoch:
//   ratelimit_rollup_hour       (hour, total, blocked)               every event
//   ratelimit_rollup_rule_hour  (hour, rule_name, hits, blocked)     non-empty rule_name
//   ratelimit_rollup_key        (id, key)                            keys with blocked events
//   ratelimit_rollup_key_span   (level, bucket, key_id, blocked)     blocked events per key
//                               over aligned spans of 4^level hours, level 0..4 (1 h .. 10.7 days)
// kept exact by triggers on ratelimit_event for INSERT, UPDATE and DELETE (and
// TRUNCATE on PostgreSQL): per row on SQLite, per statement with transition tables
// on PostgreSQL (one grouped upsert per COPY batch). A query for a window combines
// raw rows for the partial hours at its edges with whole hours from the rollups;
// for the per-key counts the whole hours split into the fewest aligned spans (at
// most 6 per level below the top), so the window stays exact to the microsecond. Top-N reads the
// largest counters of each span first (threshold algorithm) and stops as soon as no
// unread key can reach the N-th count: see sql_analytics::top_offenders_at.

/// The schema component name of the rollups in ratelimit_schema_version.

/// Convenience: migrate() with analytics_migrations alone. Returns whether a step
/// ran (false when already up to date); throws storage_error as migrate() does.
inline bool migrate_analytics(::soci::session& sql, dialect d) {
    return !migrate(sql, d, std::span(&analytics_migrations, 1)).empty();
}

/// The rollup migration on the store's database (its own connection).
inline bool migrate_analytics(const event_store& store) {
    auto sql = store.open_session();
    return migrate_analytics(*sql, store.sql_dialect());
}

namespace detail::analytics {

/// Whether the database has the rollups at the version this code knows.
inline bool rollups_ready(::soci::session& sql) {
    return schema_version(sql, analytics_component) >= analytics_schema_version;
}

}  // namespace detail::analytics

}  // namespace smart_ratelimit::soci
