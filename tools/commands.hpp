// tools/commands.hpp
// The subcommands of the smart-ratelimit program. Each lives in its own
// cmd_<name>.cpp and is listed in the table in main.cpp. Exit codes follow
// sysexits(3) so cron wrappers can tell the failure kinds apart.
#pragma once

#include <span>
#include <string_view>

namespace srl_tool {

/// Exit codes shared by every subcommand (sysexits(3) names). What each means is
/// the one table in cli_common.hpp's header comment, also printed by --help.
enum exit_code : int {
    exit_ok = 0,
    exit_failure = 1,
    exit_usage = 64,        // EX_USAGE
    exit_data = 65,         // EX_DATAERR
    exit_unavailable = 69,  // EX_UNAVAILABLE
    exit_software = 70,     // EX_SOFTWARE
    exit_tempfail = 75,     // EX_TEMPFAIL
    exit_config = 78,       // EX_CONFIG
};

using args_view = std::span<const std::string_view>;

/// One subcommand: `run` receives the arguments after the subcommand's name.
struct command {
    std::string_view name;
    std::string_view summary;
    int (*run)(args_view args);
};

}  // namespace srl_tool
