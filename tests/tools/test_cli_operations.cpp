// tests/tools/test_cli_operations.cpp
// The built smart-ratelimit program as an operator runs it: one version in every
// place that states it, --version, --quiet, the exit code table in --help, read-only
// commands that never create a missing SQLite file, migrate --status, cleanup-events
// --dry-run, limit on RATELIMIT_DATABASE_URL, and integer user ids through import and
// export. SQLite files live in temporary directories; PostgreSQL is used when
// SMART_RATELIMIT_TEST_PG_URL is set.
#include "support/event_store_support.hpp"
#include "support/killed_cleanup.hpp"

#include "support/cli_runner.hpp"

#include <catch2/catch.hpp>

#include <smart_ratelimit/soci/detail/partitions.hpp>
#include <smart_ratelimit/version.hpp>

#include <cstdlib>
#include <fstream>
#include <sstream>

using namespace srl_test;
namespace ssoci = smart_ratelimit::soci;

namespace {

std::vector<std::string> env_url(const std::string& url) {
    return {"RATELIMIT_DATABASE_URL=" + url};
}

std::string trimmed(std::string s) {
    while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
    return s;
}

std::string source_file(const std::string& relative) {
    return slurp(fs::path(SRL_SOURCE_DIR) / relative);
}

}  // namespace

TEST_CASE("version: VERSION, CMake, Meson, version.hpp, the .pc file and --version agree",
          "[tools][version]") {
    const std::string version = trimmed(source_file("VERSION"));
    REQUIRE(!version.empty());
    CHECK(std::string(SRL_CMAKE_PROJECT_VERSION) == version);
    CHECK(std::string(smart_ratelimit::version_string) == version);
    CHECK(std::to_string(smart_ratelimit::version_major) + "." +
              std::to_string(smart_ratelimit::version_minor) + "." +
              std::to_string(smart_ratelimit::version_patch) ==
          version);
    // Meson reads the same file (the packaging test `meson` checks the version it reports).
    CHECK(source_file("meson.build").find("version: files('VERSION')") != std::string::npos);
#ifdef SRL_BUILD_PC_FILE
    CHECK(slurp(SRL_BUILD_PC_FILE).find("\nVersion: " + version + "\n") != std::string::npos);
#endif
    temp_dir dir;
    const auto r = run_cli(dir, {"--version"});
    CHECK(r.code == 0);
    CHECK(r.out == "smart-ratelimit " + version + "\n");
    CHECK(r.err.empty());
}

TEST_CASE("--help prints the exit code table of cli_common.hpp", "[tools]") {
    // The table in the header comment, without the comment markers.
    std::istringstream header(source_file("tools/cli_common.hpp"));
    std::string line, table;
    bool in_table = false;
    while (std::getline(header, line)) {
        if (line.rfind("// Exit codes (", 0) == 0) {
            in_table = true;
            table = "Exit codes:\n";
            continue;
        }
        if (!in_table) continue;
        if (line == "//") break;
        REQUIRE(line.rfind("// ", 0) == 0);
        table += line.substr(3) + "\n";
    }
    REQUIRE(table.find("  75  limit: the request was denied") != std::string::npos);
    temp_dir dir;
    const auto r = run_cli(dir, {"--help"});
    CHECK(r.code == 0);
    CHECK(r.out.find(table) != std::string::npos);
    // Every command's --help names the common options, --quiet among them.
    for (const char* cmd : {"migrate", "cleanup-events", "export", "import", "report", "alerts",
                            "limit", "cleanup"}) {
        INFO(cmd);
        const auto h = run_cli(dir, {cmd, "--help"});
        CHECK(h.code == 0);
        CHECK(h.out.find("--quiet, -q") != std::string::npos);
    }
}

