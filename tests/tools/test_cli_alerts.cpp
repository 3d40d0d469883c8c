// tests/tools/test_cli_alerts.cpp
// `smart-ratelimit alerts` as cron runs it: the built program against a SQLite
// event log, the aiosmtpd receiver and a Beast HTTP receiver on 127.0.0.1. The dry
// run, the summary line, settings from file/environment/flags, the cool-down
// across runs, and every exit code (0, 1, 64, 69, 78).
#include "support/cli_runner.hpp"
#include "support/event_store_support.hpp"
#include "support/receivers.hpp"

#include <smart_ratelimit/settings.hpp>
#include <smart_ratelimit/analytics.hpp>
#include <smart_ratelimit/soci.hpp>
#include <smart_ratelimit/version.hpp>

#include <cstdlib>
#include <filesystem>
#include <map>
#include <string>
#include <thread>
#include <vector>

namespace srl = smart_ratelimit;
using namespace srl_alerts_test;
using srl_test::cli_result;
using srl_test::run_cli;
using srl_test::shell_quote;
using namespace std::chrono_literals;

namespace {

/// A migrated SQLite event log in `dir` holding blocked events from the last hour:
/// ip:203.0.113.5 x5, ip:198.51.100.7 x3, "evil\r\nkey" x3, ip:192.0.2.1 x2, and
/// 30 blocked events of ip:10.0.0.1 two days ago.
std::string make_event_log(const temp_dir& dir) {
    const std::string url = "sqlite:///" + (dir.path() / "events.db").string();
    REQUIRE(run_cli(dir, {"migrate", "--database", url}).code == 0);
    srl::soci::event_store store(url);
    const auto now = srl::event_clock_now();
    std::vector<srl::event> ev;
    const auto add = [&](const std::string& key, int n, srl::event_time at) {
        for (int i = 0; i < n; ++i)
            ev.push_back(srl::make_event(at, key, "/login", "POST", false, 11, 10));
    };
    add("ip:203.0.113.5", 5, now - 1h);
    add("ip:198.51.100.7", 3, now - 1h);
    add("evil\r\nkey", 3, now - 2h);
    add("ip:192.0.2.1", 2, now - 1h);
    add("ip:10.0.0.1", 30, now - 48h);
    const auto res = store.write_batch(ev);
    REQUIRE(res.written == ev.size());
    return url;
}

}  // namespace

TEST_CASE("alerts --dry-run lists the offenders with the configured threshold and sends nothing",
          "[alerts][cli]") {
    temp_dir dir;
    const auto db = make_event_log(dir);
    smtp_receiver smtp;
    http_receiver http(200);
    const std::vector<std::string> env{
        "RATELIMIT_DATABASE_URL=" + db, "RATELIMIT_ALERT_THRESHOLD=3",
        "RATELIMIT_ALERT_EMAILS=ops@example.com", "RATELIMIT_SMTP_URL=" + smtp.url(),
        "RATELIMIT_ALERT_WEBHOOK=" + http.url()};
    auto r = run_cli(dir, {"alerts", "--dry-run"}, "", env);
    CHECK(r.code == 0);
    CHECK(r.out ==
          "3 offender(s) >= 3 blocked in 1 day(s):\n"
          "  ip:203.0.113.5: 5\n"
          "  evil\\r\\nkey: 3\n"
          "  ip:198.51.100.7: 3\n");
    r = run_cli(dir, {"alerts", "--dry-run", "--threshold", "2", "--days", "3"}, "", env);
    CHECK(r.code == 0);
    CHECK(r.out ==
          "5 offender(s) >= 2 blocked in 3 day(s):\n"
          "  ip:10.0.0.1: 30\n"
          "  ip:203.0.113.5: 5\n"
          "  evil\\r\\nkey: 3\n"
          "  ip:198.51.100.7: 3\n"
          "  ip:192.0.2.1: 2\n");
    r = run_cli(dir, {"alerts", "--dry-run", "--json"}, "", env);
    CHECK(r.code == 0);
    CHECK(r.out ==
          "{\"enabled\": true, \"threshold\": 3, \"days\": 1, \"offenders\": ["
          "{\"key\": \"ip:203.0.113.5\", \"blocked_count\": 5}, "
          "{\"key\": \"evil\\r\\nkey\", \"blocked_count\": 3}, "
          "{\"key\": \"ip:198.51.100.7\", \"blocked_count\": 3}], \"channels\": {}}\n");
    CHECK(smtp.count() == 0);
    CHECK(http.requests().empty());
}

