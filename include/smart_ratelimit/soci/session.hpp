// smart_ratelimit/soci/session.hpp
// A SOCI session on a database URL, and timestamps in SQL text: how to bind one
// (time_param / time_value) and how to select one as int64 microseconds
// (time_column_micros), the same way on SQLite and PostgreSQL.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include <soci/soci.h>

#include <smart_ratelimit/error.hpp>
#include <smart_ratelimit/event.hpp>
#include <smart_ratelimit/soci/database_url.hpp>
#include <smart_ratelimit/soci/detail/sql_time.hpp>

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
/// busy timeout; PostgreSQL sessions ask for `settings` and the bounded waits that
/// database_url::soci_connect_string describes. Throws storage_error naming the
/// (redacted) URL when it fails.
inline std::unique_ptr<::soci::session> open_session(const database_url& url,
                                                     const session_settings& settings = {}) {
    try {
        auto sql = std::make_unique<::soci::session>(url.soci_backend(),
                                                     url.soci_connect_string(settings));
        if (url.kind == dialect::sqlite) {
            *sql << "PRAGMA journal_mode=WAL";
            *sql << "PRAGMA synchronous=NORMAL";
            *sql << "PRAGMA busy_timeout=10000";
        }
        return sql;
    } catch (const ::soci::soci_error& e) {
        throw storage_error("cannot open database '" + url.redacted() + "': " + e.what());
    }
}

}  // namespace smart_ratelimit::soci
