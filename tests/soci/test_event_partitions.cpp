// tests/soci/test_event_partitions.cpp
// The PostgreSQL event log partitioned by UTC day (events v4) on the real server:
// partitions created by migrate (ahead) and by the writer (any day, writers racing),
// a table with rows converted in place (ids, sequence, triggers kept), and cleanup
// dropping whole days while deleting only inside the cutoff's day.
#include "support/analytics_support.hpp"
#include "support/event_store_support.hpp"
#include "support/killed_cleanup.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <latch>
#include <string>
#include <thread>
#include <vector>

#include <smart_ratelimit/soci/analytics.hpp>
#include <smart_ratelimit/soci/detail/partitions.hpp>

using namespace srl_test;
namespace ssoci = smart_ratelimit::soci;
using srl::event;
using srl::event_time;
using std::chrono::microseconds;

namespace {

/// The partitions of ratelimit_event, by name.
std::vector<std::string> partitions(soci::session& sql) {
    std::vector<std::string> out;
    soci::rowset<std::string> rs =
        (sql.prepare << "SELECT CAST(c.relname AS text) FROM pg_inherits i"
                        " JOIN pg_class c ON c.oid = i.inhrelid"
                        " WHERE i.inhparent = to_regclass('ratelimit_event') ORDER BY 1");
    for (const auto& name : rs) out.push_back(name);
    return out;
}

bool has(const std::vector<std::string>& names, const std::string& name) {
    return std::find(names.begin(), names.end(), name) != names.end();
}

/// Every row, id first, as text in id order.
std::vector<std::string> rows_by_id(soci::session& sql) {
    std::vector<std::string> out;
    soci::rowset<std::string> rs =
        (sql.prepare << "SELECT id || '|' || to_char(timestamp AT TIME ZONE 'UTC',"
                        " 'YYYY-MM-DD HH24:MI:SS.US') || '|' || key || '|' || allowed || '|'"
                        " || coalesce(outcome, '-') FROM ratelimit_event ORDER BY id");
    for (const auto& r : rs) out.push_back(r);
    return out;
}

event at(event_time t, std::string key = "ip:1.2.3.4", bool allowed = true) {
    return srl::make_event(t, key, "/p", "GET", allowed, 1, 10);
}

std::int64_t today_utc() {
    return ssoci::detail::utc_day(
        std::chrono::time_point_cast<microseconds>(std::chrono::system_clock::now()));
}

}  // namespace

