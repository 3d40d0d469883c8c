// smart_ratelimit/soci/event_store.hpp
// The durable event log on SOCI: SQLite (the embedded default, WAL) and
// PostgreSQL. `event_store` is an event_batch_writer for async_sink, streams the
// log back (soci/event_stream.hpp) and deletes old rows (`cleanup_old`).
//
// For code that pushes work into SQL (analytics, dashboards), the way in is:
//   event_store store{"postgresql://..."};
//   auto sql = store.open_session();          // std::unique_ptr<::soci::session>, own connection
//   store.sql_dialect();                       // dialect::sqlite or dialect::postgresql
//   event_store::table_name();                 // "ratelimit_event"
//   time_param(d, ":since") / time_value(d, t) // bind a timestamp: SQL text + std::string value
//   time_column_micros(d)                      // SELECT expression: timestamp as int64 microseconds
// Columns: id, timestamp, key, rule_name, path, method, allowed, count, "limit",
// ip_address, user_id, outcome (events v3; NULL in older rows: see outcome_sql in
// soci/detail/outcome_sql.hpp). Extra tables or indexes: append a step to
// event_log_steps in soci/migrations/events.hpp.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <soci/soci.h>

#include <smart_ratelimit/error.hpp>
#include <smart_ratelimit/event.hpp>
#include <smart_ratelimit/sinks/batch_writer.hpp>
#include <smart_ratelimit/soci/database_url.hpp>
#include <smart_ratelimit/soci/detail/pg_copy_writer.hpp>
#include <smart_ratelimit/soci/detail/sqlite_writer.hpp>
#include <smart_ratelimit/soci/event_stream.hpp>
#include <smart_ratelimit/soci/migrations/events.hpp>
#include <smart_ratelimit/soci/schema.hpp>
#include <smart_ratelimit/soci/session.hpp>

