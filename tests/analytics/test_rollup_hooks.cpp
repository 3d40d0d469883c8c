// tests/analytics/test_rollup_hooks.cpp
// SQLite rollups kept two ways: by the event writer's batch hooks (one grouped
// upsert per table per batch, analytics v3) and by the per-row insert trigger (any
// other INSERT). Both must leave exactly the same counters, including after
// deletes, and a database upgraded from v2 must carry on correctly.
#include "support/analytics_support.hpp"

#include <smart_ratelimit/soci/analytics.hpp>
#include <smart_ratelimit/soci/event_store.hpp>

#include <catch2/catch.hpp>

#include "support/temp_dir.hpp"

#include <string>
#include <vector>

using namespace srl_test;
namespace sq = smart_ratelimit::soci;

namespace {

/// Every rollup table, row by row, in a fixed order, as text.
std::string rollup_dump(soci::session& sql) {
    std::string out;
    const char* queries[] = {
        "SELECT hour || ',' || total || ',' || blocked FROM ratelimit_rollup_hour ORDER BY hour",
        "SELECT hour || ',' || hex(rule_name) || ',' || hits || ',' || blocked FROM "
        "ratelimit_rollup_rule_hour"
        " ORDER BY hour, rule_name",
        "SELECT id || ',' || hex(key) FROM ratelimit_rollup_key ORDER BY id",
        "SELECT level || ',' || bucket || ',' || key_id || ',' || blocked FROM "
        "ratelimit_rollup_key_span"
        " ORDER BY level, bucket, key_id",
    };
    for (const char* q : queries) {
        soci::rowset<std::string> rows = (sql.prepare << q);
        for (const auto& r : rows) out += r + "\n";
        out += "--\n";
    }
    return out;
}

/// Inserts the events one statement each, as a console or another program would.
void insert_plain(soci::session& sql, const std::vector<srl::event>& events) {
    soci::transaction tx(sql);
    for (const auto& e : events) {
        long long ts = e.timestamp.time_since_epoch().count();
        int allowed = e.allowed ? 1 : 0;
        long long count = e.count, limit = e.limit;
        sql << "INSERT INTO ratelimit_event (timestamp, key, rule_name, path, method, allowed, "
               "count, \"limit\")"
               " VALUES (:t, :k, :r, :p, :m, :a, :c, :l)",
            soci::use(ts), soci::use(e.key), soci::use(e.rule_name), soci::use(e.path),
            soci::use(e.method), soci::use(allowed), soci::use(count), soci::use(limit);
    }
    tx.commit();
}

void write_batches(sq::event_store& store, const std::vector<srl::event>& events,
                   std::size_t batch) {
    for (std::size_t i = 0; i < events.size(); i += batch) {
        const std::vector<srl::event> part(
            events.begin() + static_cast<std::ptrdiff_t>(i),
            events.begin() + static_cast<std::ptrdiff_t>(std::min(events.size(), i + batch)));
        const auto r = store.write_batch(part);
        REQUIRE(r.written == part.size());
    }
}

long long hook_count(soci::session& sql) {
    long long n = 0;
    sql << "SELECT COUNT(*) FROM ratelimit_event_batch_hook WHERE component = 'analytics'",
        soci::into(n);
    return n;
}

}  // namespace

TEST_CASE("SQLite rollups from the writer's batch hooks equal the per-row trigger's",
          "[analytics][soci][hooks]") {
    temp_dir dir("hooks");
    const auto events = random_events(7, 4000, test_now, {1, 7, 30});
    const std::string hooked_url = dir.sqlite_url("hooked.db");
    const std::string plain_url = dir.sqlite_url("plain.db");
    sq::event_store hooked(hooked_url), plain(plain_url);
    hooked.migrate(std::span(&sq::analytics_migrations, 1));
    plain.migrate(std::span(&sq::analytics_migrations, 1));
    auto hs = hooked.open_session();
    auto ps = plain.open_session();
    REQUIRE(hook_count(*hs) == 4);

    // Uneven batch sizes, so hour and key groups straddle batches.
    write_batches(hooked, events, 37);
    CHECK(hooked.last_error().empty());  // no hook fell back to the triggers
    insert_plain(*ps, events);
    const std::string expected = rollup_dump(*ps);
    REQUIRE(expected.size() > 1000);
    CHECK(rollup_dump(*hs) == expected);

    // The same after deletes (cleanup) and a second round of writes.
    CHECK(hooked.cleanup_old(20, 500, test_now) == plain.cleanup_old(20, 500, test_now));
    CHECK(rollup_dump(*hs) == rollup_dump(*ps));
    const auto more = random_events(8, 1500, test_now, {1, 7});
    write_batches(hooked, more, 512);
    insert_plain(*ps, more);
    CHECK(rollup_dump(*hs) == rollup_dump(*ps));
    // A console INSERT into the hooked database runs the trigger as before.
    insert_plain(*hs, {ev(test_now, "console:key", false)});
    insert_plain(*ps, {ev(test_now, "console:key", false)});
    CHECK(rollup_dump(*hs) == rollup_dump(*ps));
}

TEST_CASE("a database written under analytics v2 carries on exactly after the v3 upgrade",
          "[analytics][soci][hooks]") {
    temp_dir dir("hooks");
    const auto events = random_events(9, 3000, test_now, {1, 7, 30});
    const std::vector<srl::event> before(events.begin(), events.begin() + 1200);
    const std::vector<srl::event> after(events.begin() + 1200, events.end());
    sq::event_store upgraded(dir.sqlite_url("upgraded.db")), plain(dir.sqlite_url("plain.db"));
    upgraded.migrate();
    {
        auto s = upgraded.open_session();
        const sq::migration_set v2{sq::analytics_component, std::span(sq::analytics_steps, 2)};
        REQUIRE(sq::migrate(*s, sq::dialect::sqlite, std::span(&v2, 1)).size() == 2);
        REQUIRE(hook_count(*s) == 0);
    }
    write_batches(upgraded, before, 100);  // v2: the per-row triggers
    const auto applied = upgraded.migrate(std::span(&sq::analytics_migrations, 1));
    REQUIRE(applied.size() == 1);
    CHECK(applied[0].version == 3);
    sq::event_store reopened(
        dir.sqlite_url("upgraded.db"));  // a writer connected after the upgrade
    write_batches(reopened, after, 100);
    plain.migrate(std::span(&sq::analytics_migrations, 1));
    auto ps = plain.open_session();
    insert_plain(*ps, events);
    CHECK(rollup_dump(*reopened.open_session()) == rollup_dump(*ps));
    // And the analytics read the same from both.
    auto us = reopened.open_session();
    for (int days : {1, 7, 30}) {
        INFO(days);
        CHECK(sq::sql_analytics{*us, sq::dialect::sqlite}.top_offenders_at(days, 100, test_now) ==
              sq::sql_analytics{*ps, sq::dialect::sqlite}.top_offenders_at(days, 100, test_now));
    }
}
