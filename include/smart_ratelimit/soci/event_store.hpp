// smart_ratelimit/soci/event_store.hpp
// The durable event log (SPEC 6, 10) on SOCI: SQLite (the embedded default, WAL)
// and PostgreSQL. An `event_batch_writer` for async_sink, a streaming reader
// (newest first, by window and key, keyset pagination), and `cleanup_old`.
//
// For code that pushes work into SQL (analytics, dashboards), the way in is:
//   event_store store{"postgresql://..."};
//   auto sql = store.open_session();          // std::unique_ptr<::soci::session>, own connection
//   store.sql_dialect();                       // dialect::sqlite or dialect::postgresql
//   event_store::table_name();                 // "ratelimit_event"
//   time_param(d, ":since") / time_value(d, t) // bind a timestamp: SQL text + std::string value
//   time_column_micros(d)                      // SELECT expression: timestamp as int64 microseconds
// Columns: id, timestamp, key, rule_name, path, method, allowed, count, "limit",
// ip_address, user_id. Extra tables or indexes: append a step to
// event_log_steps in soci/schema.hpp.
#pragma once

#include <cctype>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <soci/soci.h>
#include <soci/postgresql/soci-postgresql.h>
#include <soci/sqlite3/soci-sqlite3.h>

#include <smart_ratelimit/error.hpp>
#include <smart_ratelimit/event.hpp>
#include <smart_ratelimit/sinks/batch_writer.hpp>
#include <smart_ratelimit/soci/database_url.hpp>
#include <smart_ratelimit/soci/detail/sanitize.hpp>
#include <smart_ratelimit/soci/detail/sql_time.hpp>
#include <smart_ratelimit/soci/schema.hpp>

namespace smart_ratelimit::soci {

/// SQL text for a bound timestamp parameter named `placeholder` (e.g. ":since").
/// Bind the std::string from time_value() to it.
inline std::string time_param(dialect d, std::string_view placeholder) {
    return "CAST(" + std::string(placeholder) +
           (d == dialect::sqlite ? " AS INTEGER)" : " AS TIMESTAMPTZ)");
}

/// The value to bind for time_param(): microseconds as decimal text on SQLite,
/// `YYYY-MM-DD HH:MM:SS.ffffff+00` on PostgreSQL. Clamped to the years 1..9999.
inline std::string time_value(dialect d, event_time t) {
    t = detail::clamp_time(t);
    return d == dialect::sqlite ? std::to_string(t.time_since_epoch().count()) : detail::pg_time(t);
}

/// A SELECT expression giving the `timestamp` column as int64 microseconds since
/// the epoch, exact on both engines (PostgreSQL 14+ EXTRACT returns numeric).
/// On SQLite it is a CAST to BIGINT: SOCI 4.0's bulk (vector) into truncates a
/// column declared INTEGER to 32 bits, so select wide integer columns through a CAST.
inline std::string time_column_micros(dialect d, std::string_view column = "timestamp") {
    if (d == dialect::sqlite) return "CAST(" + std::string(column) + " AS BIGINT)";
    return "CAST(EXTRACT(EPOCH FROM " + std::string(column) + ") * 1000000 AS BIGINT)";
}

/// Opens a SOCI session on `url`. SQLite sessions get WAL, synchronous=NORMAL and a
/// busy timeout. Throws storage_error naming the (redacted) URL when it fails.
inline std::unique_ptr<::soci::session> open_session(const database_url& url) {
    try {
        auto sql = std::make_unique<::soci::session>(url.soci_backend(), url.soci_connect_string());
        if (url.kind == dialect::sqlite) {
            *sql << "PRAGMA journal_mode=WAL";
            *sql << "PRAGMA synchronous=NORMAL";
            *sql << "PRAGMA busy_timeout=10000";
        } else {
            *sql << "SET client_min_messages TO WARNING";  // no NOTICEs on stderr
        }
        return sql;
    } catch (const ::soci::soci_error& e) {
        throw storage_error("cannot open database '" + url.redacted() + "': " + e.what());
    }
}

/// Which end a read starts from.
enum class event_order { newest_first, oldest_first };

/// A read: the window [since, until] (both inclusive, either open), an optional key,
/// the order (by timestamp, then id) and how many rows one round trip fetches.
struct event_query {
    std::optional<event_time> since{};
    std::optional<event_time> until{};
    std::optional<std::string> key{};
    event_order order = event_order::newest_first;
    std::size_t chunk = 1000;
};

/// A single-pass input range over stored events, fetched `chunk` rows at a time by
/// keyset pagination on (timestamp, id) over its own connection: memory stays
/// bounded whatever the table size. Iteration throws storage_error if the database
/// fails mid-read. Thread safety: one thread at a time.
class event_stream {
public:
    class iterator {
    public:
        using value_type = event;
        using reference = const event&;
        using pointer = const event*;
        using difference_type = std::ptrdiff_t;
        using iterator_category = std::input_iterator_tag;
        using iterator_concept = std::input_iterator_tag;

