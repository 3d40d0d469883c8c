// tools/cli_common.hpp
// What every smart-ratelimit subcommand shares: flag parsing (`--name VALUE` or
// `--name=VALUE`, plus the common `--database URL`, `--settings FILE`, `--help`),
// the database URL resolution (flag > RATELIMIT_DATABASE_URL > settings file >
// default), opening the event store, and one mapping from errors to exit codes.
//
// A subcommand looks like:
//   int run_x(args_view args) {
//       return guarded("x", [&] {
//           const auto a = parse_args(args, {{"--days", true}}, usage_x);
//           if (a.help) return exit_ok;
//           auto store = open_event_store(a);          // 64/78 bad URL, 69 unreachable
//           ... print_summary("x: did N things");
//           return exit_ok;
//       });
//   }
#pragma once

#include "commands.hpp"

#include <charconv>
#include <cstdio>
#include <exception>
#include <initializer_list>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <smart_ratelimit/error.hpp>
#include <smart_ratelimit/settings.hpp>
#include <smart_ratelimit/soci.hpp>

namespace srl_tool {

namespace srl = smart_ratelimit;

/// Bad command-line arguments: exit 64 with the message.
class usage_error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

/// Ends a command with a given exit code and message (e.g. 69 for a database that
/// answers but has no schema).
class exit_error : public std::runtime_error {
public:
    exit_error(int code, const std::string& what) : std::runtime_error(what), code_(code) {}
    int code() const noexcept { return code_; }

private:
    int code_;
};

/// A flag a subcommand accepts: its name (with the dashes) and whether it takes a value.
struct flag_spec {
    std::string_view name;
    bool takes_value;
};

/// The parsed command line. `values` holds the flags that take a value, `switches`
/// the others; the common flags are parsed for every command.
struct parsed_args {
    std::map<std::string, std::string, std::less<>> values;
    std::vector<std::string> switches;
    std::optional<std::string> database;  // --database URL
    std::optional<std::string> settings;  // --settings FILE
    bool help = false;

