// benchmarks/bench_redis.cpp
// Decisions per second of the Redis storage against a local redis-server: one
// connection, a pool under several threads, and pipelined batches. The URL comes
// from SMART_RATELIMIT_BENCH_REDIS_URL (redis:// or redis-cluster://), the key from
// SMART_RATELIMIT_BENCH_REDIS_KEY (default "k"; the Redis key is bench:{<key>}:fw).
// scripts/bench-redis.sh and scripts/bench-scale.sh run redis-benchmark on the same
// EVALSHA in the same session and print the ratios.
// `bench_redis --print-script` prints the fixed-window script (for SCRIPT LOAD).
#include <benchmark/benchmark.h>

#include <smart_ratelimit/redis.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

namespace srl = smart_ratelimit;
namespace rds = smart_ratelimit::redis;
using namespace std::chrono_literals;

namespace {

const srl::any_algorithm& algorithm() {
    static const srl::any_algorithm a("fixed_window", srl::rate{1'000'000'000, 1h});
    return a;
}

const std::string& key() {
    static const std::string k = [] {
        const char* v = std::getenv("SMART_RATELIMIT_BENCH_REDIS_KEY");
        return std::string(v != nullptr && *v != '\0' ? v : "k");
    }();
    return k;
}

rds::redis_storage make_storage(std::size_t connections) {
    const char* url = std::getenv("SMART_RATELIMIT_BENCH_REDIS_URL");
    auto o = rds::redis_options_from_url(url != nullptr ? url : "redis://127.0.0.1:6379", 2000ms,
                                         2000ms, connections);
    o.prefix = "bench:";
    o.errors = rds::on_error::raise;
    rds::redis_storage s(o);
    s.load_scripts();
    return s;
}

// Sequential decisions on one connection: one round trip each.
void BM_redis_one_connection(benchmark::State& state) {
    auto s = make_storage(1);
    for (auto _ : state) benchmark::DoNotOptimize(s.acquire(key(), algorithm(), 0ns, 1));
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_redis_one_connection)->UseRealTime();

// Several threads sharing one pooled storage (one connection per thread).
void BM_redis_pooled(benchmark::State& state) {
    static std::unique_ptr<rds::redis_storage> shared;
    if (state.thread_index() == 0) shared = std::make_unique<rds::redis_storage>(make_storage(8));
    // The benchmark library starts every thread's loop together (a barrier), after setup.
    for (auto _ : state) benchmark::DoNotOptimize(shared->acquire(key(), algorithm(), 0ns, 1));
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_redis_pooled)->Threads(4)->UseRealTime();

// Batches of N decisions in one pipeline on one connection.
void BM_redis_pipelined(benchmark::State& state) {
    auto s = make_storage(1);
    const auto n = static_cast<std::size_t>(state.range(0));
    std::vector<rds::redis_storage::request> reqs(n, {key(), &algorithm(), 1, rds::op::acquire});
    std::vector<srl::outcome> out(n);
    for (auto _ : state) {
        s.acquire_many(reqs, out);
        benchmark::DoNotOptimize(out.data());
    }
    state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(n));
}
BENCHMARK(BM_redis_pipelined)->Arg(16)->UseRealTime();

}  // namespace

int main(int argc, char** argv) {
    if (argc > 1 && std::strcmp(argv[1], "--print-script") == 0) {
        const std::string src = rds::script_source(rds::script_id::fixed_window);
        std::fwrite(src.data(), 1, src.size(), stdout);
        return 0;
    }
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
}