TEST_CASE("alerts sends e-mail and webhook and prints one summary line", "[alerts][cli]") {
    temp_dir dir;
    const auto db = make_event_log(dir);
    smtp_receiver smtp;
    http_receiver http(200);
    // The threshold from a settings file, the channels from the environment.
    {
        std::ofstream f(dir.path() / "settings.json");
        f << "{\"RATELIMIT_ALERT_THRESHOLD\": 4, \"DEFAULT_FROM_EMAIL\": \"rl@example.org\"}";
    }
    const std::vector<std::string> env{
        "RATELIMIT_SETTINGS=" + (dir.path() / "settings.json").string(),
        "RATELIMIT_DATABASE_URL=" + db,
        "RATELIMIT_ALERT_EMAILS=ops@example.com,sec@example.com",
        "RATELIMIT_SMTP_URL=" + smtp.url(),
        "RATELIMIT_ALERT_WEBHOOK=" + http.url(),
        "RATELIMIT_ALERT_TIMEOUT_MS=30000"};
    const auto r = run_cli(dir, {"alerts"}, "", env);
    CHECK(r.err == "");
    CHECK(r.code == 0);
    CHECK(r.out ==
          "alerts: 1 offender(s) >= 4 blocked in 1 day(s); email sent to 2 recipient(s); webhook "
          "sent\n");
    REQUIRE(smtp.count() == 1);
    const std::string msg = smtp.message(1);
    CHECK(msg.find("\r\nFrom: rl@example.org\r\n") != std::string::npos);
    CHECK(msg.find("\r\nSubject: [smart-ratelimit] 1 offender(s) alert\r\n") != std::string::npos);
    CHECK(msg.substr(msg.find("\r\n\r\n") + 4) ==
          "1 rate-limit offender(s) exceeded 4 blocked requests in the last 1 day(s):\r\n\r\n"
          "ip:203.0.113.5: 5 blocked\r\n");
    REQUIRE(http.requests().size() == 1);
    CHECK(http.requests()[0].body ==
          "{\"threshold\": 4, \"days\": 1, \"offenders\": [{\"key\": \"ip:203.0.113.5\", "
          "\"blocked_count\": 5}]}");

    // A flag beats the environment, which beats the file.
    auto env2 = env;
    env2.push_back("RATELIMIT_ALERT_THRESHOLD=1000");
    auto r2 = run_cli(dir, {"alerts", "--json"}, "", env2);
    CHECK(r2.code == 0);
    CHECK(r2.out ==
          "{\"enabled\": true, \"threshold\": 1000, \"days\": 1, \"offenders\": [], \"channels\": "
          "{}}\n");
    r2 = run_cli(dir, {"alerts", "--threshold", "5", "--limit", "1"}, "", env2);
    CHECK(r2.code == 0);
    CHECK(r2.out ==
          "alerts: 1 offender(s) >= 5 blocked in 1 day(s); email sent to 2 recipient(s); webhook "
          "sent\n");
    CHECK(smtp.count() == 2);
}

