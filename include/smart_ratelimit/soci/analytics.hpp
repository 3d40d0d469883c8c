// smart_ratelimit/soci/analytics.hpp
// The analytics of SPEC 7 pushed down into SQL for the SOCI event store, on
// SQLite and PostgreSQL: the same names and results as the in-memory functions,
// computed by the database with bound parameters only, never reading the table
// into memory. Also the rollup schema (hourly counters kept by triggers) that
// makes the dashboard's queries independent of the table size.
#pragma once

#include <algorithm>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <tuple>
#include <unordered_map>
#include <utility>
#include <vector>

#include <soci/soci.h>

#include <smart_ratelimit/analytics/csv.hpp>
#include <smart_ratelimit/analytics/event_range.hpp>
#include <smart_ratelimit/analytics/results.hpp>
#include <smart_ratelimit/error.hpp>
#include <smart_ratelimit/soci/event_store.hpp>
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
inline constexpr std::string_view analytics_component = "analytics";

/// The rollups' migration steps, applied by migrate() like every other set; they
/// need the event log's set applied first (list it before this one). Each step
/// creates what it adds and back-fills it from the rows already in ratelimit_event,
/// in the same transaction. A schema change is a NEW version appended to this list
/// (with its own back-fill); a version that has shipped is never edited, since a
/// database that recorded it would never run it again.
/// Hour / UTC day of a timestamp since the epoch (floor division, exact before 1970
/// too): SQLite `(t / 3600000000 - (t % 3600000000 < 0))` on microseconds,
/// PostgreSQL `floor(extract(epoch from t) / 3600)::bigint`; 86400 for days.
inline constexpr migration analytics_steps[] = {
    {1, "rollups by hour, rule, key and day kept by triggers, back-filled",
     "CREATE TABLE IF NOT EXISTS ratelimit_rollup_hour ("
     " hour BIGINT PRIMARY KEY, total BIGINT NOT NULL, blocked BIGINT NOT NULL);"
     "CREATE TABLE IF NOT EXISTS ratelimit_rollup_key_hour ("
     " hour BIGINT NOT NULL, key VARCHAR(255) NOT NULL, blocked BIGINT NOT NULL,"
     " PRIMARY KEY (hour, key)) WITHOUT ROWID;"
     "CREATE TABLE IF NOT EXISTS ratelimit_rollup_rule_hour ("
     " hour BIGINT NOT NULL, rule_name VARCHAR(100) NOT NULL, hits BIGINT NOT NULL,"
     " blocked BIGINT NOT NULL, PRIMARY KEY (hour, rule_name)) WITHOUT ROWID;"
     "CREATE TABLE IF NOT EXISTS ratelimit_rollup_key_day ("
     " day BIGINT NOT NULL, key VARCHAR(255) NOT NULL, blocked BIGINT NOT NULL,"
     " PRIMARY KEY (day, key)) WITHOUT ROWID;"
     "DELETE FROM ratelimit_rollup_hour;"
     "DELETE FROM ratelimit_rollup_key_hour;"
     "DELETE FROM ratelimit_rollup_rule_hour;"
     "DELETE FROM ratelimit_rollup_key_day;"
     "INSERT INTO ratelimit_rollup_key_day (day, key, blocked)"
     " SELECT (timestamp / 86400000000 - (timestamp % 86400000000 < 0)), key, COUNT(*)"
     " FROM ratelimit_event WHERE allowed = 0 GROUP BY 1, 2;"
     "INSERT INTO ratelimit_rollup_hour (hour, total, blocked)"
     " SELECT (timestamp / 3600000000 - (timestamp % 3600000000 < 0)), COUNT(*),"
     " SUM(CASE WHEN allowed = 0 THEN 1 ELSE 0 END) FROM ratelimit_event GROUP BY 1;"
     "INSERT INTO ratelimit_rollup_key_hour (hour, key, blocked)"
     " SELECT (timestamp / 3600000000 - (timestamp % 3600000000 < 0)), key, COUNT(*)"
     " FROM ratelimit_event WHERE allowed = 0 GROUP BY 1, 2;"
     "INSERT INTO ratelimit_rollup_rule_hour (hour, rule_name, hits, blocked)"
     " SELECT (timestamp / 3600000000 - (timestamp % 3600000000 < 0)), rule_name, COUNT(*),"
     " SUM(CASE WHEN allowed = 0 THEN 1 ELSE 0 END) FROM ratelimit_event"
     " WHERE rule_name <> '' GROUP BY 1, 2;"
     "CREATE TRIGGER IF NOT EXISTS ratelimit_rollup_ai AFTER INSERT ON ratelimit_event BEGIN"
     " INSERT INTO ratelimit_rollup_hour (hour, total, blocked)"
     "  VALUES ((NEW.timestamp / 3600000000 - (NEW.timestamp % 3600000000 < 0)), 1, NEW.allowed = 0)"
     "  ON CONFLICT (hour) DO UPDATE SET total = total + 1, blocked = blocked + excluded.blocked;"
     " INSERT INTO ratelimit_rollup_key_hour (hour, key, blocked)"
     "  SELECT (NEW.timestamp / 3600000000 - (NEW.timestamp % 3600000000 < 0)), NEW.key, 1"
     "  WHERE NEW.allowed = 0"
     "  ON CONFLICT (hour, key) DO UPDATE SET blocked = blocked + 1;"
     " INSERT INTO ratelimit_rollup_key_day (day, key, blocked)"
     "  SELECT (NEW.timestamp / 86400000000 - (NEW.timestamp % 86400000000 < 0)), NEW.key, 1"
     "  WHERE NEW.allowed = 0"
     "  ON CONFLICT (day, key) DO UPDATE SET blocked = blocked + 1;"
     " INSERT INTO ratelimit_rollup_rule_hour (hour, rule_name, hits, blocked)"
     "  SELECT (NEW.timestamp / 3600000000 - (NEW.timestamp % 3600000000 < 0)), NEW.rule_name, 1,"
     "  NEW.allowed = 0"
     "  WHERE NEW.rule_name <> ''"
     "  ON CONFLICT (hour, rule_name) DO UPDATE SET hits = hits + 1,"
     "  blocked = blocked + excluded.blocked;"
     " END;"
     "CREATE TRIGGER IF NOT EXISTS ratelimit_rollup_ad AFTER DELETE ON ratelimit_event BEGIN"
     " UPDATE ratelimit_rollup_hour SET total = total - 1, blocked = blocked - (OLD.allowed = 0)"
     "  WHERE hour = (OLD.timestamp / 3600000000 - (OLD.timestamp % 3600000000 < 0));"
     " DELETE FROM ratelimit_rollup_hour"
     "  WHERE hour = (OLD.timestamp / 3600000000 - (OLD.timestamp % 3600000000 < 0)) AND total <= 0;"
     " UPDATE ratelimit_rollup_key_hour SET blocked = blocked - 1 WHERE OLD.allowed = 0"
     "  AND hour = (OLD.timestamp / 3600000000 - (OLD.timestamp % 3600000000 < 0)) AND key = OLD.key;"
     " DELETE FROM ratelimit_rollup_key_hour"
     "  WHERE hour = (OLD.timestamp / 3600000000 - (OLD.timestamp % 3600000000 < 0)) AND key = OLD.key"
     "  AND blocked <= 0;"
     " UPDATE ratelimit_rollup_key_day SET blocked = blocked - 1 WHERE OLD.allowed = 0"
     "  AND day = (OLD.timestamp / 86400000000 - (OLD.timestamp % 86400000000 < 0)) AND key = OLD.key;"
     " DELETE FROM ratelimit_rollup_key_day"
     "  WHERE day = (OLD.timestamp / 86400000000 - (OLD.timestamp % 86400000000 < 0)) AND key = OLD.key"
     "  AND blocked <= 0;"
     " UPDATE ratelimit_rollup_rule_hour SET hits = hits - 1, blocked = blocked - (OLD.allowed = 0)"
     "  WHERE hour = (OLD.timestamp / 3600000000 - (OLD.timestamp % 3600000000 < 0))"
     "  AND rule_name = OLD.rule_name;"
     " DELETE FROM ratelimit_rollup_rule_hour"
     "  WHERE hour = (OLD.timestamp / 3600000000 - (OLD.timestamp % 3600000000 < 0))"
     "  AND rule_name = OLD.rule_name"
     "  AND hits <= 0;"
     " END;"
     // An UPDATE is a delete of the old row and an insert of the new one.
     "CREATE TRIGGER IF NOT EXISTS ratelimit_rollup_au"
     " AFTER UPDATE OF timestamp, key, rule_name, allowed ON ratelimit_event BEGIN"
     " UPDATE ratelimit_rollup_hour SET total = total - 1, blocked = blocked - (OLD.allowed = 0)"
     "  WHERE hour = (OLD.timestamp / 3600000000 - (OLD.timestamp % 3600000000 < 0));"
     " DELETE FROM ratelimit_rollup_hour"
     "  WHERE hour = (OLD.timestamp / 3600000000 - (OLD.timestamp % 3600000000 < 0)) AND total <= 0;"
     " UPDATE ratelimit_rollup_key_hour SET blocked = blocked - 1 WHERE OLD.allowed = 0"
     "  AND hour = (OLD.timestamp / 3600000000 - (OLD.timestamp % 3600000000 < 0)) AND key = OLD.key;"
     " DELETE FROM ratelimit_rollup_key_hour"
     "  WHERE hour = (OLD.timestamp / 3600000000 - (OLD.timestamp % 3600000000 < 0)) AND key = OLD.key"
     "  AND blocked <= 0;"
     " UPDATE ratelimit_rollup_key_day SET blocked = blocked - 1 WHERE OLD.allowed = 0"
     "  AND day = (OLD.timestamp / 86400000000 - (OLD.timestamp % 86400000000 < 0)) AND key = OLD.key;"
     " DELETE FROM ratelimit_rollup_key_day"
     "  WHERE day = (OLD.timestamp / 86400000000 - (OLD.timestamp % 86400000000 < 0)) AND key = OLD.key"
     "  AND blocked <= 0;"
     " UPDATE ratelimit_rollup_rule_hour SET hits = hits - 1, blocked = blocked - (OLD.allowed = 0)"
     "  WHERE hour = (OLD.timestamp / 3600000000 - (OLD.timestamp % 3600000000 < 0))"
     "  AND rule_name = OLD.rule_name;"
     " DELETE FROM ratelimit_rollup_rule_hour"
     "  WHERE hour = (OLD.timestamp / 3600000000 - (OLD.timestamp % 3600000000 < 0))"
     "  AND rule_name = OLD.rule_name"
     "  AND hits <= 0;"
     " INSERT INTO ratelimit_rollup_hour (hour, total, blocked)"
     "  VALUES ((NEW.timestamp / 3600000000 - (NEW.timestamp % 3600000000 < 0)), 1, NEW.allowed = 0)"
     "  ON CONFLICT (hour) DO UPDATE SET total = total + 1, blocked = blocked + excluded.blocked;"
     " INSERT INTO ratelimit_rollup_key_hour (hour, key, blocked)"
     "  SELECT (NEW.timestamp / 3600000000 - (NEW.timestamp % 3600000000 < 0)), NEW.key, 1"
     "  WHERE NEW.allowed = 0"
     "  ON CONFLICT (hour, key) DO UPDATE SET blocked = blocked + 1;"
     " INSERT INTO ratelimit_rollup_key_day (day, key, blocked)"
     "  SELECT (NEW.timestamp / 86400000000 - (NEW.timestamp % 86400000000 < 0)), NEW.key, 1"
     "  WHERE NEW.allowed = 0"
     "  ON CONFLICT (day, key) DO UPDATE SET blocked = blocked + 1;"
     " INSERT INTO ratelimit_rollup_rule_hour (hour, rule_name, hits, blocked)"
     "  SELECT (NEW.timestamp / 3600000000 - (NEW.timestamp % 3600000000 < 0)), NEW.rule_name, 1,"
     "  NEW.allowed = 0"
     "  WHERE NEW.rule_name <> ''"
     "  ON CONFLICT (hour, rule_name) DO UPDATE SET hits = hits + 1,"
     "  blocked = blocked + excluded.blocked;"
     " END",
     "CREATE TABLE IF NOT EXISTS ratelimit_rollup_hour ("
     " hour BIGINT PRIMARY KEY, total BIGINT NOT NULL, blocked BIGINT NOT NULL);"
     "CREATE TABLE IF NOT EXISTS ratelimit_rollup_key_hour ("
     " hour BIGINT NOT NULL, key VARCHAR(255) NOT NULL, blocked BIGINT NOT NULL,"
     " PRIMARY KEY (hour, key));"
     "CREATE TABLE IF NOT EXISTS ratelimit_rollup_rule_hour ("
     " hour BIGINT NOT NULL, rule_name VARCHAR(100) NOT NULL, hits BIGINT NOT NULL,"
     " blocked BIGINT NOT NULL, PRIMARY KEY (hour, rule_name));"
     "CREATE TABLE IF NOT EXISTS ratelimit_rollup_key_day ("
     " day BIGINT NOT NULL, key VARCHAR(255) NOT NULL, blocked BIGINT NOT NULL,"
     " PRIMARY KEY (day, key));"
     "LOCK TABLE ratelimit_event IN SHARE ROW EXCLUSIVE MODE;"
     "TRUNCATE ratelimit_rollup_hour, ratelimit_rollup_key_hour, ratelimit_rollup_rule_hour,"
     " ratelimit_rollup_key_day;"
     "INSERT INTO ratelimit_rollup_key_day (day, key, blocked)"
     " SELECT floor(extract(epoch from timestamp) / 86400)::bigint, key, COUNT(*)"
     " FROM ratelimit_event WHERE NOT allowed GROUP BY 1, 2;"
     "INSERT INTO ratelimit_rollup_hour (hour, total, blocked)"
     " SELECT floor(extract(epoch from timestamp) / 3600)::bigint, COUNT(*),"
     "  COUNT(*) FILTER (WHERE NOT allowed)"
     " FROM ratelimit_event GROUP BY 1;"
     "INSERT INTO ratelimit_rollup_key_hour (hour, key, blocked)"
     " SELECT floor(extract(epoch from timestamp) / 3600)::bigint, key, COUNT(*)"
     " FROM ratelimit_event WHERE NOT allowed GROUP BY 1, 2;"
     "INSERT INTO ratelimit_rollup_rule_hour (hour, rule_name, hits, blocked)"
     " SELECT floor(extract(epoch from timestamp) / 3600)::bigint, rule_name, COUNT(*),"
     " COUNT(*) FILTER (WHERE NOT allowed) FROM ratelimit_event WHERE rule_name <> '' GROUP BY 1, 2;"
     // Adds the transition table new_rows (grouped, in key order to avoid deadlocks).
     "CREATE OR REPLACE FUNCTION ratelimit_rollup_add() RETURNS trigger LANGUAGE plpgsql AS $f$"
     " BEGIN"
     " INSERT INTO ratelimit_rollup_hour AS r (hour, total, blocked)"
     "  SELECT floor(extract(epoch from timestamp) / 3600)::bigint, COUNT(*),"
     "  COUNT(*) FILTER (WHERE NOT allowed)"
     "  FROM new_rows GROUP BY 1 ORDER BY 1"
     "  ON CONFLICT (hour) DO UPDATE SET total = r.total + EXCLUDED.total,"
     "  blocked = r.blocked + EXCLUDED.blocked;"
     " INSERT INTO ratelimit_rollup_key_hour AS r (hour, key, blocked)"
     "  SELECT floor(extract(epoch from timestamp) / 3600)::bigint, key, COUNT(*)"
     "  FROM new_rows WHERE NOT allowed GROUP BY 1, 2 ORDER BY 1, 2"
     "  ON CONFLICT (hour, key) DO UPDATE SET blocked = r.blocked + EXCLUDED.blocked;"
     " INSERT INTO ratelimit_rollup_key_day AS r (day, key, blocked)"
     "  SELECT floor(extract(epoch from timestamp) / 86400)::bigint, key, COUNT(*)"
     "  FROM new_rows WHERE NOT allowed GROUP BY 1, 2 ORDER BY 1, 2"
     "  ON CONFLICT (day, key) DO UPDATE SET blocked = r.blocked + EXCLUDED.blocked;"
     " INSERT INTO ratelimit_rollup_rule_hour AS r (hour, rule_name, hits, blocked)"
     "  SELECT floor(extract(epoch from timestamp) / 3600)::bigint, rule_name, COUNT(*),"
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
     "  FROM (SELECT floor(extract(epoch from timestamp) / 3600)::bigint AS h, COUNT(*) AS n,"
     "  COUNT(*) FILTER (WHERE NOT allowed) AS b FROM old_rows GROUP BY 1 ORDER BY 1) d"
     "  WHERE r.hour = d.h;"
     " DELETE FROM ratelimit_rollup_hour r"
     "  USING (SELECT DISTINCT floor(extract(epoch from timestamp) / 3600)::bigint AS h FROM old_rows) d"
     "  WHERE r.hour = d.h AND r.total <= 0;"
     " UPDATE ratelimit_rollup_key_hour r SET blocked = r.blocked - d.n"
     "  FROM (SELECT floor(extract(epoch from timestamp) / 3600)::bigint AS h, key, COUNT(*) AS n"
     "  FROM old_rows WHERE NOT allowed GROUP BY 1, 2 ORDER BY 1, 2) d"
     "  WHERE r.hour = d.h AND r.key = d.key;"
     " DELETE FROM ratelimit_rollup_key_hour r"
     "  USING (SELECT DISTINCT floor(extract(epoch from timestamp) / 3600)::bigint AS h,"
     "  key FROM old_rows WHERE NOT allowed) d"
     "  WHERE r.hour = d.h AND r.key = d.key AND r.blocked <= 0;"
     " UPDATE ratelimit_rollup_key_day r SET blocked = r.blocked - d.n"
     "  FROM (SELECT floor(extract(epoch from timestamp) / 86400)::bigint AS dd, key, COUNT(*) AS n"
     "  FROM old_rows WHERE NOT allowed GROUP BY 1, 2 ORDER BY 1, 2) d"
     "  WHERE r.day = d.dd AND r.key = d.key;"
     " DELETE FROM ratelimit_rollup_key_day r"
     "  USING (SELECT DISTINCT floor(extract(epoch from timestamp) / 86400)::bigint AS dd,"
     "  key FROM old_rows WHERE NOT allowed) d"
     "  WHERE r.day = d.dd AND r.key = d.key AND r.blocked <= 0;"
     " UPDATE ratelimit_rollup_rule_hour r SET hits = r.hits - d.n, blocked = r.blocked - d.b"
     "  FROM (SELECT floor(extract(epoch from timestamp) / 3600)::bigint AS h, rule_name, COUNT(*) AS n,"
     "  COUNT(*) FILTER (WHERE NOT allowed) AS b FROM old_rows WHERE rule_name <> ''"
     "  GROUP BY 1, 2 ORDER BY 1, 2) d"
     "  WHERE r.hour = d.h AND r.rule_name = d.rule_name;"
     " DELETE FROM ratelimit_rollup_rule_hour r"
     "  USING (SELECT DISTINCT floor(extract(epoch from timestamp) / 3600)::bigint AS h,"
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
     " FOR EACH STATEMENT EXECUTE FUNCTION ratelimit_rollup_truncate()"},
    {2, "per-key counters over aligned spans of 4^k hours (k = 0..4) on interned key ids,"
        " replacing the per-key hour and day tables; back-filled",
     "DROP TRIGGER IF EXISTS ratelimit_rollup_ai; "
     "DROP TRIGGER IF EXISTS ratelimit_rollup_ad; "
     "DROP TRIGGER IF EXISTS ratelimit_rollup_au; "
     "DROP TABLE IF EXISTS ratelimit_rollup_key_hour; "
     "DROP TABLE IF EXISTS ratelimit_rollup_key_day; "
     "CREATE TABLE IF NOT EXISTS ratelimit_rollup_key ( "
     " id INTEGER PRIMARY KEY, key VARCHAR(255) NOT NULL UNIQUE); "
     "CREATE TABLE IF NOT EXISTS ratelimit_rollup_key_span ( "
     " level INTEGER NOT NULL, bucket BIGINT NOT NULL, key_id BIGINT NOT NULL, blocked BIGINT NOT NULL, "
     " PRIMARY KEY (level, bucket, key_id)) WITHOUT ROWID; "
     "CREATE INDEX IF NOT EXISTS ratelimit_rollup_key_span_top "
     " ON ratelimit_rollup_key_span (level, bucket, blocked DESC); "
     "DELETE FROM ratelimit_rollup_key_span; "
     "DELETE FROM ratelimit_rollup_key; "
     "INSERT INTO ratelimit_rollup_key (key) "
     " SELECT DISTINCT key FROM ratelimit_event WHERE allowed = 0 ORDER BY key; "
     "INSERT INTO ratelimit_rollup_key_span (level, bucket, key_id, blocked) "
     " SELECT 0, e.h, k.id, COUNT(*) FROM (SELECT (timestamp / 3600000000 - (timestamp % 3600000000 < 0)) AS h, "
     " key FROM ratelimit_event WHERE allowed = 0) e JOIN ratelimit_rollup_key k ON k.key = e.key GROUP BY 2, 3; "
     "INSERT INTO ratelimit_rollup_key_span (level, bucket, key_id, blocked) "
     " SELECT 1, bucket >> 2, key_id, SUM(blocked) FROM ratelimit_rollup_key_span WHERE level = 0 GROUP BY 2, 3; "
     "INSERT INTO ratelimit_rollup_key_span (level, bucket, key_id, blocked) "
     " SELECT 2, bucket >> 2, key_id, SUM(blocked) FROM ratelimit_rollup_key_span WHERE level = 1 GROUP BY 2, 3; "
     "INSERT INTO ratelimit_rollup_key_span (level, bucket, key_id, blocked) "
     " SELECT 3, bucket >> 2, key_id, SUM(blocked) FROM ratelimit_rollup_key_span WHERE level = 2 GROUP BY 2, 3; "
     "INSERT INTO ratelimit_rollup_key_span (level, bucket, key_id, blocked) "
     " SELECT 4, bucket >> 2, key_id, SUM(blocked) FROM ratelimit_rollup_key_span WHERE level = 3 GROUP BY 2, 3; "
     "CREATE TRIGGER ratelimit_rollup_ai AFTER INSERT ON ratelimit_event BEGIN "
     " INSERT INTO ratelimit_rollup_hour (hour, total, blocked) "
     "  VALUES ((NEW.timestamp / 3600000000 - (NEW.timestamp % 3600000000 < 0)), 1, NEW.allowed = 0) "
     "  ON CONFLICT (hour) DO UPDATE SET total = total + 1, blocked = blocked + excluded.blocked; "
     " INSERT INTO ratelimit_rollup_rule_hour (hour, rule_name, hits, blocked) "
     "  SELECT (NEW.timestamp / 3600000000 - (NEW.timestamp % 3600000000 < 0)), NEW.rule_name, 1, NEW.allowed = 0 "
     "  WHERE NEW.rule_name <> '' "
     "  ON CONFLICT (hour, rule_name) DO UPDATE SET hits = hits + 1, blocked = blocked + excluded.blocked; "
     " INSERT INTO ratelimit_rollup_key (key) SELECT NEW.key "
     "  WHERE NEW.allowed = 0 AND NOT EXISTS (SELECT 1 FROM ratelimit_rollup_key WHERE key = NEW.key); "
     " INSERT INTO ratelimit_rollup_key_span (level, bucket, key_id, blocked) "
     "  SELECT v.l, (NEW.timestamp / 3600000000 - (NEW.timestamp % 3600000000 < 0)) >> (2 * v.l), k.id, 1 FROM ratelimit_rollup_key k, (SELECT column1 AS l FROM (VALUES (0), (1), (2), (3), (4))) v "
     "  WHERE NEW.allowed = 0 AND k.key = NEW.key "
     "  ON CONFLICT (level, bucket, key_id) DO UPDATE SET blocked = blocked + 1; "
     " END; "
     "CREATE TRIGGER ratelimit_rollup_ad AFTER DELETE ON ratelimit_event BEGIN "
     " UPDATE ratelimit_rollup_hour SET total = total - 1, blocked = blocked - (OLD.allowed = 0) "
     "  WHERE hour = (OLD.timestamp / 3600000000 - (OLD.timestamp % 3600000000 < 0)); "
     " DELETE FROM ratelimit_rollup_hour WHERE hour = (OLD.timestamp / 3600000000 - (OLD.timestamp % 3600000000 < 0)) AND total <= 0; "
     " UPDATE ratelimit_rollup_rule_hour SET hits = hits - 1, blocked = blocked - (OLD.allowed = 0) "
     "  WHERE hour = (OLD.timestamp / 3600000000 - (OLD.timestamp % 3600000000 < 0)) AND rule_name = OLD.rule_name; "
     " DELETE FROM ratelimit_rollup_rule_hour WHERE hour = (OLD.timestamp / 3600000000 - (OLD.timestamp % 3600000000 < 0)) AND rule_name = OLD.rule_name AND hits <= 0; "
     " UPDATE ratelimit_rollup_key_span SET blocked = blocked - 1 "
     "  FROM (SELECT column1 AS l FROM (VALUES (0), (1), (2), (3), (4))) v, ratelimit_rollup_key k "
     "  WHERE OLD.allowed = 0 AND k.key = OLD.key AND ratelimit_rollup_key_span.key_id = k.id "
     "  AND ratelimit_rollup_key_span.level = v.l AND ratelimit_rollup_key_span.bucket = (OLD.timestamp / 3600000000 - (OLD.timestamp % 3600000000 < 0)) >> (2 * v.l); "
     " DELETE FROM ratelimit_rollup_key_span WHERE OLD.allowed = 0 AND blocked <= 0 "
     "  AND key_id = (SELECT id FROM ratelimit_rollup_key WHERE key = OLD.key) "
     "  AND (level, bucket) IN (SELECT l, (OLD.timestamp / 3600000000 - (OLD.timestamp % 3600000000 < 0)) >> (2 * l) FROM (SELECT column1 AS l FROM (VALUES (0), (1), (2), (3), (4)))); "
     " END; "
     "CREATE TRIGGER ratelimit_rollup_au "
     " AFTER UPDATE OF timestamp, key, rule_name, allowed ON ratelimit_event BEGIN "
     " UPDATE ratelimit_rollup_hour SET total = total - 1, blocked = blocked - (OLD.allowed = 0) "
     "  WHERE hour = (OLD.timestamp / 3600000000 - (OLD.timestamp % 3600000000 < 0)); "
     " DELETE FROM ratelimit_rollup_hour WHERE hour = (OLD.timestamp / 3600000000 - (OLD.timestamp % 3600000000 < 0)) AND total <= 0; "
     " UPDATE ratelimit_rollup_rule_hour SET hits = hits - 1, blocked = blocked - (OLD.allowed = 0) "
     "  WHERE hour = (OLD.timestamp / 3600000000 - (OLD.timestamp % 3600000000 < 0)) AND rule_name = OLD.rule_name; "
     " DELETE FROM ratelimit_rollup_rule_hour WHERE hour = (OLD.timestamp / 3600000000 - (OLD.timestamp % 3600000000 < 0)) AND rule_name = OLD.rule_name AND hits <= 0; "
     " UPDATE ratelimit_rollup_key_span SET blocked = blocked - 1 "
     "  FROM (SELECT column1 AS l FROM (VALUES (0), (1), (2), (3), (4))) v, ratelimit_rollup_key k "
     "  WHERE OLD.allowed = 0 AND k.key = OLD.key AND ratelimit_rollup_key_span.key_id = k.id "
     "  AND ratelimit_rollup_key_span.level = v.l AND ratelimit_rollup_key_span.bucket = (OLD.timestamp / 3600000000 - (OLD.timestamp % 3600000000 < 0)) >> (2 * v.l); "
     " DELETE FROM ratelimit_rollup_key_span WHERE OLD.allowed = 0 AND blocked <= 0 "
     "  AND key_id = (SELECT id FROM ratelimit_rollup_key WHERE key = OLD.key) "
     "  AND (level, bucket) IN (SELECT l, (OLD.timestamp / 3600000000 - (OLD.timestamp % 3600000000 < 0)) >> (2 * l) FROM (SELECT column1 AS l FROM (VALUES (0), (1), (2), (3), (4)))); "
     " INSERT INTO ratelimit_rollup_hour (hour, total, blocked) "
     "  VALUES ((NEW.timestamp / 3600000000 - (NEW.timestamp % 3600000000 < 0)), 1, NEW.allowed = 0) "
     "  ON CONFLICT (hour) DO UPDATE SET total = total + 1, blocked = blocked + excluded.blocked; "
     " INSERT INTO ratelimit_rollup_rule_hour (hour, rule_name, hits, blocked) "
     "  SELECT (NEW.timestamp / 3600000000 - (NEW.timestamp % 3600000000 < 0)), NEW.rule_name, 1, NEW.allowed = 0 "
     "  WHERE NEW.rule_name <> '' "
     "  ON CONFLICT (hour, rule_name) DO UPDATE SET hits = hits + 1, blocked = blocked + excluded.blocked; "
     " INSERT INTO ratelimit_rollup_key (key) SELECT NEW.key "
     "  WHERE NEW.allowed = 0 AND NOT EXISTS (SELECT 1 FROM ratelimit_rollup_key WHERE key = NEW.key); "
     " INSERT INTO ratelimit_rollup_key_span (level, bucket, key_id, blocked) "
     "  SELECT v.l, (NEW.timestamp / 3600000000 - (NEW.timestamp % 3600000000 < 0)) >> (2 * v.l), k.id, 1 FROM ratelimit_rollup_key k, (SELECT column1 AS l FROM (VALUES (0), (1), (2), (3), (4))) v "
     "  WHERE NEW.allowed = 0 AND k.key = NEW.key "
     "  ON CONFLICT (level, bucket, key_id) DO UPDATE SET blocked = blocked + 1; "
     " END",
     "CREATE TABLE IF NOT EXISTS ratelimit_rollup_key ( "
     " id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, key VARCHAR(255) NOT NULL UNIQUE); "
     "CREATE TABLE IF NOT EXISTS ratelimit_rollup_key_span ( "
     " level SMALLINT NOT NULL, bucket BIGINT NOT NULL, key_id BIGINT NOT NULL, blocked BIGINT NOT NULL, "
     " PRIMARY KEY (level, bucket, key_id) INCLUDE (blocked)); "
     "CREATE INDEX IF NOT EXISTS ratelimit_rollup_key_span_top "
     " ON ratelimit_rollup_key_span (level, bucket, blocked DESC, key_id); "
     "LOCK TABLE ratelimit_event IN SHARE ROW EXCLUSIVE MODE; "
     "TRUNCATE ratelimit_rollup_key_span, ratelimit_rollup_key RESTART IDENTITY; "
     "INSERT INTO ratelimit_rollup_key (key) "
     " SELECT DISTINCT key FROM ratelimit_event WHERE NOT allowed ORDER BY 1; "
     "INSERT INTO ratelimit_rollup_key_span (level, bucket, key_id, blocked) "
     " SELECT 0, e.h, k.id, COUNT(*) FROM (SELECT floor(extract(epoch from timestamp) / 3600)::bigint AS h, key FROM ratelimit_event WHERE NOT allowed) e "
     " JOIN ratelimit_rollup_key k ON k.key = e.key GROUP BY 2, 3; "
     "INSERT INTO ratelimit_rollup_key_span (level, bucket, key_id, blocked) "
     " SELECT 1, bucket >> 2, key_id, SUM(blocked)::bigint FROM ratelimit_rollup_key_span WHERE level = 0 GROUP BY 2, 3; "
     "INSERT INTO ratelimit_rollup_key_span (level, bucket, key_id, blocked) "
     " SELECT 2, bucket >> 2, key_id, SUM(blocked)::bigint FROM ratelimit_rollup_key_span WHERE level = 1 GROUP BY 2, 3; "
     "INSERT INTO ratelimit_rollup_key_span (level, bucket, key_id, blocked) "
     " SELECT 3, bucket >> 2, key_id, SUM(blocked)::bigint FROM ratelimit_rollup_key_span WHERE level = 2 GROUP BY 2, 3; "
     "INSERT INTO ratelimit_rollup_key_span (level, bucket, key_id, blocked) "
     " SELECT 4, bucket >> 2, key_id, SUM(blocked)::bigint FROM ratelimit_rollup_key_span WHERE level = 3 GROUP BY 2, 3; "
     "CREATE OR REPLACE FUNCTION ratelimit_rollup_add() RETURNS trigger LANGUAGE plpgsql AS $f$ "
     " BEGIN "
     " INSERT INTO ratelimit_rollup_hour AS r (hour, total, blocked) "
     "  SELECT floor(extract(epoch from timestamp) / 3600)::bigint, COUNT(*), COUNT(*) FILTER (WHERE NOT allowed) "
     "  FROM new_rows GROUP BY 1 ORDER BY 1 "
     "  ON CONFLICT (hour) DO UPDATE SET total = r.total + EXCLUDED.total, blocked = r.blocked + EXCLUDED.blocked; "
     " INSERT INTO ratelimit_rollup_rule_hour AS r (hour, rule_name, hits, blocked) "
     "  SELECT floor(extract(epoch from timestamp) / 3600)::bigint, rule_name, COUNT(*), COUNT(*) FILTER (WHERE NOT allowed) "
     "  FROM new_rows WHERE rule_name <> '' GROUP BY 1, 2 ORDER BY 1, 2 "
     "  ON CONFLICT (hour, rule_name) DO UPDATE SET hits = r.hits + EXCLUDED.hits, "
     "  blocked = r.blocked + EXCLUDED.blocked; "
     " INSERT INTO ratelimit_rollup_key (key) "
     "  SELECT DISTINCT n.key FROM new_rows n WHERE NOT n.allowed "
     "  AND NOT EXISTS (SELECT 1 FROM ratelimit_rollup_key k WHERE k.key = n.key) ORDER BY 1 "
     "  ON CONFLICT (key) DO NOTHING; "
     " INSERT INTO ratelimit_rollup_key_span AS r (level, bucket, key_id, blocked) "
     "  SELECT l AS lv, e.h >> (2 * l) AS b, k.id AS key_id, COUNT(*) AS n FROM (SELECT floor(extract(epoch from timestamp) / 3600)::bigint AS h, key FROM new_rows WHERE NOT allowed) e JOIN ratelimit_rollup_key k ON k.key = e.key CROSS JOIN generate_series(0, 4) AS l GROUP BY 1, 2, 3 ORDER BY 1, 2, 3 "
     "  ON CONFLICT (level, bucket, key_id) DO UPDATE SET blocked = r.blocked + EXCLUDED.blocked; "
     " RETURN NULL; "
     " END $f$; "
     "CREATE OR REPLACE FUNCTION ratelimit_rollup_sub() RETURNS trigger LANGUAGE plpgsql AS $f$ "
     " BEGIN "
     " UPDATE ratelimit_rollup_hour r SET total = r.total - d.n, blocked = r.blocked - d.b "
     "  FROM (SELECT floor(extract(epoch from timestamp) / 3600)::bigint AS h, COUNT(*) AS n, "
     "  COUNT(*) FILTER (WHERE NOT allowed) AS b FROM old_rows GROUP BY 1 ORDER BY 1) d "
     "  WHERE r.hour = d.h; "
     " DELETE FROM ratelimit_rollup_hour r "
     "  USING (SELECT DISTINCT floor(extract(epoch from timestamp) / 3600)::bigint AS h FROM old_rows) d "
     "  WHERE r.hour = d.h AND r.total <= 0; "
     " UPDATE ratelimit_rollup_rule_hour r SET hits = r.hits - d.n, blocked = r.blocked - d.b "
     "  FROM (SELECT floor(extract(epoch from timestamp) / 3600)::bigint AS h, rule_name, COUNT(*) AS n, "
     "  COUNT(*) FILTER (WHERE NOT allowed) AS b FROM old_rows WHERE rule_name <> '' "
     "  GROUP BY 1, 2 ORDER BY 1, 2) d "
     "  WHERE r.hour = d.h AND r.rule_name = d.rule_name; "
     " DELETE FROM ratelimit_rollup_rule_hour r "
     "  USING (SELECT DISTINCT floor(extract(epoch from timestamp) / 3600)::bigint AS h, rule_name FROM old_rows WHERE rule_name <> '') d "
     "  WHERE r.hour = d.h AND r.rule_name = d.rule_name AND r.hits <= 0; "
     " UPDATE ratelimit_rollup_key_span r SET blocked = r.blocked - d.n "
     "  FROM (SELECT l AS lv, e.h >> (2 * l) AS b, k.id AS key_id, COUNT(*) AS n FROM (SELECT floor(extract(epoch from timestamp) / 3600)::bigint AS h, key FROM old_rows WHERE NOT allowed) e JOIN ratelimit_rollup_key k ON k.key = e.key CROSS JOIN generate_series(0, 4) AS l GROUP BY 1, 2, 3 ORDER BY 1, 2, 3) d "
     "  WHERE r.level = d.lv AND r.bucket = d.b AND r.key_id = d.key_id; "
     " DELETE FROM ratelimit_rollup_key_span r "
     "  USING (SELECT l AS lv, e.h >> (2 * l) AS b, k.id AS key_id FROM (SELECT floor(extract(epoch from timestamp) / 3600)::bigint AS h, key FROM old_rows WHERE NOT allowed) e JOIN ratelimit_rollup_key k ON k.key = e.key CROSS JOIN generate_series(0, 4) AS l GROUP BY 1, 2, 3) d "
     "  WHERE r.level = d.lv AND r.bucket = d.b AND r.key_id = d.key_id AND r.blocked <= 0; "
     " RETURN NULL; "
     " END $f$; "
     "CREATE OR REPLACE FUNCTION ratelimit_rollup_truncate() RETURNS trigger LANGUAGE plpgsql AS $f$ "
     " BEGIN "
     " TRUNCATE ratelimit_rollup_hour, ratelimit_rollup_rule_hour, ratelimit_rollup_key_span, "
     "  ratelimit_rollup_key RESTART IDENTITY; "
     " RETURN NULL; "
     " END $f$; "
     "DROP TABLE IF EXISTS ratelimit_rollup_key_hour, ratelimit_rollup_key_day"},
    // SQLite: the event writer updates the rollups once per batch (a grouped upsert per
    // table over the batch's id range, registered as batch hooks, events v2) and the
    // insert trigger skips the rows of such a batch; any other INSERT still fires it.
    // The hooks and the trigger body must agree: a test compares both paths. On
    // PostgreSQL the triggers already run once per COPY statement: nothing to do.
    {3, "SQLite: rollups of the event writer's batches by batch hooks, the insert trigger for other inserts",
     "CREATE TABLE IF NOT EXISTS ratelimit_event_batch ("
     " first_id BIGINT NOT NULL, last_id BIGINT NOT NULL); "
     "CREATE TABLE IF NOT EXISTS ratelimit_event_batch_hook ("
     " component VARCHAR(100) NOT NULL, step INTEGER NOT NULL, statement TEXT NOT NULL,"
     " PRIMARY KEY (component, step)); "
     "DROP TRIGGER IF EXISTS ratelimit_rollup_ai; "
     "CREATE TRIGGER ratelimit_rollup_ai AFTER INSERT ON ratelimit_event "
     " WHEN NOT EXISTS (SELECT 1 FROM ratelimit_event_batch) BEGIN "
     " INSERT INTO ratelimit_rollup_hour (hour, total, blocked) "
     "  VALUES ((NEW.timestamp / 3600000000 - (NEW.timestamp % 3600000000 < 0)), 1, NEW.allowed = 0) "
     "  ON CONFLICT (hour) DO UPDATE SET total = total + 1, blocked = blocked + excluded.blocked; "
     " INSERT INTO ratelimit_rollup_rule_hour (hour, rule_name, hits, blocked) "
     "  SELECT (NEW.timestamp / 3600000000 - (NEW.timestamp % 3600000000 < 0)), NEW.rule_name, 1, NEW.allowed = 0 "
     "  WHERE NEW.rule_name <> '' "
     "  ON CONFLICT (hour, rule_name) DO UPDATE SET hits = hits + 1, blocked = blocked + excluded.blocked; "
     " INSERT INTO ratelimit_rollup_key (key) SELECT NEW.key "
     "  WHERE NEW.allowed = 0 AND NOT EXISTS (SELECT 1 FROM ratelimit_rollup_key WHERE key = NEW.key); "
     " INSERT INTO ratelimit_rollup_key_span (level, bucket, key_id, blocked) "
     "  SELECT v.l, (NEW.timestamp / 3600000000 - (NEW.timestamp % 3600000000 < 0)) >> (2 * v.l), k.id, 1 FROM ratelimit_rollup_key k, (SELECT column1 AS l FROM (VALUES (0), (1), (2), (3), (4))) v "
     "  WHERE NEW.allowed = 0 AND k.key = NEW.key "
     "  ON CONFLICT (level, bucket, key_id) DO UPDATE SET blocked = blocked + 1; "
     " END; "
     "DELETE FROM ratelimit_event_batch_hook WHERE component = 'analytics'; "
     "INSERT INTO ratelimit_event_batch_hook (component, step, statement) VALUES ('analytics', 1, "
     "'INSERT INTO ratelimit_rollup_hour (hour, total, blocked) SELECT (timestamp / 3600000000 - "
     "(timestamp % 3600000000 < 0)) AS h, COUNT(*), SUM(allowed = 0) FROM ratelimit_event WHERE id "
     "BETWEEN (SELECT first_id FROM ratelimit_event_batch) AND (SELECT last_id FROM "
     "ratelimit_event_batch) GROUP BY h ORDER BY h ON CONFLICT (hour) DO UPDATE SET total = total + "
     "excluded.total, blocked = blocked + excluded.blocked'); "
     "INSERT INTO ratelimit_event_batch_hook (component, step, statement) VALUES ('analytics', 2, "
     "'INSERT INTO ratelimit_rollup_rule_hour (hour, rule_name, hits, blocked) SELECT (timestamp / "
     "3600000000 - (timestamp % 3600000000 < 0)) AS h, rule_name, COUNT(*), SUM(allowed = 0) FROM "
     "ratelimit_event WHERE id BETWEEN (SELECT first_id FROM ratelimit_event_batch) AND (SELECT "
     "last_id FROM ratelimit_event_batch) AND rule_name <> '''' GROUP BY h, rule_name ORDER BY h, "
     "rule_name ON CONFLICT (hour, rule_name) DO UPDATE SET hits = hits + excluded.hits, blocked = "
     "blocked + excluded.blocked'); "
     "INSERT INTO ratelimit_event_batch_hook (component, step, statement) VALUES ('analytics', 3, "
     "'INSERT INTO ratelimit_rollup_key (key) SELECT key FROM ratelimit_event e WHERE id BETWEEN "
     "(SELECT first_id FROM ratelimit_event_batch) AND (SELECT last_id FROM ratelimit_event_batch) AND "
     "+allowed = 0 AND NOT EXISTS (SELECT 1 FROM ratelimit_rollup_key k WHERE k.key = e.key) GROUP BY "
     "key ORDER BY MIN(id)'); "
     "INSERT INTO ratelimit_event_batch_hook (component, step, statement) VALUES ('analytics', 4, "
     "'INSERT INTO ratelimit_rollup_key_span (level, bucket, key_id, blocked) SELECT v.l, e.h >> (2 * "
     "v.l), k.id, COUNT(*) FROM (SELECT (timestamp / 3600000000 - (timestamp % 3600000000 < 0)) AS h, "
     "key FROM ratelimit_event WHERE id BETWEEN (SELECT first_id FROM ratelimit_event_batch) AND "
     "(SELECT last_id FROM ratelimit_event_batch) AND +allowed = 0) e, ratelimit_rollup_key k, (SELECT "
     "column1 AS l FROM (VALUES (0), (1), (2), (3), (4))) v WHERE k.key = e.key GROUP BY 1, 2, 3 ORDER "
     "BY 1, 2, 3 ON CONFLICT (level, bucket, key_id) DO UPDATE SET blocked = blocked + "
     "excluded.blocked')"
     ,
     ""},
};

