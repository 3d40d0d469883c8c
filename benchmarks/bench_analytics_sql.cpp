// benchmarks/bench_analytics_sql.cpp
// The SQL analytics over a generated 30-day ratelimit_event table (default 10M
// rows, generated inside the database) on SQLite and PostgreSQL: each function and
// the dashboard's set through the rollups, next to the same queries on the raw
// table (the reference's full-table aggregates), plus the ingest cost of the rollups.
//
// Flags (before the Google Benchmark ones): --rows=N, --sqlite=FILE (default
// /tmp/srl-bench-analytics.db), --pg=URL (default SMART_RATELIMIT_TEST_PG_URL; the
// benchmark creates and drops its own database there), --reuse (keep a SQLite file
// that already has N rows), --pg-db=NAME (use and keep that PostgreSQL database,
// reusing its rows when it has N, instead of a fresh one dropped at exit),
// --no-sqlite (PostgreSQL only), --retention (after the benchmarks, on a PostgreSQL
// log partitioned by day: the batch delete of one day against dropping the other
// days' partitions; it removes the rows, so a kept database is generated again).
#include <benchmark/benchmark.h>

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <smart_ratelimit/soci/analytics.hpp>
#include <smart_ratelimit/soci/detail/partitions.hpp>

namespace srl = smart_ratelimit;
namespace sq = smart_ratelimit::soci;