TEST_CASE("--quiet drops the summary on success and keeps errors and failed summaries",
          "[tools][quiet]") {
    temp_dir dir;
    auto r = run_cli(dir, {"--quiet", "migrate"});
    CHECK(r.code == 0);
    CHECK(r.out.empty());
    CHECK(r.err.empty());
    r = run_cli(dir, {"migrate", "-q"});  // after the command too
    CHECK(r.code == 0);
    CHECK(r.out.empty());
    r = run_cli(dir, {"migrate"});
    CHECK(r.out.find("migrate: schema up to date") == 0);

    r = run_cli(dir, {"-q", "cleanup-events"});
    CHECK(r.code == 0);
    CHECK(r.out.empty());
    CHECK(r.err.empty());
    r = run_cli(dir, {"-q", "export", "--output", "out.jsonl"});  // the summary would go to stdout
    CHECK(r.code == 0);
    CHECK(r.out.empty());
    CHECK(r.err.empty());
    r = run_cli(dir, {"-q", "export"});  // the events are data, not a summary
    CHECK(r.code == 0);
    CHECK(r.err.empty());

    // Errors still go to stderr.
    r = run_cli(dir, {"-q", "report", "--database", dir.sqlite_url("missing.db")});
    CHECK(r.code == 69);
    CHECK(r.out.empty());
    CHECK(r.err.find("missing.db") != std::string::npos);
    r = run_cli(dir, {"-q", "cleanup-events", "--batch-size", "0"});
    CHECK(r.code == 64);
    CHECK(!r.err.empty());

    // A failed command's summary says what failed: it is printed.
    r = run_cli(dir, {"-q", "import"}, "not json\n");
    CHECK(r.code == 65);
    CHECK(r.err.find("line 1:") != std::string::npos);
    CHECK(r.out.find("import: read 1 line(s)") == 0);
}

TEST_CASE("cleanup-events --dry-run reports the count and deletes nothing",
          "[tools][cleanup-events]") {
    temp_dir dir;
    REQUIRE(run_cli(dir, {"migrate"}).code == 0);
    ssoci::event_store store(dir.sqlite_url("smart_ratelimit.db"));
    write_aged_events(store, 10, 2);

    auto r = run_cli(dir, {"cleanup-events", "--dry-run", "--older-than-days", "30"});
    CHECK(r.code == 0);
    CHECK(r.out ==
          "cleanup-events: dry run, would delete 10 event(s) older than 30 day(s) (batch size "
          "1000) from "
          "sqlite:///smart_ratelimit.db\n");
    CHECK(store.count() == 12);
    r = run_cli(dir, {"cleanup-events", "--dry-run", "--older-than-days", "0"});
    CHECK(r.out.find("would delete 12 event(s)") != std::string::npos);
    r = run_cli(dir, {"cleanup-events", "--dry-run", "--older-than-days", "1000000"});
    CHECK(r.code == 0);
    CHECK(r.out.find("would delete 0 event(s)") != std::string::npos);
    CHECK(store.count() == 12);

    r = run_cli(dir, {"cleanup-events", "--older-than-days", "30", "--batch-size", "4"});
    CHECK(r.code == 0);
    CHECK(r.out.find("cleanup-events: deleted 10 event(s)") == 0);
    CHECK(store.count() == 2);
    r = run_cli(dir, {"cleanup-events", "--dry-run"});
    CHECK(r.out.find("would delete 0 event(s)") != std::string::npos);

    pg_database pg("dryrun");
    if (pg) {
        REQUIRE(run_cli(dir, {"migrate", "--database", pg.url()}).code == 0);
        ssoci::event_store pg_store(pg.url());
        write_aged_events(pg_store, 10, 2);
        r = run_cli(dir, {"cleanup-events", "--dry-run"}, "", env_url(pg.url()));
        CHECK(r.code == 0);
        // The old events' day goes as a whole partition, named; nothing is dropped.
        const auto old_day =
            ssoci::detail::utc_day(std::chrono::time_point_cast<std::chrono::microseconds>(
                std::chrono::system_clock::now() - std::chrono::hours{24 * 40}));
        const std::string old_partition = ssoci::detail::partition_name(old_day);
        CHECK(r.out.find("dry run, would delete 10 event(s) (1 day partition(s): " + old_partition +
                         ") older than") != std::string::npos);
        CHECK(pg_store.count() == 12);
        CHECK(pg_store.droppable_partitions(30,
                                            std::chrono::time_point_cast<std::chrono::microseconds>(
                                                std::chrono::system_clock::now())) ==
              std::vector<std::string>{old_partition});

        // A cleanup killed between its two steps left the day detached: its events are
        // no longer in the table but still counted, the table named as it is now.
        detach_as_killed_cleanup(*pg_store.open_session(), old_day);
        CHECK(pg_store.count() == 2);
        CHECK(pg_store.detached_events() == 10);
        r = run_cli(dir, {"cleanup-events", "--dry-run"}, "", env_url(pg.url()));
        CHECK(r.out.find("dry run, would delete 10 event(s) (1 day partition(s): " +
                         ssoci::detail::detached_partition_name(old_day) + ") older than") !=
              std::string::npos);
        // The real run finishes it and counts its rows.
        r = run_cli(dir, {"cleanup-events"}, "", env_url(pg.url()));
        CHECK(r.code == 0);
        CHECK(r.out.find("cleanup-events: deleted 10 event(s) (1 day partition(s) dropped)") == 0);
        CHECK(pg_store.detached_events() == 0);
        CHECK(pg_store.count() == 2);
    }
}

