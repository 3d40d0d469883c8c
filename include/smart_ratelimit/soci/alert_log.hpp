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

private:
    std::unique_ptr<::soci::session> sql_;
};

static_assert(alert_log<sql_alert_log>);

}  // namespace smart_ratelimit::soci