        iterator() = default;
        const event& operator*() const { return s_->buffer_[s_->pos_]; }
        const event* operator->() const { return &s_->buffer_[s_->pos_]; }
        iterator& operator++() {
            s_->advance();
            return *this;
        }
        void operator++(int) { s_->advance(); }
        friend bool operator==(const iterator& it, std::default_sentinel_t) noexcept { return it.done(); }

    private:
        friend class event_stream;
        explicit iterator(event_stream* s) : s_(s) {}
        bool done() const noexcept { return s_ == nullptr || s_->at_end(); }
        event_stream* s_ = nullptr;
    };

    event_stream(std::unique_ptr<::soci::session> sql, dialect d, event_query q)
        : sql_(std::move(sql)), dialect_(d), query_(std::move(q)) {
        if (query_.chunk == 0) throw config_error("event_query.chunk must be > 0");
    }
    event_stream(event_stream&&) noexcept = default;
    event_stream& operator=(event_stream&&) noexcept = default;

    /// Starts the read (first chunk fetched here). Call once.
    iterator begin() {
        if (!started_) {
            started_ = true;
            fetch();
        }
        return iterator{this};
    }
    std::default_sentinel_t end() const noexcept { return {}; }

private:
    bool at_end() const noexcept { return pos_ >= buffer_.size(); }

    void advance() {
        ++pos_;
        if (pos_ >= buffer_.size() && !exhausted_) fetch();
    }

    void fetch() {
        buffer_.clear();
        pos_ = 0;
        if (exhausted_) return;
        const bool desc = query_.order == event_order::newest_first;
        std::string q = "SELECT CAST(id AS BIGINT), " + time_column_micros(dialect_) +
                        ", key, rule_name, path, method, " +
                        (dialect_ == dialect::sqlite ? "allowed" : "CAST(allowed AS INTEGER)") +
                        ", count, \"limit\", ip_address, user_id FROM ratelimit_event WHERE 1 = 1";
        std::vector<std::string> values;
        values.reserve(5);
        if (query_.since) {
            q += " AND timestamp >= " + time_param(dialect_, ":since");
            values.push_back(time_value(dialect_, *query_.since));
        }
        if (query_.until) {
            q += " AND timestamp <= " + time_param(dialect_, ":until");
            values.push_back(time_value(dialect_, *query_.until));
        }
        if (query_.key) {
            q += " AND key = :key";
            values.push_back(*query_.key);
        }
        if (have_cursor_) {
            const char* op = desc ? " < " : " > ";
            q += std::string(" AND (timestamp") + op + time_param(dialect_, ":c1") +
                 " OR (timestamp = " + time_param(dialect_, ":c2") + " AND id" + op + ":cid))";
            values.push_back(time_value(dialect_, event_time{std::chrono::microseconds{cursor_ts_}}));
            values.push_back(values.back());
        }
        q += desc ? " ORDER BY timestamp DESC, id DESC" : " ORDER BY timestamp ASC, id ASC";
        q += " LIMIT " + std::to_string(query_.chunk);

        const std::size_t n = query_.chunk;
        std::vector<long long> ids(n), ts(n), counts(n), limits(n);
        std::vector<int> allowed(n);
        std::vector<std::string> keys(n), rules(n), paths(n), methods(n), ips(n), users(n);
        std::vector<::soci::indicator> rule_ind(n), path_ind(n), method_ind(n), ip_ind(n), user_ind(n);
        long long cid = cursor_id_;
        try {
            ::soci::statement st(*sql_);
            st.exchange(::soci::into(ids));
            st.exchange(::soci::into(ts));
            st.exchange(::soci::into(keys));
            st.exchange(::soci::into(rules, rule_ind));
            st.exchange(::soci::into(paths, path_ind));
            st.exchange(::soci::into(methods, method_ind));
            st.exchange(::soci::into(allowed));
            st.exchange(::soci::into(counts));
            st.exchange(::soci::into(limits));
            st.exchange(::soci::into(ips, ip_ind));
            st.exchange(::soci::into(users, user_ind));
            std::size_t v = 0;
            if (query_.since) st.exchange(::soci::use(values[v++], "since"));
            if (query_.until) st.exchange(::soci::use(values[v++], "until"));
            if (query_.key) st.exchange(::soci::use(values[v++], "key"));
            if (have_cursor_) {
                st.exchange(::soci::use(values[v], "c1"));
                st.exchange(::soci::use(values[v + 1], "c2"));
                st.exchange(::soci::use(cid, "cid"));
            }
            st.alloc();
            st.prepare(q);
            st.define_and_bind();
            if (!st.execute(true)) ids.clear();
        } catch (const ::soci::soci_error& e) {
            throw storage_error(std::string("reading ratelimit_event failed: ") + e.what());
        }
        const std::size_t got = ids.size();
        buffer_.resize(got);
        auto text = [](std::vector<std::string>& col, std::vector<::soci::indicator>& ind, std::size_t i) {
            return ind[i] == ::soci::i_ok ? std::move(col[i]) : std::string();
        };
        for (std::size_t i = 0; i < got; ++i) {
            event& e = buffer_[i];
            e.timestamp = event_time{std::chrono::microseconds{ts[i]}};
            e.key = std::move(keys[i]);
            e.rule_name = text(rules, rule_ind, i);
            e.path = text(paths, path_ind, i);
            e.method = text(methods, method_ind, i);
            e.allowed = allowed[i] != 0;
            e.count = counts[i];
            e.limit = limits[i];
            if (ip_ind[i] == ::soci::i_ok) e.ip_address = std::move(ips[i]);
            if (user_ind[i] == ::soci::i_ok) e.user_id = std::move(users[i]);
        }
        if (got > 0) {
            have_cursor_ = true;
            cursor_ts_ = ts[got - 1];
            cursor_id_ = ids[got - 1];
        }
        if (got < n) exhausted_ = true;
    }