TEST_CASE("migrate --status on a missing, a fresh and a migrated database", "[tools][migrate]") {
    temp_dir dir;
    const fs::path file = dir.path() / "status.db";
    const std::string url = dir.sqlite_url("status.db");

    // Missing: exit 69 naming the file, and the file is not created.
    auto r = run_cli(dir, {"migrate", "--status", "--database", url});
    CHECK(r.code == 69);
    CHECK(r.err.find(file.string()) != std::string::npos);
    CHECK(r.out.empty());
    CHECK_FALSE(fs::exists(file));
    r = run_cli(dir, {"migrate", "--status"});  // the default file, in the working directory
    CHECK(r.code == 69);
    CHECK(r.err.find("smart_ratelimit.db") != std::string::npos);
    CHECK_FALSE(fs::exists(dir.path() / "smart_ratelimit.db"));

    // Fresh (an empty SQLite file): every set pending, exit 1, nothing created.
    std::ofstream(file).close();
    r = run_cli(dir, {"migrate", "--status"}, "", env_url(url));
    CHECK(r.code == 1);
    CHECK(r.out.find("  events     applied v0, latest v4  pending\n") != std::string::npos);
    CHECK(r.out.find("  state      applied v0, latest v2  pending\n") != std::string::npos);
    CHECK(r.out.find("migrate: 4 migration set(s) pending in " + url +
                     ": run `smart-ratelimit migrate`") != std::string::npos);
    CHECK_FALSE(ssoci::event_store(url).schema_current());

    // Migrated: every set current, exit 0.
    REQUIRE(run_cli(dir, {"migrate", "--database", url}).code == 0);
    r = run_cli(dir, {"migrate", "--status", "--database", url});
    CHECK(r.code == 0);
    CHECK(r.out.find("  events     applied v4, latest v4  current\n") == 0);
    CHECK(r.out.find("analytics  applied v") != std::string::npos);
    CHECK(r.out.find("alerts     applied v1, latest v1  current\n") != std::string::npos);
    CHECK(r.out.find("pending") == std::string::npos);
    CHECK(r.out.find("migrate: schema current in " + url + "\n") != std::string::npos);
    r = run_cli(dir, {"-q", "migrate", "--status", "--database", url});
    CHECK(r.code == 0);
    CHECK(r.out.find("migrate: schema current") == std::string::npos);

    pg_database pg("status");
    if (pg) {
        r = run_cli(dir, {"migrate", "--status", "--database", pg.url()});
        CHECK(r.code == 1);
        CHECK(r.out.find("events     applied v0, latest v4  pending") != std::string::npos);
        REQUIRE(run_cli(dir, {"migrate", "--database", pg.url()}).code == 0);
        r = run_cli(dir, {"migrate", "--status"}, "", env_url(pg.url()));
        CHECK(r.code == 0);
        CHECK(r.out.find("pending") == std::string::npos);
    }
}

