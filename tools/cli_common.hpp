// tools/cli_common.hpp
// What every smart-ratelimit subcommand shares: flag parsing (`--name VALUE` or
// `--name=VALUE`, plus the common `--database URL`, `--settings FILE`, `--quiet`,
// `--help`), the database URL resolution (flag > RATELIMIT_DATABASE_URL > settings
// file > default), opening the event store (a missing SQLite file is an error, never
// created), the summary line (held back by --quiet unless the command fails), and
// one mapping from errors to exit codes.
//
// Exit codes (the one table; `smart-ratelimit --help` prints it, a test keeps both equal):
//   0   ok (limit: allowed; migrate --status: the schema is current)
//   1   the command ran and failed (an alert channel, writing the output;
//       migrate --status: the schema is not current)
//   64  bad arguments (EX_USAGE)
//   65  bad input data, e.g. a malformed JSON line (EX_DATAERR)
//   69  database or server unavailable, schema missing, SQLite file missing (EX_UNAVAILABLE)
//   70  internal error (EX_SOFTWARE)
//   75  limit: the request was denied (EX_TEMPFAIL)
//   78  bad settings file or environment (EX_CONFIG)
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
#include <filesystem>
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
    bool quiet = false;                   // --quiet
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

/// What the summary line does: `quiet` (from --quiet) holds it back in `held`, and
/// guarded() prints it only when the command fails. One per process.
struct summary_output {
    bool quiet = false;
    std::string held;
    std::FILE* held_to = nullptr;
};
inline summary_output& summary_state() {
    static summary_output state;
    return state;
}

/// The options every command takes, appended to each command's --help.
inline constexpr std::string_view common_options_help =
    "\n"
    "Every command also takes:\n"
    "  --database URL  sqlite:///relative.db, sqlite:////absolute.db or\n"
    "                  postgresql://user:password@host:port/dbname; else\n"
    "                  RATELIMIT_DATABASE_URL, else the settings file, else\n"
    "                  sqlite:///smart_ratelimit.db. A command that reads an existing\n"
    "                  database never creates a missing SQLite file (exit 69).\n"
    "  --settings FILE the settings file (else RATELIMIT_SETTINGS)\n"
    "  --quiet, -q     no summary line on success; errors still go to stderr, and\n"
    "                  the summary is printed when the command fails\n"
    "Exit codes: `smart-ratelimit --help`.\n";

/// Parses `args` against the command's flags plus the common ones. `--help`/`-h`
/// prints `usage` and common_options_help to stdout and sets `help`; `--quiet`/`-q`
/// sets `quiet` and holds back the summary line. Throws usage_error naming an
/// unknown flag, a missing value, a repeated flag or a positional argument.
inline parsed_args parse_args(args_view args, std::initializer_list<flag_spec> flags,
                              std::string_view usage) {
    parsed_args out;
    for (std::size_t i = 0; i < args.size(); ++i) {
        std::string_view a = args[i];
        if (a == "--help" || a == "-h") {
            out.help = true;
            std::fwrite(usage.data(), 1, usage.size(), stdout);
            std::fwrite(common_options_help.data(), 1, common_options_help.size(), stdout);
            return out;
        }
        if (a == "--quiet" || a == "-q") {
            out.quiet = true;
            summary_state().quiet = true;
            continue;
        }
        if (a.substr(0, 2) != "--")
            throw usage_error("unexpected argument '" + std::string(a) + "'");
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
            if (i + 1 >= args.size())
                throw usage_error("option '" + std::string(a) + "' needs a value");
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
        throw usage_error("option '" + std::string(flag) + "': '" + *v +
                          "' is not a whole number from " + std::to_string(min) + " to " +
                          std::to_string(max));
    return out;
}

/// The settings (file from --settings or RATELIMIT_SETTINGS, then the environment);
/// config_error (exit 78) names the bad key or file.
inline srl::settings load_cli_settings(const parsed_args& a) {
    return srl::load_settings(a.settings);
}

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

/// For a command that reads an existing database: a SQLite URL whose file does not
/// exist is exit 69 naming the file, before anything opens it (opening would create
/// an empty one). PostgreSQL URLs and SQLite's :memory: pass.
inline void require_existing_database(const srl::soci::database_url& url) {
    if (url.kind != srl::soci::dialect::sqlite || url.path == ":memory:") return;
    std::error_code ec;
    if (std::filesystem::exists(url.path, ec)) return;
    if (ec)
        throw exit_error(exit_unavailable, "cannot check the SQLite database file '" + url.path +
                                               "': " + ec.message());
    throw exit_error(exit_unavailable, "the SQLite database file '" + url.path + "' (" +
                                           url.redacted() +
                                           ") does not exist: check the URL, or create it with "
                                           "`smart-ratelimit migrate`");
}

/// Opens the event store and checks the database answers (storage_error: exit 69).
/// With `require_schema`, a missing SQLite file is exit 69 (the file is not
/// created), and so is a database without the event log schema, with a message that
/// says to run `smart-ratelimit migrate`.
inline srl::soci::event_store open_event_store(const parsed_args& a, bool require_schema = true) {
    const auto url = resolve_database_url(a);
    if (require_schema) require_existing_database(url);
    srl::soci::event_store store(url);
    if (require_schema && !store.schema_current())
        throw exit_error(exit_unavailable, "the event log schema is missing or outdated in '" +
                                               store.url().redacted() +
                                               "': run `smart-ratelimit migrate`");
    return store;
}

/// Prints the one summary line a cron log keeps (stdout unless `to`). Under --quiet
/// the line is held back; guarded() prints it if the command then fails.
inline void print_summary(const std::string& line, std::FILE* to = stdout) {
    auto& st = summary_state();
    if (st.quiet) {
        st.held += line + "\n";
        st.held_to = to;
        return;
    }
    std::fprintf(to, "%s\n", line.c_str());
    std::fflush(to);
}

/// Prints the summary --quiet held back (a failed command's summary says what failed).
inline void release_held_summary() {
    auto& st = summary_state();
    if (st.held.empty() || st.held_to == nullptr) return;
    std::fwrite(st.held.data(), 1, st.held.size(), st.held_to);
    std::fflush(st.held_to);
    st.held.clear();
}

/// guarded() without the held summary: runs `body`, maps its exceptions to exit codes.
template <class F>
int guarded_body(std::string_view command, F&& body) {
    auto report = [&](const char* kind, const char* what) {
        // One line per error, whatever the driver's message looks like (cron logs).
        std::string line(what);
        for (char& c : line)
            if (c == '\n' || c == '\t' || c == '\r') c = ' ';
        while (!line.empty() && line.back() == ' ') line.pop_back();
        std::fprintf(stderr, "smart-ratelimit %.*s: %s%s\n", static_cast<int>(command.size()),
                     command.data(), kind, line.c_str());
    };
    try {
        return body();
    } catch (const usage_error& e) {
        report("", e.what());
        std::fprintf(stderr, "try `smart-ratelimit %.*s --help`\n",
                     static_cast<int>(command.size()), command.data());
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

/// Runs a command body, mapping exceptions to exit codes with a message on stderr:
/// usage_error 64, config_error 78, storage_error 69, exit_error its code, anything
/// else 70. A summary held back by --quiet is printed when the code is a failure
/// (anything but 0, and 75: `limit`'s denial is an answer, not a failure).
template <class F>
int guarded(std::string_view command, F&& body) {
    const int code = guarded_body(command, std::forward<F>(body));
    if (code != exit_ok && code != exit_tempfail) release_held_summary();
    return code;
}

}  // namespace srl_tool
