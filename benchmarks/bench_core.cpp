// benchmarks/bench_core.cpp
// ns per decision of the core limiter (in-memory storage, token bucket chosen at run
// time, as a user configures it): one hot key, 100k and 1M-key working sets, 1 and 2
// threads, with the clock read included or `now` passed in; plus the clock reads and
// the bare algorithms. Names are stable; scripts/bench-core.sh compares them to peers.
//
// Benchmark names (Google Benchmark appends "/threads:N"):
//   core/clock/steady, core/clock/coarse                 one clock read
//   core/algorithm/<name>                                try_acquire on a local state
//   core/hot_key/{now_passed,steady_clock,coarse_clock}  one key, limiter.check
//   core/keys_100k/{now_passed,steady_clock,coarse_clock}
//   core/keys_1m/{now_passed,steady_clock,coarse_clock}
#include <benchmark/benchmark.h>

#include "bench_keys.hpp"

#include <smart_ratelimit/smart_ratelimit.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace srl = smart_ratelimit;

namespace {

using srl_bench::keys;
using srl_bench::view_key;

template <class Clock>
using bench_limiter = srl::limiter<view_key, srl::in_memory_storage<>, srl::null_sink, Clock>;

constexpr const char* bench_rate = "1000000/s";

template <class Clock>
std::unique_ptr<bench_limiter<Clock>> make_limiter(std::size_t max_keys) {
    srl::in_memory_options o;
    o.max_keys = max_keys;
    o.shards = 64;
    return std::make_unique<bench_limiter<Clock>>(
        view_key{}, std::vector<srl::rule_config>{{"", bench_rate, "token_bucket"}},
        srl::limiter_options{}, srl::in_memory_storage<>(o));
}

enum class clock_mode { now_passed, steady, coarse };

// One limiter per (mode, working set), shared by the threads of a run and warmed up
// (every key present) before timing.
template <class Clock>
bench_limiter<Clock>& shared_limiter(std::size_t nkeys) {
    static std::mutex m;
    static std::vector<std::pair<std::size_t, std::unique_ptr<bench_limiter<Clock>>>> all;
    std::lock_guard<std::mutex> lock(m);
    for (auto& [n, l] : all)
        if (n == nkeys) return *l;
    auto l = make_limiter<Clock>(nkeys * 2 + 1024);
    for (const auto& k : keys(nkeys)) (void)l->check(k);
    all.emplace_back(nkeys, std::move(l));
    return *all.back().second;
}

template <class Clock>
void run_limiter(benchmark::State& state, std::size_t nkeys, clock_mode mode) {
    auto& lim = shared_limiter<Clock>(nkeys);
    const auto& ks = keys(nkeys);
    // Walk the keys in a scattered order, each thread from its own offset.
    std::size_t i = static_cast<std::size_t>(state.thread_index()) * (nkeys / 2 + 1);
    const Clock clock;
    std::chrono::nanoseconds now = clock.now();
    std::uint64_t allowed = 0;
    for (auto _ : state) {
        const std::string& k = ks[nkeys == 1 ? 0 : i % nkeys];
        i += 7919;
        if (mode == clock_mode::now_passed) now += std::chrono::nanoseconds(50);
        const srl::verdict v = mode == clock_mode::now_passed ? lim.check_at(k, now) : lim.check(k);
        allowed += v.allowed() ? 1 : 0;
        benchmark::DoNotOptimize(v);
    }
    state.SetItemsProcessed(state.iterations());
    state.counters["allowed_ratio"] =
        benchmark::Counter(static_cast<double>(allowed), benchmark::Counter::kAvgIterations);
}

template <class Clock>
void bm_clock(benchmark::State& state) {
    const Clock c;
    for (auto _ : state) benchmark::DoNotOptimize(c.now());
}

template <class A>
void bm_algorithm(benchmark::State& state) {
    const A a(srl::parse_rate(bench_rate));
    typename A::state_type s;
    std::chrono::nanoseconds now = std::chrono::seconds(1000);
    for (auto _ : state) {
        now += std::chrono::nanoseconds(50);
        auto o = a.try_acquire(s, now, 1);
        benchmark::DoNotOptimize(o);
    }
}

void register_all() {
    benchmark::RegisterBenchmark("core/clock/steady", bm_clock<srl::steady_clock>);
    benchmark::RegisterBenchmark("core/clock/coarse", bm_clock<srl::coarse_steady_clock>);
    benchmark::RegisterBenchmark("core/algorithm/fixed_window", bm_algorithm<srl::fixed_window>);
    benchmark::RegisterBenchmark("core/algorithm/sliding_window",
                                 bm_algorithm<srl::sliding_window>);
    benchmark::RegisterBenchmark("core/algorithm/sliding_window_approx",
                                 bm_algorithm<srl::sliding_window_approx>);
    benchmark::RegisterBenchmark("core/algorithm/token_bucket", bm_algorithm<srl::token_bucket>);
    benchmark::RegisterBenchmark("core/algorithm/leaky_bucket", bm_algorithm<srl::leaky_bucket>);

    struct set {
        const char* name;
        std::size_t keys;
    };
    for (const set s : {set{"hot_key", 1}, set{"keys_100k", 100'000}, set{"keys_1m", 1'000'000}}) {
        const std::size_t n = s.keys;
        const std::string base = std::string("core/") + s.name + "/";
        benchmark::RegisterBenchmark((base + "now_passed").c_str(),
                                     [n](benchmark::State& st) {
                                         run_limiter<srl::steady_clock>(st, n,
                                                                        clock_mode::now_passed);
                                     })
            ->Threads(1)
            ->Threads(2)
            ->UseRealTime();
        benchmark::RegisterBenchmark((base + "steady_clock").c_str(),
                                     [n](benchmark::State& st) {
                                         run_limiter<srl::steady_clock>(st, n, clock_mode::steady);
                                     })
            ->Threads(1)
            ->Threads(2)
            ->UseRealTime();
        benchmark::RegisterBenchmark((base + "coarse_clock").c_str(),
                                     [n](benchmark::State& st) {
                                         run_limiter<srl::coarse_steady_clock>(st, n,
                                                                               clock_mode::coarse);
                                     })
            ->Threads(1)
            ->Threads(2)
            ->UseRealTime();
    }
}

}  // namespace

int main(int argc, char** argv) {
    srl_bench::as_a_server_process();
    register_all();
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
}
