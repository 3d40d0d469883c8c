// tests/soci/sql_state_work.hpp
// What one SQL state decision costs the database, counted without a clock: the
// decision runs in a transaction on a session the caller holds, as the storage runs
// it, while SQLite reports every finished statement (sqlite3_trace_v2: rows handed
// back and virtual-machine steps) and PostgreSQL the rows the transaction fetched from
// ratelimit_sliding_entry (pg_stat_xact_user_tables). Used by the sliding-window
// tests and by benchmarks/bench_sliding_window.cpp.
#pragma once

#include <smart_ratelimit/soci/state_storage.hpp>

#include <cstdint>
#include <string>

#include <soci/soci.h>
#include <soci/sqlite3/soci-sqlite3.h>

namespace srl_test {

/// The database work of one decision.
struct sql_work {
    smart_ratelimit::outcome result;
    long long rows = 0;   ///< SQLite: rows its statements returned; PostgreSQL: rows fetched
    long long steps = 0;  ///< SQLite only: virtual-machine steps of its statements
};

namespace detail {

inline long long pg_rows_fetched(::soci::session& sql) {
    long long n = 0;
    ::soci::indicator ind = ::soci::i_null;
    sql << "SELECT COALESCE(seq_tup_read, 0) + COALESCE(idx_tup_fetch, 0) FROM "
           "pg_stat_xact_user_tables WHERE relname = 'ratelimit_sliding_entry'",
        ::soci::into(n, ind);
    return ind == ::soci::i_ok ? n : 0;
}

inline int count_sqlite(unsigned type, void* ctx, void* p, void*) {
    auto* w = static_cast<sql_work*>(ctx);
    if (type == SQLITE_TRACE_ROW) ++w->rows;
    if (type == SQLITE_TRACE_PROFILE)
        w->steps += ::sqlite_api::sqlite3_stmt_status(static_cast<::sqlite_api::sqlite3_stmt*>(p),
                                                      SQLITE_STMTSTATUS_VM_STEP, 1);
    return 0;
}

}  // namespace detail

/// Runs one decision on `key` (the key as stored: prefix and escaping applied) in
/// its own transaction on `sql`, on the database's clock, and counts its work.
template <class Alg>
sql_work count_decision(::soci::session& sql, smart_ratelimit::soci::dialect d,
                        const std::string& key, const Alg& a, std::uint64_t cost,
                        smart_ratelimit::storage_op op) {
    namespace ssql = smart_ratelimit::soci;
    sql_work w;
    sql << "BEGIN";
    const std::int64_t now = ssql::detail::database_now_ns(sql, d);
    ::sqlite_api::sqlite3* db = nullptr;
    long long before = 0;
    if (d == ssql::dialect::sqlite) {
        db = static_cast<::soci::sqlite3_session_backend*>(sql.get_backend())->conn_;
        ::sqlite_api::sqlite3_trace_v2(db, SQLITE_TRACE_ROW | SQLITE_TRACE_PROFILE,
                                       &detail::count_sqlite, &w);
    } else {
        before = detail::pg_rows_fetched(sql);
    }
    w.result = ssql::detail::decide(sql, key, a, now, cost, op);
    if (db != nullptr) {
        ::sqlite_api::sqlite3_trace_v2(db, 0, nullptr, nullptr);
    } else {
        w.rows = detail::pg_rows_fetched(sql) - before;
    }
    sql << "COMMIT";
    return w;
}

}  // namespace srl_test
