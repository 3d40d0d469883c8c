// tools/main.cpp
// Entry point of the smart-ratelimit program: the global options (--version,
// --quiet, --help) and the dispatch to a subcommand. Subcommands are declared here
// and defined in their own cmd_*.cpp file.
#include "commands.hpp"

#include <smart_ratelimit/version.hpp>

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
    {"cleanup-events", "delete events older than N days (retention, for cron)",
     srl_tool::run_cleanup_events},
    {"export", "write events as JSON lines", srl_tool::run_export},
    {"import", "read events from JSON lines into the event log", srl_tool::run_import},
    {"report", "traffic summary, top offenders and rule hits (tables, JSON, CSV)",
     srl_tool::run_report},
    {"alerts", "e-mail/webhook alerts for offenders over the threshold (for cron)",
     srl_tool::run_alerts},
    {"limit", "one rate-limit decision against a shared store (exit 0 allowed, 75 denied)",
     srl_tool::run_limit},
    {"cleanup", "prune expired/stale rate-limit state rows (retention, for cron)",
     srl_tool::run_cleanup},
    {"health",
     "database reachable and schema current (exit 0 healthy, 1 unhealthy, 69 unreachable)",
     srl_tool::run_health},
}};

void print_usage(std::FILE* out) {
    std::fputs(
        "usage: smart-ratelimit [--quiet] <command> [options]\n"
        "       smart-ratelimit --version | --help\n\ncommands:\n",
        out);
    for (const auto& c : commands)
        std::fprintf(out, "  %-16.*s %.*s\n", static_cast<int>(c.name.size()), c.name.data(),
                     static_cast<int>(c.summary.size()), c.summary.data());
    // The exit code table is the one in cli_common.hpp's header comment (a test compares them).
    std::fputs(
        "\n`smart-ratelimit <command> --help` describes a command's options.\n"
        "--quiet (-q), before or after the command: no summary line on success; errors\n"
        "still go to stderr, and the summary is printed when the command fails.\n"
        "--version prints `smart-ratelimit <version>`.\n"
        "\n"
        "Exit codes:\n"
        "  0   ok (limit: allowed; migrate --status: the schema is current)\n"
        "  1   the command ran and failed (an alert channel, writing the output;\n"
        "      migrate --status: the schema is not current)\n"
        "  64  bad arguments (EX_USAGE)\n"
        "  65  bad input data, e.g. a malformed JSON line (EX_DATAERR)\n"
        "  69  database or server unavailable, schema missing, SQLite file missing "
        "(EX_UNAVAILABLE)\n"
        "  70  internal error (EX_SOFTWARE)\n"
        "  75  limit: the request was denied (EX_TEMPFAIL)\n"
        "  78  bad settings file or environment (EX_CONFIG)\n",
        out);
}

}  // namespace

int main(int argc, char** argv) {
    int first = 1;  // global options before the command
    bool quiet = false;
    for (; first < argc; ++first) {
        const std::string_view opt = argv[first];
        if (opt == "--version") {
            std::printf("smart-ratelimit %s\n", smart_ratelimit::version_string);
            return srl_tool::exit_ok;
        }
        if (opt != "--quiet" && opt != "-q") break;
        quiet = true;
    }
    if (first >= argc) {
        print_usage(stderr);
        return srl_tool::exit_usage;
    }
    const std::string_view name = argv[first];
    if (name == "--help" || name == "-h" || name == "help") {
        print_usage(stdout);
        return srl_tool::exit_ok;
    }
    std::vector<std::string_view> args(argv + first + 1, argv + argc);
    if (quiet) args.emplace_back("--quiet");  // every command parses it as a common flag
    for (const auto& c : commands) {
        if (c.name != name) continue;
        try {
            return c.run(args);
        } catch (const std::exception& e) {
            std::fprintf(stderr, "smart-ratelimit %s: error: %s\n", argv[first], e.what());
            return srl_tool::exit_software;
        }
    }
    std::fprintf(stderr, "smart-ratelimit: unknown command '%s'\n", argv[first]);
    print_usage(stderr);
    return srl_tool::exit_usage;
}