    std::unique_ptr<::soci::session> sql_;
    dialect dialect_;
    event_query query_;
    std::vector<event> buffer_;
    std::size_t pos_ = 0;
    bool started_ = false;
    bool exhausted_ = false;
    bool have_cursor_ = false;
    long long cursor_ts_ = 0;
    long long cursor_id_ = 0;
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
///   years 1..9999 makes the row `invalid`;
/// - SQLite: one transaction, one prepared statement reused for every row (the
///   sqlite3 handle of the SOCI session), then the batch hooks other components
///   registered (schema.hpp, events v2: e.g. the rollups, updated once per batch
///   rather than by a trigger per row); PostgreSQL: one COPY ... FROM STDIN per
///   batch (the PGconn of the SOCI session);
/// - when a batch fails and the table still answers, it is bisected so the rows
///   that fail alone are `invalid` and the others are written; at the first store
///   failure (connection lost, table missing) that row and every later one are
///   `failed`, so failed rows are always the tail of the batch. Never throws.
///
/// Thread safety: write_batch, migrate, cleanup_old and events may be called from
/// different threads; write_batch calls are serialized on the writer connection,
/// the others open their own connections.
class event_store {
public:
    explicit event_store(std::string_view url) : event_store(parse_database_url(url)) {}
    explicit event_store(database_url url) : state_(std::make_unique<state>()) {
        state_->url = std::move(url);
    }
    event_store(event_store&&) noexcept = default;
    event_store& operator=(event_store&&) noexcept = default;
    ~event_store() = default;

    static constexpr std::string_view table_name() noexcept { return "ratelimit_event"; }
    const database_url& url() const noexcept { return state_->url; }
    dialect sql_dialect() const noexcept { return state_->url.kind; }

    /// A new connection to the store's database (see open_session(database_url)).
    std::unique_ptr<::soci::session> open_session() const { return soci::open_session(state_->url); }

    /// Applies the event log migrations and then `extra` sets; returns what ran.
    std::vector<applied_migration> migrate(std::span<const migration_set> extra = {}) const {
        auto sql = open_session();
        std::vector<migration_set> sets{event_log_migrations};
        sets.insert(sets.end(), extra.begin(), extra.end());
        return soci::migrate(*sql, sql_dialect(), sets);
    }

    /// True when the event log schema is at the latest version this code knows.
    /// Throws storage_error when the database is unreachable.
    bool schema_current() const {
        auto sql = open_session();
        return schema_version(*sql, event_log_migrations.component) >= latest_version(event_log_migrations);
    }

    /// Writes a batch; see the class comment. Never throws.
    batch_result write_batch(std::span<const event> batch) noexcept;

    /// Streams the events matching `q` (newest first by default). Opens its own
    /// connection; throws storage_error when it cannot.
    event_stream events(event_query q = {}) const { return event_stream(open_session(), sql_dialect(), std::move(q)); }

    /// Number of events matching the window and key of `q`.
    std::int64_t count(const event_query& q = {}) const;

    /// Deletes events with timestamp < now - older_than_days * 24h (strict), at most
    /// `batch_size` rows per statement, one short transaction each; returns the
    /// number deleted. Throws config_error when batch_size <= 0 or older_than_days
    /// < 0, storage_error when the database fails (rows deleted so far stay deleted).
    std::int64_t cleanup_old(int older_than_days, int batch_size, event_time now) const;
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
    // One registered batch hook, prepared on the writer connection.
    struct batch_hook {
        std::string text;
        sqlite_api::sqlite3_stmt* stmt = nullptr;
    };

