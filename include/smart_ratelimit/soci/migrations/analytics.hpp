// smart_ratelimit/soci/migrations/analytics.hpp
// The rollups' migration set (component "analytics"), as data: hourly counters
// and per-key spans kept by triggers (and, on SQLite, by the event writer's batch
// hooks), each step back-filled from ratelimit_event. The SQL is assembled from
// named fragments (detail::rollup_sql); what it spells is what shipped, byte for byte.
#pragma once

#include <cstddef>
#include <string_view>

#include <smart_ratelimit/soci/detail/sql_text.hpp>
#include <smart_ratelimit/soci/migration.hpp>
#include <smart_ratelimit/soci/migrations/events.hpp>

namespace smart_ratelimit::soci {

/// The schema component name of the rollups in ratelimit_schema_version.
inline constexpr std::string_view analytics_component = "analytics";

namespace detail::rollup_sql {

/// floor(column / unit) for integer microseconds on SQLite, exact before 1970 too.
template <std::size_t C, std::size_t U>
constexpr auto sqlite_floor(const sql_text<C>& column, const sql_text<U>& unit) {
    return "(" + column + " / " + unit + " - (" + column + " % " + unit + " < 0))";
}
/// floor(epoch seconds of `timestamp` / seconds) on PostgreSQL.
template <std::size_t S>
constexpr auto pg_floor(const sql_text<S>& seconds) {
    return "floor(extract(epoch from timestamp) / " + seconds + ")::bigint";
}

// The hour and UTC day of a timestamp, since the epoch.
inline constexpr sql_text hour_unit = "3600000000";
inline constexpr sql_text day_unit = "86400000000";
inline constexpr auto hour = sqlite_floor(sql_text("timestamp"), hour_unit);
inline constexpr auto new_hour = sqlite_floor(sql_text("NEW.timestamp"), hour_unit);
inline constexpr auto old_hour = sqlite_floor(sql_text("OLD.timestamp"), hour_unit);
inline constexpr auto day = sqlite_floor(sql_text("timestamp"), day_unit);
inline constexpr auto new_day = sqlite_floor(sql_text("NEW.timestamp"), day_unit);
inline constexpr auto old_day = sqlite_floor(sql_text("OLD.timestamp"), day_unit);
inline constexpr auto pg_hour = pg_floor(sql_text("3600"));
inline constexpr auto pg_day = pg_floor(sql_text("86400"));

/// The key span levels 0..4 as a SQLite table with column l.
inline constexpr sql_text levels = "(SELECT column1 AS l FROM (VALUES (0), (1), (2), (3), (4)))";

// ---- version 1: hour, rule, key-hour and key-day counters ------------------------

/// The four tables; `keyed` ends the keyed ones (" WITHOUT ROWID" on SQLite).
template <std::size_t K>
constexpr auto v1_tables(const sql_text<K>& keyed) {
    return "CREATE TABLE IF NOT EXISTS ratelimit_rollup_hour ("
           " hour BIGINT PRIMARY KEY, total BIGINT NOT NULL, blocked BIGINT NOT NULL);"
           "CREATE TABLE IF NOT EXISTS ratelimit_rollup_key_hour ("
           " hour BIGINT NOT NULL, key VARCHAR(255) NOT NULL, blocked BIGINT NOT NULL,"
           " PRIMARY KEY (hour, key))" +
           keyed +
           ";"
           "CREATE TABLE IF NOT EXISTS ratelimit_rollup_rule_hour ("
           " hour BIGINT NOT NULL, rule_name VARCHAR(100) NOT NULL, hits BIGINT NOT NULL,"
           " blocked BIGINT NOT NULL, PRIMARY KEY (hour, rule_name))" +
           keyed +
           ";"
           "CREATE TABLE IF NOT EXISTS ratelimit_rollup_key_day ("
           " day BIGINT NOT NULL, key VARCHAR(255) NOT NULL, blocked BIGINT NOT NULL,"
           " PRIMARY KEY (day, key))" +
           keyed + ";";
}

// SQLite, per row: count NEW in, count OLD out (dropping counters that reach zero).
inline constexpr auto v1_add =
    " INSERT INTO ratelimit_rollup_hour (hour, total, blocked)"
    "  VALUES (" +
    new_hour +
    ", 1, NEW.allowed = 0)"
    "  ON CONFLICT (hour) DO UPDATE SET total = total + 1, blocked = blocked + excluded.blocked;"
    " INSERT INTO ratelimit_rollup_key_hour (hour, key, blocked)"
    "  SELECT " +
    new_hour +
    ", NEW.key, 1"
    "  WHERE NEW.allowed = 0"
    "  ON CONFLICT (hour, key) DO UPDATE SET blocked = blocked + 1;"
    " INSERT INTO ratelimit_rollup_key_day (day, key, blocked)"
    "  SELECT " +
    new_day +
    ", NEW.key, 1"
    "  WHERE NEW.allowed = 0"
    "  ON CONFLICT (day, key) DO UPDATE SET blocked = blocked + 1;"
    " INSERT INTO ratelimit_rollup_rule_hour (hour, rule_name, hits, blocked)"
    "  SELECT " +
    new_hour +
    ", NEW.rule_name, 1,"
    "  NEW.allowed = 0"
    "  WHERE NEW.rule_name <> ''"
    "  ON CONFLICT (hour, rule_name) DO UPDATE SET hits = hits + 1,"
    "  blocked = blocked + excluded.blocked;";
inline constexpr auto v1_sub =
    " UPDATE ratelimit_rollup_hour SET total = total - 1, blocked = blocked - (OLD.allowed = 0)"
    "  WHERE hour = " +
    old_hour +
    ";"
    " DELETE FROM ratelimit_rollup_hour"
    "  WHERE hour = " +
    old_hour +
    " AND total <= 0;"
    " UPDATE ratelimit_rollup_key_hour SET blocked = blocked - 1 WHERE OLD.allowed = 0"
    "  AND hour = " +
    old_hour +
    " AND key = OLD.key;"
    " DELETE FROM ratelimit_rollup_key_hour"
    "  WHERE hour = " +
    old_hour +
    " AND key = OLD.key"
    "  AND blocked <= 0;"
    " UPDATE ratelimit_rollup_key_day SET blocked = blocked - 1 WHERE OLD.allowed = 0"
    "  AND day = " +
    old_day +
    " AND key = OLD.key;"
    " DELETE FROM ratelimit_rollup_key_day"
    "  WHERE day = " +
    old_day +
    " AND key = OLD.key"
    "  AND blocked <= 0;"
    " UPDATE ratelimit_rollup_rule_hour SET hits = hits - 1, blocked = blocked - (OLD.allowed = 0)"
    "  WHERE hour = " +
    old_hour +
    "  AND rule_name = OLD.rule_name;"
    " DELETE FROM ratelimit_rollup_rule_hour"
    "  WHERE hour = " +
    old_hour +
    "  AND rule_name = OLD.rule_name"
    "  AND hits <= 0;";

inline constexpr auto v1_sqlite =
    v1_tables(sql_text(" WITHOUT ROWID")) +
    "DELETE FROM ratelimit_rollup_hour;"
    "DELETE FROM ratelimit_rollup_key_hour;"
    "DELETE FROM ratelimit_rollup_rule_hour;"
    "DELETE FROM ratelimit_rollup_key_day;"
    "INSERT INTO ratelimit_rollup_key_day (day, key, blocked)"
    " SELECT " +
    day +
    ", key, COUNT(*)"
    " FROM ratelimit_event WHERE allowed = 0 GROUP BY 1, 2;"
    "INSERT INTO ratelimit_rollup_hour (hour, total, blocked)"
    " SELECT " +
    hour +
    ", COUNT(*),"
    " SUM(CASE WHEN allowed = 0 THEN 1 ELSE 0 END) FROM ratelimit_event GROUP BY 1;"
    "INSERT INTO ratelimit_rollup_key_hour (hour, key, blocked)"
    " SELECT " +
    hour +
    ", key, COUNT(*)"
    " FROM ratelimit_event WHERE allowed = 0 GROUP BY 1, 2;"
    "INSERT INTO ratelimit_rollup_rule_hour (hour, rule_name, hits, blocked)"
    " SELECT " +
    hour +
    ", rule_name, COUNT(*),"
    " SUM(CASE WHEN allowed = 0 THEN 1 ELSE 0 END) FROM ratelimit_event"
    " WHERE rule_name <> '' GROUP BY 1, 2;"
    "CREATE TRIGGER IF NOT EXISTS ratelimit_rollup_ai AFTER INSERT ON ratelimit_event BEGIN" +
    v1_add +
    " END;"
    "CREATE TRIGGER IF NOT EXISTS ratelimit_rollup_ad AFTER DELETE ON ratelimit_event BEGIN" +
    v1_sub +
    " END;"
    // An UPDATE is a delete of the old row and an insert of the new one.
    "CREATE TRIGGER IF NOT EXISTS ratelimit_rollup_au"
    " AFTER UPDATE OF timestamp, key, rule_name, allowed ON ratelimit_event BEGIN" +
    v1_sub + v1_add + " END";

inline constexpr auto v1_postgresql =
    v1_tables(sql_text("")) +
    "LOCK TABLE ratelimit_event IN SHARE ROW EXCLUSIVE MODE;"
    "TRUNCATE ratelimit_rollup_hour, ratelimit_rollup_key_hour, ratelimit_rollup_rule_hour,"
    " ratelimit_rollup_key_day;"
    "INSERT INTO ratelimit_rollup_key_day (day, key, blocked)"
    " SELECT " +
    pg_day +
    ", key, COUNT(*)"
    " FROM ratelimit_event WHERE NOT allowed GROUP BY 1, 2;"
    "INSERT INTO ratelimit_rollup_hour (hour, total, blocked)"
    " SELECT " +
    pg_hour +
    ", COUNT(*),"
    "  COUNT(*) FILTER (WHERE NOT allowed)"
    " FROM ratelimit_event GROUP BY 1;"
    "INSERT INTO ratelimit_rollup_key_hour (hour, key, blocked)"
    " SELECT " +
    pg_hour +
    ", key, COUNT(*)"
    " FROM ratelimit_event WHERE NOT allowed GROUP BY 1, 2;"
    "INSERT INTO ratelimit_rollup_rule_hour (hour, rule_name, hits, blocked)"
    " SELECT " +
    pg_hour +
    ", rule_name, COUNT(*),"
    " COUNT(*) FILTER (WHERE NOT allowed) FROM ratelimit_event WHERE rule_name <> '' GROUP BY 1, 2;"
    // Adds the transition table new_rows (grouped, in key order to avoid deadlocks).
    "CREATE OR REPLACE FUNCTION ratelimit_rollup_add() RETURNS trigger LANGUAGE plpgsql AS $f$"
    " BEGIN"
    " INSERT INTO ratelimit_rollup_hour AS r (hour, total, blocked)"
    "  SELECT " +
    pg_hour +
    ", COUNT(*),"
    "  COUNT(*) FILTER (WHERE NOT allowed)"
    "  FROM new_rows GROUP BY 1 ORDER BY 1"
    "  ON CONFLICT (hour) DO UPDATE SET total = r.total + EXCLUDED.total,"
    "  blocked = r.blocked + EXCLUDED.blocked;"
    " INSERT INTO ratelimit_rollup_key_hour AS r (hour, key, blocked)"
    "  SELECT " +
    pg_hour +
    ", key, COUNT(*)"
    "  FROM new_rows WHERE NOT allowed GROUP BY 1, 2 ORDER BY 1, 2"
    "  ON CONFLICT (hour, key) DO UPDATE SET blocked = r.blocked + EXCLUDED.blocked;"
    " INSERT INTO ratelimit_rollup_key_day AS r (day, key, blocked)"
    "  SELECT " +
    pg_day +
    ", key, COUNT(*)"
    "  FROM new_rows WHERE NOT allowed GROUP BY 1, 2 ORDER BY 1, 2"
    "  ON CONFLICT (day, key) DO UPDATE SET blocked = r.blocked + EXCLUDED.blocked;"
    " INSERT INTO ratelimit_rollup_rule_hour AS r (hour, rule_name, hits, blocked)"
    "  SELECT " +
    pg_hour +
    ", rule_name, COUNT(*),"
    "  COUNT(*) FILTER (WHERE NOT allowed)"
    "  FROM new_rows WHERE rule_name <> '' GROUP BY 1, 2 ORDER BY 1, 2"
    "  ON CONFLICT (hour, rule_name) DO UPDATE SET hits = r.hits + EXCLUDED.hits,"
    "  blocked = r.blocked + EXCLUDED.blocked;"
    " RETURN NULL;"
    " END $f$;"
    // Subtracts the transition table old_rows and drops counters that reach zero.
    "CREATE OR REPLACE FUNCTION ratelimit_rollup_sub() RETURNS trigger LANGUAGE plpgsql AS $f$"
    " BEGIN"
    " UPDATE ratelimit_rollup_hour r SET total = r.total - d.n, blocked = r.blocked - d.b"
    "  FROM (SELECT " +
    pg_hour +
    " AS h, COUNT(*) AS n,"
    "  COUNT(*) FILTER (WHERE NOT allowed) AS b FROM old_rows GROUP BY 1 ORDER BY 1) d"
    "  WHERE r.hour = d.h;"
    " DELETE FROM ratelimit_rollup_hour r"
    "  USING (SELECT DISTINCT " +
    pg_hour +
    " AS h FROM old_rows) d"
    "  WHERE r.hour = d.h AND r.total <= 0;"
    " UPDATE ratelimit_rollup_key_hour r SET blocked = r.blocked - d.n"
    "  FROM (SELECT " +
    pg_hour +
    " AS h, key, COUNT(*) AS n"
    "  FROM old_rows WHERE NOT allowed GROUP BY 1, 2 ORDER BY 1, 2) d"
    "  WHERE r.hour = d.h AND r.key = d.key;"
    " DELETE FROM ratelimit_rollup_key_hour r"
    "  USING (SELECT DISTINCT " +
    pg_hour +
    " AS h,"
    "  key FROM old_rows WHERE NOT allowed) d"
    "  WHERE r.hour = d.h AND r.key = d.key AND r.blocked <= 0;"
    " UPDATE ratelimit_rollup_key_day r SET blocked = r.blocked - d.n"
    "  FROM (SELECT " +
    pg_day +
    " AS dd, key, COUNT(*) AS n"
    "  FROM old_rows WHERE NOT allowed GROUP BY 1, 2 ORDER BY 1, 2) d"
    "  WHERE r.day = d.dd AND r.key = d.key;"
    " DELETE FROM ratelimit_rollup_key_day r"
    "  USING (SELECT DISTINCT " +
    pg_day +
    " AS dd,"
    "  key FROM old_rows WHERE NOT allowed) d"
    "  WHERE r.day = d.dd AND r.key = d.key AND r.blocked <= 0;"
    " UPDATE ratelimit_rollup_rule_hour r SET hits = r.hits - d.n, blocked = r.blocked - d.b"
    "  FROM (SELECT " +
    pg_hour +
    " AS h, rule_name, COUNT(*) AS n,"
    "  COUNT(*) FILTER (WHERE NOT allowed) AS b FROM old_rows WHERE rule_name <> ''"
    "  GROUP BY 1, 2 ORDER BY 1, 2) d"
    "  WHERE r.hour = d.h AND r.rule_name = d.rule_name;"
    " DELETE FROM ratelimit_rollup_rule_hour r"
    "  USING (SELECT DISTINCT " +
    pg_hour +
    " AS h,"
    "  rule_name FROM old_rows WHERE rule_name <> '') d"
    "  WHERE r.hour = d.h AND r.rule_name = d.rule_name AND r.hits <= 0;"
    " RETURN NULL;"
    " END $f$;"
    "CREATE OR REPLACE FUNCTION ratelimit_rollup_truncate() RETURNS trigger LANGUAGE plpgsql AS $f$"
    " BEGIN"
    " TRUNCATE ratelimit_rollup_hour, ratelimit_rollup_key_hour, ratelimit_rollup_rule_hour,"
    "  ratelimit_rollup_key_day;"
    " RETURN NULL;"
    " END $f$;"
    "CREATE OR REPLACE TRIGGER ratelimit_rollup_ai AFTER INSERT ON ratelimit_event"
    " REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION ratelimit_rollup_add();"
    "CREATE OR REPLACE TRIGGER ratelimit_rollup_ad AFTER DELETE ON ratelimit_event"
    " REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION ratelimit_rollup_sub();"
    "CREATE OR REPLACE TRIGGER ratelimit_rollup_au1 AFTER UPDATE ON ratelimit_event"
    " REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION ratelimit_rollup_sub();"
    "CREATE OR REPLACE TRIGGER ratelimit_rollup_au2 AFTER UPDATE ON ratelimit_event"
    " REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION ratelimit_rollup_add();"
    "CREATE OR REPLACE TRIGGER ratelimit_rollup_at AFTER TRUNCATE ON ratelimit_event"
    " FOR EACH STATEMENT EXECUTE FUNCTION ratelimit_rollup_truncate()";

// ---- version 2: per-key counters over aligned spans of 4^level hours --------------

/// Back-fills span levels 1..4 from the level below; `sum` adds up a group.
template <std::size_t S>
constexpr auto upper_levels(const sql_text<S>& sum) {
    constexpr sql_text insert =
        "INSERT INTO ratelimit_rollup_key_span (level, bucket, key_id, blocked) ";
    constexpr sql_text from = " FROM ratelimit_rollup_key_span WHERE level = ";
    return insert + " SELECT 1, bucket >> 2, key_id, " + sum + from + "0 GROUP BY 2, 3; " +  //
           insert + " SELECT 2, bucket >> 2, key_id, " + sum + from + "1 GROUP BY 2, 3; " +  //
           insert + " SELECT 3, bucket >> 2, key_id, " + sum + from + "2 GROUP BY 2, 3; " +  //
           insert + " SELECT 4, bucket >> 2, key_id, " + sum + from + "3 GROUP BY 2, 3; ";
}

// SQLite, per row (the insert trigger's body is also version 3's).
inline constexpr auto v2_add =
    " INSERT INTO ratelimit_rollup_hour (hour, total, blocked) "
    "  VALUES (" +
    new_hour +
    ", 1, NEW.allowed = 0) "
    "  ON CONFLICT (hour) DO UPDATE SET total = total + 1, blocked = blocked + excluded.blocked; "
    " INSERT INTO ratelimit_rollup_rule_hour (hour, rule_name, hits, blocked) "
    "  SELECT " +
    new_hour +
    ", NEW.rule_name, 1, NEW.allowed = 0 "
    "  WHERE NEW.rule_name <> '' "
    "  ON CONFLICT (hour, rule_name) DO UPDATE SET hits = hits + 1, blocked = blocked + "
    "excluded.blocked; "
    " INSERT INTO ratelimit_rollup_key (key) SELECT NEW.key "
    "  WHERE NEW.allowed = 0 AND NOT EXISTS (SELECT 1 FROM ratelimit_rollup_key WHERE key = "
    "NEW.key); "
    " INSERT INTO ratelimit_rollup_key_span (level, bucket, key_id, blocked) "
    "  SELECT v.l, " +
    new_hour + " >> (2 * v.l), k.id, 1 FROM ratelimit_rollup_key k, " + levels +
    " v "
    "  WHERE NEW.allowed = 0 AND k.key = NEW.key "
    "  ON CONFLICT (level, bucket, key_id) DO UPDATE SET blocked = blocked + 1; ";
inline constexpr auto v2_sub =
    " UPDATE ratelimit_rollup_hour SET total = total - 1, blocked = blocked - (OLD.allowed = 0) "
    "  WHERE hour = " +
    old_hour +
    "; "
    " DELETE FROM ratelimit_rollup_hour WHERE hour = " +
    old_hour +
    " AND total <= 0; "
    " UPDATE ratelimit_rollup_rule_hour SET hits = hits - 1, blocked = blocked - (OLD.allowed = 0) "
    "  WHERE hour = " +
    old_hour +
    " AND rule_name = OLD.rule_name; "
    " DELETE FROM ratelimit_rollup_rule_hour WHERE hour = " +
    old_hour +
    " AND rule_name = OLD.rule_name AND hits <= 0; "
    " UPDATE ratelimit_rollup_key_span SET blocked = blocked - 1 "
    "  FROM " +
    levels +
    " v, ratelimit_rollup_key k "
    "  WHERE OLD.allowed = 0 AND k.key = OLD.key AND ratelimit_rollup_key_span.key_id = k.id "
    "  AND ratelimit_rollup_key_span.level = v.l AND ratelimit_rollup_key_span.bucket = " +
    old_hour +
    " >> (2 * v.l); "
    " DELETE FROM ratelimit_rollup_key_span WHERE OLD.allowed = 0 AND blocked <= 0 "
    "  AND key_id = (SELECT id FROM ratelimit_rollup_key WHERE key = OLD.key) "
    "  AND (level, bucket) IN (SELECT l, " +
    old_hour + " >> (2 * l) FROM " + levels + "); ";

inline constexpr auto v2_sqlite =
    "DROP TRIGGER IF EXISTS ratelimit_rollup_ai; "
    "DROP TRIGGER IF EXISTS ratelimit_rollup_ad; "
    "DROP TRIGGER IF EXISTS ratelimit_rollup_au; "
    "DROP TABLE IF EXISTS ratelimit_rollup_key_hour; "
    "DROP TABLE IF EXISTS ratelimit_rollup_key_day; "
    "CREATE TABLE IF NOT EXISTS ratelimit_rollup_key ( "
    " id INTEGER PRIMARY KEY, key VARCHAR(255) NOT NULL UNIQUE); "
    "CREATE TABLE IF NOT EXISTS ratelimit_rollup_key_span ( "
    " level INTEGER NOT NULL, bucket BIGINT NOT NULL, key_id BIGINT NOT NULL, blocked BIGINT NOT "
    "NULL, "
    " PRIMARY KEY (level, bucket, key_id)) WITHOUT ROWID; "
    "CREATE INDEX IF NOT EXISTS ratelimit_rollup_key_span_top "
    " ON ratelimit_rollup_key_span (level, bucket, blocked DESC); "
    "DELETE FROM ratelimit_rollup_key_span; "
    "DELETE FROM ratelimit_rollup_key; "
    "INSERT INTO ratelimit_rollup_key (key) "
    " SELECT DISTINCT key FROM ratelimit_event WHERE allowed = 0 ORDER BY key; "
    "INSERT INTO ratelimit_rollup_key_span (level, bucket, key_id, blocked) "
    " SELECT 0, e.h, k.id, COUNT(*) FROM (SELECT " +
    hour +
    " AS h, "
    " key FROM ratelimit_event WHERE allowed = 0) e JOIN ratelimit_rollup_key k ON k.key = e.key "
    "GROUP BY 2, 3; " +
    upper_levels(sql_text("SUM(blocked)")) +
    "CREATE TRIGGER ratelimit_rollup_ai AFTER INSERT ON ratelimit_event BEGIN " + v2_add +
    " END; "
    "CREATE TRIGGER ratelimit_rollup_ad AFTER DELETE ON ratelimit_event BEGIN " +
    v2_sub +
    " END; "
    "CREATE TRIGGER ratelimit_rollup_au "
    " AFTER UPDATE OF timestamp, key, rule_name, allowed ON ratelimit_event BEGIN " +
    v2_sub + v2_add + " END";

/// PostgreSQL: the (level, bucket, key id) groups of the blocked rows of a
/// transition table, as a FROM source (aliases e, k, l; columns h, key).
template <std::size_t R>
constexpr auto pg_span_groups(const sql_text<R>& rows) {
    return "(SELECT " + pg_hour + " AS h, key FROM " + rows +
           " WHERE NOT allowed) e JOIN ratelimit_rollup_key k ON k.key = e.key"
           " CROSS JOIN generate_series(0, 4) AS l GROUP BY 1, 2, 3";
}
inline constexpr sql_text pg_span_columns = "SELECT l AS lv, e.h >> (2 * l) AS b, k.id AS key_id";

inline constexpr auto v2_postgresql =
    "CREATE TABLE IF NOT EXISTS ratelimit_rollup_key ( "
    " id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, key VARCHAR(255) NOT NULL UNIQUE); "
    "CREATE TABLE IF NOT EXISTS ratelimit_rollup_key_span ( "
    " level SMALLINT NOT NULL, bucket BIGINT NOT NULL, key_id BIGINT NOT NULL, blocked BIGINT NOT "
    "NULL, "
    " PRIMARY KEY (level, bucket, key_id) INCLUDE (blocked)); "
    "CREATE INDEX IF NOT EXISTS ratelimit_rollup_key_span_top "
    " ON ratelimit_rollup_key_span (level, bucket, blocked DESC, key_id); "
    "LOCK TABLE ratelimit_event IN SHARE ROW EXCLUSIVE MODE; "
    "TRUNCATE ratelimit_rollup_key_span, ratelimit_rollup_key RESTART IDENTITY; "
    "INSERT INTO ratelimit_rollup_key (key) "
    " SELECT DISTINCT key FROM ratelimit_event WHERE NOT allowed ORDER BY 1; "
    "INSERT INTO ratelimit_rollup_key_span (level, bucket, key_id, blocked) "
    " SELECT 0, e.h, k.id, COUNT(*) FROM (SELECT " +
    pg_hour +
    " AS h, key FROM ratelimit_event WHERE NOT allowed) e "
    " JOIN ratelimit_rollup_key k ON k.key = e.key GROUP BY 2, 3; " +
    upper_levels(sql_text("SUM(blocked)::bigint")) +
    "CREATE OR REPLACE FUNCTION ratelimit_rollup_add() RETURNS trigger LANGUAGE plpgsql AS $f$ "
    " BEGIN "
    " INSERT INTO ratelimit_rollup_hour AS r (hour, total, blocked) "
    "  SELECT " +
    pg_hour +
    ", COUNT(*), COUNT(*) FILTER (WHERE NOT allowed) "
    "  FROM new_rows GROUP BY 1 ORDER BY 1 "
    "  ON CONFLICT (hour) DO UPDATE SET total = r.total + EXCLUDED.total, blocked = r.blocked + "
    "EXCLUDED.blocked; "
    " INSERT INTO ratelimit_rollup_rule_hour AS r (hour, rule_name, hits, blocked) "
    "  SELECT " +
    pg_hour +
    ", rule_name, COUNT(*), COUNT(*) FILTER (WHERE NOT allowed) "
    "  FROM new_rows WHERE rule_name <> '' GROUP BY 1, 2 ORDER BY 1, 2 "
    "  ON CONFLICT (hour, rule_name) DO UPDATE SET hits = r.hits + EXCLUDED.hits, "
    "  blocked = r.blocked + EXCLUDED.blocked; "
    " INSERT INTO ratelimit_rollup_key (key) "
    "  SELECT DISTINCT n.key FROM new_rows n WHERE NOT n.allowed "
    "  AND NOT EXISTS (SELECT 1 FROM ratelimit_rollup_key k WHERE k.key = n.key) ORDER BY 1 "
    "  ON CONFLICT (key) DO NOTHING; "
    " INSERT INTO ratelimit_rollup_key_span AS r (level, bucket, key_id, blocked) "
    "  " +
    pg_span_columns + ", COUNT(*) AS n FROM " + pg_span_groups(sql_text("new_rows")) +
    " ORDER BY 1, 2, 3 "
    "  ON CONFLICT (level, bucket, key_id) DO UPDATE SET blocked = r.blocked + EXCLUDED.blocked; "
    " RETURN NULL; "
    " END $f$; "
    "CREATE OR REPLACE FUNCTION ratelimit_rollup_sub() RETURNS trigger LANGUAGE plpgsql AS $f$ "
    " BEGIN "
    " UPDATE ratelimit_rollup_hour r SET total = r.total - d.n, blocked = r.blocked - d.b "
    "  FROM (SELECT " +
    pg_hour +
    " AS h, COUNT(*) AS n, "
    "  COUNT(*) FILTER (WHERE NOT allowed) AS b FROM old_rows GROUP BY 1 ORDER BY 1) d "
    "  WHERE r.hour = d.h; "
    " DELETE FROM ratelimit_rollup_hour r "
    "  USING (SELECT DISTINCT " +
    pg_hour +
    " AS h FROM old_rows) d "
    "  WHERE r.hour = d.h AND r.total <= 0; "
    " UPDATE ratelimit_rollup_rule_hour r SET hits = r.hits - d.n, blocked = r.blocked - d.b "
    "  FROM (SELECT " +
    pg_hour +
    " AS h, rule_name, COUNT(*) AS n, "
    "  COUNT(*) FILTER (WHERE NOT allowed) AS b FROM old_rows WHERE rule_name <> '' "
    "  GROUP BY 1, 2 ORDER BY 1, 2) d "
    "  WHERE r.hour = d.h AND r.rule_name = d.rule_name; "
    " DELETE FROM ratelimit_rollup_rule_hour r "
    "  USING (SELECT DISTINCT " +
    pg_hour +
    " AS h, rule_name FROM old_rows WHERE rule_name <> '') d "
    "  WHERE r.hour = d.h AND r.rule_name = d.rule_name AND r.hits <= 0; "
    " UPDATE ratelimit_rollup_key_span r SET blocked = r.blocked - d.n "
    "  FROM (" +
    pg_span_columns + ", COUNT(*) AS n FROM " + pg_span_groups(sql_text("old_rows")) +
    " ORDER BY 1, 2, 3) d "
    "  WHERE r.level = d.lv AND r.bucket = d.b AND r.key_id = d.key_id; "
    " DELETE FROM ratelimit_rollup_key_span r "
    "  USING (" +
    pg_span_columns + " FROM " + pg_span_groups(sql_text("old_rows")) +
    ") d "
    "  WHERE r.level = d.lv AND r.bucket = d.b AND r.key_id = d.key_id AND r.blocked <= 0; "
    " RETURN NULL; "
    " END $f$; "
    "CREATE OR REPLACE FUNCTION ratelimit_rollup_truncate() RETURNS trigger LANGUAGE plpgsql AS "
    "$f$ "
    " BEGIN "
    " TRUNCATE ratelimit_rollup_hour, ratelimit_rollup_rule_hour, ratelimit_rollup_key_span, "
    "  ratelimit_rollup_key RESTART IDENTITY; "
    " RETURN NULL; "
    " END $f$; "
    "DROP TABLE IF EXISTS ratelimit_rollup_key_hour, ratelimit_rollup_key_day";

// ---- version 3 (SQLite): the event writer's batches by batch hooks ----------------

/// The rows of the writer's current batch (ratelimit_event_batch names the id range).
inline constexpr sql_text batch_ids =
    "id BETWEEN (SELECT first_id FROM ratelimit_event_batch) AND (SELECT last_id FROM "
    "ratelimit_event_batch)";

/// Registers `statement` (quotes inside doubled) as the analytics batch hook `step`.
template <std::size_t N, std::size_t S>
constexpr auto hook(const char (&step)[N], const sql_text<S>& statement) {
    return "INSERT INTO ratelimit_event_batch_hook (component, step, statement) VALUES "
           "('analytics', " +
           sql_text<N - 1>(step) + ", '" + statement + "')";
}

inline constexpr auto v3_sqlite =
    events_sql::batch_table + "; " + events_sql::batch_hook_table +
    "; "
    "DROP TRIGGER IF EXISTS ratelimit_rollup_ai; "
    "CREATE TRIGGER ratelimit_rollup_ai AFTER INSERT ON ratelimit_event "
    " WHEN NOT EXISTS (SELECT 1 FROM ratelimit_event_batch) BEGIN " +
    v2_add +
    " END; "
    "DELETE FROM ratelimit_event_batch_hook WHERE component = 'analytics'; " +
    hook("1", "INSERT INTO ratelimit_rollup_hour (hour, total, blocked) SELECT " + hour +
                  " AS h, COUNT(*), SUM(allowed = 0) FROM ratelimit_event WHERE " + batch_ids +
                  " GROUP BY h ORDER BY h ON CONFLICT (hour) DO UPDATE SET total = total + "
                  "excluded.total,"
                  " blocked = blocked + excluded.blocked") +
    "; " +
    hook("2", "INSERT INTO ratelimit_rollup_rule_hour (hour, rule_name, hits, blocked) SELECT " +
                  hour +
                  " AS h, rule_name, COUNT(*), SUM(allowed = 0) FROM ratelimit_event WHERE " +
                  batch_ids +
                  " AND rule_name <> '''' GROUP BY h, rule_name ORDER BY h, rule_name ON CONFLICT"
                  " (hour, rule_name) DO UPDATE SET hits = hits + excluded.hits,"
                  " blocked = blocked + excluded.blocked") +
    "; " +
    hook("3", "INSERT INTO ratelimit_rollup_key (key) SELECT key FROM ratelimit_event e WHERE " +
                  batch_ids +
                  " AND +allowed = 0 AND NOT EXISTS (SELECT 1 FROM ratelimit_rollup_key k WHERE "
                  "k.key = e.key)"
                  " GROUP BY key ORDER BY MIN(id)") +
    "; " +
    hook("4",
         "INSERT INTO ratelimit_rollup_key_span (level, bucket, key_id, blocked) SELECT v.l, e.h "
         ">> (2 * v.l),"
         " k.id, COUNT(*) FROM (SELECT " +
             hour + " AS h, key FROM ratelimit_event WHERE " + batch_ids +
             " AND +allowed = 0) e, ratelimit_rollup_key k, " + levels +
             " v WHERE k.key = e.key GROUP BY 1, 2, 3 ORDER BY 1, 2, 3 ON CONFLICT (level, bucket, "
             "key_id)"
             " DO UPDATE SET blocked = blocked + excluded.blocked");

}  // namespace detail::rollup_sql

/// The rollups' migration steps, applied by migrate() like every other set; they
/// need the event log's set applied first (list it before this one). Each step
/// creates what it adds and back-fills it from the rows already in ratelimit_event,
/// in the same transaction. A schema change is a NEW version appended to this list
/// (with its own back-fill); a version that has shipped is never edited, since a
/// database that recorded it would never run it again.
inline constexpr migration analytics_steps[] = {
    {1, "rollups by hour, rule, key and day kept by triggers, back-filled",
     detail::rollup_sql::v1_sqlite, detail::rollup_sql::v1_postgresql},
    {2,
     "per-key counters over aligned spans of 4^k hours (k = 0..4) on interned key ids,"
     " replacing the per-key hour and day tables; back-filled",
     detail::rollup_sql::v2_sqlite, detail::rollup_sql::v2_postgresql},
    // SQLite: the event writer updates the rollups once per batch (a grouped upsert per
    // table over the batch's id range, registered as batch hooks, events v2) and the
    // insert trigger skips the rows of such a batch; any other INSERT still fires it.
    // The hooks and the trigger body must agree: a test compares both paths. On
    // PostgreSQL the triggers already run once per COPY statement: nothing to do.
    {3,
     "SQLite: rollups of the event writer's batches by batch hooks, the insert trigger for other "
     "inserts",
     detail::rollup_sql::v3_sqlite, ""},
};

/// The rollups' migration set (component "analytics").
inline constexpr migration_set analytics_migrations{analytics_component, analytics_steps};
/// The latest rollup schema version this code knows.
inline constexpr int analytics_schema_version = latest_version(analytics_migrations);

}  // namespace smart_ratelimit::soci
