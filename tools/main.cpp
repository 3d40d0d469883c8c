// tools/main.cpp
// Entry point of the smart-ratelimit program: dispatches to a subcommand.
// Subcommands are declared here and defined in their own cmd_*.cpp file.
#include "commands.hpp"

#include <array>
#include <cstdio>
#include <exception>
#include <string>
#include <vector>

namespace srl_tool {
// Each subcommand's entry point, defined in cmd_<name>.cpp.
int run_migrate(args_view args);
int run_cleanup_events(args_view args);
int run_export(args_view args);
int run_import(args_view args);
int run_report(args_view args);
int run_alerts(args_view args);
int run_limit(args_view args);
int run_cleanup(args_view args);
int run_health(args_view args);
}  // namespace srl_tool

namespace {

using srl_tool::command;

constexpr std::array<command, 9> commands{{
    {"migrate", "create or upgrade the database schema (idempotent)", srl_tool::run_migrate},
    {"cleanup-events", "delete events older than N days (retention, for cron)", srl_tool::run_cleanup_events},
    {"export", "write events as JSON lines", srl_tool::run_export},
    {"import", "read events from JSON lines into the event log", srl_tool::run_import},
    {"report", "traffic summary, top offenders and rule hits (tables, JSON, CSV)", srl_tool::run_report},
    {"alerts", "e-mail/webhook alerts for offenders over the threshold (for cron)", srl_tool::run_alerts},
    {"limit", "one rate-limit decision against a shared store (exit 0 allowed, 75 denied)", srl_tool::run_limit},
    {"cleanup", "prune expired/stale rate-limit state rows (retention, for cron)", srl_tool::run_cleanup},
    {"health", "database reachable and schema current (exit 0 healthy, 1 unhealthy, 69 unreachable)",
     srl_tool::run_health},
}};

void print_usage(std::FILE* out) {
    std::fputs("usage: smart-ratelimit <command> [options]\n\ncommands:\n", out);
    for (const auto& c : commands)
        std::fprintf(out, "  %-16.*s %.*s\n", static_cast<int>(c.name.size()), c.name.data(),
                     static_cast<int>(c.summary.size()), c.summary.data());
    std::fputs("\n`smart-ratelimit <command> --help` describes a command's options.\n"
               "Exit codes: 0 ok, 1 failure, 64 usage, 65 bad data, 69 unavailable,\n"
               "70 internal error, 75 denied (limit), 78 bad configuration.\n", out);
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 2) {
        print_usage(stderr);
        return srl_tool::exit_usage;
    }
    const std::string_view name = argv[1];
    if (name == "--help" || name == "-h" || name == "help") {
        print_usage(stdout);
        return srl_tool::exit_ok;
    }
    std::vector<std::string_view> args(argv + 2, argv + argc);
    for (const auto& c : commands) {
        if (c.name != name) continue;
        try {
            return c.run(args);
        } catch (const std::exception& e) {
            std::fprintf(stderr, "smart-ratelimit %s: error: %s\n", argv[1], e.what());
            return srl_tool::exit_software;
        }
    }
    std::fprintf(stderr, "smart-ratelimit: unknown command '%s'\n", argv[1]);
    print_usage(stderr);
    return srl_tool::exit_usage;
}
