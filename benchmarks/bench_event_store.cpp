// benchmarks/bench_event_store.cpp
// Sustained ingest into the event log, with its three indexes in place, next to
// each engine's own ceiling in the same run: the raw sqlite3 C API (one prepared
// INSERT, one transaction per batch) and raw libpq COPY of pre-formatted rows.
// scripts/bench-ingest.sh runs it (PostgreSQL from scripts/test-servers.sh) and
// prints our rate as a ratio of the ceiling; scripts/bench-scale.sh runs three writers
// at once into one database (BM_postgresql_shared_async_sink).
#include <benchmark/benchmark.h>

#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include <smart_ratelimit/sinks/async_sink.hpp>
#include <smart_ratelimit/soci.hpp>
#include <smart_ratelimit/soci/detail/partitions.hpp>

namespace srl = smart_ratelimit;
namespace ssoci = smart_ratelimit::soci;
namespace fs = std::filesystem;

namespace {

constexpr std::size_t batch_size = 1000;
constexpr std::size_t batches = 200;  // 200k rows per run

const std::vector<srl::event>& rows() {
    static const std::vector<srl::event> v = [] {
        static const char* paths[] = {
            "/api/login", "/api/v1/items",  "/api/v1/items/42",    "/search",
            "/",          "/static/app.js", "/api/v1/orders/9f2c", "/account/settings"};
        std::vector<srl::event> out;
        out.reserve(batch_size * batches);
        const std::int64_t base = 1'764'000'000'000'000;
        for (std::size_t i = 0; i < batch_size * batches; ++i) {
            const std::string ip =
                "203.0." + std::to_string(i / 251 % 256) + "." + std::to_string(i % 251);
            const bool named = i % 4 == 0;
            out.push_back(srl::make_event(
                srl::event_time{
                    std::chrono::microseconds{base + static_cast<std::int64_t>(i) * 37}},
                (named ? "rule:login:ip:" : "ip:") + ip, paths[i % 8], i % 3 == 0 ? "POST" : "GET",
                i % 10 != 0, static_cast<std::int64_t>(i % 120), 100, ip,
                i % 3 == 0 ? std::optional<std::string_view>{"user-4711"} : std::nullopt));
        }
        return out;
    }();
    return v;
}

std::string temp_sqlite_file(const char* tag) {
    const fs::path p = fs::temp_directory_path() /
                       ("srl-bench-" + std::string(tag) + "-" + std::to_string(::getpid()) + ".db");
    for (const char* suffix : {"", "-wal", "-shm"}) fs::remove(p.string() + suffix);
    return p.string();
}

void remove_sqlite_file(const std::string& p) {
    for (const char* suffix : {"", "-wal", "-shm"}) fs::remove(p + suffix);
}

// ---- SQLite -----------------------------------------------------------------------

void BM_sqlite_ceiling_raw_c_api(benchmark::State& state) {
    using namespace sqlite_api;
    const auto& data = rows();
    const std::string file = temp_sqlite_file("ceiling");
    sqlite3* db = nullptr;
    sqlite3_open(file.c_str(), &db);
    sqlite3_exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;", nullptr, nullptr,
                 nullptr);
    for (const auto& stmt : ssoci::detail::split_statements(ssoci::event_log_steps[0].sqlite_sql))
        sqlite3_exec(db, stmt.c_str(), nullptr, nullptr, nullptr);
    sqlite3_stmt* st = nullptr;
    sqlite3_prepare_v2(
        db,
        "INSERT INTO ratelimit_event (timestamp, key, rule_name, path, method, allowed, count,"
        " \"limit\", ip_address, user_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        -1, &st, nullptr);
    for (auto _ : state) {
        for (std::size_t b = 0; b < batches; ++b) {
            sqlite3_exec(db, "BEGIN", nullptr, nullptr, nullptr);
            for (std::size_t i = b * batch_size; i < (b + 1) * batch_size; ++i) {
                const srl::event& e = data[i];
                sqlite3_bind_int64(st, 1, e.timestamp.time_since_epoch().count());
                sqlite3_bind_text(st, 2, e.key.data(), static_cast<int>(e.key.size()),
                                  SQLITE_STATIC);
                sqlite3_bind_text(st, 3, e.rule_name.data(), static_cast<int>(e.rule_name.size()),
                                  SQLITE_STATIC);
                sqlite3_bind_text(st, 4, e.path.data(), static_cast<int>(e.path.size()),
                                  SQLITE_STATIC);
                sqlite3_bind_text(st, 5, e.method.data(), static_cast<int>(e.method.size()),
                                  SQLITE_STATIC);
                sqlite3_bind_int(st, 6, e.allowed ? 1 : 0);
                sqlite3_bind_int64(st, 7, e.count);
                sqlite3_bind_int64(st, 8, e.limit);
                if (e.ip_address)
                    sqlite3_bind_text(st, 9, e.ip_address->data(),
                                      static_cast<int>(e.ip_address->size()), SQLITE_STATIC);
                else
                    sqlite3_bind_null(st, 9);
                if (e.user_id)
                    sqlite3_bind_text(st, 10, e.user_id->data(),
                                      static_cast<int>(e.user_id->size()), SQLITE_STATIC);
                else
                    sqlite3_bind_null(st, 10);
                if (sqlite3_step(st) != SQLITE_DONE) state.SkipWithError("insert failed");
                sqlite3_reset(st);
            }
            sqlite3_exec(db, "COMMIT", nullptr, nullptr, nullptr);
        }
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
    remove_sqlite_file(file);
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * batches * batch_size));
}

