// benchmarks/bench_sliding_window.cpp
// What a denied request costs the exact sliding window when its key's window is full,
// at limit 10, 1,000 and 100,000, on Redis, PostgreSQL and SQLite: denials per second
// through the storage, and the store's work per denial counted without a clock
// (Redis: elements the script reads; PostgreSQL: rows its transaction fetches; SQLite:
// virtual-machine steps). The source uses only what older trees also have, so
// scripts/bench-sliding-window.sh builds it against this tree and an older one and
// prints before/after. Servers: SMART_RATELIMIT_TEST_REDIS_URL and _PG_URL (run under
// scripts/test-servers.sh); PostgreSQL gets a database of its own per process.
#include <benchmark/benchmark.h>

#include "../tests/redis/script_work.hpp"
#include "../tests/soci/sql_state_work.hpp"

#include <smart_ratelimit/algorithms/any_algorithm.hpp>
#include <smart_ratelimit/algorithms/sliding_window.hpp>
#include <smart_ratelimit/redis.hpp>
#include <smart_ratelimit/soci/state_storage.hpp>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <string>
#include <unistd.h>
#include <vector>

namespace srl = smart_ratelimit;
namespace rds = smart_ratelimit::redis;
namespace ssql = smart_ratelimit::soci;
using namespace std::chrono_literals;