TEST_CASE("read-only commands fail on a missing SQLite file without creating it",
          "[tools][readonly]") {
    temp_dir dir;
    const fs::path file = dir.path() / "absent.db";
    const std::string url = dir.sqlite_url("absent.db");
    const std::vector<std::vector<std::string>> commands{
        {"report"}, {"report", "--json"},    {"alerts", "--dry-run", "--threshold", "1"},
        {"export"}, {"migrate", "--status"}, {"cleanup-events", "--dry-run"},
    };
    for (const auto& cmd : commands) {
        INFO(cmd.front() << (cmd.size() > 1 ? " " + cmd[1] : std::string()));
        auto args = cmd;
        args.insert(args.end(), {"--database", url});
        auto r = run_cli(dir, args);
        CHECK(r.code == 69);
        CHECK(r.err.find("the SQLite database file '" + file.string() + "'") != std::string::npos);
        CHECK(r.err.find("does not exist") != std::string::npos);
        CHECK_FALSE(fs::exists(file));
        // The same through RATELIMIT_DATABASE_URL and through the default file.
        r = run_cli(dir, cmd, "", env_url(url));
        CHECK(r.code == 69);
        CHECK_FALSE(fs::exists(file));
        r = run_cli(dir, cmd);
        CHECK(r.code == 69);
        CHECK(r.err.find("'smart_ratelimit.db'") != std::string::npos);
        CHECK_FALSE(fs::exists(dir.path() / "smart_ratelimit.db"));
    }
    // A missing directory is the same error, not "cannot open".
    const auto r = run_cli(dir, {"report", "--database", dir.sqlite_url("no-such-dir/x.db")});
    CHECK(r.code == 69);
    CHECK(r.err.find("does not exist") != std::string::npos);
    CHECK_FALSE(fs::exists(dir.path() / "no-such-dir"));
}

TEST_CASE("limit takes its store from RATELIMIT_DATABASE_URL when --store is absent",
          "[tools][limit]") {
    temp_dir dir;
    const std::string url = dir.sqlite_url("state.db");
    const std::vector<std::string> limit{"limit", "--rate", "2/h", "--key", "job:env"};

    // Missing file: 69 naming it, not created.
    auto r = run_cli(dir, limit, "", env_url(url));
    CHECK(r.code == 69);
    CHECK(r.err.find("state.db") != std::string::npos);
    CHECK_FALSE(fs::exists(dir.path() / "state.db"));

    REQUIRE(run_cli(dir, {"migrate", "--database", url}).code == 0);
    for (int i = 0; i < 2; ++i) {
        r = run_cli(dir, limit, "", env_url(url));
        INFO(r.err);
        CHECK(r.code == 0);
        CHECK(r.out.find("{\"allowed\":true,\"key\":\"job:env\"") == 0);
        CHECK(r.out.find("\"store\":\"" + url + "\"") != std::string::npos);
    }
    r = run_cli(dir, limit, "", env_url(url));
    CHECK(r.code == 75);
    CHECK(r.out.find("{\"allowed\":false") == 0);
    r = run_cli(dir, {"limit", "--rate", "2/h", "--key", "job:env", "--peek", "--database", url});
    CHECK(r.code == 75);  // --database names the same store
    r = run_cli(dir, {"-q", "limit", "--rate", "2/h", "--key", "job:env", "--peek"}, "",
                env_url(url));
    CHECK(r.code == 75);  // quiet: the exit code is the answer
    CHECK(r.out.empty());
    r = run_cli(dir,
                {"limit", "--rate", "2/h", "--key", "job:env", "--store", url, "--database", url});
    CHECK(r.code == 64);
    CHECK(r.err.find("give one") != std::string::npos);
    // An explicit --store wins over the environment.
    r = run_cli(
        dir, {"limit", "--rate", "2/h", "--key", "job:env", "--store", dir.sqlite_url("other.db")},
        "", env_url(url));
    CHECK(r.code == 69);
    CHECK(r.err.find("other.db") != std::string::npos);

    pg_database pg("limitenv");
    if (pg) {
        REQUIRE(run_cli(dir, {"migrate", "--database", pg.url()}).code == 0);
        r = run_cli(dir, {"limit", "--rate", "1/h", "--key", "pg:env"}, "", env_url(pg.url()));
        CHECK(r.code == 0);
        r = run_cli(dir, {"limit", "--rate", "1/h", "--key", "pg:env"}, "", env_url(pg.url()));
        CHECK(r.code == 75);
    }
}