/// The rollups' migration set (component "analytics").
inline constexpr migration_set analytics_migrations{analytics_component, analytics_steps};
/// The latest rollup schema version this code knows.
inline constexpr int analytics_schema_version = latest_version(analytics_migrations);

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

namespace analytics_detail {

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

/// Query text plus its bound values (strings and integers), named :p0, :p1, ...
class bound_query {
public:
    explicit bound_query(dialect d) : d_(d) {}
    dialect kind() const noexcept { return d_; }

    std::string time(event_time t) {
        values_.push_back({time_value(d_, t), 0, true});
        return time_param(d_, ":p" + std::to_string(values_.size() - 1));
    }
    std::string integer(std::int64_t v) {
        values_.push_back({{}, static_cast<long long>(v), false});
        return d_ == dialect::sqlite ? ":p" + std::to_string(values_.size() - 1)
                                     : "CAST(:p" + std::to_string(values_.size() - 1) + " AS BIGINT)";
    }
    std::string text(std::string_view v) {
        values_.push_back({std::string(v), 0, true});
        return ":p" + std::to_string(values_.size() - 1);
    }
    /// `timestamp` within a raw range.
    std::string raw_condition(const window_plan::raw_range& r) {
        std::string c = "timestamp >= " + time(r.lo);
        if (!r.open_end) c += " AND timestamp <= " + time(r.hi);
        return c;
    }
    std::string hour_condition(const window_plan& p) {
        std::string c = "hour >= " + integer(p.hour_from);
        if (p.hour_to) c += " AND hour < " + integer(*p.hour_to);
        return c;
    }
    std::string blocked() const { return d_ == dialect::sqlite ? "allowed = 0" : "allowed = false"; }
    std::string blocked_int() const {
        return d_ == dialect::sqlite ? "CASE WHEN allowed = 0 THEN 1 ELSE 0 END"
                                     : "CASE WHEN allowed THEN 0 ELSE 1 END";
    }
    std::string collate() const { return d_ == dialect::sqlite ? "" : " COLLATE \"C\""; }