namespace smart_ratelimit::soci {

/// How the event store's writer waits on its database.
struct event_store_options {
    /// The longest a batch waits on PostgreSQL: past it the batch fails (`failed`
    /// rows, last_error() says the server did not answer) and the connection is
    /// dropped, so a frozen or partitioned server holds the writer, and a shutdown,
    /// no longer than this. Also the writer session's statement_timeout. SQLite
    /// waits up to its busy timeout (10 s) for a lock.
    std::chrono::milliseconds write_timeout{10'000};
    /// PostgreSQL (events v4): how long cleanup waits for the exclusive lock that
    /// dropping day partitions takes. While it waits, every writer and reader queues
    /// behind it, so the wait is short; cleanup tries three times, then fails with a
    /// storage_error naming the lock and drops nothing more.
    std::chrono::milliseconds cleanup_lock_timeout{2'000};
};

/// What cleanup() removed. On PostgreSQL (events v4) the days wholly older than
/// the cutoff go as whole partitions and only the boundary day is deleted row by
/// row; elsewhere partitions_dropped is 0.
struct cleanup_result {
    std::int64_t deleted = 0;             ///< events removed, those in dropped partitions included
    std::int64_t partitions_dropped = 0;  ///< whole-day partitions dropped
};

/// The SOCI event store. Construction parses the URL (config_error on a bad one)
/// and never connects: the writer connects on its first batch and reconnects by
/// itself after a failure, so a database that is down at start costs only the
/// rows written meanwhile (reported `failed`). The schema is never created
/// implicitly: call migrate() (or `smart-ratelimit migrate`) once.
///
/// write_batch (the event_batch_writer contract):
/// - rows are sanitized first (detail/sanitize.hpp: NUL removed, invalid UTF-8
///   replaced by U+FFFD, fields truncated to their caps); a timestamp outside the
///   years 1..9999, or an outcome that disagrees with `allowed` (allowed ==
///   allowed_column(outcome)), makes the row `invalid`;
/// - the outcome goes to the `outcome` column (events v3); on a database not yet
///   migrated to it the rows are written without it (read back as
///   outcome_of_allowed(allowed)), and the column is used from the first batch after
///   the migration;
/// - SQLite: one transaction, one prepared statement reused for every row (the
///   sqlite3 handle of the SOCI session), then the batch hooks other components
///   registered (migrations/events.hpp, version 2: e.g. the rollups, updated once per batch
///   rather than by a trigger per row); PostgreSQL: one COPY ... FROM STDIN per
///   batch (the PGconn of the SOCI session);
/// - PostgreSQL (events v4): a row whose UTC day has no partition yet makes the
///   writer create the batch's days (ratelimit_event_partition, safe when writers
///   on several machines race for the same day) and sends the batch again, once; the
///   writer's role needs EXECUTE on that function (migrate gives it to the roles that
///   hold INSERT on ratelimit_event);
/// - when a batch fails and the table still answers, it is bisected so the rows
///   that fail alone are `invalid` and the others are written; at the first store
///   failure (connection lost, table missing) that row and every later one are
///   `failed`, so failed rows are always the tail of the batch. Never throws.
///
/// - every wait on PostgreSQL ends: connecting within connect_timeout (5 s unless
///   the URL says), each batch within options.write_timeout (see
///   event_store_options); other sessions (reads, migrate, cleanup) get the TCP
///   keepalives that soci_connect_string describes.
///
/// Thread safety: write_batch, migrate, cleanup_old and events may be called from
/// different threads; write_batch calls are serialized on the writer connection,
/// the others open their own connections.
class event_store {
public:
    /// Throws config_error on a bad URL or a write_timeout that is not positive.
    explicit event_store(std::string_view url, event_store_options options = {})
        : event_store(parse_database_url(url), options) {}
    explicit event_store(database_url url, event_store_options options = {})
        : state_(std::make_unique<state>()) {
        if (options.write_timeout.count() <= 0)
            throw config_error("event_store: write_timeout must be positive, got " +
                               std::to_string(options.write_timeout.count()) + " ms");
        if (options.cleanup_lock_timeout.count() <= 0)
            throw config_error("event_store: cleanup_lock_timeout must be positive, got " +
                               std::to_string(options.cleanup_lock_timeout.count()) + " ms");
        state_->url = std::move(url);
        state_->options = options;
    }
    event_store(event_store&&) noexcept = default;
    event_store& operator=(event_store&&) noexcept = default;
    ~event_store() = default;

    static constexpr std::string_view table_name() noexcept { return "ratelimit_event"; }
    const database_url& url() const noexcept { return state_->url; }
    dialect sql_dialect() const noexcept { return state_->url.kind; }

    /// A new connection to the store's database (see open_session(database_url)).
    std::unique_ptr<::soci::session> open_session() const {
        return soci::open_session(state_->url);
    }

    /// How many days after today (UTC) migrate() creates partitions for ahead.
    static constexpr int partition_days_ahead = 7;

    /// Applies the event log migrations and then `extra` sets; returns what ran. On
    /// PostgreSQL it then creates the partitions of today .. today +
    /// partition_days_ahead (UTC) that are missing, every time it runs, so a daily
    /// `migrate` keeps the writer from ever creating one itself.
    std::vector<applied_migration> migrate(std::span<const migration_set> extra = {}) const {
        auto sql = open_session();
        std::vector<migration_set> sets{event_log_migrations};
        sets.insert(sets.end(), extra.begin(), extra.end());
        auto applied = soci::migrate(*sql, sql_dialect(), sets);
        if (sql_dialect() == dialect::postgresql) create_partitions_ahead(*sql);
        return applied;
    }

    /// True when the event log schema is at the latest version this code knows.
    /// Throws storage_error when the database is unreachable.
    bool schema_current() const {
        auto sql = open_session();
        return schema_version(*sql, event_log_migrations.component) >=
               latest_version(event_log_migrations);
    }

    /// Writes a batch; see the class comment. Never throws.
    batch_result write_batch(std::span<const event> batch) noexcept;

    /// Streams the events matching `q` (newest first by default). Opens its own
    /// connection; throws storage_error when it cannot.
    event_stream events(event_query q = {}) const {
        return event_stream(open_session(), sql_dialect(), std::move(q));
    }

    /// Number of events matching the window and key of `q`.
    std::int64_t count(const event_query& q = {}) const;

    /// Deletes events with timestamp < now - older_than_days * 24h (strict), at most
    /// `batch_size` rows per statement, one short transaction each. On a PostgreSQL
    /// table partitioned by day (events v4) it first drops every partition wholly
    /// older than the cutoff and corrects the rollups, since a dropped partition
    /// fires no trigger: the days are detached under a short exclusive lock on
    /// ratelimit_event (catalog changes only, at most 32 days per transaction), then
    /// their rollups are corrected and they are dropped in one transaction that no
    /// writer waits for. Only the cutoff's own day is then deleted by batches. Days a
    /// cleanup detached but did not finish (it was killed) are finished by the next.
    /// Throws config_error when batch_size <= 0 or older_than_days < 0, storage_error
    /// when the database fails (what was removed so far stays removed).
    cleanup_result cleanup(int older_than_days, int batch_size, event_time now) const;
    /// The day partitions cleanup(older_than_days, ..., now) would drop, oldest first
    /// (PostgreSQL, events v4; empty elsewhere): first those a killed cleanup left
    /// detached (ratelimit_event_gone_pYYYYMMDD), then the attached ones. For dry runs.
    std::vector<std::string> droppable_partitions(int older_than_days, event_time now) const;
    /// The events in day partitions a killed cleanup left detached: no longer in
    /// ratelimit_event (count() misses them), counted as deleted by the next cleanup,
    /// which drops them whatever its older_than_days. 0 on SQLite. For dry runs.
    std::int64_t detached_events() const;
    /// cleanup(...).deleted: the number of events removed.
    std::int64_t cleanup_old(int older_than_days, int batch_size, event_time now) const {
        return cleanup(older_than_days, batch_size, now).deleted;
    }
    std::int64_t cleanup_old(int older_than_days = 30, int batch_size = 1000) const {
        return cleanup_old(older_than_days, batch_size,
                           std::chrono::time_point_cast<std::chrono::microseconds>(
                               std::chrono::system_clock::now()));
    }

    /// Diagnostics of the writer connection: how many times it (re)connected and the
    /// last store error write_batch saw ("" when none). Safe from any thread.
    std::uint64_t connects() const {
        std::lock_guard lock(state_->mutex);
        return state_->connects;
    }
    std::string last_error() const {
        std::lock_guard lock(state_->mutex);
        return state_->last_error;
    }

private:
    // The writer connection and, on SQLite, its prepared statements (destroyed
    // before the session they belong to).
    struct connection {
        std::unique_ptr<::soci::session> sql;
        detail::sqlite_writer sqlite;
    };

    struct state {
        database_url url;
        event_store_options options;
        mutable std::mutex mutex;
        std::unique_ptr<connection> conn;
        std::uint64_t connects = 0;
        std::string last_error;
        std::vector<event> cleaned;      // sanitized copies for this batch
        std::vector<const event*> rows;  // the rows to write, in order
        detail::pg_copy_writer copy;     // its buffer is kept across batches
    };

    bool ensure_connected() noexcept;
    static PGconn* pg_connection(connection& c) noexcept;
    void drop_connection() noexcept { state_->conn.reset(); }
    bool store_answers() noexcept;
    void write_rows(std::span<const event* const> rows);        // throws on any failure
    void write_sqlite(std::span<const event* const> rows);      // detail/sqlite_writer.hpp
    void write_postgresql(std::span<const event* const> rows);  // detail/pg_copy_writer.hpp
    void create_partitions(PGconn* pg, std::span<const event* const> rows);
    static void create_partitions_ahead(::soci::session& sql);
    static std::vector<std::string> old_partitions(::soci::session& sql, std::int64_t before_day,
                                                   int limit);
    void drop_old_partitions(::soci::session& sql, std::int64_t before_day,
                             cleanup_result& r) const;
    bool detach_old_partitions(::soci::session& sql, std::int64_t before_day,
                               const cleanup_result& r) const;
    // now - older_than_days days; config_error when older_than_days < 0.
    static event_time cleanup_cutoff(int older_than_days, event_time now);
    static void finish_detached(::soci::session& sql, cleanup_result& r);
    // The tables of detached days, with their days, oldest first.
    static std::vector<std::pair<std::string, std::int64_t>> detached_tables(::soci::session& sql);
    // Writes rows[...] with bisection; returns false at the first store failure,
    // with `done` set to how many rows were resolved (written or invalid) before it.
    bool write_bisect(std::span<const event* const> rows, batch_result& r,
                      std::size_t& done) noexcept;

    std::unique_ptr<state> state_;
};

static_assert(event_batch_writer<event_store>);

}  // namespace smart_ratelimit::soci

#include <smart_ratelimit/soci/impl/event_store.hpp>
