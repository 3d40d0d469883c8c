// smart_ratelimit/soci/impl/event_store.hpp
// The out-of-line bodies of event_store (included only at the bottom of
// soci/event_store.hpp): connecting, the batch write with bisection over the
// dialect's writer, count and cleanup_old.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <vector>

#include <soci/soci.h>
#include <soci/postgresql/soci-postgresql.h>
#include <soci/sqlite3/soci-sqlite3.h>

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
    try {
        state_->copy.write(pg_connection(*state_->conn), rows, state_->last_error,
                           state_->options.write_timeout);
    } catch (const detail::store_failure& f) {
        if (f.broken) drop_connection();  // mid-command: unusable
        throw;
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

inline std::int64_t event_store::cleanup_old(int older_than_days, int batch_size,
                                             event_time now) const {
    if (batch_size <= 0)
        throw config_error("cleanup_old: batch_size must be > 0, got " +
                           std::to_string(batch_size));
    if (older_than_days < 0)
        throw config_error("cleanup_old: older_than_days must be >= 0, got " +
                           std::to_string(older_than_days));
    const dialect d = sql_dialect();
    const event_time cutoff = now - std::chrono::hours{24} * older_than_days;
    const std::string cutoff_value = time_value(d, cutoff);
    if (cutoff <= detail::min_event_time) return 0;
    auto sql = open_session();
    const std::string text =
        "DELETE FROM ratelimit_event WHERE id IN (SELECT id FROM ratelimit_event"
        " WHERE timestamp < " +
        time_param(d, ":cutoff") + " LIMIT " + std::to_string(batch_size) + ")";
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
