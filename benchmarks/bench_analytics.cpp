// benchmarks/bench_analytics.cpp
// The in-memory analytics over std::vector<event> of 1M and 10M events (30 days,
// 100k keys, 30% blocked, half the events under a rule), next to a plain
// sequential read of the same bytes measured in the same run: the memory
// bandwidth ceiling the traffic summary is compared with (scripts/bench-analytics.sh).
#include <benchmark/benchmark.h>

#include <chrono>
#include <cstdint>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include <smart_ratelimit/analytics.hpp>

namespace srl = smart_ratelimit;

namespace {

const srl::event_time bench_now{
    std::chrono::sys_days{std::chrono::year{2026} / 5 / 8}.time_since_epoch()};

/// One data set at a time (10M events take ~2.4 GB): rebuilt when the size changes.
const std::vector<srl::event>& events(std::size_t n) {
    static std::unique_ptr<std::vector<srl::event>> data;
    if (data && data->size() == n) return *data;
    data.reset();
    data = std::make_unique<std::vector<srl::event>>();
    data->reserve(n);
    std::mt19937_64 rng(42);
    const std::int64_t span = std::int64_t{30} * 86'400'000'000;
    static const char* rules[] = {"login", "api", "search", "upload"};
    for (std::size_t i = 0; i < n; ++i) {
        const std::uint64_t r = rng();
        const auto ts = bench_now - std::chrono::microseconds{static_cast<std::int64_t>(
                                        r % static_cast<std::uint64_t>(span))};
        const std::uint32_t k = static_cast<std::uint32_t>((r >> 20) % 100'000);
        std::string key = "ip:10." + std::to_string(k / 256) + "." + std::to_string(k % 256);
        const bool with_rule = ((r >> 40) & 1) != 0;
        const bool allowed = (r >> 41) % 10 >= 3;
        if (with_rule) key = "rule:" + std::string(rules[(r >> 44) % 4]) + ":" + key;
        data->push_back(srl::make_event(ts, key, "/api/p" + std::to_string((r >> 48) % 40), "GET",
                                        allowed, 1, 100));
    }
    return *data;
}

std::size_t size_arg(const benchmark::State& state) {
    return static_cast<std::size_t>(state.range(0));
}

void finish(benchmark::State& state, std::size_t n) {
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()) *
                            static_cast<std::int64_t>(n));
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) *
                            static_cast<std::int64_t>(n * sizeof(srl::event)));
}

// The ceiling: read every byte of the vector once (64-bit loads, summed).
void BM_sequential_read(benchmark::State& state) {
    const auto& v = events(size_arg(state));
    const auto* p = reinterpret_cast<const unsigned char*>(v.data());
    const std::size_t words = v.size() * sizeof(srl::event) / 8;
    for (auto _ : state) {
        std::uint64_t a = 0, b = 0, c = 0, d = 0;
        std::size_t i = 0;
        for (; i + 4 <= words; i += 4) {
            std::uint64_t w[4];
            std::memcpy(w, p + i * 8, 32);
            a += w[0];
            b += w[1];
            c += w[2];
            d += w[3];
        }
        benchmark::DoNotOptimize(a + b + c + d);
    }
    finish(state, v.size());
}

void BM_traffic_summary(benchmark::State& state) {
    const auto& v = events(size_arg(state));
    for (auto _ : state) benchmark::DoNotOptimize(srl::get_traffic_summary(v, 30, bench_now));
    finish(state, v.size());
}

void BM_top_offenders(benchmark::State& state) {
    const auto& v = events(size_arg(state));
    for (auto _ : state) benchmark::DoNotOptimize(srl::get_top_offenders(v, 30, 100, bench_now));
    finish(state, v.size());
}

void BM_rule_hit_counts(benchmark::State& state) {
    const auto& v = events(size_arg(state));
    for (auto _ : state) benchmark::DoNotOptimize(srl::get_rule_hit_counts(v, 30, 50, bench_now));
    finish(state, v.size());
}

void BM_offenders_csv(benchmark::State& state) {
    const auto& v = events(size_arg(state));
    for (auto _ : state) benchmark::DoNotOptimize(srl::offenders_csv(v, 30, 1000, bench_now));
    finish(state, v.size());
}

void BM_offender_detail(benchmark::State& state) {
    const auto& v = events(size_arg(state));
    const std::string key = v.front().key;
    for (auto _ : state)
        benchmark::DoNotOptimize(srl::get_offender_detail(v, key, 30, 50, bench_now));
    finish(state, v.size());
}

void BM_find_alertable_offenders(benchmark::State& state) {
    const auto& v = events(size_arg(state));
    for (auto _ : state)
        benchmark::DoNotOptimize(srl::find_alertable_offenders(v, 10, 30, 100, bench_now));
    finish(state, v.size());
}

#define SRL_ANALYTICS_BENCH(fn) BENCHMARK(fn)->Arg(1'000'000)->Unit(benchmark::kMillisecond)
SRL_ANALYTICS_BENCH(BM_sequential_read);
SRL_ANALYTICS_BENCH(BM_traffic_summary);
SRL_ANALYTICS_BENCH(BM_top_offenders);
SRL_ANALYTICS_BENCH(BM_rule_hit_counts);
SRL_ANALYTICS_BENCH(BM_offenders_csv);
SRL_ANALYTICS_BENCH(BM_offender_detail);
SRL_ANALYTICS_BENCH(BM_find_alertable_offenders);
#undef SRL_ANALYTICS_BENCH
#define SRL_ANALYTICS_BENCH(fn) BENCHMARK(fn)->Arg(10'000'000)->Unit(benchmark::kMillisecond)
SRL_ANALYTICS_BENCH(BM_sequential_read);
SRL_ANALYTICS_BENCH(BM_traffic_summary);
SRL_ANALYTICS_BENCH(BM_top_offenders);
SRL_ANALYTICS_BENCH(BM_rule_hit_counts);
SRL_ANALYTICS_BENCH(BM_offenders_csv);
SRL_ANALYTICS_BENCH(BM_offender_detail);
SRL_ANALYTICS_BENCH(BM_find_alertable_offenders);
#undef SRL_ANALYTICS_BENCH

}  // namespace

BENCHMARK_MAIN();