    /// Runs `sql_text`, whose rows are three integers, fetching them in blocks
    /// (SOCI's vector into): `row(a, b, c)` for each row.
    template <class Row>
    void run_int3(::soci::session& sql, const std::string& sql_text, Row&& row) {
        constexpr std::size_t block = 4096;
        std::vector<long long> a(block), b(block), c(block);
        run(
            sql, sql_text,
            [&](::soci::statement& st) {
                st.exchange(::soci::into(a));
                st.exchange(::soci::into(b));
                st.exchange(::soci::into(c));
            },
            [&] {
                for (std::size_t i = 0; i < a.size(); ++i) row(a[i], b[i], c[i]);
                a.resize(block);
                b.resize(block);
                c.resize(block);
            });
    }

    /// Runs `sql_text`; `bind_into(st)` adds the into() targets; `row()` is called
    /// for each result row.
    template <class BindInto, class Row>
    void run(::soci::session& sql, const std::string& sql_text, BindInto&& bind_into, Row&& row) {
        try {
            ::soci::statement st(sql);
            bind_into(st);
            for (std::size_t i = 0; i < values_.size(); ++i) {
                const std::string name = "p" + std::to_string(i);
                if (values_[i].is_text) st.exchange(::soci::use(values_[i].s, name));
                else st.exchange(::soci::use(values_[i].i, name));
            }
            st.alloc();
            st.prepare(sql_text);
            st.define_and_bind();
            if (st.execute(true)) {
                do row();
                while (st.fetch());
            }
        } catch (const ::soci::soci_error& e) {
            throw storage_error(std::string("analytics query on ratelimit_event failed: ") + e.what());
        }
    }

private:
    struct value {
        std::string s;
        long long i;
        bool is_text;
    };
    dialect d_;
    std::vector<value> values_;
};

inline bool rollups_ready(::soci::session& sql) {
    return schema_version(sql, analytics_component) >= analytics_schema_version;
}

inline void check_count(int value, const char* name) {
    if (value < 0)
        throw std::invalid_argument(std::string("analytics: ") + name + " must be >= 0, got " +
                                    std::to_string(value));
}

/// A window that starts after the last storable instant matches nothing; one that
/// starts before the first is clamped (time_value does it) without changing results.
inline bool window_empty(event_time start, std::optional<event_time> end) {
    return start > detail::max_event_time || (end && *end < start) ||
           (end && *end < detail::min_event_time);
}

/// Runs the statements of one analytics call in one snapshot: a read-only
/// transaction (REPEATABLE READ on PostgreSQL) when the session is not already in
/// a transaction (then the caller's transaction decides), so the several statements
/// of a top-N query see the same rows under concurrent writes.
class read_snapshot {
public:
    read_snapshot(::soci::session& sql, dialect d) : sql_(sql) {
        if (!idle(sql, d)) return;
        try {
            sql << (d == dialect::postgresql ? "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY" : "BEGIN");
        } catch (const ::soci::soci_error& e) {
            throw storage_error(std::string("analytics query on ratelimit_event failed: ") + e.what());
        }
        open_ = true;
    }
    read_snapshot(const read_snapshot&) = delete;
    read_snapshot& operator=(const read_snapshot&) = delete;
    ~read_snapshot() {
        if (!open_) return;
        try {
            sql_ << "ROLLBACK";  // nothing was written
        } catch (...) {
        }
    }

private:
    // The backends' type info is not exported (Debian's SOCI): check the name, then cast.
    static bool idle(::soci::session& sql, dialect d) {
        auto* backend = sql.get_backend();
        if (backend == nullptr) return false;
        if (d == dialect::postgresql) {
            if (sql.get_backend_name() != "postgresql") return false;
            auto* pg = static_cast<::soci::postgresql_session_backend*>(backend);
            return pg->conn_ != nullptr && PQtransactionStatus(pg->conn_) == PQTRANS_IDLE;
        }
        if (sql.get_backend_name() != "sqlite3") return false;
        auto* lite = static_cast<::soci::sqlite3_session_backend*>(backend);
        return lite->conn_ != nullptr && ::sqlite_api::sqlite3_get_autocommit(lite->conn_) != 0;
    }
    ::soci::session& sql_;
    bool open_ = false;
};

/// A set of key ids as one bound text parameter: `column IN` the set.
inline std::string in_id_set(bound_query& q, std::string_view column, const std::vector<std::int64_t>& ids) {
    std::string list;
    for (const auto id : ids) {
        if (!list.empty()) list += ',';
        list += std::to_string(id);
    }
    if (q.kind() == dialect::postgresql)
        return std::string(column) + " = ANY(CAST(" + q.text("{" + list + "}") + " AS BIGINT[]))";
    return std::string(column) + " IN (SELECT value FROM json_each(" + q.text("[" + list + "]") + "))";
}

}  // namespace analytics_detail