    // The writer connection and, on SQLite, its prepared statements.
    struct connection {
        std::unique_ptr<::soci::session> sql;
        sqlite_api::sqlite3_stmt* insert = nullptr;
        sqlite_api::sqlite3_stmt* list_hooks = nullptr;  // null: no hook table (events v1)
        sqlite_api::sqlite3_stmt* list_triggers = nullptr;
        bool hook_table_checked = false;
        bool hooks_disabled = false;
        bool triggers_on = true;  // SQLITE_DBCONFIG_ENABLE_TRIGGER of this connection
        std::vector<batch_hook> hooks;
        connection() = default;
        connection(const connection&) = delete;
        connection& operator=(const connection&) = delete;
        ~connection() {
            if (insert != nullptr) sqlite_api::sqlite3_finalize(insert);
            if (list_hooks != nullptr) sqlite_api::sqlite3_finalize(list_hooks);
            if (list_triggers != nullptr) sqlite_api::sqlite3_finalize(list_triggers);
            for (auto& h : hooks) sqlite_api::sqlite3_finalize(h.stmt);
        }
    };

    struct state {
        database_url url;
        mutable std::mutex mutex;
        std::unique_ptr<connection> conn;
        std::uint64_t connects = 0;
        std::string last_error;
        std::vector<event> cleaned;     // sanitized copies for this batch
        std::vector<const event*> rows;  // the rows to write, in order
        std::string copy_buffer;
    };

    // Thrown inside the writer when the store (not the row) failed.
    struct store_failure {};

    bool ensure_connected() noexcept;
    void drop_connection() noexcept { state_->conn.reset(); }
    void note_error(std::string_view what) noexcept;
    bool store_answers() noexcept;
    void write_rows(std::span<const event* const> rows);  // throws on any failure
    void write_sqlite(std::span<const event* const> rows);
    // Reads the registered batch hooks (inside the batch's transaction) and prepares
    // the ones whose text changed; false when there are none.
    bool load_batch_hooks(connection& c, sqlite_api::sqlite3* db);
    // Whether every trigger in the database leaves a hooked batch's rows alone (see
    // detail::trigger_skips_batches); false when that cannot be read.
    bool triggers_skip_batches(connection& c, sqlite_api::sqlite3* db) noexcept;
    // Turns this connection's triggers on or off (no-op when already so).
    static bool set_triggers(connection& c, sqlite_api::sqlite3* db, bool on) noexcept;
    void write_postgresql(std::span<const event* const> rows);
    // Writes rows[...] with bisection; returns false at the first store failure,
    // with `done` set to how many rows were resolved (written or invalid) before it.
    bool write_bisect(std::span<const event* const> rows, batch_result& r, std::size_t& done) noexcept;