TEST_CASE("a failed channel makes alerts exit 1 after sending the other", "[alerts][cli]") {
    temp_dir dir;
    const auto db = make_event_log(dir);
    http_receiver http(200);
    const std::vector<std::string> env{
        "RATELIMIT_DATABASE_URL=" + db,
        "RATELIMIT_ALERT_THRESHOLD=3",
        "RATELIMIT_ALERT_EMAILS=ops@example.com",
        "RATELIMIT_SMTP_URL=smtp://127.0.0.1:" + std::to_string(refused_port()),
        "RATELIMIT_ALERT_WEBHOOK=" + http.url(),
        "RATELIMIT_ALERT_TIMEOUT_MS=30000"};
    const auto r = run_cli(dir, {"alerts", "--json"}, "", env);
    CHECK(r.code == 1);
    CHECK(r.out.find("\"email\": {\"sent\": false, \"error\": \"SMTP: ") != std::string::npos);
    CHECK(r.out.find("\"webhook\": {\"sent\": true, \"url\": \"" + http.url() + "\"}") !=
          std::string::npos);
    CHECK(http.requests().size() == 1);
    const auto r2 = run_cli(dir, {"alerts"}, "", env);
    CHECK(r2.code == 1);
    CHECK(r2.out.rfind("alerts: 3 offender(s) >= 3 blocked in 1 day(s); email FAILED: SMTP: ", 0) ==
          0);
    CHECK(r2.out.find("; webhook sent\n") != std::string::npos);
}

TEST_CASE("the cool-down is remembered in the database across runs", "[alerts][cli]") {
    temp_dir dir;
    const auto db = make_event_log(dir);
    http_receiver http(200);
    const std::vector<std::string> env{
        "RATELIMIT_DATABASE_URL=" + db, "RATELIMIT_ALERT_THRESHOLD=3",
        "RATELIMIT_ALERT_WEBHOOK=" + http.url(), "RATELIMIT_ALERT_TIMEOUT_MS=30000",
        "RATELIMIT_ALERT_COOLDOWN_MINUTES=60"};
    auto r = run_cli(dir, {"alerts"}, "", env);
    CHECK(r.code == 0);
    CHECK(r.out ==
          "alerts: 3 offender(s) >= 3 blocked in 1 day(s) (0 in cool-down); webhook sent\n");
    r = run_cli(dir, {"alerts"}, "", env);
    CHECK(r.code == 0);
    CHECK(r.out ==
          "alerts: 0 offender(s) >= 3 blocked in 1 day(s) (3 in cool-down); nothing to send\n");
    // A lower threshold brings in a key never alerted: only that one goes out.
    r = run_cli(dir, {"alerts", "--threshold", "2"}, "", env);
    CHECK(r.out ==
          "alerts: 1 offender(s) >= 2 blocked in 1 day(s) (3 in cool-down); webhook sent\n");
    const auto reqs = http.requests();
    REQUIRE(reqs.size() == 2);
    CHECK(reqs[1].body ==
          "{\"threshold\": 2, \"days\": 1, \"offenders\": [{\"key\": \"ip:192.0.2.1\", "
          "\"blocked_count\": 2}]}");
    // Without the cool-down everybody is alerted again.
    auto env2 = env;
    env2.back() = "RATELIMIT_ALERT_COOLDOWN_MINUTES=0";
    r = run_cli(dir, {"alerts"}, "", env2);
    CHECK(r.out == "alerts: 3 offender(s) >= 3 blocked in 1 day(s); webhook sent\n");
}

/// Three nodes run `alerts` from cron in the same minute against one shared event
/// log: every key is alerted once, by whichever node claimed it.
void three_nodes_alert_once(const std::string& db) {
    REQUIRE(run_cli(temp_dir{}, {"migrate", "--database", db}).code == 0);
    srl::soci::event_store store(db);
    const auto now = srl::event_clock_now();
    std::vector<srl::event> ev;
    for (int k = 0; k < 30; ++k)
        for (int i = 0; i < 3 + k % 4; ++i)
            ev.push_back(srl::make_event(now - 1h, "ip:10.9.0." + std::to_string(k), "/login",
                                         "POST", false, 11, 10));
    REQUIRE(store.write_batch(ev).written == ev.size());
    http_receiver http(200);
    const std::vector<std::string> env{
        "RATELIMIT_DATABASE_URL=" + db, "RATELIMIT_ALERT_THRESHOLD=3",
        "RATELIMIT_ALERT_WEBHOOK=" + http.url(), "RATELIMIT_ALERT_TIMEOUT_MS=30000",
        "RATELIMIT_ALERT_COOLDOWN_MINUTES=60"};
    std::vector<temp_dir> nodes(3);
    std::vector<cli_result> results(3);
    std::vector<std::thread> cron;
    for (std::size_t n = 0; n < nodes.size(); ++n)
        cron.emplace_back([&, n] { results[n] = run_cli(nodes[n], {"alerts"}, "", env); });
    for (auto& t : cron) t.join();
    int alerted = 0;
    for (const auto& r : results) {
        INFO(r.out << r.err);
        CHECK(r.code == 0);
    }
    std::map<std::string, int> sent;
    for (const auto& req : http.requests())
        for (int k = 0; k < 30; ++k) {
            const auto key = "\"ip:10.9.0." + std::to_string(k) + "\"";
            if (req.body.find(key) != std::string::npos) ++sent[key];
        }
    for (const auto& [key, times] : sent) alerted += times;
    CHECK(sent.size() == 30);
    CHECK(alerted == 30);
}

