// tools/cmd_migrate.cpp
// `smart-ratelimit migrate`: creates or upgrades the schema (the event log and
// every other component's migration set) in an explicit, idempotent step, and
// prints one line saying what it did.
#include "cli_common.hpp"

#include <smart_ratelimit/soci/alert_log.hpp>
#include <smart_ratelimit/soci/state_storage.hpp>
#include <smart_ratelimit/soci/analytics.hpp>

#include <span>
#include <string>
#include <vector>

namespace srl_tool {

namespace {

constexpr std::string_view usage_migrate =
    "usage: smart-ratelimit migrate [--database URL] [--settings FILE]\n"
    "\n"
    "Creates or upgrades the tables the library uses (ratelimit_event and its\n"
    "indexes, and the other components' tables). Safe to run any number of times.\n"
    "The database is --database, else RATELIMIT_DATABASE_URL, else the settings\n"
    "file, else sqlite:///smart_ratelimit.db.\n";

/// Every migration set `migrate` applies besides the event log's (which the event
/// store applies first). A component with its own tables adds one line here.
std::vector<srl::soci::migration_set> extra_migration_sets() {
    return {srl::soci::analytics_migrations, srl::soci::alert_log_migrations, srl::soci::state_migrations};
}

}  // namespace

int run_migrate(args_view args) {
    return guarded("migrate", [&] {
        const auto a = parse_args(args, {}, usage_migrate);
        if (a.help) return int{exit_ok};
        const auto store = open_event_store(a, /*require_schema=*/false);
        const auto extra = extra_migration_sets();
        const auto applied = store.migrate(extra);
        std::string versions = "events v" + std::to_string(srl::soci::latest_version(srl::soci::event_log_migrations));
        for (const auto& set : extra)
            versions += ", " + std::string(set.component) + " v" + std::to_string(srl::soci::latest_version(set));
        if (applied.empty()) {
            print_summary("migrate: schema up to date (" + versions + ") in " + store.url().redacted());
        } else {
            std::string steps;
            for (const auto& m : applied)
                steps += (steps.empty() ? "" : "; ") + m.component + " v" + std::to_string(m.version) + " " +
                         m.description;
            print_summary("migrate: applied " + std::to_string(applied.size()) + " step(s) (" + steps + ") in " +
                          store.url().redacted() + "; now " + versions);
        }
        return int{exit_ok};
    });
}

}  // namespace srl_tool
