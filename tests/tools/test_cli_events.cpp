// tests/tools/test_cli_events.cpp
// The built smart-ratelimit program, run as a user runs it: migrate,
// cleanup-events, export and import, their summary lines and exit codes, and the
// JSON lines round trip (export -> import into a fresh database -> identical).
#include "support/event_store_support.hpp"

#include "support/cli_runner.hpp"

#include <catch2/catch.hpp>

#include <cstdlib>
#include <fstream>
#include <sstream>

using namespace srl_test;
namespace ssoci = smart_ratelimit::soci;
using srl::event;
using srl::event_time;
using std::chrono::microseconds;

namespace {

std::size_t lines(const std::string& s) {
    return static_cast<std::size_t>(std::count(s.begin(), s.end(), '\n'));
}

std::vector<event> sample_history() {
    std::vector<event> v;
    for (int i = 0; i < 40; ++i)
        v.push_back(sample_event(i, i % 3 == 0 ? "rule:login:ip:203.0.113.5" : "ip:198.51.100.7",
                                 i % 4 != 0));
    v.push_back(srl::make_event(event_time{microseconds{1'764'000'000'000'001}}, "user:Zoë",
                                "/café/\"q\"\\\t\x01", "GET", true, 1, 5, std::nullopt, "Ωmega"));
    v.push_back(v.back());  // an exact duplicate, same timestamp: order must survive
    v.back().path = "/second";
    return v;
}

/// When a PostgreSQL server is available: `exported` imported into a fresh database
/// there exports back byte for byte.
void check_postgres_round_trip(const temp_dir& dir, const std::string& exported,
                               const std::string& tag) {
    pg_database pg(tag);
    if (!pg) return;
    REQUIRE(run_cli(dir, {"migrate", "--database", pg.url()}).code == 0);
    CHECK(run_cli(dir, {"import", "--database", pg.url()}, exported).code == 0);
    const auto r = run_cli(dir, {"export", "--database", pg.url()});
    CHECK(r.code == 0);
    CHECK(r.out == exported);
}

}  // namespace

TEST_CASE("cli: migrate is idempotent and prints one summary line", "[cli][soci]") {
    temp_dir dir;
    auto r = run_cli(dir, {"migrate"});
    CHECK(r.code == 0);
    CHECK(lines(r.out) == 1);
    CHECK(r.out.find("migrate: applied ") == 0);
    CHECK(r.out.find("events v1 create ratelimit_event") != std::string::npos);
    CHECK(r.out.find("sqlite:///smart_ratelimit.db") != std::string::npos);
    CHECK(fs::exists(dir.path() /
                     "smart_ratelimit.db"));  // the default: a file in the working directory
    r = run_cli(dir, {"migrate"});
    CHECK(r.code == 0);
    CHECK(r.out.find("migrate: schema up to date (events v4") == 0);

    const std::string url = dir.sqlite_url("other.db");
    r = run_cli(dir, {"migrate"}, "", {"RATELIMIT_DATABASE_URL=" + url});
    CHECK(r.code == 0);
    CHECK(ssoci::event_store(url).schema_current());
    r = run_cli(dir, {"migrate", "--database", dir.sqlite_url("flag.db")}, "",
                {"RATELIMIT_DATABASE_URL=" + url});
    CHECK(r.code == 0);
    CHECK(fs::exists(dir.path() / "flag.db"));
}

TEST_CASE("cli: exit codes name the failure", "[cli][soci]") {
    temp_dir dir;
    CHECK(run_cli(dir, {}).code == 64);
    CHECK(run_cli(dir, {"no-such-command"}).code == 64);
    CHECK(run_cli(dir, {"export", "--help"}).code == 0);

    auto r = run_cli(dir, {"export", "--database", "mysql://u@h/db"});
    CHECK(r.code == 64);
    CHECK(r.err.find("mysql://u@h/db") != std::string::npos);
    r = run_cli(dir, {"migrate"}, "", {"RATELIMIT_DATABASE_URL=sqlite:/nope"});
    CHECK(r.code == 78);
    CHECK(r.err.find("RATELIMIT_DATABASE_URL") != std::string::npos);
    r = run_cli(dir, {"migrate", "--database",
                      "postgresql://srl:pw@127.0.0.1:" + std::to_string(free_port()) + "/x"});
    CHECK(r.code == 69);
    CHECK(r.err.find("pw") == std::string::npos);  // the password is never printed
    CHECK(lines(r.err) == 1);
    r = run_cli(dir, {"migrate", "--database", "sqlite:////nonexistent-dir-srl/x/e.db"});
    CHECK(r.code == 69);

    // No schema yet: the commands that need it say to run migrate.
    for (const char* cmd : {"export", "import", "cleanup-events"}) {
        INFO(cmd);
        r = run_cli(dir, {cmd});
        CHECK(r.code == 69);
        CHECK(r.err.find("smart-ratelimit migrate") != std::string::npos);
    }
    REQUIRE(run_cli(dir, {"migrate"}).code == 0);
    CHECK(run_cli(dir, {"cleanup-events", "--batch-size", "0"}).code == 64);
    CHECK(run_cli(dir, {"cleanup-events", "--batch-size", "-1"}).code == 64);
    CHECK(run_cli(dir, {"cleanup-events", "--older-than-days", "-1"}).code == 64);
    CHECK(run_cli(dir, {"cleanup-events", "--older-than-days", "3x"}).code == 64);
    CHECK(run_cli(dir, {"cleanup-events", "--older-than-days"}).code == 64);
    CHECK(run_cli(dir, {"cleanup-events", "--frobnicate"}).code == 64);
    CHECK(run_cli(dir, {"export", "--since", "yesterday"}).code == 64);
    CHECK(run_cli(dir,
                  {"export", "--since", "2026-01-02T00:00:00Z", "--until", "2026-01-01T00:00:00Z"})
              .code == 64);
    CHECK(run_cli(dir, {"import", "--input", (dir.path() / "missing.jsonl").string()}).code == 64);
    CHECK(run_cli(dir, {"export", "positional"}).code == 64);
}

TEST_CASE("cli: export then import into a fresh database gives identical JSON lines",
          "[cli][soci]") {
    temp_dir dir;
    const std::string a = dir.sqlite_url("a.db"), b = dir.sqlite_url("b.db");
    ssoci::event_store store_a(a);
    store_a.migrate();
    const auto history = sample_history();
    REQUIRE(store_a.write_batch(history).written == history.size());

    auto r = run_cli(dir, {"export", "--database", a, "--output", "a.jsonl"});
    REQUIRE(r.code == 0);
    CHECK(r.out.find("export: wrote 42 event(s)") == 0);
    const std::string exported = slurp(dir.path() / "a.jsonl");
    CHECK(lines(exported) == 42);
    CHECK(exported.find("\"timestamp\":\"2025-11-24T16:00:00.000000Z\"") != std::string::npos);
    CHECK(exported.find("\"ip_address\":null") != std::string::npos);
    CHECK(exported.find("\"user_id\":\"Ωmega\"") != std::string::npos);
    CHECK(exported.find("\"path\":\"/café/\\\"q\\\"\\\\\\t\\u0001\"") != std::string::npos);

    REQUIRE(run_cli(dir, {"migrate", "--database", b}).code == 0);
    r = run_cli(dir, {"import", "--database", b, "--input", "a.jsonl"});
    CHECK(r.code == 0);
    CHECK(r.out.find("42 event(s) written") != std::string::npos);
    r = run_cli(dir, {"export", "--database", b});  // to stdout, summary on stderr
    CHECK(r.code == 0);
    CHECK(r.out == exported);
    CHECK(r.err.find("export: wrote 42 event(s)") == 0);

    // Filters: window (inclusive) and key.
    r = run_cli(dir, {"export", "--database", b, "--key", "user:Zoë"});
    CHECK(lines(r.out) == 2);
    r = run_cli(dir, {"export", "--database", b, "--since", "2025-11-24T16:00:01.000003Z",
                      "--until", "2025-11-24T16:00:03.000009Z"});
    CHECK(lines(r.out) == 3);

    // And through PostgreSQL when a server is available.
    check_postgres_round_trip(dir, exported, "cli");
}

TEST_CASE("cli: import reports bad lines by number and keeps the good ones", "[cli][soci]") {
    temp_dir dir;
    REQUIRE(run_cli(dir, {"migrate"}).code == 0);
    const std::string input =
        "{\"timestamp\":\"2026-05-07T22:41:55Z\",\"key\":\"ip:1.1.1.1\",\"path\":\"/"
        "a\",\"method\":\"GET\","
        "\"allowed\":true,\"count\":1,\"limit\":10,\"ip_address\":\"1.1.1.1\",\"user_id\":null}\n"
        "not json\n"
        "\n"
        "{\"timestamp\":\"2026-05-07T22:41:56Z\",\"key\":\"ip:1.1.1.1\",\"allowed\":\"yes\","
        "\"count\":1,\"limit\":10}\n"
        "{\"timestamp\":\"2026-05-07 "
        "22:41:57.5+02:00\",\"key\":\"rule:api:user:7\",\"allowed\":false,\"count\":11,"
        "\"limit\":10,\"user_id\":7,\"id\":99}\n"
        "{\"timestamp\":\"2026-13-07T22:41:57Z\",\"key\":\"k\",\"allowed\":false,\"count\":1,"
        "\"limit\":1}\n"
        "{\"timestamp\":\"2026-05-07T22:41:58Z\",\"key\":\"k\",\"allowed\":false,\"count\":1,"
        "\"limit\":1,\"extra\":1}\n";
    auto r = run_cli(dir, {"import"}, input);
    CHECK(r.code == 65);
    CHECK(r.err.find("line 2:") != std::string::npos);
    CHECK(r.err.find("line 4: \"allowed\" must be true or false") != std::string::npos);
    CHECK(r.err.find("line 6: \"timestamp\" is not an RFC 3339") != std::string::npos);
    CHECK(r.err.find("line 7: unknown field \"extra\"") != std::string::npos);
    CHECK(r.out.find("import: read 7 line(s) from stdin: 2 event(s) written") == 0);

    r = run_cli(dir, {"export"});
    REQUIRE(r.code == 0);
    CHECK(lines(r.out) == 2);
    CHECK(r.out.find("\"timestamp\":\"2026-05-07T20:41:57.500000Z\",\"key\":\"rule:api:user:7\","
                     "\"rule_name\":\"api\"") != std::string::npos);
    CHECK(r.out.find("\"user_id\":7,\"outcome\":\"blocked\"}") !=
          std::string::npos);  // an integer id comes back as a number
}

TEST_CASE("cli: every outcome survives export and import; a disagreeing one is a line error",
          "[cli][soci]") {
    temp_dir dir;
    const std::string a = dir.sqlite_url("a.db"), b = dir.sqlite_url("b.db");
    ssoci::event_store store_a(a);
    store_a.migrate();
    std::vector<event> history;
    std::int64_t t = 1'764'000'000'000'000;
    for (const auto k : {srl::outcome_kind::allowed, srl::outcome_kind::blocked,
                         srl::outcome_kind::shadow_blocked, srl::outcome_kind::degraded})
        history.push_back(
            srl::make_event(event_time{microseconds{t++}}, "ip:1.2.3.4", "/p", "GET", k, 1, 5));
    REQUIRE(store_a.write_batch(history).written == history.size());
    auto r = run_cli(dir, {"export", "--database", a});
    REQUIRE(r.code == 0);
    const std::string exported = r.out;
    CHECK(exported.find("\"user_id\":null,\"outcome\":\"allowed\"}\n") != std::string::npos);
    CHECK(exported.find(
              "\"allowed\":false,\"count\":1,\"limit\":5,\"ip_address\":null,\"user_id\":null,"
              "\"outcome\":\"shadow_blocked\"}") != std::string::npos);
    CHECK(exported.find(
              "\"allowed\":true,\"count\":1,\"limit\":5,\"ip_address\":null,\"user_id\":null,"
              "\"outcome\":\"degraded\"}") != std::string::npos);
    REQUIRE(run_cli(dir, {"migrate", "--database", b}).code == 0);
    r = run_cli(dir, {"import", "--database", b}, exported);
    CHECK(r.code == 0);
    r = run_cli(dir, {"export", "--database", b});
    CHECK(r.out == exported);
    std::vector<event> back;
    for (const auto& e : ssoci::event_store(b).events({.order = ssoci::event_order::oldest_first}))
        back.push_back(e);
    CHECK(back == history);

    // Without outcome: allowed decides. With one that disagrees, or an unknown one: the line is reported.
    const std::string input =
        "{\"timestamp\":\"2026-05-07T22:41:55Z\",\"key\":\"k\",\"allowed\":false,\"count\":1,"
        "\"limit\":1}\n"
        "{\"timestamp\":\"2026-05-07T22:41:56Z\",\"key\":\"k\",\"allowed\":false,\"count\":1,"
        "\"limit\":1,"
        "\"outcome\":\"degraded\"}\n"
        "{\"timestamp\":\"2026-05-07T22:41:57Z\",\"key\":\"k\",\"allowed\":true,\"count\":1,"
        "\"limit\":1,"
        "\"outcome\":\"throttled\"}\n"
        "{\"timestamp\":\"2026-05-07T22:41:58Z\",\"key\":\"k\",\"allowed\":true,\"count\":1,"
        "\"limit\":1,"
        "\"outcome\":\"degraded\"}\n";
    const std::string c = dir.sqlite_url("c.db");
    REQUIRE(run_cli(dir, {"migrate", "--database", c}).code == 0);
    r = run_cli(dir, {"import", "--database", c}, input);
    CHECK(r.code == 65);
    CHECK(r.err.find("line 2: \"outcome\" \"degraded\" disagrees with \"allowed\": false") !=
          std::string::npos);
    CHECK(r.err.find("line 3: \"outcome\" must be") != std::string::npos);
    r = run_cli(dir, {"export", "--database", c});
    CHECK(lines(r.out) == 2);
    CHECK(r.out.find("\"outcome\":\"blocked\"}") != std::string::npos);
    CHECK(r.out.find("\"outcome\":\"degraded\"}") != std::string::npos);
}

TEST_CASE("cli: cleanup-events deletes old events in batches and prints the count", "[cli][soci]") {
    temp_dir dir;
    REQUIRE(run_cli(dir, {"migrate"}).code == 0);
    ssoci::event_store store(dir.sqlite_url("smart_ratelimit.db"));
    write_aged_events(store, 10, 2);
    auto r = run_cli(dir, {"cleanup-events", "--older-than-days", "30", "--batch-size", "3"});
    CHECK(r.code == 0);
    CHECK(r.out ==
          "cleanup-events: deleted 10 event(s) older than 30 day(s) (batch size 3) from "
          "sqlite:///smart_ratelimit.db\n");
    CHECK(store.count() == 2);
    r = run_cli(dir, {"cleanup-events"});
    CHECK(r.code == 0);
    CHECK(r.out.find("deleted 0 event(s) older than 30 day(s) (batch size 1000)") !=
          std::string::npos);
}

TEST_CASE("cli: cleanup-events on PostgreSQL drops whole days and says how many",
          "[cli][soci][partitions]") {
    temp_dir dir;
    pg_database pg("cli_cleanup");
    if (!pg) return;
    REQUIRE(run_cli(dir, {"migrate", "--database", pg.url()}).code == 0);
    ssoci::event_store store(pg.url());
    write_aged_events(store, 10, 2);  // the old ones on one day, 40 days ago
    auto r = run_cli(dir, {"cleanup-events", "--older-than-days", "30", "--database", pg.url()});
    CHECK(r.code == 0);
    CHECK(r.out.find("cleanup-events: deleted 10 event(s) (1 day partition(s) dropped) older than "
                     "30 day(s) (batch size 1000) from postgresql://") == 0);
    CHECK(store.count() == 2);
    r = run_cli(dir, {"cleanup-events", "--database", pg.url()});
    CHECK(r.code == 0);
    CHECK(r.out.find("deleted 0 event(s) (0 day partition(s) dropped)") != std::string::npos);
}

TEST_CASE("cli: random events of hostile bytes survive export, import and export unchanged",
          "[cli][soci][property]") {
    // Every field drawn from bytes that stress the JSON-lines writer and reader:
    // quotes, backslashes, controls, NUL, invalid UTF-8, multi-byte characters, and
    // lengths past the caps. The store sanitizes once (U+FFFD, NUL removed, caps); from
    // then on export and import are each other's inverse, byte for byte.
    std::mt19937_64 rng(20261204);
    static constexpr std::string_view pieces[] = {"a",
                                                  "Z",
                                                  "0",
                                                  ":",
                                                  "\"",
                                                  "\\",
                                                  "/",
                                                  "\t",
                                                  "\n",
                                                  "\r",
                                                  std::string_view("\0", 1),
                                                  "\x01",
                                                  "\x7f",
                                                  "\xff",
                                                  "\xc3",
                                                  "\xc3\xa9",
                                                  "\xe2\x82\xac",
                                                  "\xf0\x9f\x98\x80",
                                                  "\xed\xa0\x80",
                                                  " ",
                                                  ",",
                                                  "=",
                                                  "%",
                                                  "\\u0000",
                                                  "rule:login:"};
    auto text = [&](std::size_t max_pieces) {
        std::string s;
        const std::size_t n = rng() % (max_pieces + 1);
        for (std::size_t i = 0; i < n; ++i) s += pieces[rng() % std::size(pieces)];
        return s;
    };
    static constexpr srl::outcome_kind outcomes[] = {
        srl::outcome_kind::allowed, srl::outcome_kind::blocked, srl::outcome_kind::shadow_blocked,
        srl::outcome_kind::degraded};
    std::vector<event> events;
    for (int i = 0; i < 400; ++i) {
        const auto t = event_time{microseconds{
            static_cast<std::int64_t>(1'700'000'000'000'000 + rng() % 100'000'000'000'000)}};
        std::optional<std::string> ip, user;
        if (rng() % 3 != 0) ip = text(12);
        if (rng() % 3 != 0) user = text(100);
        const std::string key = text(120), path = text(200), method = text(6);
        events.push_back(srl::make_event(
            t, key, path, method, outcomes[rng() % 4], static_cast<std::int64_t>(rng() % 1000),
            static_cast<std::int64_t>(rng() % 1000),
            ip ? std::optional<std::string_view>(*ip) : std::nullopt,
            user ? std::optional<std::string_view>(*user) : std::nullopt));
    }
    temp_dir dir;
    const std::string a = dir.sqlite_url("a.db"), b = dir.sqlite_url("b.db");
    ssoci::event_store store_a(a);
    store_a.migrate();
    const auto written = store_a.write_batch(events);
    REQUIRE(written.written == events.size());

    auto r = run_cli(dir, {"export", "--database", a});
    REQUIRE(r.code == 0);
    const std::string exported = r.out;
    CHECK(lines(exported) == events.size());
    REQUIRE(run_cli(dir, {"migrate", "--database", b}).code == 0);
    r = run_cli(dir, {"import", "--database", b}, exported);
    REQUIRE(r.code == 0);
    CHECK(r.out.find("400 event(s) written") != std::string::npos);
    r = run_cli(dir, {"export", "--database", b});
    REQUIRE(r.code == 0);
    CHECK(r.out == exported);

    check_postgres_round_trip(dir, exported, "cli_property");
}
