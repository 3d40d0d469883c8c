// smart_ratelimit/soci/migrations/alerts.hpp
// The alert log's migration set (component "alerts"), as data: the table
// ratelimit_alert_log that soci/alert_log.hpp keeps the alert cool-down in,
// the same on both engines. A shipped version is never edited.
#pragma once

#include <smart_ratelimit/soci/migration.hpp>

namespace smart_ratelimit::soci {

namespace detail::alerts_sql {
inline constexpr char v1[] =
    "CREATE TABLE IF NOT EXISTS ratelimit_alert_log ("
    " \"key\" VARCHAR(255) NOT NULL PRIMARY KEY,"
    " last_alerted_us BIGINT NOT NULL)";
}  // namespace detail::alerts_sql

/// The alert log's steps. To add a step, append one line.
inline constexpr migration alert_log_steps[] = {
    {1, "create ratelimit_alert_log (last alert time per key)", detail::alerts_sql::v1,
     detail::alerts_sql::v1},
};

/// The alert log's migration set (component "alerts").
inline constexpr migration_set alert_log_migrations{"alerts", alert_log_steps};

}  // namespace smart_ratelimit::soci