TEST_CASE("three nodes running alerts at once alert each key once (SQLite file, PostgreSQL)",
          "[alerts][cli]") {
    temp_dir dir;
    three_nodes_alert_once("sqlite:///" + (dir.path() / "shared.db").string());
    srl_test::pg_database pg("alerts_nodes");
    if (pg) three_nodes_alert_once(pg.url());
}

TEST_CASE("alerts --metrics-file leaves the alerts sent, counted across runs, for node_exporter",
          "[alerts][cli][metrics]") {
    temp_dir dir;
    const auto db = make_event_log(dir);
    http_receiver http(200);
    const auto file = (dir.path() / "alerts.prom").string();
    const auto has = [](const std::string& text, const std::string& line) {
        return text.find("\n" + line + "\n") != std::string::npos;
    };
    // Disabled: the file still says the job ran, with every count at zero.
    auto r = run_cli(dir, {"alerts", "--metrics-file", file}, "", {"RATELIMIT_DATABASE_URL=" + db});
    CHECK(r.code == 0);
    std::string text = read_file(file);
    CHECK(text.rfind("# HELP smart_ratelimit_alerts_sent_total ", 0) == 0);
    CHECK(has(text, "# TYPE smart_ratelimit_alerts_sent_total counter"));
    CHECK(has(text, "smart_ratelimit_alerts_sent_total{channel=\"webhook\",result=\"sent\"} 0"));
    CHECK(has(text, "smart_ratelimit_alerts_sent_total{channel=\"email\",result=\"failed\"} 0"));
    CHECK(has(text, "# TYPE smart_ratelimit_alerts_last_run_timestamp_seconds gauge"));
    CHECK(has(text, "smart_ratelimit_build_info{version=\"" + std::string(srl::version_string) +
                        "\"} 1"));

    // Two runs that send: the counts add up across runs (a counter).
    const std::vector<std::string> env{
        "RATELIMIT_DATABASE_URL=" + db, "RATELIMIT_ALERT_THRESHOLD=3",
        "RATELIMIT_ALERT_WEBHOOK=" + http.url(), "RATELIMIT_ALERT_TIMEOUT_MS=30000"};
    for (int run = 1; run <= 2; ++run) {
        r = run_cli(dir, {"alerts", "--metrics-file", file, "--quiet"}, "", env);
        CHECK(r.code == 0);
        CHECK(r.out == "");
    }
    text = read_file(file);
    CHECK(has(text, "smart_ratelimit_alerts_sent_total{channel=\"webhook\",result=\"sent\"} 2"));
    CHECK(has(text, "smart_ratelimit_alerts_sent_total{channel=\"webhook\",result=\"failed\"} 0"));
    CHECK(has(text, "smart_ratelimit_alerts_sent_total{channel=\"email\",result=\"sent\"} 0"));
    // Written by rename: no temporary file is left beside it.
    int entries = 0;
    for (const auto& e : std::filesystem::directory_iterator(dir.path()))
        entries += e.path().filename().string().rfind("alerts.prom", 0) == 0;
    CHECK(entries == 1);

    // A failed channel is counted as failed; the exit code still says so.
    const std::vector<std::string> bad{
        "RATELIMIT_DATABASE_URL=" + db, "RATELIMIT_ALERT_THRESHOLD=3",
        "RATELIMIT_ALERT_WEBHOOK=http://127.0.0.1:1/", "RATELIMIT_ALERT_TIMEOUT_MS=2000"};
    r = run_cli(dir, {"alerts", "--metrics-file", file}, "", bad);
    CHECK(r.code == 1);
    text = read_file(file);
    CHECK(has(text, "smart_ratelimit_alerts_sent_total{channel=\"webhook\",result=\"failed\"} 1"));
    CHECK(has(text, "smart_ratelimit_alerts_sent_total{channel=\"webhook\",result=\"sent\"} 2"));

    // promtool, when installed, finds nothing to complain about.
    if (std::system("command -v promtool >/dev/null 2>&1") == 0) {
        const auto out = (dir.path() / "promtool.txt").string();
        const int status = std::system(
            ("promtool check metrics < " + shell_quote(file) + " > " + shell_quote(out) + " 2>&1")
                .c_str());
        CHECK(status == 0);
        CHECK(read_file(out) == "");
    }

    // A directory that does not exist: exit 1 with a message naming the file.
    r = run_cli(dir, {"alerts", "--metrics-file", (dir.path() / "no" / "such.prom").string()}, "",
                {"RATELIMIT_DATABASE_URL=" + db});
    CHECK(r.code == 1);
    CHECK(r.err.find("cannot write the metrics file") != std::string::npos);
}

