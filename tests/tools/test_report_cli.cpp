// tests/tools/test_report_cli.cpp
// `smart-ratelimit report`, run as built: JSON, CSV and drill-down outputs equal
// the in-memory analytics of the same events (as of a fixed instant), the tables
// show the numbers with control characters neutralised, and every bad input
// gives its exit code and a message naming it.
#include <catch2/catch.hpp>

#include "support/analytics_support.hpp"
#include "support/test_env.hpp"

#include <support/run_tool.hpp>
#include <support/temp_dir.hpp>

#include <unistd.h>

#include <random>
#include <string>
#include <vector>

#include <smart_ratelimit/analytics/json_text.hpp>
#include <smart_ratelimit/soci/analytics.hpp>

using namespace srl_test;
namespace sq = smart_ratelimit::soci;

TEST_CASE("report --json, --csv and --key print the analytics of the stored events",
          "[analytics][tools]") {
    srl_test::temp_dir dir("report");
    const std::string url = "sqlite:///" + (dir.path() / "events.db").string();
    const auto migrated = run_tool({"migrate", "--database", url}, dir.path());
    REQUIRE(migrated.status == 0);
    CHECK(migrated.out.find("analytics v1") != std::string::npos);

    const std::vector<int> edges{1, 7};
    const auto events = random_events(2024, 2000, test_now, edges);
    sq::event_store store(url);
    REQUIRE(store.write_batch(events).written == events.size());

    const srl::event_time as_of = test_now - 90min + 7us;
    const std::string as_of_text = srl::format_rfc3339(as_of, 6);
    const auto before = up_to(events, as_of);
    for (int days : {1, 7}) {
        INFO("days " << days);
        const std::string d = std::to_string(days);
        const auto json =
            run_tool({"report", "--database", url, "--days", d, "--as-of", as_of_text, "--json"},
                     dir.path());
        REQUIRE(json.status == 0);
        const std::string want =
            "{\"summary\":" + srl::to_json_string(srl::get_traffic_summary(before, days, as_of)) +
            ",\"top_offenders\":" +
            srl::to_json_string(srl::get_top_offenders(before, days, 20, as_of)) +
            ",\"rule_hits\":" +
            srl::to_json_string(srl::get_rule_hit_counts(before, days, 20, as_of)) + "}\n";
        CHECK(json.out == want);

        const auto limited = run_tool({"report", "--database", url, "--days", d, "--as-of",
                                       as_of_text, "--json", "--limit", "3"},
                                      dir.path());
        CHECK(limited.out.find(srl::to_json_string(
                  srl::get_top_offenders(before, days, 3, as_of))) != std::string::npos);

        const auto csv = run_tool(
            {"report", "--database", url, "--days", d, "--as-of", as_of_text, "--csv"}, dir.path());
        REQUIRE(csv.status == 0);
        CHECK(csv.out == srl::offenders_csv(before, days, 1000, as_of));

        for (const std::string key : {"user:a", "header:X-Key:line1\nline2", "ip:unknown"}) {
            const auto detail = run_tool({"report", "--database", url, "--days", d, "--as-of",
                                          as_of_text, "--key", key, "--limit", "5"},
                                         dir.path());
            REQUIRE(detail.status == 0);
            CHECK(detail.out ==
                  srl::to_json_string(srl::get_offender_detail(before, key, days, 5, as_of)) +
                      "\n");
        }
    }

    const auto tables = run_tool({"report", "--database", url, "--as-of", as_of_text}, dir.path());
    REQUIRE(tables.status == 0);
    const auto summary = srl::get_traffic_summary(before, 7, as_of);
    CHECK(tables.out.find("Traffic, last 7 day(s)") != std::string::npos);
    CHECK(tables.out.find(std::to_string(summary.total)) != std::string::npos);
    CHECK(tables.out.find(srl::format_plain_decimal(summary.block_rate)) != std::string::npos);
    CHECK(tables.out.find("Top offenders") != std::string::npos);
    CHECK(tables.out.find("Rule hits") != std::string::npos);
    // Keys with control characters are shown escaped, never raw.
    CHECK(tables.out.find("header:X-Key:line1\\nline2") != std::string::npos);
    CHECK(tables.out.find("line1\nline2") == std::string::npos);
    CHECK(tables.out.find('\r') == std::string::npos);
}