/// Where the SQL analytics run: a session on a database holding ratelimit_event,
/// its dialect, and whether to use the rollups (default: when migrate_analytics ran).
/// `end` (inclusive, optional) bounds the window above: the `report --as-of`
/// reproduction; SPEC 7's functions leave it open.
/// Thread safety: one thread at a time per session.
struct sql_analytics {
    ::soci::session& sql;
    dialect kind;
    std::optional<bool> use_rollups{};
    std::optional<event_time> end{};

    bool rollups() const {
        return use_rollups ? *use_rollups : analytics_detail::rollups_ready(sql);
    }

    traffic_summary traffic_summary_at(int days, event_time now) const {
        using namespace analytics_detail;
        traffic_summary s;
        s.days = days;
        const event_time start = window_start(now, days);
        if (window_empty(start, end)) return s;
        const window_plan plan = plan_window(start, end, rollups());
        bound_query q(kind);
        std::string text = "SELECT CAST(COALESCE(SUM(t), 0) AS BIGINT), CAST(COALESCE(SUM(b), 0) AS BIGINT)"
                           " FROM (";
        bool first = true;
        if (plan.use_rollup) {
            text += "SELECT total AS t, blocked AS b FROM ratelimit_rollup_hour WHERE " +
                    q.hour_condition(plan);
            first = false;
        }
        for (const auto& r : plan.raw) {
            if (!first) text += " UNION ALL ";
            first = false;
            text += "SELECT COUNT(*) AS t, COALESCE(SUM(" + q.blocked_int() +
                    "), 0) AS b FROM ratelimit_event WHERE " + q.raw_condition(r);
        }
        text += ") w";
        long long total = 0, blocked = 0;
        q.run(
            sql, text,
            [&](::soci::statement& st) {
                st.exchange(::soci::into(total));
                st.exchange(::soci::into(blocked));
            },
            [] {});
        s.total = total;
        s.blocked = blocked;
        s.allowed = total - blocked;
        s.block_rate = total == 0 ? 0.0 : static_cast<double>(blocked) / static_cast<double>(total);
        return s;
    }