TEST_CASE("alerts exit codes: disabled, bad arguments, bad settings, unreachable database",
          "[alerts][cli]") {
    temp_dir dir;
    auto r = run_cli(dir, {"alerts"});
    CHECK(r.code == 0);
    CHECK(r.out ==
          "alerts: disabled (no threshold: set RATELIMIT_ALERT_THRESHOLD or pass --threshold)\n");
    r = run_cli(dir, {"alerts", "--dry-run", "--threshold", "0"});
    CHECK(r.code == 0);
    CHECK(r.out.rfind("alerts: disabled", 0) == 0);
    r = run_cli(dir, {"alerts", "--json"});
    CHECK(r.out == "{\"enabled\": false, \"offenders\": [], \"channels\": {}}\n");

    CHECK(run_cli(dir, {"alerts", "--threshold", "-3"}).code == 64);
    CHECK(run_cli(dir, {"alerts", "--threshold"}).code == 64);
    CHECK(run_cli(dir, {"alerts", "--days", "zero", "--threshold", "1"}).code == 64);
    CHECK(run_cli(dir, {"alerts", "--bogus"}).code == 64);
    r = run_cli(dir, {"alerts", "--help"});
    CHECK(r.code == 0);
    CHECK(r.out.rfind("usage: smart-ratelimit alerts", 0) == 0);

    r = run_cli(dir, {"alerts"}, "", {"RATELIMIT_ALERT_THRESHOLD=lots"});
    CHECK(r.code == 78);
    CHECK(r.err.find("RATELIMIT_ALERT_THRESHOLD") != std::string::npos);
    r = run_cli(dir, {"alerts", "--threshold", "1"}, "", {"RATELIMIT_ALERT_WEBHOOK=gopher://x"});
    CHECK(r.code == 78);
    CHECK(r.err.find("RATELIMIT_ALERT_WEBHOOK") != std::string::npos);
    r = run_cli(dir, {"alerts", "--settings", (dir.path() / "missing.json").string()});
    CHECK(r.code == 78);
    CHECK(r.err.find("missing.json") != std::string::npos);

    r = run_cli(dir, {"alerts", "--threshold", "1", "--database",
                      "postgresql://nobody@127.0.0.1:" + std::to_string(refused_port()) + "/x"});
    CHECK(r.code == 69);
    // A database without the schema.
    r = run_cli(dir, {"alerts", "--threshold", "1", "--database",
                      "sqlite:///" + (dir.path() / "empty.db").string()});
    CHECK(r.code == 69);
    CHECK(r.err.find("migrate") != std::string::npos);
}
