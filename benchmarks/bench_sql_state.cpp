// benchmarks/bench_sql_state.cpp
// Decisions/s of the SQL state storage: PostgreSQL (SMART_RATELIMIT_TEST_PG_URL,
// e.g. under scripts/test-servers.sh) on one connection, and a SQLite file; then
// pgbench runs the same transaction (advisory lock + clock, SELECT, upsert) on
// the same server in the same run, and the ratio storage/pgbench is printed.
// Usage: scripts/test-servers.sh build/benchmarks/bench_sql_state [--benchmark_min_time=2]
#include <benchmark/benchmark.h>

#include <smart_ratelimit/soci/state_storage.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <string>
#include <unistd.h>

namespace srl = smart_ratelimit;
namespace ssql = smart_ratelimit::soci;
using namespace std::chrono_literals;

namespace {

std::string pg_url() {
    const char* u = std::getenv("SMART_RATELIMIT_TEST_PG_URL");
    return u == nullptr ? std::string() : std::string(u);
}

std::string sqlite_path() {
    return "/tmp/srl-bench-sqlstate-" + std::to_string(::getpid()) + ".db";
}

void migrate(const std::string& url) {
    const auto u = ssql::parse_database_url(url);
    auto sql = ssql::open_session(u);
    const ssql::migration_set sets[] = {ssql::state_migrations};
    ssql::migrate(*sql, u.kind, sets);
}

void run_decisions(benchmark::State& state, const std::string& url, const char* alg,
                   bool many_keys) {
    if (url.empty()) {
        state.SkipWithError(
            "SMART_RATELIMIT_TEST_PG_URL is not set (run under scripts/test-servers.sh)");
        return;
    }
    ssql::sql_state_options o;
    o.max_connections = 1;
    o.key_prefix = "bench:" + std::to_string(::getpid()) + ":";
    o.errors = ssql::on_error::raise;
    ssql::sql_state_storage s(url, o);
    const srl::any_algorithm a(alg, srl::rate{1'000'000'000, 1h});
    std::uint64_t i = 0;
    std::string key = "hot";
    for (auto _ : state) {
        if (many_keys) key = "k" + std::to_string(i++ % 10'000);
        benchmark::DoNotOptimize(s.acquire(key, a, 0ns, 1));
    }
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
}

void BM_pg_fixed_window_hot_key(benchmark::State& st) {
    run_decisions(st, pg_url(), "fixed_window", false);
}
void BM_pg_token_bucket_10k_keys(benchmark::State& st) {
    run_decisions(st, pg_url(), "token_bucket", true);
}
void BM_pg_sliding_window_hot_key(benchmark::State& st) {
    run_decisions(st, pg_url(), "sliding_window", false);
}
void BM_sqlite_fixed_window_hot_key(benchmark::State& st) {
    run_decisions(st, "sqlite:///" + sqlite_path(), "fixed_window", false);
}
void BM_sqlite_token_bucket_10k_keys(benchmark::State& st) {
    run_decisions(st, "sqlite:///" + sqlite_path(), "token_bucket", true);
}

BENCHMARK(BM_pg_fixed_window_hot_key)->UseRealTime();
BENCHMARK(BM_pg_token_bucket_10k_keys)->UseRealTime();
BENCHMARK(BM_pg_sliding_window_hot_key)->UseRealTime();
BENCHMARK(BM_sqlite_fixed_window_hot_key)->UseRealTime();
BENCHMARK(BM_sqlite_token_bucket_10k_keys)->UseRealTime();

/// Keeps items_per_second of every run for the ratio.
class recording_reporter : public benchmark::ConsoleReporter {
public:
    std::map<std::string, double> rates;
    void ReportRuns(const std::vector<Run>& runs) override {
        for (const auto& r : runs) {
            const auto it = r.counters.find("items_per_second");
            if (it != r.counters.end()) rates[r.benchmark_name()] = it->second;
        }
        ConsoleReporter::ReportRuns(runs);
    }
};

/// pgbench's transactions/s for the same transaction as a fixed_window decision.
double pgbench_tps(const std::string& url, int seconds) {
    const auto u = ssql::parse_database_url(url);
    const char* bin = std::getenv("SMART_RATELIMIT_TEST_PG_BIN");
    const std::string pgbench = bin != nullptr ? std::string(bin) + "/pgbench" : "pgbench";
    const std::string script = "/tmp/srl-bench-sqlstate-" + std::to_string(::getpid()) + ".pgbench";
    if (FILE* f = std::fopen(script.c_str(), "w")) {
        std::fputs(
            "BEGIN;\n"
            "SELECT CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000000 AS BIGINT) FROM (SELECT "
            "pg_advisory_xact_lock(hashtextextended('bench-pgbench', 7368052)) OFFSET 0) AS l;\n"
            "SELECT window_start_ns, count, previous_count FROM ratelimit_counter WHERE key = "
            "'bench-pgbench' AND algorithm = 'fixed_window';\n"
            "INSERT INTO ratelimit_counter (key, algorithm, window_start_ns, count, "
            "previous_count, "
            "expires_at_ns) VALUES ('bench-pgbench', 'fixed_window', 0, 1, 0, 0) ON CONFLICT (key, "
            "algorithm) "
            "DO UPDATE SET window_start_ns = excluded.window_start_ns, count = excluded.count, "
            "previous_count = excluded.previous_count, expires_at_ns = excluded.expires_at_ns;\n"
            "COMMIT;\n",
            f);
        std::fclose(f);
    } else {
        return 0;
    }
    std::string cmd =
        pgbench + " -n -M extended -c 1 -j 1 -T " + std::to_string(seconds) + " -f " + script;
    if (!u.host.empty()) cmd += " -h " + u.host;
    if (!u.port.empty()) cmd += " -p " + u.port;
    if (!u.user.empty()) cmd += " -U " + u.user;
    cmd += " " + u.dbname + " 2>&1";
    double tps = 0;
    std::string output;
    if (FILE* p = ::popen(cmd.c_str(), "r")) {
        char line[512];
        while (std::fgets(line, sizeof line, p) != nullptr) {
            output += line;
            double v = 0;
            if (std::sscanf(line, "tps = %lf", &v) == 1) tps = v;
        }
        ::pclose(p);
    }
    if (tps <= 0) std::printf("%s\n%s", cmd.c_str(), output.c_str());
    std::remove(script.c_str());
    return tps;
}

}  // namespace

int main(int argc, char** argv) {
    benchmark::Initialize(&argc, argv);
    const std::string pg = pg_url();
    if (!pg.empty()) migrate(pg);
    migrate("sqlite:///" + sqlite_path());
    recording_reporter rep;
    benchmark::RunSpecifiedBenchmarks(&rep);
    for (const char* suffix : {"", "-wal", "-shm"}) std::remove((sqlite_path() + suffix).c_str());
    if (pg.empty()) {
        std::printf("no PostgreSQL (SMART_RATELIMIT_TEST_PG_URL): pgbench baseline skipped\n");
        return 0;
    }
    const double tps = pgbench_tps(pg, 3);
    const auto it = rep.rates.find("BM_pg_fixed_window_hot_key/real_time");
    if (tps <= 0 || it == rep.rates.end()) {
        std::printf("pgbench baseline unavailable (pgbench not found or failed)\n");
        return 0;
    }
    std::printf("pgbench, same transaction, 1 connection: %.0f tps\n", tps);
    std::printf(
        "sql_state_storage fixed_window hot key, 1 connection: %.0f decisions/s = %.2f x pgbench\n",
        it->second, it->second / tps);
    return 0;
}