TEST_CASE("an integer user_id is exported as a JSON number, text as a string", "[tools][jsonl]") {
    temp_dir dir;
    REQUIRE(run_cli(dir, {"migrate"}).code == 0);
    auto line = [](int second, const std::string& user_id) {
        return "{\"timestamp\":\"2026-05-07T22:41:" + std::to_string(10 + second) +
               "Z\",\"key\":\"user:x\",\"allowed\":true,\"count\":1,\"limit\":10,\"user_id\":" +
               user_id + "}\n";
    };
    const std::string input =
        line(0, "42") + line(1, "\"abc\"") + line(2, "\"007\"") + line(3, "-5") +
        line(4, "9223372036854775807") + line(5, "\"9223372036854775808\"") + line(6, "\"-0\"") +
        line(7, "\"+1\"") + line(8, "\"42\"") + line(9, "null") + line(10, "0");
    auto r = run_cli(dir, {"import"}, input);
    REQUIRE(r.code == 0);
    r = run_cli(dir, {"export"});
    REQUIRE(r.code == 0);
    std::vector<std::string> got;
    std::istringstream lines(r.out);
    for (std::string l; std::getline(lines, l);) {
        const auto from = l.find("\"user_id\":");
        got.push_back(l.substr(from, l.find(",\"outcome\":") - from) + "}");
    }
    const std::vector<std::string> expected{
        "\"user_id\":42}",
        "\"user_id\":\"abc\"}",
        "\"user_id\":\"007\"}",
        "\"user_id\":-5}",
        "\"user_id\":9223372036854775807}",
        "\"user_id\":\"9223372036854775808\"}",
        "\"user_id\":\"-0\"}",
        "\"user_id\":\"+1\"}",
        "\"user_id\":42}",  // stored as text "42" either way: a canonical integer comes back as a number
        "\"user_id\":null}",
        "\"user_id\":0}",
    };
    CHECK(got == expected);
    // The store keeps text.
    ssoci::event_store store(dir.sqlite_url("smart_ratelimit.db"));
    std::vector<std::optional<std::string>> ids;
    for (const auto& e : store.events({.order = ssoci::event_order::oldest_first}))
        ids.push_back(e.user_id);
    REQUIRE(ids.size() == 11);
    CHECK(ids[0] == std::optional<std::string>("42"));
    CHECK(ids[1] == std::optional<std::string>("abc"));

    // Export -> import -> export is stable.
    const std::string exported = r.out;
    REQUIRE(run_cli(dir, {"migrate", "--database", dir.sqlite_url("b.db")}).code == 0);
    REQUIRE(run_cli(dir, {"import", "--database", dir.sqlite_url("b.db")}, exported).code == 0);
    r = run_cli(dir, {"export", "--database", dir.sqlite_url("b.db")});
    CHECK(r.out == exported);
}