    std::unique_ptr<state> state_;
};

static_assert(event_batch_writer<event_store>);

// ---- implementation -------------------------------------------------------------

inline void event_store::note_error(std::string_view what) noexcept {
    try {
        state_->last_error.assign(what);
    } catch (...) {
    }
}

inline bool event_store::ensure_connected() noexcept {
    if (state_->conn) return true;
    try {
        auto c = std::make_unique<connection>();
        c->sql = soci::open_session(state_->url);
        // The rollup triggers intern new keys and then read them back in the same
        // statement; under a stricter default (a server or database set to
        // repeatable read) a key another writer interned meanwhile would be
        // invisible to that read and its counts lost. The writer's own session
        // therefore always runs at read committed.
        if (sql_dialect() == dialect::postgresql)
            *c->sql << "SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL READ COMMITTED";
        state_->conn = std::move(c);
        ++state_->connects;
        return true;
    } catch (const std::exception& e) {
        note_error(e.what());
        return false;
    } catch (...) {
        note_error("unknown error while connecting");
        return false;
    }
}

// After a failure: does the store itself still work (connection up, table there)?
// Drops a broken connection so the next batch reconnects.
inline bool event_store::store_answers() noexcept {
    if (!state_->conn) return false;
    auto& sql = *state_->conn->sql;
    try {
        if (sql_dialect() == dialect::postgresql) {
            auto* be = static_cast<::soci::postgresql_session_backend*>(sql.get_backend());
            if (PQstatus(be->conn_) != CONNECTION_OK) {
                drop_connection();
                return false;
            }
        }
        int one = 0;
        ::soci::indicator ind = ::soci::i_null;
        sql << "SELECT 1 FROM ratelimit_event WHERE 1 = 0", ::soci::into(one, ind);
        return true;
    } catch (const std::exception& e) {
        note_error(e.what());
    } catch (...) {
    }
    // The probe failed: a lost connection is dropped, a missing table keeps it.
    try {
        if (sql_dialect() == dialect::postgresql) {
            auto* be = static_cast<::soci::postgresql_session_backend*>(sql.get_backend());
            if (PQstatus(be->conn_) != CONNECTION_OK) drop_connection();
        } else {
            int one = 0;
            sql << "SELECT 1", ::soci::into(one);
        }
    } catch (...) {
        drop_connection();
    }
    return false;
}

inline void event_store::write_sqlite(std::span<const event* const> rows) {
    using namespace sqlite_api;
    connection& c = *state_->conn;
    sqlite3* db = static_cast<::soci::sqlite3_session_backend*>(c.sql->get_backend())->conn_;
    if (c.insert == nullptr) {
        static constexpr char insert_sql[] =
            "INSERT INTO ratelimit_event (timestamp, key, rule_name, path, method, allowed, count,"
            " \"limit\", ip_address, user_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";
        if (sqlite3_prepare_v2(db, insert_sql, sizeof insert_sql, &c.insert, nullptr) != SQLITE_OK) {
            note_error(sqlite3_errmsg(db));
            c.insert = nullptr;
            throw store_failure{};
        }
    }
    sqlite3_stmt* st = c.insert;
    auto text = [st](int i, const std::string& s) {
        return sqlite3_bind_text(st, i, s.data(), static_cast<int>(s.size()), SQLITE_STATIC);
    };
    if (sqlite3_exec(db, "BEGIN", nullptr, nullptr, nullptr) != SQLITE_OK) {
        note_error(sqlite3_errmsg(db));
        throw store_failure{};
    }
    // A hook that cannot run costs speed, never rows: the batch is rolled back and
    // written again without the marker, so the per-row triggers do the work, and
    // this connection stops using hooks (the next connection tries again).
    auto hook_failed = [&](bool noted = false) {
        if (!noted) note_error(std::string("batch hook: ") + sqlite3_errmsg(db));
        sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr);
        c.hooks_disabled = true;
        write_sqlite(rows);
    };
    bool hooks = false;
    if (!c.hooks_disabled) {
        try {
            hooks = load_batch_hooks(c, db);
        } catch (const store_failure&) {
            return hook_failed(true);
        }
    }
    // With hooks, and every trigger one that skips the batch's rows anyway, the
    // triggers are off for the batch: SQLite would otherwise still run each one's
    // program per row just to find its WHEN clause false (about 1 us per row for
    // the analytics trigger). Any other trigger keeps them all on.
    if (!set_triggers(c, db, !(hooks && triggers_skip_batches(c, db)))) {
        note_error(std::string("cannot switch triggers: ") + sqlite3_errmsg(db));
        sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr);
        throw store_failure{};
    }
    // The marker row makes the hooked per-row triggers skip these rows; it is
    // deleted before COMMIT, so no other connection ever sees it.
    if (hooks && sqlite3_exec(db, "INSERT INTO ratelimit_event_batch (first_id, last_id) VALUES (0, -1)",
                              nullptr, nullptr, nullptr) != SQLITE_OK)
        return hook_failed();
    sqlite3_int64 first_id = 0;
    bool first = true;
    for (const event* e : rows) {
        sqlite3_bind_int64(st, 1, e->timestamp.time_since_epoch().count());
        text(2, e->key);
        text(3, e->rule_name);
        text(4, e->path);
        text(5, e->method);
        sqlite3_bind_int(st, 6, e->allowed ? 1 : 0);
        sqlite3_bind_int64(st, 7, e->count);
        sqlite3_bind_int64(st, 8, e->limit);
        if (e->ip_address) text(9, *e->ip_address); else sqlite3_bind_null(st, 9);
        if (e->user_id) text(10, *e->user_id); else sqlite3_bind_null(st, 10);
        const int rc = sqlite3_step(st);
        if (rc != SQLITE_DONE) {
            note_error(sqlite3_errmsg(db));
            sqlite3_reset(st);
            sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr);
            const int primary = rc & 0xff;
            // Only a constraint, a type mismatch or an oversized value is the row's fault.
            if (primary == SQLITE_CONSTRAINT || primary == SQLITE_MISMATCH || primary == SQLITE_TOOBIG)
                throw std::runtime_error("row rejected");
            throw store_failure{};
        }
        sqlite3_reset(st);
        if (first) first_id = sqlite3_last_insert_rowid(db);
        first = false;
    }
    if (hooks) {
        const std::string range = "UPDATE ratelimit_event_batch SET first_id = " + std::to_string(first_id) +
                                  ", last_id = " + std::to_string(sqlite3_last_insert_rowid(db));
        if (sqlite3_exec(db, range.c_str(), nullptr, nullptr, nullptr) != SQLITE_OK) return hook_failed();
        for (auto& h : c.hooks) {
            const int rc = sqlite3_step(h.stmt);
            if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
                note_error(std::string("batch hook: ") + sqlite3_errmsg(db));
                sqlite3_reset(h.stmt);
                return hook_failed(true);
            }
            sqlite3_reset(h.stmt);
        }
        if (sqlite3_exec(db, "DELETE FROM ratelimit_event_batch", nullptr, nullptr, nullptr) != SQLITE_OK)
            return hook_failed();
    }
    if (sqlite3_exec(db, "COMMIT", nullptr, nullptr, nullptr) != SQLITE_OK) {
        note_error(sqlite3_errmsg(db));
        sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr);
        throw store_failure{};
    }
}

