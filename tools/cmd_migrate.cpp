// tools/cmd_migrate.cpp
// `smart-ratelimit migrate`: creates or upgrades the schema (the event log and
// every other component's migration set) in an explicit, idempotent step, and
// prints one line saying what it did. `--status` only reads: each set's applied and
// latest version, exit 0 when all are current and 1 when not.
#include "cli_common.hpp"
#include "migration_sets.hpp"

#include <algorithm>
#include <cstdio>
#include <span>
#include <string>
#include <vector>

namespace srl_tool {

namespace {

constexpr std::string_view usage_migrate =
    "usage: smart-ratelimit migrate [--status] [--database URL] [--settings FILE] [--quiet]\n"
    "\n"
    "Creates or upgrades the tables the library uses (ratelimit_event and its\n"
    "indexes, and the other components' tables). Safe to run any number of times.\n"
    "On PostgreSQL the event log is partitioned by UTC day: every run also creates\n"
    "the partitions of today and the next 7 days that are missing (run it daily,\n"
    "e.g. from cron, and the writer never has to create one itself).\n"
    "The database is --database, else RATELIMIT_DATABASE_URL, else the settings\n"
    "file, else sqlite:///smart_ratelimit.db (created when missing).\n"
    "--status changes nothing: it lists each migration set with the version applied\n"
    "in the database and the latest this program knows, e.g.\n"
    "  events     applied v2, latest v2  current\n"
    "  analytics  applied v0, latest v3  pending\n"
    "and exits 0 when every set is current, 1 when one is not. A missing SQLite file\n"
    "is exit 69 and is not created.\n";

/// `migrate --status`: reads each set's version, prints one row per set and the
/// summary; exit 0 when all are current, 1 when not.
int migrate_status(const parsed_args& a) {
    const auto url = resolve_database_url(a);
    require_existing_database(url);
    const auto sql = srl::soci::open_session(url);
    const auto sets = all_migration_sets();
    std::size_t width = 0;
    for (const auto& set : sets) width = std::max(width, set.component.size());
    std::string rows;
    int pending = 0;
    for (const auto& set : sets) {
        const int applied = srl::soci::schema_version(*sql, set.component);
        const int latest = srl::soci::latest_version(set);
        const char* state = applied == latest  ? "current"
                            : applied > latest ? "newer than this program"
                                               : "pending";
        if (applied < latest) ++pending;
        rows += "  " + std::string(set.component) + std::string(width - set.component.size(), ' ') +
                "  applied v" + std::to_string(applied) + ", latest v" + std::to_string(latest) +
                "  " + state + "\n";
    }
    std::fwrite(rows.data(), 1, rows.size(), stdout);
    if (pending == 0) {
        print_summary("migrate: schema current in " + url.redacted());
        return int{exit_ok};
    }
    print_summary("migrate: " + std::to_string(pending) + " migration set(s) pending in " +
                  url.redacted() + ": run `smart-ratelimit migrate`");
    return int{exit_failure};
}

}  // namespace

int run_migrate(args_view args) {
    return guarded("migrate", [&] {
        const auto a = parse_args(args, {{"--status", false}}, usage_migrate);
        if (a.help) return int{exit_ok};
        if (a.has("--status")) return migrate_status(a);
        const auto store = open_event_store(a, /*require_schema=*/false);
        const auto extra = component_migration_sets();
        const auto applied = store.migrate(extra);
        std::string versions =
            "events v" + std::to_string(srl::soci::latest_version(srl::soci::event_log_migrations));
        for (const auto& set : extra)
            versions += ", " + std::string(set.component) + " v" +
                        std::to_string(srl::soci::latest_version(set));
        if (applied.empty()) {
            print_summary("migrate: schema up to date (" + versions + ") in " +
                          store.url().redacted());
        } else {
            std::string steps;
            for (const auto& m : applied)
                steps += (steps.empty() ? "" : "; ") + m.component + " v" +
                         std::to_string(m.version) + " " + m.description;
            print_summary("migrate: applied " + std::to_string(applied.size()) + " step(s) (" +
                          steps + ") in " + store.url().redacted() + "; now " + versions);
        }
        return int{exit_ok};
    });
}

}  // namespace srl_tool