namespace {

const srl::event_time bench_now{
    std::chrono::sys_days{std::chrono::year{2026} / 5 / 8}.time_since_epoch() +
    std::chrono::hours{13} + std::chrono::minutes{27}};
constexpr std::int64_t span_us = std::int64_t{30} * 86'400'000'000;

long long rows = 10'000'000;
std::string sqlite_path = "/tmp/srl-bench-analytics.db";
std::string pg_base;
std::string pg_url, pg_name;
bool reuse = false;
std::string pg_keep;  // --pg-db: a database kept between runs
bool with_sqlite = true;
bool retention = false;  // --retention: measure drop vs delete after the benchmarks

struct backend {
    std::string name;
    std::unique_ptr<sq::event_store> store;
    std::unique_ptr<::soci::session> session;
    std::string heavy_key;   // the top offender, for the drill-down
    std::string median_key;  // the median offender (by blocked events), for the drill-down
};
std::vector<backend> backends;

double seconds_since(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// Rows: timestamps evenly spaced (span / rows apart, integer arithmetic) over the
// 30 days before bench_now; 20% blocked, the
// blocked ones from 5000 offender keys with a skewed (quadratic) distribution, the
// allowed ones from 200k keys; one event in two under one of three rules.
void generate(backend& b) {
    auto& sql = *b.session;
    const long long now_us = bench_now.time_since_epoch().count();
    const long long span = span_us;
    const auto t0 = std::chrono::steady_clock::now();
    // Bulk load: drop the three indexes, insert, rebuild them by sorting (much faster
    // than maintaining them row by row); the definitions are the event log schema's.
    for (const char* index : {"ratelimit_event_timestamp_idx", "ratelimit_event_key_timestamp_idx",
                              "ratelimit_event_allowed_timestamp_idx"})
        sql << std::string("DROP INDEX IF EXISTS ") + index;
    if (b.store->sql_dialect() == sq::dialect::sqlite) {
        sql << "PRAGMA synchronous=OFF";
        sql << "PRAGMA cache_size=-1000000";
        sql << "INSERT INTO ratelimit_event (timestamp, key, rule_name, path, method, allowed, "
               "count, \"limit\")"
               " WITH RECURSIVE c(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM c WHERE i < :n - 1)"
               " SELECT :now - i * (:span / :n),"
               "  CASE WHEN r <> '' THEN 'rule:' || r || ':' ELSE '' END ||"
               "  CASE WHEN b THEN 'ip:198.51.' || ((((i * 2654435761) % 1000003) * ((i * "
               "2654435761) % 1000003))"
               "   / 1000003 / 200) ELSE 'ip:10.' || ((i * 40503) % 200000) END,"
               "  r, '/api/p' || (i % 40), CASE WHEN i % 3 = 0 THEN 'POST' ELSE 'GET' END,"
               "  CASE WHEN b THEN 0 ELSE 1 END, 1 + i % 120, 100"
               " FROM (SELECT i, ((i * 7919) % 10) < 2 AS b,"
               "  CASE i % 6 WHEN 0 THEN 'login' WHEN 1 THEN 'api' WHEN 2 THEN 'search' ELSE '' "
               "END AS r FROM c)",
            ::soci::use(rows, "n"), ::soci::use(now_us, "now"), ::soci::use(span, "span");
        sql << "PRAGMA synchronous=NORMAL";
    } else {
        sql << "SET maintenance_work_mem = '512MB'";
        // A log partitioned by day (events v4) holds only the days with a partition.
        if (sq::detail::is_partitioned_event_log(sql))
            for (auto day = sq::detail::utc_day(bench_now - std::chrono::hours{24 * 31});
                 day <= sq::detail::utc_day(bench_now); ++day)
                sql << "SELECT ratelimit_event_partition(DATE '" + sq::detail::day_text(day) + "')";
        sql << "INSERT INTO ratelimit_event (timestamp, key, rule_name, path, method, allowed, "
               "count, \"limit\")"
               " SELECT timestamptz 'epoch' + (CAST(:now AS BIGINT) - i * (CAST(:span AS BIGINT) / "
               "CAST(:n AS BIGINT)))"
               "   * interval '1 microsecond',"
               "  CASE WHEN r <> '' THEN 'rule:' || r || ':' ELSE '' END ||"
               "  CASE WHEN b THEN 'ip:198.51.' || ((((i * 2654435761) % 1000003) * ((i * "
               "2654435761) % 1000003))"
               "   / 1000003 / 200) ELSE 'ip:10.' || ((i * 40503) % 200000) END,"
               "  r, '/api/p' || (i % 40), CASE WHEN i % 3 = 0 THEN 'POST' ELSE 'GET' END,"
               "  NOT b, 1 + i % 120, 100"
               " FROM (SELECT i, ((i * 7919) % 10) < 2 AS b,"
               "  CASE i % 6 WHEN 0 THEN 'login' WHEN 1 THEN 'api' WHEN 2 THEN 'search' ELSE '' "
               "END AS r"
               "  FROM generate_series(CAST(0 AS BIGINT), CAST(:n AS BIGINT) - 1) AS i) g",
            ::soci::use(now_us, "now"), ::soci::use(span, "span"), ::soci::use(rows, "n");
    }
    sql << "CREATE INDEX IF NOT EXISTS ratelimit_event_timestamp_idx ON ratelimit_event "
           "(timestamp)";
    sql << std::string(
               "CREATE INDEX IF NOT EXISTS ratelimit_event_key_timestamp_idx ON "
               "ratelimit_event (key, timestamp)") +
               (sq::detail::is_partitioned_event_log(sql) ? " INCLUDE (allowed, outcome, path)"
                                                          : "");
    sql << "CREATE INDEX IF NOT EXISTS ratelimit_event_allowed_timestamp_idx ON ratelimit_event "
           "(allowed, timestamp)";
    std::fprintf(stderr, "%s: generated %lld rows in %.1f s\n", b.name.c_str(), rows,
                 seconds_since(t0));
}

void prepare(backend& b) {
    long long have = 0;
    b.store->migrate();
    *b.session << "SELECT COUNT(*) FROM ratelimit_event", ::soci::into(have);
    if (have != rows) {
        if (have != 0) *b.session << "DELETE FROM ratelimit_event";
        generate(b);
    }
    if (b.store->sql_dialect() == sq::dialect::sqlite) *b.session << "PRAGMA cache_size=-500000";
    const auto t0 = std::chrono::steady_clock::now();
    if (sq::migrate_analytics(*b.session, b.store->sql_dialect()))
        std::fprintf(stderr, "%s: rollups built from existing rows in %.1f s\n", b.name.c_str(),
                     seconds_since(t0));
    if (b.store->sql_dialect() == sq::dialect::postgresql)
        *b.session << "VACUUM ANALYZE";
    else
        *b.session << "ANALYZE";
    // Measure with SQLite's default page cache, as a deployment would run.
    if (b.store->sql_dialect() == sq::dialect::sqlite) *b.session << "PRAGMA cache_size=-2000";
    sq::sql_analytics a{*b.session, b.store->sql_dialect(), true};
    const auto top = a.top_offenders_at(30, 1, bench_now);
    b.heavy_key = top.empty() ? "ip:none" : top.front().key;
    const auto all = a.top_offenders_at(30, 1'000'000, bench_now);
    b.median_key = all.empty() ? "ip:none" : all[all.size() / 2].key;
}

sq::sql_analytics analytics(backend& b, bool rollups) {
    return {*b.session, b.store->sql_dialect(), rollups};
}

// What the dashboard page runs: today, the window, top 20 offenders, top 20 rules.
void dashboard(backend& b, bool rollups, int days) {
    const auto a = analytics(b, rollups);
    benchmark::DoNotOptimize(a.traffic_summary_at(1, bench_now));
    benchmark::DoNotOptimize(a.traffic_summary_at(days, bench_now));
    benchmark::DoNotOptimize(a.top_offenders_at(days, 20, bench_now));
    benchmark::DoNotOptimize(a.rule_hit_counts_at(days, 20, bench_now));
}

void register_all() {
    for (auto& b : backends) {
        for (const bool rollups : {true, false}) {
            const std::string mode = rollups ? "rollup" : "naive";
            auto reg = [&](const std::string& fn, auto body) {
                auto* bm =
                    benchmark::RegisterBenchmark(("sql/" + b.name + "/" + mode + "/" + fn).c_str(),
                                                 [&b, rollups, body](benchmark::State& st) {
                                                     for (auto _ : st) body(b, rollups);
                                                 });
                bm->Unit(benchmark::kMillisecond)->UseRealTime();
                if (!rollups)
                    bm->Iterations(2);
                else
                    bm->MinTime(0.5);
            };
            reg("dashboard_30d", [](backend& x, bool r) { dashboard(x, r, 30); });
            reg("traffic_summary_30d", [](backend& x, bool r) {
                benchmark::DoNotOptimize(analytics(x, r).traffic_summary_at(30, bench_now));
            });
            reg("top_offenders_30d", [](backend& x, bool r) {
                benchmark::DoNotOptimize(analytics(x, r).top_offenders_at(30, 100, bench_now));
            });
            reg("rule_hit_counts_30d", [](backend& x, bool r) {
                benchmark::DoNotOptimize(analytics(x, r).rule_hit_counts_at(30, 50, bench_now));
            });
            reg("offenders_csv_30d", [](backend& x, bool r) {
                benchmark::DoNotOptimize(srl::format_offenders_csv(
                    analytics(x, r).top_offenders_at(30, 1000, bench_now)));
            });
            reg("offender_detail_30d", [](backend& x, bool r) {
                benchmark::DoNotOptimize(
                    analytics(x, r).offender_detail_at(x.heavy_key, 30, 50, bench_now));
            });
            reg("offender_detail_median_30d", [](backend& x, bool r) {
                benchmark::DoNotOptimize(
                    analytics(x, r).offender_detail_at(x.median_key, 30, 50, bench_now));
            });
            reg("alertable_offenders_1d", [](backend& x, bool r) {
                auto top = analytics(x, r).top_offenders_at(1, 100, bench_now);
                std::erase_if(top, [](const srl::offender& o) { return o.blocked_count < 100; });
                benchmark::DoNotOptimize(top);
            });
        }
    }
}

// Ingest: event_store::write_batch of 1000-event batches into a fresh table (its own
// SQLite file / PostgreSQL database), with and without the rollups (kept by triggers;
// on SQLite, the writer's batches go through the batch hooks instead).
std::string pg_ingest_url, pg_ingest_name;

void register_ingest() {
    for (const bool lite : {true, false}) {
        if (!lite && pg_ingest_url.empty()) continue;
        if (lite && !with_sqlite) continue;
        for (const bool rollups : {false, true}) {
            const std::string name = std::string("ingest/") + (lite ? "sqlite" : "postgresql") +
                                     "/" + (rollups ? "with_rollups" : "plain");
            benchmark::RegisterBenchmark(
                name.c_str(),
                [lite, rollups](benchmark::State& st) {
                    std::string url;
                    if (lite) {
                        const std::string path = sqlite_path + ".ingest";
                        for (const char* suffix : {"", "-wal", "-shm"})
                            std::filesystem::remove(path + suffix);
                        url = "sqlite:///" + path;
                    } else {
                        url = pg_ingest_url;
                        auto s = sq::open_session(sq::parse_database_url(url));
                        *s << "DROP TABLE IF EXISTS ratelimit_event, ratelimit_rollup_hour, "
                              "ratelimit_rollup_key_hour,"
                              " ratelimit_rollup_rule_hour, ratelimit_rollup_key_day, "
                              "ratelimit_rollup_key_span, ratelimit_rollup_key,"
                              " ratelimit_schema_version CASCADE";
                    }
                    sq::event_store store(url);
                    store.migrate();
                    if (rollups) sq::migrate_analytics(store);
                    std::vector<srl::event> batch;
                    for (int i = 0; i < 1000; ++i)
                        batch.push_back(srl::make_event(bench_now - std::chrono::seconds{i},
                                                        "ip:10.0." + std::to_string(i % 300),
                                                        "/api/p" + std::to_string(i % 7), "GET",
                                                        i % 5 != 0, i, 100));
                    std::int64_t written = 0;
                    for (auto _ : st) {
                        const auto r = store.write_batch(batch);
                        written += static_cast<std::int64_t>(r.written);
                        if (r.written != batch.size()) st.SkipWithError("write_batch failed");
                    }
                    st.SetItemsProcessed(written);
                })
                ->Unit(benchmark::kMillisecond)
                ->UseRealTime()
                ->MinTime(1.0);
        }
    }
}

// Retention on the PostgreSQL log partitioned by day (--retention; destructive, run
// after the benchmarks): cleanup of the oldest day with the cutoff inside it, so every
// row goes by the batch delete (1000 per statement, the rollups corrected by their
// triggers), then cleanup of every later day but today, which drops whole partitions.
// Prints both and the ratio of deleting the dropped rows at the measured delete rate
// to dropping them, and how long a writer beside the drop waited for its rows.
int measure_retention(backend& b) {
    auto& sql = *b.session;
    if (!sq::detail::is_partitioned_event_log(sql)) {
        std::fprintf(stderr, "retention: %s is not partitioned by day\n", b.name.c_str());
        return 1;
    }
    using std::chrono::microseconds;
    const auto start_of = [](std::int64_t day) {
        return srl::event_time{std::chrono::duration_cast<microseconds>(
            std::chrono::sys_days{std::chrono::days{day}}.time_since_epoch())};
    };
    const auto first_day = sq::detail::utc_day(bench_now - microseconds{span_us});
    const auto today = sq::detail::utc_day(bench_now);
    const std::int64_t before = b.store->count();
    auto t0 = std::chrono::steady_clock::now();
    const auto deleted = b.store->cleanup(0, 1000, start_of(first_day + 1) - microseconds{1});
    const double delete_s = seconds_since(t0);
    // A writer beside the drop, one row per batch, 5 ms apart: how long the drop makes
    // a writer wait (the exclusive lock is taken only to detach the days).
    std::atomic<bool> dropping{true};
    std::vector<double> waits_ms;
    std::thread writer([&] {
        sq::event_store w(b.store->url().original);
        const std::vector<srl::event> row{
            srl::make_event(bench_now, "ip:writer", "/probe", "GET", true, 1, 10)};
        while (dropping.load()) {
            const auto w0 = std::chrono::steady_clock::now();
            if (w.write_batch(row).written != 1) break;
            waits_ms.push_back(seconds_since(w0) * 1000.0);
            std::this_thread::sleep_for(std::chrono::milliseconds{5});
        }
    });
    t0 = std::chrono::steady_clock::now();
    const auto dropped = b.store->cleanup(0, 1000, start_of(today));
    const double drop_s = seconds_since(t0);
    dropping = false;
    writer.join();
    const auto written_beside = static_cast<std::int64_t>(waits_ms.size());
    const std::int64_t after = b.store->count() - written_beside;
    const double delete_rate = static_cast<double>(deleted.deleted) / delete_s;
    const double delete_same_s = static_cast<double>(dropped.deleted) / delete_rate;
    std::printf("retention: %lld rows before, %lld after\n", static_cast<long long>(before),
                static_cast<long long>(after));
    std::printf(
        "retention: batch delete: %lld rows (one day) in %.2f s = %.0f rows/s "
        "(%lld partitions dropped)\n",
        static_cast<long long>(deleted.deleted), delete_s, delete_rate,
        static_cast<long long>(deleted.partitions_dropped));
    std::printf("retention: drop: %lld rows in %lld day partitions in %.3f s\n",
                static_cast<long long>(dropped.deleted),
                static_cast<long long>(dropped.partitions_dropped), drop_s);
    std::printf(
        "retention: deleting those %lld rows at that rate: %.0f s; dropping is %.0fx "
        "faster (goal >= 100x)\n",
        static_cast<long long>(dropped.deleted), delete_same_s, delete_same_s / drop_s);
    std::sort(waits_ms.begin(), waits_ms.end());
    if (!waits_ms.empty())
        std::printf(
            "retention: a writer beside the drop: %lld batches of one row, median %.1f ms, "
            "longest %.1f ms\n",
            static_cast<long long>(written_beside), waits_ms[waits_ms.size() / 2], waits_ms.back());
    else
        std::printf("retention: MISMATCH: the writer beside the drop wrote nothing\n");
    const bool consistent =
        !waits_ms.empty() && before - after == deleted.deleted + dropped.deleted;
    if (!consistent) std::printf("retention: MISMATCH: removed rows != rows reported\n");
    return consistent ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
    std::vector<char*> rest{argv[0]};
    if (const char* pg = std::getenv("SMART_RATELIMIT_TEST_PG_URL")) pg_base = pg;
    for (int i = 1; i < argc; ++i) {
        const std::string_view a = argv[i];
        if (a.rfind("--rows=", 0) == 0)
            rows = std::stoll(std::string(a.substr(7)));
        else if (a.rfind("--sqlite=", 0) == 0)
            sqlite_path = std::string(a.substr(9));
        else if (a.rfind("--pg=", 0) == 0)
            pg_base = std::string(a.substr(5));
        else if (a == "--reuse")
            reuse = true;
        else if (a == "--retention")
            retention = true;
        else if (a == "--no-sqlite")
            with_sqlite = false;
        else if (a.rfind("--pg-db=", 0) == 0)
            pg_keep = std::string(a.substr(8));
        else
            rest.push_back(argv[i]);
    }
    if (rows <= 0) {
        std::fprintf(stderr, "bench_analytics_sql: --rows must be positive\n");
        return 2;
    }
    if (!reuse) {
        std::filesystem::remove(sqlite_path);
        std::filesystem::remove(sqlite_path + "-wal");
        std::filesystem::remove(sqlite_path + "-shm");
    }
    try {
        if (with_sqlite)
            backends.push_back({"sqlite",
                                std::make_unique<sq::event_store>("sqlite:///" + sqlite_path),
                                nullptr,
                                {},
                                {}});
        if (!pg_base.empty()) {
            pg_name =
                pg_keep.empty() ? "srl_bench_analytics_" + std::to_string(::getpid()) : pg_keep;
            auto admin = sq::open_session(sq::parse_database_url(pg_base));
            int exists = 0;
            *admin << "SELECT COUNT(*) FROM pg_database WHERE datname = :n", ::soci::use(pg_name),
                ::soci::into(exists);
            if (exists == 0) *admin << "CREATE DATABASE " + pg_name;
            pg_url = pg_base.substr(0, pg_base.rfind('/') + 1) + pg_name;
            backends.push_back(
                {"postgresql", std::make_unique<sq::event_store>(pg_url), nullptr, {}, {}});
            pg_ingest_name = pg_name + "_ingest";
            *admin << "DROP DATABASE IF EXISTS " + pg_ingest_name + " WITH (FORCE)";
            *admin << "CREATE DATABASE " + pg_ingest_name;
            pg_ingest_url = pg_base.substr(0, pg_base.rfind('/') + 1) + pg_ingest_name;
        }
        for (auto& b : backends) {
            b.session = b.store->open_session();
            prepare(b);
        }
    } catch (const std::exception& e) {
        std::fprintf(stderr, "bench_analytics_sql: setup failed: %s\n", e.what());
        return 1;
    }
    std::fprintf(stderr, "rows: %lld\n", rows);
    register_all();
    register_ingest();
    int n = static_cast<int>(rest.size());
    benchmark::Initialize(&n, rest.data());
    benchmark::AddCustomContext("rows", std::to_string(rows));
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    int status = 0;
    if (retention)
        for (auto& b : backends)
            if (b.store->sql_dialect() == sq::dialect::postgresql) status = measure_retention(b);
    for (auto& b : backends) b.session.reset();
    if (!pg_name.empty()) {
        try {
            auto admin = sq::open_session(sq::parse_database_url(pg_base));
            if (pg_keep.empty()) *admin << "DROP DATABASE IF EXISTS " + pg_name + " WITH (FORCE)";
            *admin << "DROP DATABASE IF EXISTS " + pg_ingest_name + " WITH (FORCE)";
        } catch (...) {}
    }
    return status;
}