    std::vector<offender> top_offenders_at(int days, int limit, event_time now) const {
        using namespace analytics_detail;
        check_count(limit, "limit");
        std::vector<offender> out;
        const event_time start = window_start(now, days);
        if (limit == 0 || window_empty(start, end)) return out;
        const window_plan plan = plan_window(start, end, rollups());
        if (!plan.use_rollup) return raw_top_offenders(plan, limit);
        read_snapshot snapshot(sql, kind);
        return span_top_offenders(plan, static_cast<std::size_t>(limit));
    }

    /// Initial depth of the per-span lists that top_offenders_at reads (0: 2 x limit
    /// + 16); each further round reads 4 times deeper. A tuning knob, and lets tests
    /// drive every path of the threshold algorithm on small data.
    std::size_t list_depth = 0;

    std::vector<rule_hits> rule_hit_counts_at(int days, int limit, event_time now) const {
        using namespace analytics_detail;
        check_count(limit, "limit");
        std::vector<rule_hits> out;
        const event_time start = window_start(now, days);
        if (limit == 0 || window_empty(start, end)) return out;
        const window_plan plan = plan_window(start, end, rollups());
        bound_query q(kind);
        std::string text =
            "SELECT rule_name, CAST(SUM(h) AS BIGINT) AS hs, CAST(SUM(b) AS BIGINT) FROM (";
        bool first = true;
        if (plan.use_rollup) {
            text += "SELECT rule_name, hits AS h, blocked AS b FROM ratelimit_rollup_rule_hour WHERE " +
                    q.hour_condition(plan);
            first = false;
        }
        for (const auto& r : plan.raw) {
            if (!first) text += " UNION ALL ";
            first = false;
            text += "SELECT rule_name, COUNT(*) AS h, SUM(" + q.blocked_int() +
                    ") AS b FROM ratelimit_event WHERE rule_name <> '' AND " + q.raw_condition(r) +
                    " GROUP BY rule_name";
        }
        text += ") w GROUP BY rule_name ORDER BY hs DESC, rule_name" + q.collate() +
                " ASC LIMIT " + q.integer(limit);
        std::string name;
        long long hits = 0, blocked = 0;
        q.run(
            sql, text,
            [&](::soci::statement& st) {
                st.exchange(::soci::into(name));
                st.exchange(::soci::into(hits));
                st.exchange(::soci::into(blocked));
            },
            [&] { out.push_back(rule_hits{name, hits, blocked}); });
        return out;
    }

