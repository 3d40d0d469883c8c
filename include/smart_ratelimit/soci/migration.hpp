// smart_ratelimit/soci/migration.hpp
// What a schema migration is, as data: a `migration` step {version, description,
// SQLite SQL, PostgreSQL SQL} and a component's ordered `migration_set`. The sets
// themselves live in soci/migrations/; schema.hpp applies them.
#pragma once

#include <span>
#include <string_view>

namespace smart_ratelimit::soci {

/// One schema step. Each SQL text may hold several statements separated by ';'
/// (a ';' inside quotes, a $$ body or a trigger's BEGIN ... END does not split).
/// Statements should be idempotent where the dialect allows (`IF NOT EXISTS`), so
/// a lost version row never breaks a re-run. `ALTER TABLE t ADD COLUMN IF NOT EXISTS
/// c ...` may be used on both engines: on SQLite, which lacks the clause, migrate()
/// runs it without the clause and only when t has no column c.
struct migration {
    int version;
    std::string_view description;
    std::string_view sqlite_sql;
    std::string_view postgresql_sql;
};

/// The ordered steps of one component. Versions start at 1 and increase by one.
struct migration_set {
    std::string_view component;
    std::span<const migration> steps;
};

/// The table that records applied versions, one row per (component, version).
inline constexpr std::string_view schema_version_table = "ratelimit_schema_version";

/// The latest version a set defines.
constexpr int latest_version(const migration_set& set) noexcept {
    int v = 0;
    for (const auto& m : set.steps) v = m.version > v ? m.version : v;
    return v;
}

}  // namespace smart_ratelimit::soci