void BM_sqlite_event_store_write_batch(benchmark::State& state) {
    const auto& data = rows();
    const std::string file = temp_sqlite_file("store");
    ssoci::event_store store("sqlite:///" + file);
    store.migrate();
    for (auto _ : state) {
        for (std::size_t b = 0; b < batches; ++b) {
            const auto r = store.write_batch(std::span(data).subspan(b * batch_size, batch_size));
            if (r.written != batch_size)
                state.SkipWithError(("write_batch failed: " + store.last_error()).c_str());
        }
    }
    remove_sqlite_file(file);
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * batches * batch_size));
}

// Records every row into async_sink<event_store> and waits for the writer; the
// producer waits every half queue, as `import` does, so nothing is dropped.
void run_through_sink(benchmark::State& state, const std::string& url) {
    const auto& data = rows();
    for (auto _ : state) {
        srl::async_sink_options o;
        o.queue_capacity = 16384;
        o.max_batch = batch_size;
        srl::async_sink<ssoci::event_store> sink(std::in_place, o, url);
        for (std::size_t i = 0; i < data.size(); ++i) {
            sink.record(data[i]);
            if ((i + 1) % (o.queue_capacity / 2) == 0) sink.flush();
        }
        sink.stop();
        if (sink.stats().written != data.size()) state.SkipWithError("the sink dropped events");
    }
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * data.size()));
}

void BM_sqlite_async_sink(benchmark::State& state) {
    const std::string file = temp_sqlite_file("sink");
    ssoci::event_store("sqlite:///" + file).migrate();
    run_through_sink(state, "sqlite:///" + file);
    remove_sqlite_file(file);
}

// ---- PostgreSQL ------------------------------------------------------------------

// A fresh database with the schema, dropped afterwards.
// Migrates the event log at `url` and creates the day partitions of rows(), which
// lie in the past: the raw COPY ceiling writes them with no writer to create them.
void migrate_for_rows(const std::string& url) {
    ssoci::event_store store(url);
    store.migrate();
    if (store.sql_dialect() != ssoci::dialect::postgresql) return;
    auto sql = store.open_session();
    for (const srl::event* e : {&rows().front(), &rows().back()})
        *sql << "SELECT ratelimit_event_partition(DATE '" +
                    ssoci::detail::day_text(ssoci::detail::utc_day(e->timestamp)) + "')";
}

struct pg_bench_db {
    std::string admin_url, name, url;
    explicit pg_bench_db(const char* tag) {
        const char* base = std::getenv("SMART_RATELIMIT_TEST_PG_URL");
        if (base == nullptr || *base == '\0') return;
        admin_url = base;
        name = std::string("srl_bench_") + tag + "_" + std::to_string(::getpid());
        auto admin = ssoci::open_session(ssoci::parse_database_url(admin_url));
        *admin << "DROP DATABASE IF EXISTS " + name;
        *admin << "CREATE DATABASE " + name;
        url = admin_url.substr(0, admin_url.rfind('/') + 1) + name;
        migrate_for_rows(url);
    }
    ~pg_bench_db() {
        if (url.empty()) return;
        auto admin = ssoci::open_session(ssoci::parse_database_url(admin_url));
        *admin << "DROP DATABASE IF EXISTS " + name + " WITH (FORCE)";
    }
};