TEST_CASE("partition names and days of the UTC calendar", "[soci][partitions]") {
    using ssoci::detail::partition_day;
    using ssoci::detail::partition_name;
    using ssoci::detail::utc_day;
    CHECK(utc_day(event_time{microseconds{0}}) == 0);
    CHECK(utc_day(event_time{microseconds{-1}}) == -1);
    CHECK(utc_day(event_time{microseconds{86'400'000'000 - 1}}) == 0);
    CHECK(partition_name(0) == "ratelimit_event_p19700101");
    CHECK(partition_name(-1) == "ratelimit_event_p19691231");
    CHECK(partition_name(utc_day(test_now)) == "ratelimit_event_p20260508");
    CHECK(partition_name(utc_day(ssoci::detail::min_event_time)) == "ratelimit_event_p00010101");
    CHECK(partition_name(utc_day(ssoci::detail::max_event_time)) == "ratelimit_event_p99991231");
    for (const std::int64_t d : {std::int64_t{-719162}, std::int64_t{-1}, std::int64_t{0},
                                 std::int64_t{20581}, std::int64_t{2932896}})
        CHECK(partition_day(partition_name(d)) == d);
    CHECK_FALSE(partition_day("ratelimit_event_p2026050"));
    CHECK_FALSE(partition_day("ratelimit_event_p20260230"));
    CHECK_FALSE(partition_day("ratelimit_event_x20260501"));
    CHECK_FALSE(partition_day("ratelimit_event_p2026o501"));
}

TEST_CASE("PostgreSQL: migrate partitions the event log by UTC day and creates a week ahead",
          "[soci][partitions]") {
    pg_database db("part_migrate");
    if (!db) return;
    ssoci::event_store store(db.url());
    const auto first_day = today_utc();
    REQUIRE(store.migrate().size() == 4);
    auto sql = store.open_session();
    int partitioned = 0;
    *sql << "SELECT COUNT(*) FROM pg_partitioned_table"
            " WHERE partrelid = to_regclass('ratelimit_event')",
        soci::into(partitioned);
    CHECK(partitioned == 1);
    std::string pk;
    *sql << "SELECT pg_get_constraintdef(oid) FROM pg_constraint"
            " WHERE conrelid = to_regclass('ratelimit_event') AND contype = 'p'",
        soci::into(pk);
    CHECK(pk == "PRIMARY KEY (id, \"timestamp\")");
    const auto names = partitions(*sql);
    // Today .. today + 7 (UTC); the day may have turned while migrate ran.
    const auto last_day = today_utc();
    CHECK(names.size() == static_cast<std::size_t>(ssoci::event_store::partition_days_ahead + 1 +
                                                   (last_day - first_day)));
    for (int i = 0; i <= ssoci::event_store::partition_days_ahead; ++i)
        CHECK(has(names, ssoci::detail::partition_name(last_day + i)));
    // Up to date: nothing runs, nothing more is created.
    CHECK(store.migrate().empty());
    CHECK(partitions(*sql) == names);
    // The indexes are the parent's, so each partition has them too.
    int indexes = 0;
    *sql << "SELECT COUNT(*) FROM pg_indexes WHERE tablename = :t", soci::into(indexes),
        soci::use(names.front());
    CHECK(indexes == 5);
    // A key's drill-down reads its rows from the (key, timestamp) index alone.
    std::string by_key;
    *sql << "SELECT pg_get_indexdef(to_regclass('ratelimit_event_key_timestamp_idx'))",
        soci::into(by_key);
    CHECK_THAT(by_key, Catch::EndsWith("(key, \"timestamp\") INCLUDE (allowed, outcome, path)"));
}

TEST_CASE("PostgreSQL: the writer creates the partition of any day it meets, past or future",
          "[soci][partitions]") {
    pg_database db("part_writer");
    if (!db) return;
    ssoci::event_store store(db.url());
    store.migrate();
    const auto now = std::chrono::time_point_cast<microseconds>(std::chrono::system_clock::now());
    const auto day = std::chrono::hours{24};
    const std::vector<event> in{at(ssoci::detail::min_event_time), at(event_time{}),
                                at(now - 400 * day), at(now + 40 * day, "k", false),
                                at(ssoci::detail::max_event_time)};
    const auto r = store.write_batch(in);
    CHECK(r.written == in.size());
    CHECK(r.invalid == 0);
    CHECK(store.last_error().empty());  // a day created and the batch sent again: no error
    auto out = [&] {
        std::vector<event> v;
        for (const event& e : store.events({.order = ssoci::event_order::oldest_first}))
            v.push_back(e);
        return v;
    }();
    CHECK(out == in);
    auto sql = store.open_session();
    const auto names = partitions(*sql);
    for (const event& e : in)
        CHECK(has(names, ssoci::detail::partition_name(ssoci::detail::utc_day(e.timestamp))));
    CHECK(has(names, "ratelimit_event_p00010101"));
    CHECK(has(names, "ratelimit_event_p99991231"));
    // The same days again: written at once, nothing new.
    CHECK(store.write_batch(in).written == in.size());
    CHECK(partitions(*sql) == names);
}

TEST_CASE("PostgreSQL: writers racing for the same new day all write their rows",
          "[soci][partitions]") {
    pg_database db("part_race");
    if (!db) return;
    ssoci::event_store(db.url()).migrate();
    constexpr int writers = 4;
    std::vector<ssoci::event_store> stores;
    for (int w = 0; w < writers; ++w) stores.emplace_back(db.url());
    // Connect each writer first, so the rounds race on the partition, not on connecting.
    for (auto& s : stores)
        REQUIRE(s.write_batch(std::vector<event>{at(event_time{})}).written == 1);
    const event_time base{
        std::chrono::sys_days{std::chrono::year{2100} / 1 / 1}.time_since_epoch()};
    for (int round = 0; round < 10; ++round) {
        const event_time t = base + std::chrono::hours{24} * round + std::chrono::hours{13};
        std::vector<event> batch(50, at(t));
        std::latch go(writers);
        std::vector<srl::batch_result> results(writers);
        std::vector<std::thread> threads;
        for (int w = 0; w < writers; ++w)
            threads.emplace_back([&, w] {
                go.arrive_and_wait();
                results[static_cast<std::size_t>(w)] =
                    stores[static_cast<std::size_t>(w)].write_batch(batch);
            });
        for (auto& th : threads) th.join();
        for (int w = 0; w < writers; ++w) {
            INFO("round " << round << " writer " << w << ": "
                          << stores[static_cast<std::size_t>(w)].last_error());
            CHECK(results[static_cast<std::size_t>(w)].written == batch.size());
        }
    }
    CHECK(ssoci::event_store(db.url()).count() == writers * (1 + 10 * 50));
    // The function itself, called at once from several sessions: exactly one creates.
    std::latch go(writers);
    std::vector<int> created(writers);
    std::vector<std::thread> threads;
    for (int w = 0; w < writers; ++w)
        threads.emplace_back([&, w] {
            auto sql = ssoci::open_session(ssoci::parse_database_url(db.url()));
            go.arrive_and_wait();
            *sql << "SELECT CAST(ratelimit_event_partition(DATE '2200-02-02') AS int)",
                soci::into(created[static_cast<std::size_t>(w)]);
        });
    for (auto& th : threads) th.join();
    CHECK(std::count(created.begin(), created.end(), 1) == 1);
}

TEST_CASE(
    "PostgreSQL: migrating a table that holds rows keeps every row, id, the sequence and "
    "the rollup triggers",
    "[soci][partitions][analytics]") {
    pg_database db("part_convert");
    if (!db) return;
    ssoci::event_store store(db.url());
    {
        // events v1..v3, then the rollups, whose triggers sit on the plain table.
        auto sql = store.open_session();
        const ssoci::migration_set v3{ssoci::event_log_migrations.component,
                                      ssoci::event_log_migrations.steps.first(3)};
        ssoci::migrate(*sql, store.sql_dialect(), std::span(&v3, 1));
        ssoci::migrate_analytics(*sql, store.sql_dialect());
    }
    const std::vector<int> edges{1, 7, 30};
    auto events = random_events(7, 1500, test_now, edges, true);
    REQUIRE(store.write_batch(events).written == events.size());
    auto sql = store.open_session();
    // Gaps in the ids, and a sequence ahead of the largest id left.
    *sql << "DELETE FROM ratelimit_event WHERE id % 7 = 3 OR id > 1490";
    {
        std::vector<event> kept;
        for (std::size_t id = 1; id <= events.size(); ++id)
            if (id % 7 != 3 && id <= 1490) kept.push_back(events[id - 1]);
        events = std::move(kept);
    }
    const auto before = rows_by_id(*sql);
    REQUIRE(before.size() == events.size());
    long long last_value = 0;
    *sql << "SELECT last_value FROM ratelimit_event_id_seq", soci::into(last_value);
    CHECK(last_value == 1500);

    const auto applied = store.migrate();
    REQUIRE(applied.size() == 1);
    CHECK(applied[0].version == 4);
    CHECK(rows_by_id(*sql) == before);
    long long after_value = 0;
    *sql << "SELECT last_value FROM ratelimit_event_id_seq", soci::into(after_value);
    CHECK(after_value == last_value);
    std::vector<std::string> triggers(10);
    *sql << "SELECT tgname FROM pg_trigger WHERE tgrelid = to_regclass('ratelimit_event')"
            " AND NOT tgisinternal ORDER BY tgname",
        soci::into(triggers);
    CHECK(triggers == std::vector<std::string>{"ratelimit_rollup_ad", "ratelimit_rollup_ai",
                                               "ratelimit_rollup_at", "ratelimit_rollup_au1",
                                               "ratelimit_rollup_au2"});
    std::vector<std::string> indexes(10);
    *sql << "SELECT indexname FROM pg_indexes WHERE tablename = 'ratelimit_event'"
            " ORDER BY indexname",
        soci::into(indexes);
    CHECK(indexes == std::vector<std::string>{"ratelimit_event_allowed_timestamp_idx",
                                              "ratelimit_event_degraded_timestamp_idx",
                                              "ratelimit_event_key_timestamp_idx",
                                              "ratelimit_event_pkey",
                                              "ratelimit_event_timestamp_idx"});
    // The writer keeps its connection: new rows get ids past the old sequence, and
    // the triggers on the partitioned table keep the rollups.
    const auto more = random_events(8, 500, test_now, edges, true);
    REQUIRE(store.write_batch(more).written == more.size());
    long long min_new = 0;
    *sql << "SELECT MIN(id) FROM ratelimit_event WHERE id > 1490", soci::into(min_new);
    CHECK(min_new == 1501);
    events.insert(events.end(), more.begin(), more.end());
    for (int days : {1, 7, 30}) {
        CHECK(ssoci::get_traffic_summary(store, days, test_now) ==
              srl::get_traffic_summary(events, days, test_now));
        CHECK(ssoci::get_top_offenders(store, days, 10, test_now) ==
              srl::get_top_offenders(events, days, 10, test_now));
        CHECK(ssoci::get_rule_hit_counts(store, days, 10, test_now) ==
              srl::get_rule_hit_counts(events, days, 10, test_now));
    }
}

TEST_CASE("PostgreSQL: cleanup drops the days wholly before the cutoff and deletes only in its day",
          "[soci][partitions][retention]") {
    pg_database db("part_cleanup");
    if (!db) return;
    ssoci::event_store store(db.url());
    store.migrate();
    // Ten events an hour over ten days before `now`, which is off every day boundary.
    const event_time now = test_now + std::chrono::hours{13} + std::chrono::minutes{37};
    std::vector<event> in;
    for (int h = 0; h < 24 * 10; ++h)
        for (int i = 0; i < 10; ++i)
            in.push_back(
                at(now - std::chrono::hours{h} - microseconds{i}, "k" + std::to_string(i)));
    REQUIRE(store.write_batch(in).written == in.size());
    auto sql = store.open_session();
    const auto cutoff = now - std::chrono::hours{24} * 4;
    const auto boundary = ssoci::detail::utc_day(cutoff);
    std::int64_t older_days = 0, in_old_days = 0, in_boundary = 0;
    for (const auto& name : partitions(*sql))
        if (name < ssoci::detail::partition_name(boundary)) ++older_days;
    for (const event& e : in) {
        if (e.timestamp >= cutoff) continue;
        (ssoci::detail::utc_day(e.timestamp) < boundary ? in_old_days : in_boundary) += 1;
    }
    REQUIRE(older_days == 6);
    REQUIRE(in_boundary > 0);

    const auto r = store.cleanup(4, 7, now);
    CHECK(r.partitions_dropped == older_days);
    CHECK(r.deleted == in_old_days + in_boundary);
    const auto names = partitions(*sql);
    CHECK(std::none_of(names.begin(), names.end(), [&](const std::string& n) {
        return n < ssoci::detail::partition_name(boundary);
    }));
    CHECK(has(names, ssoci::detail::partition_name(boundary)));  // its day: rows deleted only
    CHECK(store.count() == static_cast<std::int64_t>(in.size()) - r.deleted);
    long long oldest_left = 0;
    const std::string cutoff_value = ssoci::time_value(ssoci::dialect::postgresql, cutoff);
    *sql << "SELECT COUNT(*) FROM ratelimit_event WHERE timestamp < CAST(:c AS timestamptz)",
        soci::into(oldest_left), soci::use(cutoff_value);
    CHECK(oldest_left == 0);
    // Again: nothing left to drop or delete.
    const auto again = store.cleanup(4, 7, now);
    CHECK(again.partitions_dropped == 0);
    CHECK(again.deleted == 0);
    CHECK(store.cleanup_old(0, 1000, now + std::chrono::hours{24} * 30) ==
          static_cast<std::int64_t>(in.size()) - r.deleted);
}

TEST_CASE("PostgreSQL: a writer role with INSERT alone keeps its grants and creates its days",
          "[soci][partitions]") {
    pg_database db("part_role");
    if (!db) return;
    ssoci::event_store owner(db.url());
    const std::string role = "srl_writer_" + random_suffix();
    auto sql = owner.open_session();
    *sql << "CREATE ROLE " + role + " LOGIN";
    struct drop_role {
        soci::session& sql;
        std::string role;
        ~drop_role() {
            try {
                sql << "DROP OWNED BY " + role;
                sql << "DROP ROLE " + role;
            } catch (...) {}
        }
    } guard{*sql, role};
    {
        const ssoci::migration_set v3{ssoci::event_log_migrations.component,
                                      ssoci::event_log_migrations.steps.first(3)};
        ssoci::migrate(*sql, owner.sql_dialect(), std::span(&v3, 1));
    }
    *sql << "GRANT SELECT, INSERT ON ratelimit_event TO " + role;
    REQUIRE(owner.migrate().size() == 1);  // events v4: the grants come back on the new table
    std::string url = db.url();
    const auto at_sign = url.find('@');
    url = "postgresql://" + role + url.substr(at_sign);
    ssoci::event_store writer(url);
    const event_time far{std::chrono::sys_days{std::chrono::year{2150} / 3 / 4}.time_since_epoch()};
    const auto r =
        writer.write_batch(std::vector<event>{at(far), at(far + std::chrono::hours{30})});
    INFO(writer.last_error());
    CHECK(r.written == 2);
    CHECK(writer.count() == 2);
    CHECK(has(partitions(*sql), "ratelimit_event_p21500305"));
}

TEST_CASE("PostgreSQL: only the writer roles may create partitions", "[soci][partitions]") {
    pg_database db("part_execute");
    if (!db) return;
    ssoci::event_store owner(db.url());
    auto sql = owner.open_session();
    const std::string writer = "srl_w_" + random_suffix(), reader = "srl_r_" + random_suffix();
    *sql << "CREATE ROLE " + writer + " LOGIN";
    *sql << "CREATE ROLE " + reader + " LOGIN";
    struct drop_roles {
        soci::session& sql;
        std::vector<std::string> roles;
        ~drop_roles() {
            for (const auto& role : roles) try {
                    sql << "DROP OWNED BY " + role;
                    sql << "DROP ROLE " + role;
                } catch (...) {}
        }
    } guard{*sql, {writer, reader}};
    {
        const ssoci::migration_set v3{ssoci::event_log_migrations.component,
                                      ssoci::event_log_migrations.steps.first(3)};
        ssoci::migrate(*sql, owner.sql_dialect(), std::span(&v3, 1));
    }
    *sql << "GRANT SELECT, INSERT ON ratelimit_event TO " + writer;
    *sql << "GRANT SELECT ON ratelimit_event TO " + reader;
    REQUIRE(owner.migrate().size() == 1);
    const auto may_execute = [&](const std::string& role) {
        int yes = 0;
        *sql << "SELECT CAST(has_function_privilege('" + role +
                    "', 'ratelimit_event_partition(date)', 'EXECUTE') AS int)",
            soci::into(yes);
        return yes != 0;
    };
    CHECK(may_execute(writer));
    CHECK_FALSE(may_execute(reader));
    int public_may = 1;
    *sql << "SELECT COUNT(*) FROM pg_proc p, aclexplode(p.proacl) a"
            " WHERE p.proname = 'ratelimit_event_partition' AND a.grantee = 0",
        soci::into(public_may);
    CHECK(public_may == 0);
    // A reader cannot create tables through the function.
    std::string url = db.url();
    url = "postgresql://" + reader + url.substr(url.find('@'));
    auto as_reader = ssoci::open_session(ssoci::parse_database_url(url));
    CHECK_THROWS_WITH(*as_reader << "SELECT ratelimit_event_partition(DATE '2150-01-01')",
                      Catch::Contains("permission denied"));
    CHECK_FALSE(has(partitions(*sql), "ratelimit_event_p21500101"));
}

TEST_CASE("PostgreSQL: cleanup waits a bounded time for a table another session holds",
          "[soci][partitions][retention]") {
    pg_database db("part_lock");
    if (!db) return;
    CHECK_THROWS_AS(
        ssoci::event_store(db.url(), {.cleanup_lock_timeout = std::chrono::milliseconds{0}}),
        srl::config_error);
    ssoci::event_store store(db.url(), {.cleanup_lock_timeout = std::chrono::milliseconds{50}});
    store.migrate();
    const event_time now = test_now;
    std::vector<event> in;
    for (int d = 1; d <= 5; ++d) in.push_back(at(now - std::chrono::hours{24} * d * 10));
    REQUIRE(store.write_batch(in).written == in.size());
    {
        // A cleanup killed after detaching the oldest day left it detached. Finishing
        // it needs no lock on ratelimit_event, so the next cleanup does it even while
        // the table is held.
        detach_as_killed_cleanup(*store.open_session(),
                                 ssoci::detail::utc_day(now - std::chrono::hours{24} * 50));
    }
    const auto before = partitions(*store.open_session());

    // A reader inside an open transaction holds ratelimit_event (ACCESS SHARE).
    auto holder = store.open_session();
    soci::transaction tx(*holder);
    long long n = 0;
    *holder << "SELECT COUNT(*) FROM ratelimit_event", soci::into(n);
    REQUIRE(n == 4);
    CHECK_THROWS_WITH(store.cleanup(15, 1000, now),
                      Catch::Contains("stayed locked by another session") &&
                          Catch::Contains("3 waits of 50 ms") &&
                          Catch::Contains("dropped 1 day partition(s)"));
    CHECK(partitions(*store.open_session()) == before);
    long long detached_left = 0;
    *store.open_session() << "SELECT COUNT(*) FROM pg_class WHERE relname LIKE"
                             " 'ratelimit_event_gone_p%'",
        soci::into(detached_left);
    CHECK(detached_left == 0);
    CHECK(store.count() == 4);
    tx.commit();  // released: the same cleanup now goes through
    const auto r = store.cleanup(15, 1000, now);
    CHECK(r.partitions_dropped == 3);
    CHECK(r.deleted == 3);
    CHECK(store.count() == 1);
}