    offender_detail offender_detail_at(std::string_view key, int days, int recent,
                                       event_time now) const {
        using namespace analytics_detail;
        check_count(recent, "recent");
        offender_detail d;
        d.key = std::string(key);
        d.days = days;
        const event_time start = window_start(now, days);
        if (window_empty(start, end)) return d;
        const window_plan::raw_range r{start, end.value_or(start), !end.has_value()};
        {
            bound_query q(kind);
            const std::string text =
                "SELECT COUNT(*), CAST(COALESCE(SUM(" + q.blocked_int() + "), 0) AS BIGINT), " +
                time_column_micros(kind, "MIN(timestamp)") + ", " +
                time_column_micros(kind, "MAX(timestamp)") +
                " FROM ratelimit_event WHERE key = " + q.text(key) + " AND " + q.raw_condition(r);
            long long total = 0, blocked = 0, first = 0, last = 0;
            ::soci::indicator first_ind = ::soci::i_null, last_ind = ::soci::i_null;
            q.run(
                sql, text,
                [&](::soci::statement& st) {
                    st.exchange(::soci::into(total));
                    st.exchange(::soci::into(blocked));
                    st.exchange(::soci::into(first, first_ind));
                    st.exchange(::soci::into(last, last_ind));
                },
                [] {});
            d.total = total;
            d.blocked = blocked;
            d.allowed = total - blocked;
            d.block_rate =
                total == 0 ? 0.0 : static_cast<double>(blocked) / static_cast<double>(total);
            if (total == 0) return d;
            if (first_ind == ::soci::i_ok) d.first_seen = event_time{std::chrono::microseconds{first}};
            if (last_ind == ::soci::i_ok) d.last_seen = event_time{std::chrono::microseconds{last}};
        }
        if (d.blocked > 0) {
            bound_query q(kind);
            const std::string text =
                "SELECT path, COUNT(*) AS c FROM ratelimit_event WHERE key = " + q.text(key) +
                " AND " + q.blocked() + " AND " + q.raw_condition(r) + " GROUP BY path ORDER BY c DESC, path" +
                q.collate() + " ASC LIMIT " + q.integer(static_cast<std::int64_t>(offender_detail_max_paths));
            std::string path;
            ::soci::indicator path_ind = ::soci::i_ok;
            long long n = 0;
            q.run(
                sql, text,
                [&](::soci::statement& st) {
                    st.exchange(::soci::into(path, path_ind));
                    st.exchange(::soci::into(n));
                },
                [&] { d.by_path.push_back(path_count{path_ind == ::soci::i_ok ? path : std::string(), n}); });
        }
        if (recent > 0) {
            bound_query q(kind);
            const std::string text =
                "SELECT " + time_column_micros(kind) + ", path, method, " +
                (kind == dialect::sqlite ? "allowed" : "CAST(allowed AS INTEGER)") +
                ", count, \"limit\", rule_name FROM ratelimit_event WHERE key = " + q.text(key) +
                " AND " + q.raw_condition(r) + " ORDER BY timestamp DESC, id DESC LIMIT " +
                q.integer(recent);
            long long ts = 0, count = 0, limit = 0;
            int allowed = 0;
            std::string path, method, rule;
            ::soci::indicator pi = ::soci::i_ok, mi = ::soci::i_ok, ri = ::soci::i_ok;
            q.run(
                sql, text,
                [&](::soci::statement& st) {
                    st.exchange(::soci::into(ts));
                    st.exchange(::soci::into(path, pi));
                    st.exchange(::soci::into(method, mi));
                    st.exchange(::soci::into(allowed));
                    st.exchange(::soci::into(count));
                    st.exchange(::soci::into(limit));
                    st.exchange(::soci::into(rule, ri));
                },
                [&] {
                    d.recent_events.push_back(recent_event{
                        event_time{std::chrono::microseconds{ts}}, pi == ::soci::i_ok ? path : "",
                        mi == ::soci::i_ok ? method : "", allowed != 0, count, limit,
                        ri == ::soci::i_ok ? rule : "", outcome_of_allowed(allowed != 0)});
                });
        }
        return d;
    }

private:
    /// Top offenders from raw rows only (no rollups, or a window without a whole hour).
    std::vector<offender> raw_top_offenders(const analytics_detail::window_plan& plan, int limit) const {
        using namespace analytics_detail;
        bound_query q(kind);
        std::string text = "SELECT key, CAST(SUM(n) AS BIGINT) AS c FROM (";
        for (std::size_t i = 0; i < plan.raw.size(); ++i) {
            if (i > 0) text += " UNION ALL ";
            text += "SELECT key, COUNT(*) AS n FROM ratelimit_event WHERE " + q.blocked() + " AND " +
                    q.raw_condition(plan.raw[i]) + " GROUP BY key";
        }
        text += ") w GROUP BY key ORDER BY c DESC, key" + q.collate() + " ASC LIMIT " + q.integer(limit);
        std::vector<offender> out;
        std::string key;
        long long n = 0;
        q.run(
            sql, text,
            [&](::soci::statement& st) {
                st.exchange(::soci::into(key));
                st.exchange(::soci::into(n));
            },
            [&] { out.push_back(offender{key, n}); });
        return out;
    }

