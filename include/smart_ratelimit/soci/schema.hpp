// smart_ratelimit/soci/schema.hpp
// Applies explicit, idempotent, versioned schema migrations. A component (the event
// log, the SQL rate-limit state, rollups, alerts) owns a `migration_set`
// (soci/migration.hpp; the sets are in soci/migrations/). `migrate()` applies the
// pending versions of several sets, each in its own transaction, and records them
// in `ratelimit_schema_version`. Nothing here ever runs implicitly on write.
#pragma once

#include <cstddef>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <soci/soci.h>

#include <smart_ratelimit/error.hpp>
#include <smart_ratelimit/soci/database_url.hpp>
#include <smart_ratelimit/soci/detail/sql_lexer.hpp>
#include <smart_ratelimit/soci/migration.hpp>
#include <smart_ratelimit/soci/migrations/events.hpp>

namespace smart_ratelimit::soci {

/// One step `migrate()` applied.
struct applied_migration {
    std::string component;
    int version;
    std::string description;
};

namespace detail {

inline void ensure_version_table(::soci::session& sql, dialect d) {
    const std::string applied_at =
        d == dialect::postgresql
            ? "TIMESTAMPTZ NOT NULL DEFAULT now()"
            : "INTEGER NOT NULL DEFAULT (CAST(strftime('%s','now') AS INTEGER) * 1000000)";
    sql << "CREATE TABLE IF NOT EXISTS ratelimit_schema_version ("
           " component VARCHAR(64) NOT NULL, version INTEGER NOT NULL,"
           " description VARCHAR(200) NOT NULL,"
           " applied_at " +
               applied_at +
               ","
               " PRIMARY KEY (component, version))";
}

// "ALTER TABLE <t> ADD COLUMN IF NOT EXISTS <c> ...": {t, c, the statement without
// the IF NOT EXISTS}; nullopt for any other statement. Words are ASCII, case-insensitive.
struct add_column_statement {
    std::string table, column, plain;
};
inline std::optional<add_column_statement> parse_add_column_if_missing(std::string_view stmt) {
    std::size_t pos = 0;
    auto skip_space = [&] {
        while (pos < stmt.size() && (stmt[pos] == ' ' || stmt[pos] == '\n' || stmt[pos] == '\t'))
            ++pos;
    };
    auto word = [&] {
        skip_space();
        const std::size_t from = pos;
        while (pos < stmt.size() && stmt[pos] != ' ' && stmt[pos] != '\n' && stmt[pos] != '\t')
            ++pos;
        return stmt.substr(from, pos - from);
    };
    auto is = [](std::string_view w, std::string_view upper) {
        if (w.size() != upper.size()) return false;
        for (std::size_t i = 0; i < w.size(); ++i)
            if ((w[i] >= 'a' && w[i] <= 'z' ? static_cast<char>(w[i] - 32) : w[i]) != upper[i])
                return false;
        return true;
    };
    if (!is(word(), "ALTER") || !is(word(), "TABLE")) return std::nullopt;
    const std::string_view table = word();
    if (!is(word(), "ADD") || !is(word(), "COLUMN")) return std::nullopt;
    const std::size_t if_at = (skip_space(), pos);
    if (!is(word(), "IF") || !is(word(), "NOT") || !is(word(), "EXISTS")) return std::nullopt;
    const std::size_t rest_at = pos;
    const std::string_view column = word();
    if (table.empty() || column.empty()) return std::nullopt;
    return add_column_statement{
        std::string(table), std::string(column),
        std::string(stmt.substr(0, if_at)) + std::string(stmt.substr(rest_at + 1))};
}

// Runs one migration statement. SQLite has no ADD COLUMN IF NOT EXISTS: there such a
// statement runs without the clause, and only when the column is missing.
inline void run_migration_statement(::soci::session& sql, dialect d, const std::string& stmt) {
    if (d == dialect::sqlite) {
        if (const auto add = parse_add_column_if_missing(stmt)) {
            int n = 0;
            sql << "SELECT COUNT(*) FROM pragma_table_info(:t) WHERE name = :c", ::soci::into(n),
                ::soci::use(add->table), ::soci::use(add->column);
            if (n == 0) sql << add->plain;
            return;
        }
    }
    sql << stmt;
}

inline int read_version(::soci::session& sql, std::string_view component) {
    int v = 0;
    ::soci::indicator ind = ::soci::i_null;
    const std::string comp(component);
    sql << "SELECT MAX(version) FROM ratelimit_schema_version WHERE component = :c",
        ::soci::into(v, ind), ::soci::use(comp);
    return ind == ::soci::i_ok ? v : 0;
}

}  // namespace detail

/// The highest applied version of `component`, 0 when none (or no version table).
/// Throws storage_error when the database cannot be queried at all.
inline int schema_version(::soci::session& sql, std::string_view component) {
    try {
        return detail::read_version(sql, component);
    } catch (const ::soci::soci_error&) {
        // Most likely the version table does not exist yet; tell "missing" from "down".
        try {
            int one = 0;
            sql << "SELECT 1", ::soci::into(one);
        } catch (const ::soci::soci_error& e) {
            throw storage_error(std::string("schema_version: database unreachable: ") + e.what());
        }
        return 0;
    }
}

/// Applies every pending step of every set, in order, one transaction per step
/// (PostgreSQL takes an advisory lock so concurrent migrators serialize; SQLite
/// uses BEGIN IMMEDIATE). Idempotent: applied steps are skipped. Returns what ran.
/// Throws storage_error naming the component and version on failure, config_error
/// when a set's versions are not 1, 2, 3, ...
inline std::vector<applied_migration> migrate(::soci::session& sql, dialect d,
                                              std::span<const migration_set> sets) {
    std::vector<applied_migration> applied;
    for (const auto& set : sets) {
        for (std::size_t i = 0; i < set.steps.size(); ++i)
            if (set.steps[i].version != static_cast<int>(i) + 1)
                throw config_error("migration set '" + std::string(set.component) +
                                   "': versions must be 1, 2, 3, ... in order");
    }
    try {
        detail::ensure_version_table(sql, d);
    } catch (const ::soci::soci_error& e) {
        throw storage_error(std::string("migrate: cannot create ratelimit_schema_version: ") +
                            e.what());
    }
    for (const auto& set : sets) {
        for (const auto& step : set.steps) {
            const std::string_view text =
                d == dialect::sqlite ? step.sqlite_sql : step.postgresql_sql;
            try {
                if (d == dialect::sqlite) {
                    sql << "BEGIN IMMEDIATE";
                } else {
                    sql << "BEGIN";
                    sql << "SELECT pg_advisory_xact_lock(7368051)";
                }
                try {
                    if (detail::read_version(sql, set.component) >= step.version) {
                        sql << "COMMIT";
                        continue;
                    }
                    for (const auto& stmt : detail::split_statements(text))
                        detail::run_migration_statement(sql, d, stmt);
                    const std::string comp(set.component);
                    const std::string desc(step.description);
                    const int version = step.version;
                    sql << "INSERT INTO ratelimit_schema_version (component, version, description)"
                           " VALUES (:c, :v, :d)",
                        ::soci::use(comp), ::soci::use(version), ::soci::use(desc);
                    sql << "COMMIT";
                } catch (...) {
                    try {
                        sql << "ROLLBACK";
                    } catch (...) {}
                    throw;
                }
                applied.push_back(
                    {std::string(set.component), step.version, std::string(step.description)});
            } catch (const ::soci::soci_error& e) {
                throw storage_error("migrate: " + std::string(set.component) + " version " +
                                    std::to_string(step.version) + " (" +
                                    std::string(step.description) + ") failed: " + e.what());
            }
        }
    }
    return applied;
}

}  // namespace smart_ratelimit::soci