namespace detail {

// Reads a CREATE TRIGGER statement token by token: a quoted name kept as is, '.',
// '(', ')' or a bare word upper-cased; "" at the end.
class trigger_tokens {
public:
    explicit trigger_tokens(std::string_view sql) : sql_(sql) {}

    std::string next() {
        while (at_ < sql_.size() && std::isspace(static_cast<unsigned char>(sql_[at_]))) ++at_;
        if (at_ >= sql_.size()) return {};
        const char open = sql_[at_];
        if (open == '"' || open == '`' || open == '[' || open == '\'') {
            const char close = open == '[' ? ']' : open;
            std::size_t end = at_ + 1;
            for (;; ++end) {
                if (end >= sql_.size()) {
                    at_ = sql_.size();
                    return {};  // unterminated
                }
                if (sql_[end] == close) {
                    if (close != ']' && end + 1 < sql_.size() && sql_[end + 1] == close) {
                        ++end;  // a doubled quote inside the name
                        continue;
                    }
                    break;
                }
            }
            std::string token(sql_.substr(at_, end + 1 - at_));
            at_ = end + 1;
            return token;
        }
        if (open == '.' || open == '(' || open == ')') return std::string(1, sql_[at_++]);
        std::string token;
        while (at_ < sql_.size() && !std::isspace(static_cast<unsigned char>(sql_[at_])) && sql_[at_] != '.' &&
               sql_[at_] != '(' && sql_[at_] != ')')
            token += static_cast<char>(std::toupper(static_cast<unsigned char>(sql_[at_++])));
        return token;
    }
private:
    std::string_view sql_;
    std::size_t at_ = 0;
};

// Reads `[schema.]name` after its first token `t`; returns the token after it.
inline std::string skip_qualified_name(trigger_tokens& in, std::string t) {
    if (t.empty()) return {};
    t = in.next();
    if (t == ".") {
        if (in.next().empty()) return {};
        t = in.next();
    }
    return t;
}

// The event a CREATE TRIGGER statement names (DELETE, INSERT or UPDATE, upper
// case), read from its header: CREATE [TEMP|TEMPORARY] TRIGGER [IF NOT EXISTS]
// [schema.]name [BEFORE|AFTER|INSTEAD OF] event ... "" when the text does not have
// that shape. `in` is left after the event.
inline std::string trigger_event(trigger_tokens& in) {
    if (in.next() != "CREATE") return {};
    std::string t = in.next();
    if (t == "TEMP" || t == "TEMPORARY") t = in.next();
    if (t != "TRIGGER") return {};
    t = in.next();
    if (t == "IF") {
        if (in.next() != "NOT" || in.next() != "EXISTS") return {};
        t = in.next();
    }
    t = skip_qualified_name(in, t);
    if (t == "BEFORE" || t == "AFTER") t = in.next();
    else if (t == "INSTEAD") {
        if (in.next() != "OF") return {};
        t = in.next();
    }
    return t == "DELETE" || t == "INSERT" || t == "UPDATE" ? t : std::string();
}

/// Whether a trigger (its table and CREATE TRIGGER text, as sqlite_master holds
/// them) does nothing for the rows of the event writer's hooked batches: an INSERT
/// trigger on ratelimit_event whose whole WHEN clause is `NOT EXISTS (SELECT 1 FROM
/// ratelimit_event_batch)` (the analytics rollup trigger's), or a trigger on
/// ratelimit_event for another event (the writer only inserts there). Anything
/// else, a trigger on another table or a text this cannot read, may matter: false.
inline bool trigger_skips_batches(std::string_view table, std::string_view sql) {
    if (table != "ratelimit_event") return false;
    trigger_tokens in(sql);
    const std::string event = trigger_event(in);
    if (event == "DELETE" || event == "UPDATE") return true;
    if (event != "INSERT" || in.next() != "ON") return false;
    std::string t = skip_qualified_name(in, in.next());
    if (t == "FOR") {
        if (in.next() != "EACH" || in.next() != "ROW") return false;
        t = in.next();
    }
    if (t != "WHEN") return false;
    // The condition, token by token, then BEGIN: nothing else may decide.
    for (const char* expected : {"NOT", "EXISTS", "(", "SELECT", "1", "FROM", "RATELIMIT_EVENT_BATCH", ")", "BEGIN"})
        if (in.next() != expected) return false;
    return true;
}

}  // namespace detail