    /// Blocked events per key id in the raw edge ranges of `plan`, as one query
    /// (key_id, n) to use as a UNION ALL arm; empty when there are none. Grouped by
    /// key first, so the key table is joined once.
    static std::string raw_id_arm(analytics_detail::bound_query& q, const analytics_detail::window_plan& plan) {
        if (plan.raw.empty()) return {};
        std::string text = "SELECT k.id AS key_id, r.n FROM (SELECT key, COUNT(*) AS n FROM (";
        for (std::size_t i = 0; i < plan.raw.size(); ++i) {
            if (i > 0) text += " UNION ALL ";
            text += "SELECT key FROM ratelimit_event WHERE " + q.blocked() + " AND " + q.raw_condition(plan.raw[i]);
        }
        return text + ") e GROUP BY key) r JOIN ratelimit_rollup_key k ON k.key = r.key";
    }

    struct known_key {
        std::int64_t count = 0;           // lower bound; exact once it was read in every read-to-depth span
        std::int64_t seen_threshold = 0;  // sum of the thresholds of the spans it was read in
        std::uint64_t seen_low = 0;       // spans 0..63 it was read in
        std::vector<std::uint32_t> seen_high;  // spans from 64 on it was read in (long windows)

        bool seen(std::uint32_t span) const {
            if (span < 64) return (seen_low >> span & 1U) != 0;
            return std::find(seen_high.begin(), seen_high.end(), span) != seen_high.end();
        }
        void mark(std::uint32_t span) {
            if (span < 64) seen_low |= std::uint64_t{1} << span;
            else seen_high.push_back(span);
        }
    };

    /// Adds to the keys `open` their counters in the spans read to depth
    /// (threshold > 0) they were not read in: exact counts. PostgreSQL probes each
    /// missing (span, key) pair through the primary key (a LATERAL look-up, since
    /// the planner would otherwise scan whole spans); SQLite does the same with an IN
    /// list per span.
    void complete(const std::vector<analytics_detail::key_span>& spans, const std::vector<std::int64_t>& threshold,
                  const std::vector<std::int64_t>& open,
                  std::unordered_map<std::int64_t, known_key>& known) const {
        using namespace analytics_detail;
        bound_query q(kind);
        std::string text;
        if (kind == dialect::postgresql) {
            std::string ss, ls, bs, ks;
            for (const auto id : open) {
                const auto& k = known[id];
                for (std::size_t i = 0; i < spans.size(); ++i) {
                    if (threshold[i] == 0) continue;
                    if (k.seen(static_cast<std::uint32_t>(i))) continue;
                    const char* sep = ss.empty() ? "" : ",";
                    ss += sep + std::to_string(i);
                    ls += sep + std::to_string(spans[i].level);
                    bs += sep + std::to_string(spans[i].bucket);
                    ks += sep + std::to_string(id);
                }
            }
            if (ss.empty()) return;
            text = "SELECT p.s, p.k, x.blocked FROM unnest(CAST(" + q.text("{" + ss + "}") + " AS BIGINT[]), CAST(" +
                   q.text("{" + ls + "}") + " AS INTEGER[]), CAST(" + q.text("{" + bs + "}") +
                   " AS BIGINT[]), CAST(" + q.text("{" + ks + "}") +
                   " AS BIGINT[])) AS p(s, l, b, k), LATERAL (SELECT blocked FROM ratelimit_rollup_key_span"
                   " WHERE level = p.l AND bucket = p.b AND key_id = p.k OFFSET 0) x";
        } else {
            for (std::size_t i = 0; i < spans.size(); ++i) {
                if (threshold[i] == 0) continue;
                if (!text.empty()) text += " UNION ALL ";
                text += "SELECT " + q.integer(static_cast<std::int64_t>(i)) +
                        " AS s, key_id, blocked FROM ratelimit_rollup_key_span WHERE level = " +
                        q.integer(spans[i].level) + " AND bucket = " + q.integer(spans[i].bucket) + " AND " +
                        in_id_set(q, "key_id", open);
            }
            if (text.empty()) return;
        }
        q.run_int3(sql, text, [&](long long s, long long id, long long n) {
            auto& k = known[id];
            const auto i = static_cast<std::uint32_t>(s);
            if (!k.seen(i)) k.count += n;
        });
    }

