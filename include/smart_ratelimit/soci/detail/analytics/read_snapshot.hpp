// smart_ratelimit/soci/detail/analytics/read_snapshot.hpp
// One read-only snapshot for the several statements of one analytics call, so
// they see the same rows under concurrent writes; left to the caller when the
// session is already in a transaction.
#pragma once

#include <string>

#include <soci/soci.h>
#include <soci/postgresql/soci-postgresql.h>
#include <soci/sqlite3/soci-sqlite3.h>

#include <smart_ratelimit/error.hpp>
#include <smart_ratelimit/soci/database_url.hpp>

namespace smart_ratelimit::soci::detail::analytics {

/// How PostgreSQL may plan the statements of a snapshot it opened.
enum class snapshot_plans {
    as_configured,
    /// No parallel workers (max_parallel_workers_per_gather = 0, for the snapshot's
    /// transaction only): for statements that read one key's index range, where
    /// starting workers costs more than the read. A drill-down of 70,000 events on
    /// 50M took 58 ms with two workers and 15 ms without (2 cores).
    serial,
};

/// Runs the statements of one analytics call in one snapshot: a read-only
/// transaction (REPEATABLE READ on PostgreSQL) when the session is not already in
/// a transaction (then the caller's transaction decides, plans included), so the
/// several statements of a top-N query see the same rows under concurrent writes.
class read_snapshot {
public:
    read_snapshot(::soci::session& sql, dialect d,
                  snapshot_plans plans = snapshot_plans::as_configured)
        : sql_(sql) {
        if (!idle(sql, d)) return;
        try {
            sql << (d == dialect::postgresql ? "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"
                                             : "BEGIN");
            open_ = true;
            if (d == dialect::postgresql && plans == snapshot_plans::serial)
                sql << "SET LOCAL max_parallel_workers_per_gather = 0";
        } catch (const ::soci::soci_error& e) {
            if (open_) rollback();  // no destructor runs for a throwing constructor
            throw storage_error(std::string("analytics query on ratelimit_event failed: ") +
                                e.what());
        }
    }
    read_snapshot(const read_snapshot&) = delete;
    read_snapshot& operator=(const read_snapshot&) = delete;
    ~read_snapshot() {
        if (open_) rollback();
    }

private:
    void rollback() noexcept {
        try {
            sql_ << "ROLLBACK";  // nothing was written
        } catch (...) {}
    }
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

}  // namespace smart_ratelimit::soci::detail::analytics
