// smart_ratelimit/soci/detail/outcome_sql.hpp
// The `outcome` column (events v3) in SQL: whether a database has it, the SELECT
// and WHERE spellings that also work without it, and how a stored value reads
// back (NULL, an unknown text or one that disagrees with `allowed`:
// outcome_of_allowed(allowed), so older rows read as they always did).
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include <soci/soci.h>

#include <smart_ratelimit/event.hpp>
#include <smart_ratelimit/soci/database_url.hpp>
#include <smart_ratelimit/soci/migrations/events.hpp>
#include <smart_ratelimit/soci/schema.hpp>

namespace smart_ratelimit::soci::detail {

/// The events version that adds `outcome`.
inline constexpr int outcome_events_version = 3;

/// Whether the event log on `sql` has the outcome column (events v3 applied).
inline bool outcome_column_ready(::soci::session& sql) {
    return schema_version(sql, event_log_migrations.component) >= outcome_events_version;
}

/// The outcome as a SELECT expression: the column, or NULL on an older database.
inline std::string outcome_select(bool ready) {
    return ready ? "outcome" : "CAST(NULL AS VARCHAR(16))";
}

/// The condition "this row is degraded": outcome 'degraded' with allowed true (so
/// degraded and blocked never overlap, even for rows another program wrote). The
/// literal lets both engines use the partial index ratelimit_event_degraded_timestamp_idx.
/// On an older database no row is degraded.
inline std::string degraded_condition(dialect d, bool ready) {
    if (!ready) return "1 = 0";
    return d == dialect::sqlite ? "(outcome = 'degraded' AND allowed <> 0)"
                                : "(outcome = 'degraded' AND allowed)";
}

/// 1 for a degraded row, else 0.
inline std::string degraded_int(dialect d, bool ready) {
    return "CASE WHEN " + degraded_condition(d, ready) + " THEN 1 ELSE 0 END";
}

/// The outcome of a stored row: the column's text when it names an outcome that
/// agrees with `allowed`, else outcome_of_allowed(allowed) (NULL: a row written
/// before the column, or by an older writer; unknown text: never an error).
inline outcome_kind read_outcome(bool allowed, ::soci::indicator ind,
                                 std::string_view text) noexcept {
    if (ind == ::soci::i_ok) {
        if (const auto k = parse_outcome_kind(text); k && allowed_column(*k) == allowed) return *k;
    }
    return outcome_of_allowed(allowed);
}

}  // namespace smart_ratelimit::soci::detail