inline bool event_store::triggers_skip_batches(connection& c, sqlite_api::sqlite3* db) noexcept {
    using namespace sqlite_api;
    if (c.list_triggers == nullptr) {
        static constexpr char sql[] = "SELECT tbl_name, sql FROM sqlite_master WHERE type = 'trigger'";
        if (sqlite3_prepare_v2(db, sql, sizeof sql, &c.list_triggers, nullptr) != SQLITE_OK) {
            c.list_triggers = nullptr;
            return false;
        }
    }
    bool skip = true;
    int rc;
    while ((rc = sqlite3_step(c.list_triggers)) == SQLITE_ROW) {
        const auto column = [&](int i) {
            const auto* t = reinterpret_cast<const char*>(sqlite3_column_text(c.list_triggers, i));
            return std::string_view(t != nullptr ? t : "",
                                    static_cast<std::size_t>(sqlite3_column_bytes(c.list_triggers, i)));
        };
        try {
            skip = skip && detail::trigger_skips_batches(column(0), column(1));
        } catch (...) {
            skip = false;
        }
    }
    sqlite3_reset(c.list_triggers);
    return skip && rc == SQLITE_DONE;
}

inline bool event_store::set_triggers(connection& c, sqlite_api::sqlite3* db, bool on) noexcept {
    if (c.triggers_on == on) return true;
    int now = -1;
    if (sqlite_api::sqlite3_db_config(db, SQLITE_DBCONFIG_ENABLE_TRIGGER, on ? 1 : 0, &now) != SQLITE_OK ||
        now != (on ? 1 : 0))
        return false;
    c.triggers_on = on;
    return true;
}

inline bool event_store::load_batch_hooks(connection& c, sqlite_api::sqlite3* db) {
    using namespace sqlite_api;
    if (!c.hook_table_checked) {
        // Missing table (a database at events v1): no hooks, every trigger fires.
        static constexpr char list_sql[] =
            "SELECT statement FROM ratelimit_event_batch_hook ORDER BY component, step";
        if (sqlite3_prepare_v2(db, list_sql, sizeof list_sql, &c.list_hooks, nullptr) != SQLITE_OK)
            c.list_hooks = nullptr;
        c.hook_table_checked = true;
    }
    if (c.list_hooks == nullptr) {
        // Checked again on a later connection (after `migrate`, the writer reconnects
        // only on failure): a batch with triggers firing is correct, only slower.
        return false;
    }
    // Re-read every batch (a migration may change the hooks while the writer runs).
    std::size_t n = 0;
    int rc;
    while ((rc = sqlite3_step(c.list_hooks)) == SQLITE_ROW) {
        const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(c.list_hooks, 0));
        const std::string_view sv(text != nullptr ? text : "",
                                  static_cast<std::size_t>(sqlite3_column_bytes(c.list_hooks, 0)));
        if (n == c.hooks.size()) c.hooks.emplace_back();
        batch_hook& h = c.hooks[n++];
        if (h.stmt == nullptr || h.text != sv) {
            if (h.stmt != nullptr) sqlite3_finalize(h.stmt);
            h.stmt = nullptr;
            h.text.assign(sv);
            if (sqlite3_prepare_v2(db, h.text.c_str(), static_cast<int>(h.text.size()) + 1, &h.stmt,
                                   nullptr) != SQLITE_OK) {
                h.stmt = nullptr;
                note_error(std::string("batch hook: ") + sqlite3_errmsg(db));
                sqlite3_reset(c.list_hooks);
                throw store_failure{};
            }
        }
    }
    if (rc != SQLITE_DONE) {
        note_error(std::string("batch hook: ") + sqlite3_errmsg(db));
        sqlite3_reset(c.list_hooks);
        throw store_failure{};
    }
    sqlite3_reset(c.list_hooks);
    while (c.hooks.size() > n) {
        sqlite3_finalize(c.hooks.back().stmt);
        c.hooks.pop_back();
    }
    return n != 0;
}

