// smart_ratelimit/soci/alert_log.hpp
// The alert cool-down remembered in the database: table `ratelimit_alert_log`
// (one row per key: when it was last alerted, microseconds since the Unix epoch,
// UTC), created by the "alerts" migration set (soci/migrations/alerts.hpp) that
// `smart-ratelimit migrate` applies. An alert_log policy for send_offender_alerts.
// Needs SOCI.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <soci/soci.h>

#include <smart_ratelimit/alerts/alert_log.hpp>
#include <smart_ratelimit/error.hpp>
#include <smart_ratelimit/soci/event_store.hpp>
#include <smart_ratelimit/soci/migrations/alerts.hpp>
#include <smart_ratelimit/soci/schema.hpp>

namespace smart_ratelimit::soci {

/// Remembers alerted keys in `ratelimit_alert_log`, on its own connection.
/// Errors throw storage_error (send_offender_alerts reports them in the result).
/// A claiming_alert_log: claim() is a compare-and-set on the key's row (an INSERT
/// that does nothing on a conflict, or an UPDATE that names the time it read), so
/// of several processes sharing the database (PostgreSQL, or one SQLite file)
/// exactly one wins each key, whatever their interleaving.
/// Thread safety: one thread at a time (one SOCI session).
class sql_alert_log {
public:
    /// Opens a connection to the store's database. Throws storage_error when the
    /// database is unreachable or the table is missing (run the migration first).
    explicit sql_alert_log(const event_store& store) : sql_(store.open_session()) {
        if (schema_version(*sql_, alert_log_migrations.component) <
            latest_version(alert_log_migrations))
            throw storage_error("the alert log table ratelimit_alert_log is missing in '" +
                                store.url().redacted() + "': run `smart-ratelimit migrate`");
    }

    std::optional<event_time> last_alerted(std::string_view key) {
        try {
            const std::string k(key);
            long long us = 0;
            ::soci::indicator ind = ::soci::i_null;
            *sql_ << "SELECT last_alerted_us FROM ratelimit_alert_log WHERE \"key\" = :k",
                ::soci::use(k), ::soci::into(us, ind);
            if (!sql_->got_data() || ind != ::soci::i_ok) return std::nullopt;
            return event_time(std::chrono::microseconds(us));
        } catch (const ::soci::soci_error& e) {
            throw storage_error(std::string("alert log: ") + e.what());
        }
    }

    /// Upserts the key's time; never moves it backwards.
    void record(std::string_view key, event_time at) {
        try {
            const std::string k(key);
            const long long us = at.time_since_epoch().count();
            *sql_ << "INSERT INTO ratelimit_alert_log (\"key\", last_alerted_us) VALUES (:k, :t)"
                     " ON CONFLICT (\"key\") DO UPDATE SET last_alerted_us ="
                     " CASE WHEN excluded.last_alerted_us > ratelimit_alert_log.last_alerted_us"
                     " THEN excluded.last_alerted_us ELSE ratelimit_alert_log.last_alerted_us END",
                ::soci::use(k), ::soci::use(us);
        } catch (const ::soci::soci_error& e) {
            throw storage_error(std::string("alert log: ") + e.what());
        }
    }

    alert_claim claim(std::string_view key, event_time at, event_time since) {
        // Read, then write only if the row still holds what was read: a race with
        // another claimer makes one of the two writes change no row (read again: a
        // release may also have removed the row in between).
        for (int attempt = 0; attempt < 3; ++attempt) {
            const auto previous = last_alerted(key);
            if (previous && *previous >= since) return {false, previous};
            try {
                const std::string k(key);
                const long long us = at.time_since_epoch().count();
                ::soci::statement st = previous ? update_if(k, us, *previous) : insert_new(k, us);
                st.execute(true);
                if (st.get_affected_rows() == 1) return {true, previous};
            } catch (const ::soci::soci_error& e) {
                // A write that failed (a busy SQLite file, a lock timeout): read
                // again; the third failure is reported.
                if (attempt == 2) throw storage_error(std::string("alert log: ") + e.what());
            }
        }
        return {false, last_alerted(key)};
    }

    void release(std::string_view key, event_time at, std::optional<event_time> previous) {
        try {
            const std::string k(key);
            long long us = at.time_since_epoch().count();
            if (previous) {
                long long prev = previous->time_since_epoch().count();
                *sql_ << "UPDATE ratelimit_alert_log SET last_alerted_us = :p"
                         " WHERE \"key\" = :k AND last_alerted_us = :t",
                    ::soci::use(prev), ::soci::use(k), ::soci::use(us);
            } else {
                *sql_ << "DELETE FROM ratelimit_alert_log WHERE \"key\" = :k AND last_alerted_us = "
                         ":t",
                    ::soci::use(k), ::soci::use(us);
            }
        } catch (const ::soci::soci_error& e) {
            throw storage_error(std::string("alert log: ") + e.what());
        }
    }

private:
    ::soci::statement insert_new(const std::string& k, const long long& us) {
        return (sql_->prepare << "INSERT INTO ratelimit_alert_log (\"key\", last_alerted_us)"
                                 " VALUES (:k, :t) ON CONFLICT (\"key\") DO NOTHING",
                ::soci::use(k), ::soci::use(us));
    }
    ::soci::statement update_if(const std::string& k, const long long& us, event_time previous) {
        prev_us_ = previous.time_since_epoch().count();
        return (sql_->prepare << "UPDATE ratelimit_alert_log SET last_alerted_us = :t"
                                 " WHERE \"key\" = :k AND last_alerted_us = :p",
                ::soci::use(us), ::soci::use(k), ::soci::use(prev_us_));
    }

    std::unique_ptr<::soci::session> sql_;
    long long prev_us_ = 0;  // bound by update_if's statement
};

static_assert(claiming_alert_log<sql_alert_log>);

}  // namespace smart_ratelimit::soci