namespace {

constexpr std::uint64_t limits[] = {10, 1'000, 100'000};
constexpr long long hour_ns = 3'600'000'000'000LL;

std::string env(const char* name) {
    const char* v = std::getenv(name);
    return v == nullptr ? std::string() : std::string(v);
}

std::string key_of(std::uint64_t limit) { return "full:" + std::to_string(limit); }

const srl::any_algorithm& algorithm(std::uint64_t limit) {
    static std::map<std::uint64_t, srl::any_algorithm> all;
    auto it = all.find(limit);
    if (it == all.end())
        it = all.emplace(limit, srl::any_algorithm("sliding_window", srl::rate{limit, 1h})).first;
    return it->second;
}

/// The store's work for one denial: elements, rows, or SQLite steps.
struct work {
    double amount = 0;
    const char* unit = "";
};

class redis_case {
public:
    explicit redis_case(const std::string& url) {
        auto o = rds::redis_options_from_url(url, 5000ms, 60000ms, 2);
        o.prefix = "bench-sw:" + std::to_string(::getpid()) + ":";
        o.errors = rds::on_error::raise;
        s_ = std::make_unique<rds::redis_storage>(o);
    }
    // Fills the window with one-unit admissions, in pipelines of 1,000.
    void fill(std::uint64_t limit) {
        const std::string key = key_of(limit);
        for (std::uint64_t done = 0; done < limit;) {
            const std::uint64_t n = limit - done < 1000 ? limit - done : 1000;
            std::vector<rds::redis_storage::request> reqs(
                n, {key, &algorithm(limit), 1, rds::op::acquire});
            std::vector<srl::outcome> out(n);
            s_->acquire_many(reqs, out);
            done += n;
        }
    }
    srl::outcome deny(std::uint64_t limit) {
        return s_->acquire(key_of(limit), algorithm(limit), 0ns, 1);
    }
    work count(std::uint64_t limit) {
        const std::string log = s_->redis_key(key_of(limit), algorithm(limit));
        auto c = s_->pool().acquire();
        const auto w =
            srl_test::run_counted(*c, rds::script_source(rds::script_id::sliding_window),
                                  {log, log + ":n", log + ":c"}, 0, limit, 3'600'000'000ULL, 1);
        return {static_cast<double>(w.elements), "elements"};
    }

private:
    std::unique_ptr<rds::redis_storage> s_;
};

class sql_case {
public:
    explicit sql_case(const std::string& url) : url_(url), u_(ssql::parse_database_url(url)) {
        ssql::sql_state_options o;
        o.max_connections = 1;
        o.key_prefix = "bench-sw:";
        o.errors = ssql::on_error::raise;
        sql_ = ssql::open_session(u_);
        const ssql::migration_set sets[] = {ssql::state_migrations};
        ssql::migrate(*sql_, u_.kind, sets);
        s_ = std::make_unique<ssql::sql_state_storage>(url, o);
    }
    // Fills the window with one-unit rows as any version writes them (without the
    // running totals a newer version keeps: its first decision adds them).
    void fill(std::uint64_t limit) {
        const std::string key = "bench-sw:" + key_of(limit);
        const long long n = static_cast<long long>(limit), step = 1000;
        const long long first = ssql::detail::database_now_ns(*sql_, u_.kind) - hour_ns / 2;
        long long period = hour_ns;
        *sql_ << "WITH RECURSIVE s(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM s WHERE i + 1 < :n)"
                 " INSERT INTO ratelimit_sliding_entry (key, at_ns, units, expires_at_ns)"
                 " SELECT :k, CAST(:f AS BIGINT) + i * CAST(:st AS BIGINT), 1,"
                 " CAST(:f AS BIGINT) + i * CAST(:st AS BIGINT) + CAST(:p AS BIGINT) FROM s",
            soci::use(n, "n"), soci::use(key, "k"), soci::use(first, "f"), soci::use(step, "st"),
            soci::use(period, "p");
        deny(limit);
    }
    srl::outcome deny(std::uint64_t limit) {
        return s_->acquire(key_of(limit), algorithm(limit), 0ns, 1);
    }
    work count(std::uint64_t limit) {
        const auto w = srl_test::count_decision(*sql_, u_.kind, "bench-sw:" + key_of(limit),
                                                srl::sliding_window(srl::rate{limit, 1h}), 1,
                                                srl::storage_op::acquire);
        if (u_.kind == ssql::dialect::sqlite) return {static_cast<double>(w.steps), "steps"};
        return {static_cast<double>(w.rows), "rows"};
    }

private:
    std::string url_;
    ssql::database_url u_;
    std::unique_ptr<::soci::session> sql_;
    std::unique_ptr<ssql::sql_state_storage> s_;
};

std::unique_ptr<redis_case> redis;
std::unique_ptr<sql_case> postgresql, sqlite;
std::string pg_database, sqlite_path;

template <class Case>
void denials(benchmark::State& state, Case* c, std::uint64_t limit) {
    static std::map<std::pair<const void*, std::uint64_t>, bool> filled;
    if (c == nullptr) {
        state.SkipWithError("no server (run under scripts/test-servers.sh)");
        return;
    }
    auto& done = filled[{c, limit}];
    if (!done) {
        c->fill(limit);
        done = true;
    }
    for (auto _ : state) {
        const auto o = c->deny(limit);
        if (o.allowed) {
            state.SkipWithError("a request was admitted: the window is not full");
            return;
        }
    }
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
    const work w = c->count(limit);
    state.counters["work_per_denial"] = w.amount;
    state.SetLabel(w.unit);
}

// The PostgreSQL URL of a database of this process's own, created on the server of
// `base` (a URL without query options).
std::string own_database(const std::string& base) {
    const auto u = ssql::parse_database_url(base);
    auto sql = ssql::open_session(u);
    pg_database = "srl_bench_sw_" + std::to_string(::getpid());
    *sql << "CREATE DATABASE " + pg_database;
    return base.substr(0, base.rfind('/') + 1) + pg_database;
}

void drop_own_database(const std::string& base) {
    if (pg_database.empty()) return;
    auto sql = ssql::open_session(ssql::parse_database_url(base));
    *sql << "DROP DATABASE IF EXISTS " + pg_database;
}

}  // namespace

int main(int argc, char** argv) {
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
    const std::string redis_url = env("SMART_RATELIMIT_TEST_REDIS_URL");
    const std::string pg_url = env("SMART_RATELIMIT_TEST_PG_URL");
    if (!redis_url.empty()) redis = std::make_unique<redis_case>(redis_url);
    if (!pg_url.empty()) postgresql = std::make_unique<sql_case>(own_database(pg_url));
    sqlite_path = "/tmp/srl-bench-sw-" + std::to_string(::getpid()) + ".db";
    sqlite = std::make_unique<sql_case>("sqlite:///" + sqlite_path);
    for (const std::uint64_t limit : limits) {
        const std::string l = "/limit:" + std::to_string(limit);
        benchmark::RegisterBenchmark(("redis" + l).c_str(), denials<redis_case>, redis.get(), limit)
            ->UseRealTime();
        benchmark::RegisterBenchmark(("postgresql" + l).c_str(), denials<sql_case>,
                                     postgresql.get(), limit)
            ->UseRealTime();
        benchmark::RegisterBenchmark(("sqlite" + l).c_str(), denials<sql_case>, sqlite.get(), limit)
            ->UseRealTime();
    }
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    redis.reset();
    postgresql.reset();
    sqlite.reset();
    drop_own_database(pg_url);
    for (const char* suffix : {"", "-wal", "-shm"}) std::remove((sqlite_path + suffix).c_str());
    return 0;
}