namespace detail {
// COPY text format: backslash, tab, newline and carriage return escaped.
inline void append_copy_text(std::string& out, std::string_view s) {
    for (const char c : s) {
        switch (c) {
            case '\\': out += "\\\\"; break;
            case '\t': out += "\\t"; break;
            case '\n': out += "\\n"; break;
            case '\r': out += "\\r"; break;
            default: out += c;
        }
    }
}
inline void append_int(std::string& out, std::int64_t v) {
    char buf[24];
    char* end = buf + sizeof buf;
    char* p = end;
    const bool neg = v < 0;
    std::uint64_t u = neg ? 0 - static_cast<std::uint64_t>(v) : static_cast<std::uint64_t>(v);
    do {
        *--p = static_cast<char>('0' + u % 10);
        u /= 10;
    } while (u != 0);
    if (neg) *--p = '-';
    out.append(p, end);
}
}  // namespace detail

inline void event_store::write_postgresql(std::span<const event* const> rows) {
    PGconn* pg = static_cast<::soci::postgresql_session_backend*>(state_->conn->sql->get_backend())->conn_;
    std::string& buf = state_->copy_buffer;
    buf.clear();
    buf.reserve(rows.size() * 160);
    for (const event* e : rows) {
        detail::append_pg_time(buf, e->timestamp);
        buf += '\t';
        detail::append_copy_text(buf, e->key);
        buf += '\t';
        detail::append_copy_text(buf, e->rule_name);
        buf += '\t';
        detail::append_copy_text(buf, e->path);
        buf += '\t';
        detail::append_copy_text(buf, e->method);
        buf += e->allowed ? "\tt\t" : "\tf\t";
        detail::append_int(buf, e->count);
        buf += '\t';
        detail::append_int(buf, e->limit);
        buf += '\t';
        if (e->ip_address) detail::append_copy_text(buf, *e->ip_address); else buf += "\\N";
        buf += '\t';
        if (e->user_id) detail::append_copy_text(buf, *e->user_id); else buf += "\\N";
        buf += '\n';
    }
    PGresult* res = PQexec(pg,
                           "COPY ratelimit_event (timestamp, key, rule_name, path, method, allowed,"
                           " count, \"limit\", ip_address, user_id) FROM STDIN");
    const bool started = res != nullptr && PQresultStatus(res) == PGRES_COPY_IN;
    if (!started) {
        note_error(PQerrorMessage(pg));
        PQclear(res);
        // Table missing or connection gone: the store failed, not a row.
        throw store_failure{};
    }
    PQclear(res);
    bool ok = PQputCopyData(pg, buf.data(), static_cast<int>(buf.size())) == 1;
    ok = PQputCopyEnd(pg, ok ? nullptr : "client aborted") == 1 && ok;
    bool rejected = false;
    while ((res = PQgetResult(pg)) != nullptr) {
        if (PQresultStatus(res) != PGRES_COMMAND_OK) {
            rejected = true;
            note_error(PQresultErrorMessage(res));
        }
        PQclear(res);
    }
    if (!ok || PQstatus(pg) != CONNECTION_OK) throw store_failure{};
    if (rejected) throw std::runtime_error("row rejected");
}

inline void event_store::write_rows(std::span<const event* const> rows) {
    if (!state_->conn) throw store_failure{};
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
    } catch (const store_failure&) {
        store_failed = true;
    } catch (...) {
    }
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
    // Sanitize in order; an unstorable timestamp makes the row invalid. Invalid rows
    // are resolved in place, so a later store failure still fails a tail.
    std::vector<std::size_t> invalid_after;  // invalid row: how many valid rows precede it
    try {
        for (const event& e : batch) {
            if (!detail::storable_time(e.timestamp)) {
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

inline std::int64_t event_store::cleanup_old(int older_than_days, int batch_size, event_time now) const {
    if (batch_size <= 0)
        throw config_error("cleanup_old: batch_size must be > 0, got " + std::to_string(batch_size));
    if (older_than_days < 0)
        throw config_error("cleanup_old: older_than_days must be >= 0, got " +
                           std::to_string(older_than_days));
    const dialect d = sql_dialect();
    const event_time cutoff = now - std::chrono::hours{24} * older_than_days;
    const std::string cutoff_value = time_value(d, cutoff);
    if (cutoff <= detail::min_event_time) return 0;
    auto sql = open_session();
    const std::string text = "DELETE FROM ratelimit_event WHERE id IN (SELECT id FROM ratelimit_event"
                             " WHERE timestamp < " + time_param(d, ":cutoff") +
                             " LIMIT " + std::to_string(batch_size) + ")";
    std::int64_t total = 0;
    try {
        for (;;) {
            ::soci::transaction tx(*sql);
            ::soci::statement st = (sql->prepare << text, ::soci::use(cutoff_value, "cutoff"));
            st.execute(true);
            const long long n = st.get_affected_rows();
            tx.commit();
            total += n;
            if (n < batch_size) break;
        }
    } catch (const ::soci::soci_error& e) {
        throw storage_error("cleanup_old failed after deleting " + std::to_string(total) +
                            " rows: " + e.what());
    }
    return total;
}

}  // namespace smart_ratelimit::soci