TEST_CASE("report rejects bad options and unreachable databases with clear exit codes",
          "[analytics][tools]") {
    srl_test::temp_dir dir("report");
    const std::string url = "sqlite:///" + (dir.path() / "events.db").string();
    REQUIRE(run_tool({"migrate", "--database", url}, dir.path()).status == 0);
    struct bad_case {
        std::vector<std::string> args;
        std::string names;
    };
    const std::vector<bad_case> cases{
        {{"--days", "0"}, "--days"},
        {{"--days", "seven"}, "seven"},
        {{"--days", "-3"}, "--days"},
        {{"--limit", "-1"}, "--limit"},
        {{"--limit", "1e3"}, "1e3"},
        {{"--as-of", "yesterday"}, "yesterday"},
        {{"--as-of", "2026-02-30T00:00:00Z"}, "2026-02-30T00:00:00Z"},
        {{"--json", "--csv"}, "alternatives"},
        {{"--csv", "--key", "k"}, "alternatives"},
        {{"--key", ""}, "--key"},
        {{"--key"}, "--key"},
        {{"--bogus"}, "--bogus"},
        {{"positional"}, "positional"},
    };
    for (const auto& c : cases) {
        std::vector<std::string> args{"report", "--database", url};
        args.insert(args.end(), c.args.begin(), c.args.end());
        const auto r = run_tool(args, dir.path());
        INFO(c.names);
        CHECK(r.status == 64);
        CHECK(r.err.find(c.names) != std::string::npos);
        CHECK(r.out.empty());
    }
    const auto help = run_tool({"report", "--help"}, dir.path());
    CHECK(help.status == 0);
    CHECK(help.out.find("--as-of") != std::string::npos);

    // No schema: 69 with the remedy; unreachable server: 69; bad URL: 64.
    const auto no_schema = run_tool(
        {"report", "--database", "sqlite:///" + (dir.path() / "empty.db").string()}, dir.path());
    CHECK(no_schema.status == 69);
    CHECK(no_schema.err.find("migrate") != std::string::npos);
    const auto down =
        run_tool({"report", "--database", "postgresql://srl@127.0.0.1:1/none?connect_timeout=2"},
                 dir.path());
    CHECK(down.status == 69);
    const auto bad_url = run_tool({"report", "--database", "mysql://x"}, dir.path());
    CHECK(bad_url.status == 64);
}

TEST_CASE("report on PostgreSQL gives the same JSON as on SQLite", "[analytics][tools][soci]") {
    const auto base = postgres_url();
    if (!base) {
        WARN("SMART_RATELIMIT_TEST_PG_URL not set: PostgreSQL report skipped");
        return;
    }
    srl_test::temp_dir dir("report");
    std::mt19937_64 rng{std::random_device{}()};
    const std::string name =
        "srl_report_" + std::to_string(::getpid()) + "_" + std::to_string(rng() % 1'000'000);
    {
        auto admin = sq::open_session(sq::parse_database_url(*base));
        *admin << "CREATE DATABASE " + name;
    }
    const std::string pg = base->substr(0, base->rfind('/') + 1) + name;
    const std::string lite = "sqlite:///" + (dir.path() / "events.db").string();
    const auto events = random_events(7, 1500, test_now, {1, 7});
    for (const auto& url : {pg, lite}) {
        REQUIRE(run_tool({"migrate", "--database", url}, dir.path()).status == 0);
        sq::event_store store(url);
        REQUIRE(store.write_batch(events).written == events.size());
    }
    const std::string as_of = srl::format_rfc3339(test_now, 6);
    for (const auto& mode : {std::vector<std::string>{"--json"}, {"--csv"}, {"--key", "user:b"}}) {
        std::vector<std::string> a{"report", "--as-of", as_of, "--database"};
        auto on_pg = a, on_lite = a;
        on_pg.push_back(pg);
        on_lite.push_back(lite);
        on_pg.insert(on_pg.end(), mode.begin(), mode.end());
        on_lite.insert(on_lite.end(), mode.begin(), mode.end());
        const auto p = run_tool(on_pg, dir.path());
        const auto l = run_tool(on_lite, dir.path());
        CHECK(p.status == 0);
        CHECK(p.out == l.out);
    }
    try {
        auto admin = sq::open_session(sq::parse_database_url(*base));
        *admin << "DROP DATABASE IF EXISTS " + name + " WITH (FORCE)";
    } catch (...) {}
}
