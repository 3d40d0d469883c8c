// tests/soci/test_soci_alert_log.cpp
// The SQL cool-down memory (ratelimit_alert_log) on SQLite and, when the shared
// test server runs, PostgreSQL: created by the "alerts" migration set, upserted,
// never moved backwards, and used by send_offender_alerts to suppress repeats.
#include "support/event_store_support.hpp"

#include <catch2/catch.hpp>

#include <mutex>
#include <thread>
#include <vector>

#include <smart_ratelimit/alerts.hpp>
#include <smart_ratelimit/soci/alert_log.hpp>
#include <smart_ratelimit/soci/analytics.hpp>

namespace srl = smart_ratelimit;
namespace ssoci = smart_ratelimit::soci;
using namespace std::chrono_literals;

namespace {

void exercise_alert_log(const std::string& url) {
    ssoci::event_store store(url);
    CHECK_THROWS_WITH(ssoci::sql_alert_log(store), Catch::Contains("smart-ratelimit migrate"));
    const std::vector<ssoci::migration_set> sets{ssoci::alert_log_migrations};
    store.migrate(sets);
    CHECK(store.migrate(sets).empty());  // idempotent

    ssoci::sql_alert_log log(store);
    const srl::event_time t0 =
        srl::event_time(
            std::chrono::sys_days(std::chrono::year(2026) / 3 / 14).time_since_epoch()) +
        123us;
    CHECK_FALSE(log.last_alerted("ip:1").has_value());
    log.record("ip:1", t0);
    CHECK(log.last_alerted("ip:1") == t0);
    log.record("ip:1", t0 - 1h);  // never backwards
    CHECK(log.last_alerted("ip:1") == t0);
    log.record("ip:1", t0 + 1h);
    CHECK(log.last_alerted("ip:1") == t0 + 1h);
    log.record("key with 'quotes' and \xC3\xAB", t0);
    CHECK(log.last_alerted("key with 'quotes' and \xC3\xAB") == t0);

    // With send_offender_alerts over the store's own SQL analytics.
    std::vector<srl::event> ev;
    const auto now = t0 + 2h;
    for (int i = 0; i < 4; ++i)
        ev.push_back(srl::make_event(now - 1h, "ip:2", "/", "GET", false, 2, 1));
    for (int i = 0; i < 4; ++i)
        ev.push_back(srl::make_event(now - 1h, "ip:1", "/", "GET", false, 2, 1));
    REQUIRE(store.write_batch(ev).written == ev.size());
    struct ok_webhook {
        int posts = 0;
        srl::send_status post(std::string_view, std::string_view) {
            ++posts;
            return srl::send_status::success();
        }
    } webhook;
    srl::no_mail_sender mailer;
    srl::alert_request req;
    req.threshold = 4;
    req.webhook_url = "http://127.0.0.1:9/";
    req.cooldown = 90min;
    req.now = now;
    auto r = srl::send_offender_alerts(store, req, mailer, webhook, log);
    REQUIRE(r.error == "");
    REQUIRE(r.offenders.size() == 1);  // ip:1 was alerted 1 h ago
    CHECK(r.offenders[0].key == "ip:2");
    CHECK(r.suppressed == 1);
    r = srl::send_offender_alerts(store, req, mailer, webhook, log);
    CHECK(r.offenders.empty());
    CHECK(r.suppressed == 2);
    CHECK(webhook.posts == 1);
    CHECK(log.last_alerted("ip:2") == now);
}

/// claim and release, then several connections claiming the same keys at once:
/// exactly one wins each.
void exercise_claims(const std::string& url) {
    ssoci::event_store store(url);
    const std::vector<ssoci::migration_set> sets{ssoci::alert_log_migrations};
    store.migrate(sets);
    const srl::event_time t0 =
        srl::event_time(std::chrono::sys_days(std::chrono::year(2026) / 3 / 14).time_since_epoch());
    ssoci::sql_alert_log log(store);
    auto c = log.claim("ip:1", t0, t0 - 1h);
    CHECK((c.won && !c.previous));
    c = log.claim("ip:1", t0 + 30min, t0 - 30min);  // alerted at t0, inside the cool-down
    CHECK_FALSE(c.won);
    CHECK(c.previous == t0);
    c = log.claim("ip:1", t0 + 2h, t0 + 1h);  // past it
    CHECK((c.won && c.previous == t0));
    log.release("ip:1", t0 + 2h, t0);  // that run sent nothing
    CHECK(log.last_alerted("ip:1") == t0);
    log.release("ip:1", t0 + 5h, std::nullopt);  // not the holder: no effect
    CHECK(log.last_alerted("ip:1") == t0);
    REQUIRE(log.claim("ip:new", t0, t0).won);
    log.release("ip:new", t0, std::nullopt);
    CHECK_FALSE(log.last_alerted("ip:new").has_value());

    constexpr int claimers = 4, keys = 40;
    std::vector<int> wins(keys, 0);
    std::mutex m;
    std::vector<std::thread> threads;
    for (int i = 0; i < claimers; ++i)
        threads.emplace_back([&, i] {
            ssoci::sql_alert_log own(store);  // its own connection, as another node
            for (int k = 0; k < keys; ++k) {
                const auto key = "race:" + std::to_string((k + i * 7) % keys);
                if (own.claim(key, t0 + std::chrono::microseconds(i), t0 - 1h).won) {
                    std::lock_guard lock(m);
                    ++wins[(k + i * 7) % keys];
                }
            }
        });
    for (auto& t : threads) t.join();
    for (int k = 0; k < keys; ++k) CHECK(wins[k] == 1);
}

}  // namespace

TEST_CASE("SQL alert log claims: one winner per key among connections, released on failure",
          "[alerts][soci]") {
    srl_test::temp_dir dir;
    exercise_claims("sqlite:///" + (dir.path() / "claims.db").string());
    srl_test::pg_database db("alertclaims");
    if (db) exercise_claims(db.url());
}

TEST_CASE("the SQL alert log remembers alerted keys on SQLite", "[alerts][soci]") {
    srl_test::temp_dir dir;
    exercise_alert_log("sqlite:///" + (dir.path() / "alerts.db").string());
}

TEST_CASE("the SQL alert log remembers alerted keys on PostgreSQL", "[alerts][soci][postgresql]") {
    srl_test::pg_database db("alertlog");
    if (!db) {
        WARN(
            "SMART_RATELIMIT_TEST_PG_URL is not set: PostgreSQL not tested (run under "
            "scripts/test-servers.sh)");
        return;
    }
    exercise_alert_log(db.url());
}
