// tests/analytics/test_analytics_sql.cpp
// The SQL pushdown of the analytics (soci/analytics.hpp) on SQLite and PostgreSQL:
// the reference's worked examples, then seeded random events compared function by
// function with the in-memory path, raw and through the trigger-kept rollups,
// after inserts, deletes (cleanup_old) and updates, for several windows and as-of ends.
#include <catch2/catch.hpp>

#include "support/analytics_support.hpp"
#include "support/killed_cleanup.hpp"
#include "support/temp_dir.hpp"
#include "support/test_env.hpp"

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <functional>
#include <memory>
#include <random>
#include <span>

#include <smart_ratelimit/analytics/format.hpp>
#include <smart_ratelimit/soci/analytics.hpp>
#include <smart_ratelimit/soci/detail/partitions.hpp>

using namespace srl_test;
namespace sq = smart_ratelimit::soci;
namespace fs = std::filesystem;

namespace {

std::string unique_suffix() {
    static std::mt19937_64 rng{std::random_device{}()};
    return std::to_string(::getpid()) + "_" + std::to_string(rng() % 1'000'000'000ULL);
}

/// A fresh database on the shared PostgreSQL test server, dropped on destruction.
struct pg_database {
    std::string base, name, url;
    pg_database() {
        const auto b = postgres_url();
        if (!b) return;
        base = *b;
        name = "srl_analytics_" + unique_suffix();
        auto admin = sq::open_session(sq::parse_database_url(base));
        *admin << "CREATE DATABASE " + name;
        url = base.substr(0, base.rfind('/') + 1) + name;
    }
    ~pg_database() {
        if (url.empty()) return;
        try {
            auto admin = sq::open_session(sq::parse_database_url(base));
            *admin << "DROP DATABASE IF EXISTS " + name + " WITH (FORCE)";
        } catch (...) {}
    }
};

/// Runs `f(url)` on a SQLite file and, when configured, on PostgreSQL.
void on_each_backend(const std::function<void(const std::string&)>& f) {
    temp_dir dir;
    SECTION("SQLite") { f(dir.sqlite_url("events.db")); }
    SECTION("PostgreSQL") {
        pg_database pg;
        if (pg.url.empty()) {
            WARN("SMART_RATELIMIT_TEST_PG_URL not set: PostgreSQL part skipped");
            return;
        }
        f(pg.url);
    }
}

void write_all(sq::event_store& store, const std::vector<srl::event>& events) {
    for (std::size_t i = 0; i < events.size(); i += 1000) {
        const auto n = std::min<std::size_t>(1000, events.size() - i);
        const auto r = store.write_batch(std::span<const srl::event>(events.data() + i, n));
        INFO(store.last_error());
        REQUIRE(r.written == n);
    }
}

/// Every function, several windows and as-of ends: SQL == memory.
void check_same(sq::event_store& store, const std::vector<srl::event>& events, bool rollups) {
    auto sql = store.open_session();
    const std::vector<std::string> detail_keys{"user:a",
                                               "rule:login:ip:198.51.100.7",
                                               "header:X-Key:a,b",
                                               "<script>alert(1)</script>",
                                               "user:\xF0\x9F\x98\x80",
                                               "ip:nobody"};
    for (int days : {-1, 0, 1, 7, 30, 90}) {
        // Midnight (window edges on day boundaries) and an instant off every boundary.
        for (const auto now : {test_now, test_now + 5h + 17min + 3us}) {
            INFO("days " << days << (rollups ? " with rollups" : " raw") << " now "
                         << srl::format_rfc3339(now, 6));
            sq::sql_analytics a{*sql, store.sql_dialect(), rollups};
            CHECK(a.traffic_summary_at(days, now) == srl::get_traffic_summary(events, days, now));
            for (int limit : {0, 1, 5, 1000})
                CHECK(a.top_offenders_at(days, limit, now) ==
                      srl::get_top_offenders(events, days, limit, now));
            // Shallow lists: several rounds, look-ups of unread spans, the grouped fallback.
            for (std::size_t depth : {1, 3}) {
                sq::sql_analytics shallow{*sql, store.sql_dialect(), rollups};
                shallow.list_depth = depth;
                for (int limit : {1, 4})
                    CHECK(shallow.top_offenders_at(days, limit, now) ==
                          srl::get_top_offenders(events, days, limit, now));
            }
            for (int limit : {2, 50})
                CHECK(a.rule_hit_counts_at(days, limit, now) ==
                      srl::get_rule_hit_counts(events, days, limit, now));
            for (const auto& key : detail_keys)
                for (int recent : {0, 7, 500}) {
                    INFO("detail of " << key << " recent " << recent);
                    CHECK(a.offender_detail_at(key, days, recent, now) ==
                          srl::get_offender_detail(events, key, days, recent, now));
                }
        }
        // As of a past instant: the window is [as_of - days, as_of].
        for (const auto as_of :
             {test_now - 2h, test_now - 2h - 1us, test_now - 24h * 3 + 17min + 3us,
              test_now - 25min, test_now, test_now + 24h * 2 + 1h + 5us}) {
            INFO("as of " << srl::format_rfc3339(as_of, 6));
            const auto before = up_to(events, as_of);
            sq::sql_analytics b{*sql, store.sql_dialect(), rollups, as_of};
            CHECK(b.traffic_summary_at(days, as_of) ==
                  srl::get_traffic_summary(before, days, as_of));
            CHECK(b.top_offenders_at(days, 7, as_of) ==
                  srl::get_top_offenders(before, days, 7, as_of));
            CHECK(b.rule_hit_counts_at(days, 50, as_of) ==
                  srl::get_rule_hit_counts(before, days, 50, as_of));
            CHECK(b.offender_detail_at("user:a", days, 9, as_of) ==
                  srl::get_offender_detail(before, "user:a", days, 9, as_of));
        }
    }
    // The store overloads with the in-memory functions' names (they pick the rollups up by themselves).
    CHECK(sq::get_traffic_summary(store, 7, test_now) ==
          srl::get_traffic_summary(events, 7, test_now));
    CHECK(sq::get_top_offenders(store, 7, 100, test_now) ==
          srl::get_top_offenders(events, 7, 100, test_now));
    CHECK(sq::get_rule_hit_counts(store, 7, 50, test_now) ==
          srl::get_rule_hit_counts(events, 7, 50, test_now));
    CHECK(sq::offenders_csv(store, 7, 1000, test_now) ==
          srl::offenders_csv(events, 7, 1000, test_now));
    CHECK(sq::get_offender_detail(store, "user:b", 7, 50, test_now) ==
          srl::get_offender_detail(events, "user:b", 7, 50, test_now));
    for (std::int64_t threshold : {1, 3, 40})
        CHECK(sq::find_alertable_offenders(store, threshold, 1, 4, test_now) ==
              srl::find_alertable_offenders(events, threshold, 1, 4, test_now));
}

}  // namespace

TEST_CASE("SQL: two allowed and three blocked events give total 5 and block rate 0.6",
          "[analytics][soci]") {
    on_each_backend([](const std::string& url) {
        sq::event_store store(url);
        store.migrate();
        std::vector<srl::event> events;
        for (int i = 0; i < 2; ++i) events.push_back(ev(test_now - 1h, "ip:1", true));
        for (int i = 0; i < 3; ++i) events.push_back(ev(test_now - 2h, "ip:1", false));
        events.push_back(ev(test_now - 24h * 40, "ip:old", false));
        events.push_back(ev(test_now - 24h * 7, "ip:edge", false));
        write_all(store, events);
        for (bool rollups : {false, true}) {
            if (rollups) CHECK(sq::migrate_analytics(store));
            CHECK(sq::get_traffic_summary(store, 1, test_now) ==
                  srl::traffic_summary{1, 5, 2, 3, 0.6});
            // 40 days old: outside 7 days; exactly on the cutoff: inside.
            CHECK(sq::get_top_offenders(store, 7, 100, test_now) ==
                  std::vector<srl::offender>{{"ip:1", 3}, {"ip:edge", 1}});
            CHECK(sq::get_top_offenders(store, 7, 100, test_now + 1us) ==
                  std::vector<srl::offender>{{"ip:1", 3}});
            CHECK(sq::get_traffic_summary(store, 41, test_now).total == 7);
        }
        CHECK_FALSE(sq::migrate_analytics(store));  // idempotent
    });
}

TEST_CASE("SQL: random events give the in-memory results, raw and through rollups",
          "[analytics][soci][property]") {
    on_each_backend([](const std::string& url) {
        sq::event_store store(url);
        store.migrate();
        const std::vector<int> edges{1, 7, 30, 90};
        auto events = random_events(42, 3000, test_now, edges);
        write_all(store, events);
        check_same(store, events, false);
        // Rollups filled from existing rows by the migration (an ordinary migration set)...
        const auto applied = store.migrate(std::span(&sq::analytics_migrations, 1));
        REQUIRE(applied.size() == static_cast<std::size_t>(sq::analytics_schema_version));
        CHECK(applied.back().component == "analytics");
        CHECK(applied.back().version == sq::analytics_schema_version);
        CHECK(sq::schema_version(*store.open_session(), "analytics") ==
              sq::analytics_schema_version);
        check_same(store, events, true);
        // ...then kept by the insert triggers...
        const auto more = random_events(43, 2000, test_now, edges);
        write_all(store, more);
        events.insert(events.end(), more.begin(), more.end());
        check_same(store, events, true);
        // ...the delete triggers (retention)...
        const auto deleted = store.cleanup_old(20, 333, test_now);
        const auto cutoff = test_now - 24h * 20;
        const auto kept =
            std::erase_if(events, [&](const srl::event& e) { return e.timestamp < cutoff; });
        CHECK(deleted == static_cast<std::int64_t>(kept));
        check_same(store, events, true);
        // ...and the update triggers.
        auto sql = store.open_session();
        *sql << "UPDATE ratelimit_event SET allowed = " +
                    std::string(store.sql_dialect() == sq::dialect::sqlite ? "1" : "true") +
                    " WHERE key = 'user:a'";
        // A row whose outcome no longer agrees with allowed reads as outcome_of_allowed.
        for (auto& e : events)
            if (e.key == "user:a" && !e.allowed) {
                e.allowed = true;
                e.outcome = srl::outcome_kind::allowed;
            }
        check_same(store, events, true);
    });
}

namespace {

/// The rollups row by row as text, keys by name (their ids depend on the history).
std::vector<std::string> rollups_by_key(soci::session& sql) {
    std::vector<std::string> out;
    const char* queries[] = {
        "SELECT hour || ',' || total || ',' || blocked FROM ratelimit_rollup_hour ORDER BY hour",
        "SELECT hour || ',' || rule_name || ',' || hits || ',' || blocked"
        " FROM ratelimit_rollup_rule_hour ORDER BY hour, rule_name",
        "SELECT s.level || ',' || s.bucket || ',' || k.key || ',' || s.blocked"
        " FROM ratelimit_rollup_key_span s JOIN ratelimit_rollup_key k ON k.id = s.key_id"
        " ORDER BY s.level, s.bucket, k.key",
    };
    for (const char* q : queries) {
        soci::rowset<std::string> rows = (sql.prepare << q);
        for (const auto& r : rows) out.push_back(r);
        out.emplace_back("--");
    }
    return out;
}

}  // namespace

TEST_CASE("SQL: a cleanup that drops whole days leaves the rollups of the rows left",
          "[analytics][soci][retention]") {
    on_each_backend([](const std::string& url) {
        sq::event_store store(url);
        store.migrate(std::span(&sq::analytics_migrations, 1));
        const std::vector<int> edges{1, 7, 20, 30};
        auto events = random_events(47, 4000, test_now, edges);
        // One day without events has no partition on PostgreSQL: the days dropped
        // around it are two runs, each with its own ends.
        const auto gap_day = sq::detail::utc_day(test_now - 24h * 23);
        std::erase_if(events, [&](const srl::event& e) {
            return sq::detail::utc_day(e.timestamp) == gap_day;
        });
        write_all(store, events);
        // Cutoffs off every day and span boundary: on PostgreSQL the days before them go
        // as whole partitions and spans of 16, 64 and 256 hours straddle the ends; the
        // second cleanup starts where the first left spans half corrected.
        for (const auto& [days, now] :
             {std::pair{25, test_now + 5h + 17min + 3us}, std::pair{20, test_now + 9h + 41min}}) {
            const auto cutoff = now - 24h * days;
            if (store.sql_dialect() == sq::dialect::postgresql && days == 20) {
                // A cleanup killed between detaching a day and finishing it left it
                // detached, rollups uncorrected: this cleanup finishes it first.
                detach_as_killed_cleanup(*store.open_session(), sq::detail::utc_day(cutoff) - 1);
            }
            const auto r = store.cleanup(days, 333, now);
            const auto removed =
                std::erase_if(events, [&](const srl::event& e) { return e.timestamp < cutoff; });
            CHECK(r.deleted == static_cast<std::int64_t>(removed));
            if (store.sql_dialect() == sq::dialect::postgresql)
                CHECK(r.partitions_dropped >= 4);
            else
                CHECK(r.partitions_dropped == 0);
            check_same(store, events, true);
            // Row by row, the rollups are those of a database that only ever held the
            // rows left.
            temp_dir dir;
            std::unique_ptr<pg_database> pg;
            std::string fresh_url = dir.sqlite_url("fresh.db");
            if (store.sql_dialect() == sq::dialect::postgresql) {
                pg = std::make_unique<pg_database>();
                fresh_url = pg->url;
            }
            sq::event_store fresh(fresh_url);
            fresh.migrate(std::span(&sq::analytics_migrations, 1));
            write_all(fresh, events);
            CHECK(rollups_by_key(*store.open_session()) == rollups_by_key(*fresh.open_session()));
        }
    });
}

TEST_CASE("SQL: events of every outcome give the in-memory results, degraded never blocked",
          "[analytics][soci][property][outcome]") {
    on_each_backend([](const std::string& url) {
        sq::event_store store(url);
        store.migrate();
        const std::vector<int> edges{1, 7, 30, 90};
        auto events = random_events(44, 3000, test_now, edges, true);
        REQUIRE(std::count_if(events.begin(), events.end(),
                              [](const srl::event& e) { return e.degraded(); }) > 300);
        write_all(store, events);
        check_same(store, events, false);
        sq::migrate_analytics(store);
        check_same(store, events, true);
        const auto more = random_events(45, 2000, test_now, edges, true);
        write_all(store, more);
        events.insert(events.end(), more.begin(), more.end());
        check_same(store, events, true);
        const auto deleted = store.cleanup_old(20, 333, test_now);
        CHECK(deleted == static_cast<std::int64_t>(std::erase_if(events, [&](const srl::event& e) {
                  return e.timestamp < test_now - 24h * 20;
              })));
        check_same(store, events, true);
        // Degraded rows count in total and degraded, never in blocked.
        const auto s = sq::get_traffic_summary(store, 30, test_now);
        CHECK(s.degraded > 0);
        CHECK(s.allowed + s.blocked + s.degraded == s.total);
        std::int64_t not_allowed = 0;
        for (const auto& e : events)
            not_allowed += e.timestamp >= test_now - 24h * 30 && !e.allowed;
        CHECK(s.blocked == not_allowed);
    });
}

TEST_CASE("SQL: a database migrated from events v2 keeps its results, then counts degraded rows",
          "[analytics][soci][outcome]") {
    on_each_backend([](const std::string& url) {
        sq::event_store store(url);
        {
            auto sql = store.open_session();
            const sq::migration_set v2{sq::event_log_migrations.component,
                                       sq::event_log_migrations.steps.first(2)};
            sq::migrate(*sql, store.sql_dialect(), std::span(&v2, 1));
            sq::migrate_analytics(*sql, store.sql_dialect());
        }
        const std::vector<int> edges{1, 7, 30, 90};
        auto events = random_events(42, 2000, test_now, edges);  // old rows: outcome NULL
        write_all(store, events);
        check_same(store, events, true);
        check_same(store, events, false);
        const auto summary_before = sq::get_traffic_summary(store, 7, test_now);
        const auto detail_before = sq::get_offender_detail(store, "user:a", 30, 20, test_now);
        REQUIRE(store.migrate().size() == 2);  // events v3 and v4
        {
            auto sql = store.open_session();
            long long nulls = 0;
            *sql << "SELECT COUNT(*) FROM ratelimit_event WHERE outcome IS NULL", soci::into(nulls);
            CHECK(nulls == static_cast<long long>(events.size()));
        }
        CHECK(sq::get_traffic_summary(store, 7, test_now) == summary_before);
        CHECK(sq::get_offender_detail(store, "user:a", 30, 20, test_now) == detail_before);
        check_same(store, events, true);
        const auto more = random_events(46, 1500, test_now, edges, true);
        write_all(store, more);
        events.insert(events.end(), more.begin(), more.end());
        check_same(store, events, true);
        check_same(store, events, false);
    });
}

TEST_CASE("SQL: bad arguments and missing tables are clear errors", "[analytics][soci]") {
    on_each_backend([](const std::string& url) {
        sq::event_store store(url);
        // No schema yet: the queries fail with a storage_error naming the table.
        CHECK_THROWS_AS(sq::get_traffic_summary(store, 1, test_now), srl::storage_error);
        CHECK_THROWS_WITH(sq::get_top_offenders(store, 7, 10, test_now),
                          Catch::Contains("ratelimit_event"));
        CHECK_THROWS_AS(sq::migrate_analytics(store), srl::storage_error);
        CHECK_THROWS_WITH(sq::get_offender_detail(store, "k", 7, 5, test_now),
                          Catch::Contains("ratelimit_event"));
        store.migrate();
        CHECK_THROWS_AS(sq::get_top_offenders(store, 7, -1, test_now), std::invalid_argument);
        CHECK_THROWS_AS(sq::get_rule_hit_counts(store, 7, -1, test_now), std::invalid_argument);
        CHECK_THROWS_WITH(sq::get_offender_detail(store, "k", 7, -1, test_now),
                          Catch::Contains("recent"));
        // Extreme windows behave as in memory.
        write_all(store, {ev(test_now, "k", false)});
        for (bool rollups : {false, true}) {
            if (rollups) sq::migrate_analytics(store);
            CHECK(sq::get_traffic_summary(store, std::numeric_limits<int>::max(), test_now).total ==
                  1);
            CHECK(sq::get_traffic_summary(store, std::numeric_limits<int>::min(), test_now).total ==
                  0);
            CHECK(sq::get_traffic_summary(store, 0, test_now).total == 1);
            CHECK(sq::get_traffic_summary(store, 0, test_now + 1us).total == 0);
        }
    });
}

TEST_CASE("SQL: a drill-down leaves the session's settings and transaction as they were",
          "[analytics][soci]") {
    pg_database db;
    if (db.url.empty()) return;
    sq::event_store store(db.url);
    store.migrate();
    const std::vector<srl::event> events{ev(test_now - 1h, "k", false), ev(test_now, "k", true)};
    write_all(store, events);
    auto sql = store.open_session();
    const auto workers = [&] {
        std::string v;
        *sql << "SHOW max_parallel_workers_per_gather", soci::into(v);
        return v;
    };
    const std::string before = workers();
    REQUIRE(before != "0");
    sq::sql_analytics a{*sql, store.sql_dialect()};
    // Run in a snapshot of its own, planned without parallel workers...
    CHECK(a.offender_detail_at("k", 7, 5, test_now) ==
          srl::get_offender_detail(events, "k", 7, 5, test_now));
    CHECK(workers() == before);
    // ...or in the caller's transaction, which it neither ends nor changes.
    soci::transaction tx(*sql);
    *sql << "SET LOCAL max_parallel_workers_per_gather = 1";
    CHECK(a.offender_detail_at("k", 7, 5, test_now) ==
          srl::get_offender_detail(events, "k", 7, 5, test_now));
    CHECK(workers() == "1");
    tx.rollback();
    CHECK(workers() == before);
}

TEST_CASE("SQL: an unreachable database is a storage_error", "[analytics][soci]") {
    sq::event_store store("sqlite:////nonexistent-dir-srl/x/events.db");
    CHECK_THROWS_AS(sq::get_traffic_summary(store, 1, test_now), srl::storage_error);
    sq::event_store pg("postgresql://srl@127.0.0.1:1/none?connect_timeout=2");
    CHECK_THROWS_AS(sq::get_top_offenders(pg, 7, 10, test_now), srl::storage_error);
}

namespace {

/// Blocked events from `keys` keys with a skewed (quadratic) distribution over
/// `span` before `now`, plus some allowed ones: enough keys per span that the
/// top-N lists stop early, on ties and on every span size.
std::vector<srl::event> skewed_events(std::uint64_t seed, std::size_t n, std::size_t keys,
                                      srl::event_time now, std::chrono::hours span) {
    std::mt19937_64 rng(seed);
    std::vector<srl::event> out;
    out.reserve(n);
    const auto span_us = static_cast<std::uint64_t>(std::chrono::microseconds(span).count());
    for (std::size_t i = 0; i < n; ++i) {
        const double u = static_cast<double>(rng() % 1'000'000) / 1'000'000.0;
        const auto k = static_cast<std::size_t>(u * u * static_cast<double>(keys));
        const auto ts = now -
                        std::chrono::microseconds{static_cast<std::int64_t>(rng() % span_us)} +
                        std::chrono::hours{3};
        out.push_back(ev(ts, "ip:" + std::to_string(k), rng() % 10 < 2));
    }
    return out;
}

}  // namespace

TEST_CASE("SQL: top offenders through the key spans stop early and stay exact",
          "[analytics][soci][property]") {
    on_each_backend([](const std::string& url) {
        sq::event_store store(url);
        store.migrate();
        store.migrate(std::span(&sq::analytics_migrations, 1));
        auto events = skewed_events(7, 6000, 300, test_now, std::chrono::hours{24 * 50});
        write_all(store, events);
        auto check = [&](const std::vector<srl::event>& evs) {
            auto sql = store.open_session();
            // Windows ending anywhere inside spans of every level (as of an instant off
            // every boundary, and open), starting on and off hour boundaries.
            for (const auto as_of :
                 {test_now, test_now - 37h - 11min - 5us, test_now - 24h * 11 + 1us}) {
                const auto before = up_to(evs, as_of);
                for (int days : {1, 3, 11, 45, 60}) {
                    for (std::size_t depth : {0, 1, 2, 5}) {
                        INFO("as of " << srl::format_rfc3339(as_of, 6) << " days " << days
                                      << " depth " << depth);
                        sq::sql_analytics a{*sql, store.sql_dialect(), true, as_of};
                        a.list_depth = depth;
                        for (int limit : {1, 3, 10, 25, 400})
                            CHECK(a.top_offenders_at(days, limit, as_of) ==
                                  srl::get_top_offenders(before, days, limit, as_of));
                        sq::sql_analytics open{*sql, store.sql_dialect(), true};
                        open.list_depth = depth;
                        CHECK(open.top_offenders_at(days, 10, as_of + 17min) ==
                              srl::get_top_offenders(evs, days, 10, as_of + 17min));
                    }
                }
            }
        };
        check(events);
        // Deletes after the spans exist (retention), then an update of one key's rows.
        const auto deleted = store.cleanup_old(20, 500, test_now);
        const auto cutoff = test_now - 24h * 20;
        CHECK(deleted == static_cast<std::int64_t>(std::erase_if(
                             events, [&](const srl::event& e) { return e.timestamp < cutoff; })));
        check(events);
        auto sql = store.open_session();
        *sql << "UPDATE ratelimit_event SET key = 'ip:1' WHERE key = 'ip:0'";
        for (auto& e : events)
            if (e.key == "ip:0") e.key = "ip:1";
        check(events);
        // Inside a caller's transaction the query runs in it (no nested BEGIN).
        {
            ::soci::transaction tx(*sql);
            sq::sql_analytics a{*sql, store.sql_dialect(), true};
            CHECK(a.top_offenders_at(30, 5, test_now) ==
                  srl::get_top_offenders(events, 30, 5, test_now));
            tx.commit();
        }
    });
}

TEST_CASE("SQL: top offenders with flat counts fall back to grouping every span",
          "[analytics][soci]") {
    on_each_backend([](const std::string& url) {
        sq::event_store store(url);
        store.migrate();
        store.migrate(std::span(&sq::analytics_migrations, 1));
        // 300 keys, one blocked event each per day: every list ties, no round separates them.
        std::vector<srl::event> events;
        for (int d = 0; d < 12; ++d)
            for (int k = 0; k < 300; ++k)
                events.push_back(ev(test_now - 24h * d - std::chrono::minutes{k * 4 + d},
                                    "k" + std::to_string(k), false));
        write_all(store, events);
        auto sql = store.open_session();
        for (std::size_t depth : {0, 1}) {
            sq::sql_analytics a{*sql, store.sql_dialect(), true};
            a.list_depth = depth;
            for (int days : {1, 5, 10})
                for (int limit : {1, 7, 299, 300, 301})
                    CHECK(a.top_offenders_at(days, limit, test_now - 5h) ==
                          srl::get_top_offenders(events, days, limit, test_now - 5h));
        }
    });
}

TEST_CASE("SQL: a database at rollup version 1 upgrades with its rows", "[analytics][soci]") {
    on_each_backend([](const std::string& url) {
        sq::event_store store(url);
        store.migrate();
        auto events = skewed_events(11, 1500, 40, test_now, std::chrono::hours{24 * 40});
        write_all(store, std::vector<srl::event>(events.begin(), events.begin() + 700));
        const sq::migration_set v1{sq::analytics_component, std::span(sq::analytics_steps, 1)};
        REQUIRE(store.migrate(std::span(&v1, 1)).size() == 1);
        write_all(store,
                  std::vector<srl::event>(events.begin() + 700, events.end()));  // v1 triggers
        const auto applied = store.migrate(std::span(&sq::analytics_migrations, 1));
        REQUIRE(applied.size() == static_cast<std::size_t>(sq::analytics_schema_version - 1));
        CHECK(applied[0].version == 2);
        auto sql = store.open_session();
        sq::sql_analytics a{*sql, store.sql_dialect()};
        CHECK(a.rollups());
        for (int days : {1, 7, 30, 41}) {
            CHECK(a.top_offenders_at(days, 15, test_now) ==
                  srl::get_top_offenders(events, days, 15, test_now));
            CHECK(a.traffic_summary_at(days, test_now) ==
                  srl::get_traffic_summary(events, days, test_now));
            CHECK(a.rule_hit_counts_at(days, 5, test_now) ==
                  srl::get_rule_hit_counts(events, days, 5, test_now));
        }
        // The version-2 triggers keep it afterwards.
        const auto more = skewed_events(12, 500, 40, test_now, std::chrono::hours{24 * 10});
        write_all(store, more);
        events.insert(events.end(), more.begin(), more.end());
        CHECK(a.top_offenders_at(30, 15, test_now) ==
              srl::get_top_offenders(events, 30, 15, test_now));
    });
}

TEST_CASE("SQL: aligned spans cover whole hours exactly", "[analytics]") {
    namespace ad = sq::detail::analytics;
    std::mt19937_64 rng(5);
    for (int i = 0; i < 2000; ++i) {
        const auto from =
            static_cast<std::int64_t>(rng() % 2'000'000) - 1'000'000;  // before and after 1970
        const auto to = from + static_cast<std::int64_t>(rng() % (i % 2 == 0 ? 100 : 20'000));
        const auto spans = ad::split_spans(from, to);
        std::int64_t at = from;
        std::vector<int> per_level(ad::key_span_levels, 0);
        for (const auto& s : spans) {
            const std::int64_t size = std::int64_t{1} << (2 * s.level);
            REQUIRE(s.bucket * size == at);  // contiguous, aligned
            at += size;
            ++per_level[static_cast<std::size_t>(s.level)];
        }
        CHECK(at == std::max(from, to));
        for (int l = 0; l + 1 < ad::key_span_levels; ++l)
            CHECK(per_level[static_cast<std::size_t>(l)] <= 6);
    }
    CHECK(ad::split_spans(5, 5).empty());
    CHECK(ad::split_spans(-16, 0) == std::vector<ad::key_span>{{2, -1}});
}

TEST_CASE("SQL: top offenders over more than 64 spans (a two-year window)", "[analytics][soci]") {
    on_each_backend([](const std::string& url) {
        sq::event_store store(url);
        store.migrate();
        store.migrate(std::span(&sq::analytics_migrations, 1));
        const auto events = skewed_events(21, 3000, 60, test_now, std::chrono::hours{24 * 800});
        write_all(store, events);
        auto sql = store.open_session();
        REQUIRE(sq::detail::analytics::split_spans(0, 24 * 800).size() > 64);
        for (std::size_t depth : {0, 1, 2}) {
            sq::sql_analytics a{*sql, store.sql_dialect(), true};
            a.list_depth = depth;
            for (int days : {700, 810})
                for (int limit : {1, 6, 100})
                    CHECK(a.top_offenders_at(days, limit, test_now - 7min) ==
                          srl::get_top_offenders(events, days, limit, test_now - 7min));
        }
    });
}