    bool has(std::string_view flag) const {
        for (const auto& s : switches)
            if (s == flag) return true;
        return values.find(flag) != values.end();
    }
    std::optional<std::string> value(std::string_view flag) const {
        const auto it = values.find(flag);
        if (it == values.end()) return std::nullopt;
        return it->second;
    }
};

/// Parses `args` against the command's flags plus the common ones. `--help`/`-h`
/// prints `usage` to stdout and sets `help`. Throws usage_error naming an unknown
/// flag, a missing value, a repeated flag or a positional argument.
inline parsed_args parse_args(args_view args, std::initializer_list<flag_spec> flags, std::string_view usage) {
    parsed_args out;
    for (std::size_t i = 0; i < args.size(); ++i) {
        std::string_view a = args[i];
        if (a == "--help" || a == "-h") {
            out.help = true;
            std::fwrite(usage.data(), 1, usage.size(), stdout);
            return out;
        }
        if (a.substr(0, 2) != "--") throw usage_error("unexpected argument '" + std::string(a) + "'");
        std::optional<std::string> inline_value;
        if (const auto eq = a.find('='); eq != std::string_view::npos) {
            inline_value = std::string(a.substr(eq + 1));
            a = a.substr(0, eq);
        }
        bool takes_value = false;
        bool known = a == "--database" || a == "--settings";
        takes_value = known;
        for (const auto& f : flags)
            if (f.name == a) {
                known = true;
                takes_value = f.takes_value;
            }
        if (!known) throw usage_error("unknown option '" + std::string(a) + "'");
        if (!takes_value) {
            if (inline_value) throw usage_error("option '" + std::string(a) + "' takes no value");
            out.switches.emplace_back(a);
            continue;
        }
        std::string v;
        if (inline_value) {
            v = *inline_value;
        } else {
            if (i + 1 >= args.size()) throw usage_error("option '" + std::string(a) + "' needs a value");
            v = std::string(args[++i]);
        }
        if (a == "--database") {
            if (out.database) throw usage_error("option '--database' given twice");
            out.database = v;
        } else if (a == "--settings") {
            if (out.settings) throw usage_error("option '--settings' given twice");
            out.settings = v;
        } else if (!out.values.emplace(std::string(a), v).second) {
            throw usage_error("option '" + std::string(a) + "' given twice");
        }
    }
    return out;
}

/// The integer value of `flag`, `fallback` when absent; usage_error naming the flag
/// and the text when it is not a whole number in [min, max].
inline long long int_flag(const parsed_args& a, std::string_view flag, long long fallback,
                          long long min = 0, long long max = 1'000'000'000) {
    const auto v = a.value(flag);
    if (!v) return fallback;
    long long out = 0;
    const auto [p, ec] = std::from_chars(v->data(), v->data() + v->size(), out);
    if (v->empty() || ec != std::errc{} || p != v->data() + v->size() || out < min || out > max)
        throw usage_error("option '" + std::string(flag) + "': '" + *v + "' is not a whole number from " +
                          std::to_string(min) + " to " + std::to_string(max));
    return out;
}

/// The settings (file from --settings or RATELIMIT_SETTINGS, then the environment);
/// config_error (exit 78) names the bad key or file.
inline srl::settings load_cli_settings(const parsed_args& a) { return srl::load_settings(a.settings); }

/// The database URL: `--database` (a bad one: usage_error, exit 64), else the
/// settings' RATELIMIT_DATABASE_URL (environment or file; a bad one: config_error,
/// exit 78), else the default SQLite file in the working directory.
inline srl::soci::database_url resolve_database_url(const parsed_args& a) {
    if (a.database) {
        try {
            return srl::soci::parse_database_url(*a.database);
        } catch (const srl::config_error& e) {
            throw usage_error(std::string("--database: ") + e.what());
        }
    }
    const srl::settings s = load_cli_settings(a);
    return srl::soci::parse_database_url(s.database_url);
}

/// Opens the event store and checks the database answers (storage_error: exit 69).
/// With `require_schema`, a database without the event log schema is exit 69 with
/// a message that says to run `smart-ratelimit migrate`.
inline srl::soci::event_store open_event_store(const parsed_args& a, bool require_schema = true) {
    srl::soci::event_store store(resolve_database_url(a));
    if (require_schema && !store.schema_current())
        throw exit_error(exit_unavailable, "the event log schema is missing or outdated in '" +
                                               store.url().redacted() + "': run `smart-ratelimit migrate`");
    return store;
}

/// Prints the one summary line a cron log keeps (stdout unless `to`).
inline void print_summary(const std::string& line, std::FILE* to = stdout) {
    std::fprintf(to, "%s\n", line.c_str());
    std::fflush(to);
}

/// Runs a command body, mapping exceptions to exit codes with a message on stderr:
/// usage_error 64, config_error 78, storage_error 69, exit_error its code, anything else 70.
template <class F>
int guarded(std::string_view command, F&& body) {
    auto report = [&](const char* kind, const char* what) {
        // One line per error, whatever the driver's message looks like (cron logs).
        std::string line(what);
        for (char& c : line)
            if (c == '\n' || c == '\t' || c == '\r') c = ' ';
        while (!line.empty() && line.back() == ' ') line.pop_back();
        std::fprintf(stderr, "smart-ratelimit %.*s: %s%s\n", static_cast<int>(command.size()), command.data(),
                     kind, line.c_str());
    };
    try {
        return body();
    } catch (const usage_error& e) {
        report("", e.what());
        std::fprintf(stderr, "try `smart-ratelimit %.*s --help`\n", static_cast<int>(command.size()),
                     command.data());
        return exit_usage;
    } catch (const exit_error& e) {
        report("", e.what());
        return e.code();
    } catch (const srl::config_error& e) {
        report("configuration error: ", e.what());
        return exit_config;
    } catch (const srl::storage_error& e) {
        report("database unavailable: ", e.what());
        return exit_unavailable;
    } catch (const std::exception& e) {
        report("internal error: ", e.what());
        return exit_software;
    }
}

}  // namespace srl_tool
