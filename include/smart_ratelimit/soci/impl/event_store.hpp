// smart_ratelimit/soci/impl/event_store.hpp
// The out-of-line bodies of event_store (included only at the bottom of
// soci/event_store.hpp): connecting, the batch write with bisection over the
// dialect's writer (creating missing day partitions on PostgreSQL), count and
// cleanup, which drops whole day partitions where it can.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <algorithm>
#include <exception>
#include <limits>
#include <memory>
#include <mutex>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include <soci/soci.h>
#include <soci/postgresql/soci-postgresql.h>
#include <soci/sqlite3/soci-sqlite3.h>

#include <smart_ratelimit/soci/detail/partitions.hpp>
#include <smart_ratelimit/soci/detail/pg_wait.hpp>
#include <smart_ratelimit/soci/detail/sanitize.hpp>
#include <smart_ratelimit/soci/detail/sql_time.hpp>

namespace smart_ratelimit::soci {

inline bool event_store::ensure_connected() noexcept {
    if (state_->conn) return true;
    try {
        auto c = std::make_unique<connection>();
        // The rollup triggers intern new keys and then read them back in the same
        // statement; under a stricter default (a server or database set to
        // repeatable read) a key another writer interned meanwhile would be
        // invisible to that read and its counts lost. The writer's own session
        // therefore always runs at read committed.
        session_settings settings;
        settings.statement_timeout = state_->options.write_timeout;
        c->sql = soci::open_session(state_->url, settings);
        if (sql_dialect() == dialect::postgresql) {
            PGconn* pg = pg_connection(*c);
            if (PQsetnonblocking(pg, 1) != 0)
                throw storage_error("cannot make the writer connection non-blocking");
            PGresult* res = nullptr;
            const auto w = detail::pg_exec(
                pg, "SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL READ COMMITTED",
                std::chrono::steady_clock::now() + state_->options.write_timeout, &res);
            const bool ok = w == detail::pg_wait::ready && res != nullptr &&
                            PQresultStatus(res) == PGRES_COMMAND_OK;
            PQclear(res);
            if (!ok)
                throw storage_error(
                    w == detail::pg_wait::timed_out
                        ? "PostgreSQL did not answer within " +
                              std::to_string(state_->options.write_timeout.count()) + " ms"
                        : std::string(PQerrorMessage(pg)));
        }
        state_->conn = std::move(c);
        ++state_->connects;
        return true;
    } catch (const std::exception& e) {
        detail::note_error(state_->last_error, e.what());
        return false;
    } catch (...) {
        detail::note_error(state_->last_error, "unknown error while connecting");
        return false;
    }
}

inline PGconn* event_store::pg_connection(connection& c) noexcept {
    return static_cast<::soci::postgresql_session_backend*>(c.sql->get_backend())->conn_;
}

// After a failure: does the store itself still work (connection up, table there)?
// Drops a broken connection so the next batch reconnects.
inline bool event_store::store_answers() noexcept {
    if (!state_->conn) return false;
    if (sql_dialect() == dialect::postgresql) {
        // The probe waits no longer than a batch would.
        PGconn* pg = pg_connection(*state_->conn);
        PGresult* res = nullptr;
        const auto w =
            detail::pg_exec(pg, "SELECT 1 FROM ratelimit_event WHERE 1 = 0",
                            std::chrono::steady_clock::now() + state_->options.write_timeout, &res);
        const bool table =
            w == detail::pg_wait::ready && res != nullptr && PQresultStatus(res) == PGRES_TUPLES_OK;
        if (!table && w == detail::pg_wait::ready)
            detail::note_error(state_->last_error,
                               res != nullptr ? PQresultErrorMessage(res) : PQerrorMessage(pg));
        PQclear(res);
        // A lost connection, or one left mid-command by a timeout, is dropped; a
        // missing table keeps it.
        if (w != detail::pg_wait::ready || PQstatus(pg) != CONNECTION_OK) drop_connection();
        return table;
    }
    auto& sql = *state_->conn->sql;
    try {
        int one = 0;
        ::soci::indicator ind = ::soci::i_null;
        sql << "SELECT 1 FROM ratelimit_event WHERE 1 = 0", ::soci::into(one, ind);
        return true;
    } catch (const std::exception& e) {
        detail::note_error(state_->last_error, e.what());
    } catch (...) {}
    // The probe failed: a lost connection is dropped, a missing table keeps it.
    try {
        int one = 0;
        sql << "SELECT 1", ::soci::into(one);
    } catch (...) {
        drop_connection();
    }
    return false;
}

inline void event_store::write_sqlite(std::span<const event* const> rows) {
    connection& c = *state_->conn;
    auto* db = static_cast<::soci::sqlite3_session_backend*>(c.sql->get_backend())->conn_;
    c.sqlite.write(db, rows, state_->last_error);
}

inline void event_store::write_postgresql(std::span<const event* const> rows) {
    PGconn* pg = pg_connection(*state_->conn);
    try {
        try {
            state_->copy.write(pg, rows, state_->last_error, state_->options.write_timeout);
        } catch (const detail::copy_check_violation&) {
            // Most likely a day without its partition: create the batch's days, then
            // send the batch once more (nothing of the first COPY was written).
            create_partitions(pg, rows);
            state_->copy.write(pg, rows, state_->last_error, state_->options.write_timeout);
        }
    } catch (const detail::copy_check_violation& v) {
        // A CHECK constraint, or a day the table cannot hold.
        detail::note_error(state_->last_error, v.message);
        throw std::runtime_error("row rejected");
    } catch (const detail::store_failure& f) {
        if (f.broken) drop_connection();  // mid-command: unusable
        throw;
    }
}

// The partitions of the rows' UTC days that are missing, at most 32 days per
// statement (one transaction each, so the creation lock and the new tables' locks
// are held only for it), each statement within write_timeout: a batch of imported
// history may need hundreds. Throws store_failure when the server fails (no CREATE
// privilege, no answer) and copy_check_violation when the database has no
// partitions (no ratelimit_event_partition: before events v4).
inline void event_store::create_partitions(PGconn* pg, std::span<const event* const> rows) {
    constexpr std::size_t days_per_statement = 32;
    std::vector<std::int64_t> days;
    days.reserve(rows.size());
    for (const event* e : rows) days.push_back(detail::utc_day(e->timestamp));
    std::sort(days.begin(), days.end());
    days.erase(std::unique(days.begin(), days.end()), days.end());
    for (std::size_t from = 0; from < days.size(); from += days_per_statement) {
        std::string text = "SELECT ratelimit_event_partition(CAST(d AS date)) FROM unnest(CAST('{";
        for (std::size_t i = from; i < std::min(days.size(), from + days_per_statement); ++i)
            text += detail::day_text(days[i]) + ",";
        text.back() = '}';
        text += "' AS text[])) AS d";
        PGresult* res = nullptr;
        const auto w =
            detail::pg_exec(pg, text.c_str(),
                            std::chrono::steady_clock::now() + state_->options.write_timeout, &res);
        const bool ok =
            w == detail::pg_wait::ready && res != nullptr && PQresultStatus(res) == PGRES_TUPLES_OK;
        const char* state = res != nullptr ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : nullptr;
        const bool no_function = state != nullptr && std::string_view(state) == "42883";
        if (!ok)
            detail::note_error(state_->last_error,
                               res != nullptr ? PQresultErrorMessage(res) : PQerrorMessage(pg));
        PQclear(res);
        if (ok) continue;
        if (w != detail::pg_wait::ready) throw detail::store_failure{true};
        if (no_function) throw detail::copy_check_violation{state_->last_error};
        throw detail::store_failure{};
    }
}

namespace detail {
/// True when ratelimit_event is a partitioned table (PostgreSQL, events v4).
inline bool is_partitioned_event_log(::soci::session& sql) {
    int partitioned = 0;
    sql << "SELECT COUNT(*) FROM pg_partitioned_table"
           " WHERE partrelid = to_regclass('ratelimit_event')",
        ::soci::into(partitioned);
    return partitioned != 0;
}
}  // namespace detail

inline void event_store::create_partitions_ahead(::soci::session& sql) {
    try {
        if (!detail::is_partitioned_event_log(sql)) return;
        int created = 0;
        sql << "SELECT COUNT(*) FROM generate_series(0, " + std::to_string(partition_days_ahead) +
                   ") AS i WHERE ratelimit_event_partition(CAST(timezone('UTC', now()) AS date) + "
                   "i)",
            ::soci::into(created);
    } catch (const ::soci::soci_error& e) {
        throw storage_error(std::string("migrate: creating the partitions ahead failed: ") +
                            e.what());
    }
}

inline void event_store::write_rows(std::span<const event* const> rows) {
    if (!state_->conn) throw detail::store_failure{};
    if (sql_dialect() == dialect::sqlite)
        write_sqlite(rows);
    else
        write_postgresql(rows);
}

inline bool event_store::write_bisect(std::span<const event* const> rows, batch_result& r,
                                      std::size_t& done) noexcept {
    if (rows.empty()) return true;
    bool store_failed = false;
    try {
        write_rows(rows);
        r.written += rows.size();
        done += rows.size();
        return true;
    } catch (const detail::store_failure&) {
        store_failed = true;
    } catch (...) {}
    // store_answers() also drops a broken connection, so the next batch reconnects.
    if (!store_answers() || store_failed) return false;
    if (rows.size() == 1) {
        ++r.invalid;
        ++done;
        return true;
    }
    const std::size_t half = rows.size() / 2;
    if (!write_bisect(rows.first(half), r, done)) return false;
    return write_bisect(rows.subspan(half), r, done);
}

inline batch_result event_store::write_batch(std::span<const event> batch) noexcept {
    batch_result r;
    if (batch.empty()) return r;
    std::lock_guard lock(state_->mutex);
    auto& rows = state_->rows;
    auto& cleaned = state_->cleaned;
    try {
        rows.clear();
        cleaned.clear();
        cleaned.reserve(batch.size());  // pointers into it stay valid
        rows.reserve(batch.size());
    } catch (...) {
        r.failed = batch.size();
        return r;
    }
    // Sanitize in order; an unstorable timestamp, or an outcome that disagrees with
    // `allowed`, makes the row invalid. Invalid rows are resolved in place, so a later
    // store failure still fails a tail.
    std::vector<std::size_t> invalid_after;  // invalid row: how many valid rows precede it
    try {
        for (const event& e : batch) {
            if (!detail::storable_time(e.timestamp) || !detail::consistent_outcome(e)) {
                invalid_after.push_back(rows.size());
                continue;
            }
            if (detail::clean_event(e)) {
                rows.push_back(&e);
            } else {
                cleaned.push_back(detail::sanitized_event(e));
                rows.push_back(&cleaned.back());
            }
        }
    } catch (...) {
        r.failed = batch.size();
        return r;
    }
    std::size_t done = 0;
    const bool ok = ensure_connected() && write_bisect(rows, r, done);
    if (ok) {
        r.invalid += invalid_after.size();
        return r;
    }
    // Store failure after `done` rows: invalid timestamps before that point count as
    // invalid, everything from the failing row on is failed.
    std::size_t invalid_before = 0;
    for (const std::size_t pos : invalid_after)
        if (pos <= done) ++invalid_before;
    r.invalid += invalid_before;
    r.failed = batch.size() - r.written - r.invalid;
    return r;
}

inline std::int64_t event_store::count(const event_query& q) const {
    auto sql = open_session();
    const dialect d = sql_dialect();
    std::string text = "SELECT COUNT(*) FROM ratelimit_event WHERE 1 = 1";
    std::string since, until, key;
    if (q.since) text += " AND timestamp >= " + time_param(d, ":since");
    if (q.until) text += " AND timestamp <= " + time_param(d, ":until");
    if (q.key) text += " AND key = :key";
    long long n = 0;
    try {
        ::soci::statement st(*sql);
        st.exchange(::soci::into(n));
        if (q.since) {
            since = time_value(d, *q.since);
            st.exchange(::soci::use(since, "since"));
        }
        if (q.until) {
            until = time_value(d, *q.until);
            st.exchange(::soci::use(until, "until"));
        }
        if (q.key) {
            key = *q.key;
            st.exchange(::soci::use(key, "key"));
        }
        st.alloc();
        st.prepare(text);
        st.define_and_bind();
        st.execute(true);
    } catch (const ::soci::soci_error& e) {
        throw storage_error(std::string("counting ratelimit_event failed: ") + e.what());
    }
    return n;
}

namespace detail {

/// Which rollup tables a database has (the analytics migrations' versions differ).
struct rollup_tables {
    bool hour = false, rule_hour = false, key_hour = false, key_day = false, key_span = false;
};

/// The hours [first, second) of one run of consecutive dropped days.
using hour_run = std::pair<std::int64_t, std::int64_t>;

/// Removes the hours of `runs` from the rollups, as the DELETE triggers would for
/// every row of them (the rows go with their partitions, which fires no trigger). The
/// hour-keyed counters of those hours, and every key span wholly inside a run, are
/// deleted by range on their keys; a span reaching over an end of a run (spans of 16,
/// 64 and 256 hours do not align with days) loses the per-key hour counts of the
/// hours it shares with the run, at most two spans per level and key. So the cost
/// grows with the keys at the runs' ends, not with the rows or spans inside.
///
/// Writers run meanwhile (the partitions are detached already) and their triggers
/// update the spans of the current hour, which can be a span reaching over a run's
/// end when the retention is short. Those spans are therefore updated last: their
/// shares are read into a temporary table first, while the hour counts are still
/// there, then everything inside the runs is deleted, and only then are the shares
/// subtracted, so the spans' row locks are held for one statement and the commit.
inline void forget_hours(::soci::session& sql, std::span<const hour_run> runs, rollup_tables t) {
    constexpr int levels = 5;  // spans of 4^level hours; level 0 is one hour per key
    if (t.key_span) {
        sql << "CREATE TEMPORARY TABLE ratelimit_span_share (level int NOT NULL,"
               " bucket bigint NOT NULL, key_id bigint NOT NULL, blocked bigint NOT NULL)"
               " ON COMMIT DROP";
        for (const auto& [lo, hi] : runs) {
            for (int level = 1; level < levels; ++level) {
                const int shift = 2 * level;
                for (const std::int64_t b : {lo >> shift, (hi - 1) >> shift}) {
                    const std::int64_t from = b << shift, to = (b + 1) << shift;
                    if (from >= lo && to <= hi) continue;  // wholly inside: deleted below
                    const long long a = std::max(lo, from), z = std::min(hi, to), span = b;
                    const int lv = level;
                    sql << "INSERT INTO ratelimit_span_share (level, bucket, key_id, blocked)"
                           " SELECT :lv, :b, key_id, SUM(blocked) FROM ratelimit_rollup_key_span"
                           " WHERE level = 0 AND bucket >= :a AND bucket < :z GROUP BY key_id",
                        ::soci::use(lv, "lv"), ::soci::use(span, "b"), ::soci::use(a, "a"),
                        ::soci::use(z, "z");
                    if ((lo >> shift) == ((hi - 1) >> shift)) break;  // one span holds the run
                }
            }
        }
    }
    const auto range = [&](const char* table, const char* column, long long a, long long b) {
        sql << std::string("DELETE FROM ") + table + " WHERE " + column + " >= :a AND " + column +
                   " < :b",
            ::soci::use(a, "a"), ::soci::use(b, "b");
    };
    for (const auto& [lo, hi] : runs) {
        if (t.hour) range("ratelimit_rollup_hour", "hour", lo, hi);
        if (t.rule_hour) range("ratelimit_rollup_rule_hour", "hour", lo, hi);
        if (t.key_hour) range("ratelimit_rollup_key_hour", "hour", lo, hi);
        if (t.key_day) range("ratelimit_rollup_key_day", "day", lo / 24, hi / 24);
        if (!t.key_span) continue;
        for (int level = 0; level < levels; ++level) {
            const int shift = 2 * level;
            const std::int64_t size = std::int64_t{1} << shift;
            const long long first = (lo + size - 1) >> shift, end = hi >> shift;  // wholly inside
            if (first >= end) continue;
            const int lv = level;
            sql << "DELETE FROM ratelimit_rollup_key_span WHERE level = :lv AND bucket >= :a"
                   " AND bucket < :b",
                ::soci::use(lv, "lv"), ::soci::use(first, "a"), ::soci::use(end, "b");
        }
    }
    if (!t.key_span) return;
    // Two runs may reach into the same span: their shares add up.
    sql << "UPDATE ratelimit_rollup_key_span r SET blocked = r.blocked - s.blocked"
           " FROM (SELECT level, bucket, key_id, SUM(blocked) AS blocked"
           "  FROM ratelimit_span_share GROUP BY level, bucket, key_id) s"
           " WHERE r.level = s.level AND r.bucket = s.bucket AND r.key_id = s.key_id";
    sql << "DELETE FROM ratelimit_rollup_key_span r USING"
           " (SELECT DISTINCT level, bucket FROM ratelimit_span_share) s"
           " WHERE r.level = s.level AND r.bucket = s.bucket AND r.blocked <= 0";
}

}  // namespace detail

// The day partitions of ratelimit_event wholly before day `before_day`, oldest
// first, at most `limit`. Partitions not named by the scheme are never listed.
inline std::vector<std::string> event_store::old_partitions(::soci::session& sql,
                                                            std::int64_t before_day, int limit) {
    const std::string bound = detail::partition_name(before_day);
    std::vector<std::string> names;
    const ::soci::rowset<std::string> rs =
        (sql.prepare << "SELECT CAST(c.relname AS text) FROM pg_inherits i"
                        " JOIN pg_class c ON c.oid = i.inhrelid"
                        " WHERE i.inhparent = to_regclass('ratelimit_event')"
                        " AND c.relname ~ '^" +
                            std::string(detail::partition_prefix) +
                            "[0-9]{8}$'"
                            " AND CAST(c.relname AS text) < :bound ORDER BY 1 LIMIT " +
                            std::to_string(limit),
         ::soci::use(bound, "bound"));
    for (const auto& name : rs)
        if (detail::partition_day(name)) names.push_back(name);
    return names;
}

inline event_time event_store::cleanup_cutoff(int older_than_days, event_time now) {
    if (older_than_days < 0)
        throw config_error("cleanup_old: older_than_days must be >= 0, got " +
                           std::to_string(older_than_days));
    return now - std::chrono::hours{24} * older_than_days;
}

inline std::vector<std::string> event_store::droppable_partitions(int older_than_days,
                                                                  event_time now) const {
    const event_time cutoff = cleanup_cutoff(older_than_days, now);
    if (sql_dialect() != dialect::postgresql || cutoff <= detail::min_event_time) return {};
    try {
        auto sql = open_session();
        if (!detail::is_partitioned_event_log(*sql)) return {};
        std::vector<std::string> names;
        for (auto& [name, day] : detached_tables(*sql)) names.push_back(std::move(name));
        for (auto& name :
             old_partitions(*sql, detail::utc_day(cutoff), std::numeric_limits<int>::max()))
            names.push_back(std::move(name));
        return names;
    } catch (const ::soci::soci_error& e) {
        throw storage_error(std::string("listing the event log's old partitions failed: ") +
                            e.what());
    }
}

inline std::int64_t event_store::detached_events() const {
    if (sql_dialect() != dialect::postgresql) return 0;
    try {
        auto sql = open_session();
        long long rows = 0;
        for (const auto& [name, day] : detached_tables(*sql)) {
            long long n = 0;
            *sql << "SELECT COUNT(*) FROM \"" + name + "\"", ::soci::into(n);
            rows += n;
        }
        return rows;
    } catch (const ::soci::soci_error& e) {
        throw storage_error(std::string("counting the events of detached partitions failed: ") +
                            e.what());
    }
}

inline std::vector<std::pair<std::string, std::int64_t>> event_store::detached_tables(
    ::soci::session& sql) {
    std::vector<std::pair<std::string, std::int64_t>> gone;
    const ::soci::rowset<std::string> rs =
        (sql.prepare << "SELECT CAST(relname AS text) FROM pg_class"
                        " WHERE relkind = 'r' AND relname ~ '^" +
                            std::string(detail::detached_prefix) +
                            "[0-9]{8}$'"
                            " AND relnamespace = (SELECT relnamespace FROM pg_class"
                            "  WHERE oid = to_regclass('ratelimit_event')) ORDER BY 1");
    for (const auto& name : rs)
        if (const auto day = detail::partition_day(name, detail::detached_prefix))
            gone.emplace_back(name, *day);
    return gone;
}

namespace detail {
/// Serializes cleanups (detaching and finishing), whatever the process: a
/// transaction-scoped advisory lock. Writers never take it.
inline void lock_cleanup(::soci::session& sql) {
    int taken = 0;
    sql << "SELECT COUNT(*) FROM (SELECT pg_advisory_xact_lock(7305218042361938944)) AS l",
        ::soci::into(taken);
}
}  // namespace detail

// Drops the day partitions wholly before day `before_day` in two steps, so that the
// exclusive lock on ratelimit_event is held only for catalog changes:
//   1. detach: under that lock, at most 32 days per transaction are detached and
//      renamed ratelimit_event_gone_pYYYYMMDD (milliseconds a day, whatever the rows);
//   2. finish: one transaction, without the parent's lock while writers go on,
//      corrects the rollups for all the detached days at once (the spans reaching
//      over a run's ends only once per run, not once per day) and drops them.
// A detached day is either in a gone table or gone with its rollups corrected: a
// cleanup interrupted between the steps leaves gone tables, which the next cleanup
// finishes first. Both steps take an advisory lock first, so two cleanups at once
// never detach or subtract the same day twice. The parent's lock is waited for at
// most cleanup_lock_timeout, three times: every session that asks for the table
// meanwhile queues behind the request, so a long query holding it must not make the
// writers wait as long.
inline void event_store::drop_old_partitions(::soci::session& sql, std::int64_t before_day,
                                             cleanup_result& r) const {
    finish_detached(sql, r);
    while (detach_old_partitions(sql, before_day, r)) finish_detached(sql, r);
}

inline bool event_store::detach_old_partitions(::soci::session& sql, std::int64_t before_day,
                                               const cleanup_result& r) const {
    constexpr int per_transaction = 32;
    constexpr int lock_attempts = 3;
    if (old_partitions(sql, before_day, 1).empty()) return false;  // the usual daily run
    const std::string lock_timeout =
        "SET LOCAL lock_timeout = " + std::to_string(state_->options.cleanup_lock_timeout.count());
    for (int failed_locks = 0;;) {
        ::soci::transaction tx(sql);
        detail::lock_cleanup(sql);  // unbounded: it waits for another cleanup only
        sql << lock_timeout;
        try {
            sql << "LOCK TABLE ratelimit_event IN ACCESS EXCLUSIVE MODE";
        } catch (const ::soci::postgresql_soci_error& e) {
            if (e.sqlstate() != "55P03") throw;
            tx.rollback();
            if (++failed_locks == lock_attempts)
                throw storage_error(
                    "cleanup: ratelimit_event stayed locked by another session (a long query "
                    "or an open transaction) for " +
                    std::to_string(lock_attempts) + " waits of " +
                    std::to_string(state_->options.cleanup_lock_timeout.count()) + " ms; dropped " +
                    std::to_string(r.partitions_dropped) +
                    " day partition(s) so far, run it again later");
            std::this_thread::sleep_for(std::chrono::milliseconds{100});  // let the queue drain
            continue;
        }
        // Read under the lock: the list another cleanup left is current.
        const std::vector<std::string> names = old_partitions(sql, before_day, per_transaction);
        for (const auto& name : names) {
            sql << "ALTER TABLE ratelimit_event DETACH PARTITION \"" + name + "\"";
            sql << "ALTER TABLE \"" + name + "\" RENAME TO \"" +
                       detail::detached_partition_name(*detail::partition_day(name)) + "\"";
        }
        tx.commit();
        return !names.empty();
    }
}

inline void event_store::finish_detached(::soci::session& sql, cleanup_result& r) {
    ::soci::transaction tx(sql);
    detail::lock_cleanup(sql);
    const auto gone = detached_tables(sql);  // under the lock: no other cleanup is finishing them
    if (gone.empty()) {
        tx.commit();
        return;
    }
    int hour = 0, rule_hour = 0, span = 0, key_hour = 0, key_day = 0;
    sql << "SELECT CAST(to_regclass('ratelimit_rollup_hour') IS NOT NULL AS int),"
           " CAST(to_regclass('ratelimit_rollup_rule_hour') IS NOT NULL AS int),"
           " CAST(to_regclass('ratelimit_rollup_key_span') IS NOT NULL AS int),"
           " CAST(to_regclass('ratelimit_rollup_key_hour') IS NOT NULL AS int),"
           " CAST(to_regclass('ratelimit_rollup_key_day') IS NOT NULL AS int)",
        ::soci::into(hour), ::soci::into(rule_hour), ::soci::into(span), ::soci::into(key_hour),
        ::soci::into(key_day);
    // The detached days as runs of consecutive days, in hours.
    std::vector<detail::hour_run> runs;
    for (const auto& [name, day] : gone) {
        if (!runs.empty() && runs.back().second == day * 24)
            runs.back().second += 24;
        else
            runs.emplace_back(day * 24, day * 24 + 24);
    }
    // The rows dropped: the hour counters of the days hold every event of them
    // (exact, and no scan); without rollups, counted.
    long long rows = 0;
    if (hour) {
        for (const auto& run : runs) {
            const long long lo = run.first, hi = run.second;
            long long n = 0;
            sql << "SELECT CAST(COALESCE(SUM(total), 0) AS bigint) FROM ratelimit_rollup_hour"
                   " WHERE hour >= :lo AND hour < :hi",
                ::soci::into(n), ::soci::use(lo, "lo"), ::soci::use(hi, "hi");
            rows += n;
        }
    } else {
        for (const auto& [name, day] : gone) {
            long long n = 0;
            sql << "SELECT COUNT(*) FROM \"" + name + "\"", ::soci::into(n);
            rows += n;
        }
    }
    detail::forget_hours(sql, runs,
                         {.hour = hour != 0,
                          .rule_hour = rule_hour != 0,
                          .key_hour = key_hour != 0,
                          .key_day = key_day != 0,
                          .key_span = span != 0});
    std::string drop = "DROP TABLE ";
    for (const auto& [name, day] : gone) drop += (drop.size() > 11 ? ", \"" : "\"") + name + "\"";
    sql << drop;
    tx.commit();
    r.deleted += rows;
    r.partitions_dropped += static_cast<std::int64_t>(gone.size());
}

inline cleanup_result event_store::cleanup(int older_than_days, int batch_size,
                                           event_time now) const {
    if (batch_size <= 0)
        throw config_error("cleanup_old: batch_size must be > 0, got " +
                           std::to_string(batch_size));
    const event_time cutoff = cleanup_cutoff(older_than_days, now);
    const dialect d = sql_dialect();
    const std::string cutoff_value = time_value(d, cutoff);
    cleanup_result r;
    if (cutoff <= detail::min_event_time) return r;
    auto sql = open_session();
    const std::string select_ids = "SELECT id FROM ratelimit_event WHERE timestamp < " +
                                   time_param(d, ":cutoff") + " LIMIT " +
                                   std::to_string(batch_size);
    std::string text = "DELETE FROM ratelimit_event WHERE id IN (" + select_ids + ")";
    try {
        const bool partitioned = d == dialect::postgresql && detail::is_partitioned_event_log(*sql);
        if (partitioned) {
            drop_old_partitions(*sql, detail::utc_day(cutoff), r);
            // id alone is indexed in no partition: the timestamp prunes to the old ones.
            text = "DELETE FROM ratelimit_event WHERE timestamp < " + time_param(d, ":before") +
                   " AND id IN (" + select_ids + ")";
        }
        for (;;) {
            ::soci::transaction tx(*sql);
            ::soci::statement st =
                partitioned
                    ? ::soci::statement((sql->prepare << text, ::soci::use(cutoff_value, "before"),
                                         ::soci::use(cutoff_value, "cutoff")))
                    : ::soci::statement(
                          (sql->prepare << text, ::soci::use(cutoff_value, "cutoff")));
            st.execute(true);
            const long long n = st.get_affected_rows();
            tx.commit();
            r.deleted += n;
            if (n < batch_size) break;
        }
    } catch (const ::soci::soci_error& e) {
        throw storage_error("cleanup_old failed after deleting " + std::to_string(r.deleted) +
                            " rows (" + std::to_string(r.partitions_dropped) +
                            " partition(s) dropped): " + e.what());
    }
    return r;
}

}  // namespace smart_ratelimit::soci