    /// Top offenders through the key spans: the threshold algorithm. Each round reads
    /// the `depth` largest counters of every span of the window (plus the raw edges,
    /// whole); a key read nowhere has at most T = the sum over spans of the depth-th
    /// counter (0 for a span read to its end). Once the N-th largest known lower bound
    /// exceeds T, the top N are among the known keys: those that can still reach it get
    /// their missing spans looked up, and are sorted by exact count, then key. Rounds
    /// read 4 times deeper; after 4, one grouped query over every span does it.
    std::vector<offender> span_top_offenders(const analytics_detail::window_plan& plan, std::size_t limit) const {
        using namespace analytics_detail;
        // The hours that hold per-key data bound the spans (an open or very long window
        // would otherwise split into spans up to year 9999).
        std::vector<key_span> spans;
        {
            bound_query q(kind);
            long long lo = 0, hi = 0;
            ::soci::indicator lo_ind = ::soci::i_null, hi_ind = ::soci::i_null;
            q.run(
                sql,
                "SELECT (SELECT MIN(bucket) FROM ratelimit_rollup_key_span WHERE level = 0),"
                " (SELECT MAX(bucket) FROM ratelimit_rollup_key_span WHERE level = 0)",
                [&](::soci::statement& st) {
                    st.exchange(::soci::into(lo, lo_ind));
                    st.exchange(::soci::into(hi, hi_ind));
                },
                [] {});
            if (lo_ind == ::soci::i_ok && hi_ind == ::soci::i_ok) {
                const std::int64_t from = std::max<std::int64_t>(plan.hour_from, lo);
                const std::int64_t to = plan.hour_to ? std::min<std::int64_t>(*plan.hour_to, hi + 1) : hi + 1;
                spans = split_spans(from, to);
            }
        }
        // The raw edges, per key id, whole.
        std::vector<std::pair<std::int64_t, std::int64_t>> raw;
        if (!plan.raw.empty()) {
            bound_query q(kind);
            const std::string text = raw_id_arm(q, plan);
            long long id = 0, n = 0;
            q.run(
                sql, text,
                [&](::soci::statement& st) {
                    st.exchange(::soci::into(id));
                    st.exchange(::soci::into(n));
                },
                [&] { raw.emplace_back(id, n); });
        }
        std::size_t depth = list_depth > 0 ? list_depth : 2 * limit + 16;
        for (int round = 0; round < 4; ++round, depth *= 4) {
            std::unordered_map<std::int64_t, known_key> known;
            known.reserve(raw.size() + std::min<std::size_t>(spans.size() * depth, 1U << 16));
            for (const auto& [id, n] : raw) known[id].count += n;
            std::vector<std::int64_t> threshold(spans.size(), 0);
            if (!spans.empty()) {
                bound_query q(kind);
                std::string text;
                for (std::size_t i = 0; i < spans.size(); ++i) {
                    if (i > 0) text += " UNION ALL ";
                    text += "SELECT * FROM (SELECT " + q.integer(static_cast<std::int64_t>(i)) +
                            " AS s, key_id, blocked FROM ratelimit_rollup_key_span WHERE level = " +
                            q.integer(spans[i].level) + " AND bucket = " + q.integer(spans[i].bucket) +
                            " ORDER BY blocked DESC LIMIT " + q.integer(static_cast<std::int64_t>(depth)) +
                            ") AS t" + std::to_string(i);
                }
                std::vector<std::size_t> rows(spans.size(), 0);
                std::vector<std::int64_t> least(spans.size(), 0);  // of the rows read (the depth-th largest)
                std::vector<std::tuple<std::uint32_t, std::int64_t, std::int64_t>> read;
                q.run_int3(sql, text, [&](long long s, long long id, long long n) {
                    const auto i = static_cast<std::uint32_t>(s);
                    least[i] = ++rows[i] == 1 ? n : std::min<std::int64_t>(least[i], n);
                    read.emplace_back(i, id, n);
                });
                for (std::size_t i = 0; i < spans.size(); ++i)
                    if (rows[i] >= depth) threshold[i] = least[i];
                for (const auto& [i, key_id, count] : read) {
                    auto& k = known[key_id];
                    k.count += count;
                    k.seen_threshold += threshold[i];
                    k.mark(i);
                }
            }
            std::int64_t unread = 0;  // T
            for (const auto t : threshold) unread += t;
            // The N-th largest lower bound.
            std::int64_t nth = 0;
            if (known.size() >= limit) {
                std::vector<std::int64_t> lows;
                lows.reserve(known.size());
                for (const auto& [id, k] : known) lows.push_back(k.count);
                std::nth_element(lows.begin(), lows.begin() + static_cast<std::ptrdiff_t>(limit - 1), lows.end(),
                                 std::greater<>());
                nth = lows[limit - 1];
            }
            if (unread > 0 && unread >= nth) continue;  // an unread key could still make the top N
            // Keys that can reach the N-th count: complete their spans read to depth.
            std::vector<std::int64_t> open;
            for (const auto& [id, k] : known)
                if (k.count + (unread - k.seen_threshold) >= nth && k.seen_threshold < unread) open.push_back(id);
            if (!open.empty()) complete(spans, threshold, open, known);
            // Exact counts now for every key that can reach `nth`; keep those at or above
            // the N-th exact count (ties included), name them, sort.
            std::vector<std::pair<std::int64_t, std::int64_t>> exact;  // (count, id)
            for (const auto& [id, k] : known)
                if (k.count + (unread - k.seen_threshold) >= nth && k.count > 0) exact.emplace_back(k.count, id);
            std::sort(exact.begin(), exact.end(), std::greater<>());
            if (exact.size() > limit) {
                const std::int64_t cut = exact[limit - 1].first;
                exact.erase(std::find_if(exact.begin() + static_cast<std::ptrdiff_t>(limit), exact.end(),
                                         [&](const auto& e) { return e.first < cut; }),
                            exact.end());
            }
            std::vector<offender> out;
            if (exact.empty()) return out;
            std::unordered_map<std::int64_t, std::int64_t> count_of;
            std::vector<std::int64_t> ids;
            for (const auto& [count, id] : exact) {
                count_of[id] = count;
                ids.push_back(id);
            }
            bound_query q(kind);
            const std::string text = "SELECT id, key FROM ratelimit_rollup_key WHERE " + in_id_set(q, "id", ids);
            long long id = 0;
            std::string key;
            q.run(
                sql, text,
                [&](::soci::statement& st) {
                    st.exchange(::soci::into(id));
                    st.exchange(::soci::into(key));
                },
                [&] { out.push_back(offender{key, count_of[id]}); });
            std::sort(out.begin(), out.end(), [](const offender& a, const offender& b) {
                return a.blocked_count != b.blocked_count ? a.blocked_count > b.blocked_count : a.key < b.key;
            });
            if (out.size() > limit) out.resize(limit);
            return out;
        }
        // Counts too flat for the lists to separate the top N: group every span.
        bound_query q(kind);
        std::string text = "SELECT k.key, w.c FROM (SELECT key_id, CAST(SUM(n) AS BIGINT) AS c FROM (";
        bool first = true;
        for (const auto& sp : spans) {
            if (!first) text += " UNION ALL ";
            first = false;
            text += "SELECT key_id, blocked AS n FROM ratelimit_rollup_key_span WHERE level = " +
                    q.integer(sp.level) + " AND bucket = " + q.integer(sp.bucket);
        }
        if (!plan.raw.empty()) text += (first ? "" : " UNION ALL ") + raw_id_arm(q, plan);
        text += ") u GROUP BY key_id) w JOIN ratelimit_rollup_key k ON k.id = w.key_id ORDER BY w.c DESC, k.key" +
                q.collate() + " ASC LIMIT " + q.integer(static_cast<std::int64_t>(limit));
        std::vector<offender> out;
        std::string key;
        long long n = 0;
        q.run(
            sql, text,
            [&](::soci::statement& st) {
                st.exchange(::soci::into(key));
                st.exchange(::soci::into(n));
            },
            [&] { out.push_back(offender{key, n}); });
        return out;
    }
};

// ---- SPEC 7 names on the event store ------------------------------------------------
// Each opens one connection of the store for the call (see event_store::open_session);
// use sql_analytics directly to run several on one session. Throws storage_error
// when the database fails, std::invalid_argument for a negative limit/recent.

inline traffic_summary get_traffic_summary(const event_store& store, int days = 1,
                                           event_time now = event_clock_now()) {
    auto sql = store.open_session();
    return sql_analytics{*sql, store.sql_dialect()}.traffic_summary_at(days, now);
}

inline std::vector<offender> get_top_offenders(const event_store& store, int days = 7,
                                               int limit = 100, event_time now = event_clock_now()) {
    auto sql = store.open_session();
    return sql_analytics{*sql, store.sql_dialect()}.top_offenders_at(days, limit, now);
}

inline std::vector<rule_hits> get_rule_hit_counts(const event_store& store, int days = 7,
                                                  int limit = 50, event_time now = event_clock_now()) {
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