void BM_postgresql_ceiling_raw_copy(benchmark::State& state) {
    pg_bench_db db("ceiling");
    if (db.url.empty()) return state.SkipWithError("SMART_RATELIMIT_TEST_PG_URL is not set");
    // The COPY text of every batch, formatted before timing: only the engine is measured.
    std::vector<std::string> payload(batches);
    for (std::size_t b = 0; b < batches; ++b) {
        for (std::size_t i = b * batch_size; i < (b + 1) * batch_size; ++i) {
            const srl::event& e = rows()[i];
            std::string& s = payload[b];
            s += ssoci::detail::pg_time(e.timestamp) + '\t' + e.key + '\t' + e.rule_name + '\t' +
                 e.path + '\t' + e.method + '\t' + (e.allowed ? "t" : "f") + '\t' +
                 std::to_string(e.count) + '\t' + std::to_string(e.limit) + '\t' +
                 (e.ip_address ? *e.ip_address : "\\N") + '\t' + (e.user_id ? *e.user_id : "\\N") +
                 '\n';
        }
    }
    const auto url = ssoci::parse_database_url(db.url);
    PGconn* pg = PQconnectdb(url.soci_connect_string().c_str());
    for (auto _ : state) {
        for (std::size_t b = 0; b < batches; ++b) {
            PGresult* r =
                PQexec(pg,
                       "COPY ratelimit_event (timestamp, key, rule_name, path, method, allowed,"
                       " count, \"limit\", ip_address, user_id) FROM STDIN");
            PQclear(r);
            PQputCopyData(pg, payload[b].data(), static_cast<int>(payload[b].size()));
            PQputCopyEnd(pg, nullptr);
            while ((r = PQgetResult(pg)) != nullptr) {
                if (PQresultStatus(r) != PGRES_COMMAND_OK)
                    state.SkipWithError(PQresultErrorMessage(r));
                PQclear(r);
            }
        }
    }
    PQfinish(pg);
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * batches * batch_size));
}

void BM_postgresql_event_store_write_batch(benchmark::State& state) {
    pg_bench_db db("store");
    if (db.url.empty()) return state.SkipWithError("SMART_RATELIMIT_TEST_PG_URL is not set");
    const auto& data = rows();
    ssoci::event_store store(db.url);
    for (auto _ : state) {
        for (std::size_t b = 0; b < batches; ++b) {
            const auto r = store.write_batch(std::span(data).subspan(b * batch_size, batch_size));
            if (r.written != batch_size)
                state.SkipWithError(("write_batch failed: " + store.last_error()).c_str());
        }
    }
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * batches * batch_size));
}

void BM_postgresql_async_sink(benchmark::State& state) {
    pg_bench_db db("sink");
    if (db.url.empty()) return state.SkipWithError("SMART_RATELIMIT_TEST_PG_URL is not set");
    run_through_sink(state, db.url);
}

// One of several nodes writing into one shared event log (SMART_RATELIMIT_BENCH_PG_SHARED_URL,
// migrated beforehand with `bench_event_store --migrate URL`): scripts/bench-scale.sh
// starts three at once and compares their sum with one raw COPY writer.
void BM_postgresql_shared_async_sink(benchmark::State& state) {
    const char* url = std::getenv("SMART_RATELIMIT_BENCH_PG_SHARED_URL");
    if (url == nullptr || *url == '\0')
        return state.SkipWithError("SMART_RATELIMIT_BENCH_PG_SHARED_URL is not set");
    run_through_sink(state, url);
}

}  // namespace

// One iteration = 200k rows into a fresh, indexed table; repetitions give a median.
BENCHMARK(BM_sqlite_ceiling_raw_c_api)
    ->Iterations(1)
    ->Repetitions(3)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_sqlite_event_store_write_batch)
    ->Iterations(1)
    ->Repetitions(3)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_sqlite_async_sink)
    ->Iterations(1)
    ->Repetitions(3)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_postgresql_ceiling_raw_copy)
    ->Iterations(1)
    ->Repetitions(3)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_postgresql_event_store_write_batch)
    ->Iterations(1)
    ->Repetitions(3)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_postgresql_async_sink)
    ->Iterations(1)
    ->Repetitions(3)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_postgresql_shared_async_sink)
    ->Iterations(1)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

// `bench_event_store --migrate URL` creates the event log in URL and exits.
int main(int argc, char** argv) {
    if (argc == 3 && std::strcmp(argv[1], "--migrate") == 0) {
        migrate_for_rows(argv[2]);
        return 0;
    }
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
}
