// tools/cmd_health.cpp
// `smart-ratelimit health`: probes the database (reachable, every migration set
// current) for cron jobs and orchestrators, prints one summary line or the JSON
// report, and answers with an exit code: 0 healthy, 1 unhealthy, 69 unreachable.
// It never creates a database file (SQLite is opened without the create flag).
#include "cli_common.hpp"
#include "migration_sets.hpp"

#include <smart_ratelimit/health.hpp>
#include <smart_ratelimit/soci/health.hpp>

#include <chrono>
#include <string>

namespace srl_tool {

namespace {

constexpr std::string_view usage_health =
    "usage: smart-ratelimit health [--json | --quiet] [--timeout SECONDS]\n"
    "                              [--database URL] [--settings FILE]\n"
    "\n"
    "Checks that the database answers and that every migration set (events,\n"
    "analytics, alerts, state) is at the version this build knows. Prints one\n"
    "summary line, or with --json the report\n"
    "  {\"status\":\"ok\"|\"unhealthy\",\"checks\":[{\"name\":...,\"ok\":...,\"detail\":...}]},\n"
    "or with --quiet nothing when healthy (the line when not). --timeout bounds connecting and\n"
    "each query (1 to 300 s, default 5). A SQLite file is never created: a missing\n"
    "file is unreachable. The database is --database, else\n"
    "RATELIMIT_DATABASE_URL, else the settings file, else sqlite:///smart_ratelimit.db.\n"
    "\n"
    "Exit codes:\n"
    "  0   healthy\n"
    "  1   unhealthy: the database answers but a migration set is behind (run\n"
    "      `smart-ratelimit migrate`), or another check failed\n"
    "  64  bad arguments\n"
    "  69  the database cannot be reached (or the SQLite file does not exist)\n"
    "  78  bad settings file or environment\n";

// "health: ok | database ok: ... | migrations ok: ..."
std::string summary_line(const srl::health_report& r) {
    std::string line = std::string("health: ") + (r.ok() ? "ok" : "unhealthy");
    for (const auto& c : r.checks)
        line += " | " + c.name + (c.ok ? " ok: " : " FAILED: ") + c.detail;
    return line;
}

}  // namespace

int run_health(args_view args) {
    return guarded("health", [&] {
        const auto a = parse_args(args, {{"--json", false}, {"--timeout", true}}, usage_health);
        if (a.help) return int{exit_ok};
        const bool json = a.has("--json");
        if (json && a.quiet) throw usage_error("--json and --quiet cannot be combined");
        srl::soci::database_check_options o;
        o.timeout = std::chrono::seconds(int_flag(a, "--timeout", 5, 1, 300));

        const auto url = resolve_database_url(a);
        const auto sets = all_migration_sets();
        const auto report = srl::soci::check_database(url, sets, o);

        // The JSON is the output itself; the line is a summary (held back by --quiet
        // unless the probe fails).
        print_summary(json ? report.to_json() : summary_line(report));
        if (report.ok()) return int{exit_ok};
        for (const auto& c : report.checks)
            if (c.name == srl::soci::database_check_name && !c.ok) return int{exit_unavailable};
        return int{exit_failure};
    });
}

}  // namespace srl_tool
