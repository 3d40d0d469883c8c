// smart_ratelimit/soci/health.hpp
// The database checks of a health_report: "database" (the database answers,
// within a bounded connect timeout; a SQLite file must already exist and is
// opened without the create flag, so a probe never creates it) and
// "migrations" (every given migration set is at the latest version this build
// knows). Details are one short line with passwords redacted.
#pragma once

#include <chrono>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include <soci/soci.h>
#include <soci/sqlite3/soci-sqlite3.h>

#include <smart_ratelimit/error.hpp>
#include <smart_ratelimit/health.hpp>
#include <smart_ratelimit/soci/database_url.hpp>
#include <smart_ratelimit/soci/schema.hpp>

namespace smart_ratelimit::soci {

/// How check_database() probes.
struct database_check_options {
    /// Bound on connecting: libpq's connect_timeout on PostgreSQL (libpq treats
    /// values under 2 s as 2 s; a smaller connect_timeout in the URL is kept) and,
    /// with a server-side statement_timeout of the same length, on each query; the
    /// busy timeout on SQLite.
    std::chrono::seconds timeout{5};
    /// Whether a set recorded at a newer version than this build knows passes. Yes
    /// by default: during a rolling upgrade the database is migrated before the old
    /// instances are replaced, and they keep working on the additive schema. The
    /// detail names such sets either way.
    bool newer_schema_ok = true;
};

/// The names of the checks check_database() adds, in this order.
inline constexpr std::string_view database_check_name = "database";
inline constexpr std::string_view migrations_check_name = "migrations";

namespace detail {

// The URL for a detail: the original with its password redacted, or (for a
// database_url built by hand) one made from the parts without the password.
inline std::string describe_url(const database_url& url) {
    if (!url.original.empty()) return url.redacted();
    if (url.kind == dialect::sqlite) return "sqlite:///" + url.path;
    std::string s = "postgresql://";
    if (!url.user.empty()) s += url.user + (url.password.empty() ? "@" : ":***@");
    s += url.host;
    if (!url.port.empty()) s += ":" + url.port;
    return s + "/" + url.dbname;
}

// A driver message as one short line, with the password (if it ever appears) masked.
inline std::string health_detail_text(std::string text, const database_url& url) {
    if (!url.password.empty())
        for (auto at = text.find(url.password); at != std::string::npos;
             at = text.find(url.password, at + 3))
            text.replace(at, url.password.size(), "***");
    std::string out;
    for (const char c : text) {
        const bool space = c == '\n' || c == '\r' || c == '\t' || c == ' ';
        if (space && (out.empty() || out.back() == ' ')) continue;
        out += space ? ' ' : c;
    }
    while (!out.empty() && out.back() == ' ') out.pop_back();
    constexpr std::size_t max_detail = 300;
    if (out.size() > max_detail) out = out.substr(0, max_detail - 3) + "...";
    return out;
}

// The schema version of each set on SQLite, through the C API: the file is opened
// read-write without SQLITE_OPEN_CREATE, so a probe can never create it (SOCI
// always asks for CREATE, and a read-only open of a WAL database leaves its -wal
// and -shm files behind). Throws storage_error with SQLite's message.
inline std::vector<int> sqlite_probe_versions(const std::string& path,
                                              std::span<const migration_set> sets,
                                              std::chrono::seconds timeout) {
    namespace api = sqlite_api;
    struct closer {
        api::sqlite3* db = nullptr;
        api::sqlite3_stmt* stmt = nullptr;
        ~closer() {
            api::sqlite3_finalize(stmt);
            api::sqlite3_close_v2(db);
        }
    } h;
    auto fail = [&](const std::string& what) -> storage_error {
        return storage_error(what + ": " +
                             (h.db != nullptr ? api::sqlite3_errmsg(h.db) : "out of memory"));
    };
    if (api::sqlite3_open_v2(path.c_str(), &h.db, SQLITE_OPEN_READWRITE, nullptr) != SQLITE_OK)
        throw fail("cannot open");
    api::sqlite3_busy_timeout(
        h.db, static_cast<int>(timeout.count() > 0 ? timeout.count() * 1000 : 1000));
    // Returns the first column of the one row of `text` (with ?1 bound to `arg` if
    // given), or -1 when it is NULL.
    auto query_int = [&](const char* text, const std::string* arg) {
        api::sqlite3_finalize(h.stmt);
        h.stmt = nullptr;
        if (api::sqlite3_prepare_v2(h.db, text, -1, &h.stmt, nullptr) != SQLITE_OK)
            throw fail("cannot query");
        if (arg != nullptr)
            api::sqlite3_bind_text(h.stmt, 1, arg->data(), static_cast<int>(arg->size()),
                                   SQLITE_STATIC);
        if (api::sqlite3_step(h.stmt) != SQLITE_ROW) throw fail("cannot query");
        const int v = api::sqlite3_column_type(h.stmt, 0) == SQLITE_NULL
                          ? -1
                          : api::sqlite3_column_int(h.stmt, 0);
        api::sqlite3_finalize(h.stmt);  // before `arg` goes away (bound without a copy)
        h.stmt = nullptr;
        return v;
    };
    // Reading the catalog proves the file is a database (SQLite opens lazily).
    const bool has_table = query_int(
                               "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table'"
                               " AND name = 'ratelimit_schema_version'",
                               nullptr) > 0;
    std::vector<int> versions;
    for (const auto& set : sets) {
        const std::string component(set.component);
        const int v = has_table ? query_int(
                                      "SELECT MAX(version) FROM ratelimit_schema_version"
                                      " WHERE component = ?1",
                                      &component)
                                : 0;
        versions.push_back(v < 0 ? 0 : v);
    }
    return versions;
}

// The schema version of each set on PostgreSQL, over a connection whose connect
// and statement timeouts are bounded by `timeout`.
inline std::vector<int> postgresql_probe_versions(const database_url& url,
                                                  std::span<const migration_set> sets,
                                                  std::chrono::seconds timeout) {
    const long long secs = timeout.count() > 0 ? timeout.count() : 1;
    database_url bounded = url;
    bool found = false;
    for (auto& [k, v] : bounded.options) {
        if (k != "connect_timeout") continue;
        found = true;
        long long given = 0;
        for (const char c : v)
            given = c >= '0' && c <= '9' && given < 1'000'000 ? given * 10 + (c - '0') : given;
        if (given <= 0 || given > secs)
            v = std::to_string(secs);  // 0 or junk would mean "wait forever"
    }
    if (!found) bounded.options.emplace_back("connect_timeout", std::to_string(secs));
    session_settings settings;
    settings.statement_timeout = std::chrono::seconds(secs);
    ::soci::session sql(bounded.soci_backend(), bounded.soci_connect_string(settings));
    std::vector<int> versions;
    for (const auto& set : sets) versions.push_back(schema_version(sql, set.component));
    return versions;
}

}  // namespace detail

/// Probes the database at `url`: adds the checks "database" and "migrations" to a
/// new report. "database" fails with the reason when the database cannot be
/// opened or queried (a missing SQLite file is not created); "migrations" then
/// fails as "not checked". Otherwise "migrations" is ok when every set in `sets`
/// is at its latest_version(); its detail lists the sets (`events v2, state v1`)
/// and names those behind (`events v0 < v2`) or ahead (`state v3 > v2`).
/// Pass every set the deployment migrates (the event log's first). Never throws
/// for a database problem; std::bad_alloc passes through.
/// Thread safety: opens its own connection; may run concurrently with anything.
inline health_report check_database(const database_url& url, std::span<const migration_set> sets,
                                    const database_check_options& options = {}) {
    health_report report;
    const std::string where = detail::describe_url(url);
    auto unreachable = [&](const std::string& why) {
        report.add(std::string(database_check_name), false, detail::health_detail_text(why, url));
        report.add(std::string(migrations_check_name), false,
                   "not checked: the database is unreachable");
        return report;
    };
    if (url.kind == dialect::sqlite && url.path != ":memory:") {
        std::error_code ec;
        const auto st = std::filesystem::status(url.path, ec);
        if (st.type() == std::filesystem::file_type::not_found)
            return unreachable("no database file at " + where);
        if (ec) return unreachable("cannot read " + where + ": " + ec.message());
        if (st.type() != std::filesystem::file_type::regular)
            return unreachable(where + " is not a regular file");
    }

    std::vector<int> versions;
    try {
        versions = url.kind == dialect::sqlite
                       ? detail::sqlite_probe_versions(url.path, sets, options.timeout)
                       : detail::postgresql_probe_versions(url, sets, options.timeout);
    } catch (const ::soci::soci_error& e) {
        return unreachable("cannot query " + where + ": " + e.what());
    } catch (const storage_error& e) {
        return unreachable("cannot query " + where + ": " + e.what());
    }
    report.add(std::string(database_check_name), true, where + " reachable");

    std::string current, behind, ahead;
    auto append = [](std::string& list, const std::string& item) {
        list += (list.empty() ? "" : ", ") + item;
    };
    for (std::size_t i = 0; i < sets.size(); ++i) {
        const std::string name(sets[i].component);
        const int have = versions[i];
        const int want = latest_version(sets[i]);
        if (have < want)
            append(behind, name + " v" + std::to_string(have) + " < v" + std::to_string(want));
        else if (have > want)
            append(ahead, name + " v" + std::to_string(have) + " > v" + std::to_string(want));
        else
            append(current, name + " v" + std::to_string(have));
    }
    const bool ok = behind.empty() && (ahead.empty() || options.newer_schema_ok);
    std::string text;
    if (!behind.empty()) text = "behind: " + behind + " (run migrate)";
    if (!ahead.empty())
        text += (text.empty() ? "" : "; ") + std::string("newer than this build: ") + ahead;
    if (!current.empty()) text += (text.empty() ? "" : "; ") + std::string("current: ") + current;
    if (sets.empty()) text = "no migration sets given";
    report.add(std::string(migrations_check_name), ok, std::move(text));
    return report;
}

/// As above, parsing `url` first (sqlite:///..., postgresql://...). Throws
/// config_error (password redacted) when the URL itself is malformed.
inline health_report check_database(std::string_view url, std::span<const migration_set> sets,
                                    const database_check_options& options = {}) {
    return check_database(parse_database_url(url), sets, options);
}

}  // namespace smart_ratelimit::soci
