// benchmarks/bench_metrics.cpp
// What the decision_metrics observer costs the in-memory limiter (token bucket, steady
// clock read per check): one hot key and 100k keys, 1 and 2 threads, null_observer
// against decision_metrics (default sampling) and against a control observer; the
// same for limiter.allow on the lock-free storage (GCRA), where decision_metrics hears
// the outcome alone; and one scrape of 1,000 rules.
// scripts/bench-metrics.sh prints the ratios and the scrape time against the goals.
//
// Benchmark names (Google Benchmark appends "/threads:N"):
//   metrics/hot_key/{off,on}      one key, limiter.check
//   metrics/keys_100k/{off,on}    100k keys walked in a scattered order
//   metrics/*/control             the same with a ~1 ns observer that shares nothing
//   metrics/allow/{hot_key,keys_100k}/{off,on}
//                                 limiter.allow on concurrent_storage<gcra>, each
//                                 thread walking the keys in its own random order
//   metrics/allow/*/whole         allow with decision_metrics told whole decisions (as
//                                 before the outcome-only form: allow takes check's path)
//   metrics/observer_only         on_decision(rule, d, timer) alone (no limiter)
//   metrics/scrape_1000_rules     registry.scrape() of decision_metrics with 1,000 rules
#include <benchmark/benchmark.h>

#include "bench_keys.hpp"

#include <smart_ratelimit/metrics.hpp>
#include <smart_ratelimit/smart_ratelimit.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

namespace srl = smart_ratelimit;
namespace m = smart_ratelimit::metrics;

namespace {

using srl_bench::keys;
using srl_bench::view_key;

// One storage per working set, shared by the off, on and control limiters through
// these references: they then differ in their observer only, not in where their tables
// landed in memory (which alone moves 100k-key figures by several percent).
template <class Storage>
struct storage_ref {
    using storage_type = Storage;
    using algorithm_type = typename Storage::algorithm_type;
    Storage* s;
    srl::outcome acquire(std::string_view k, const algorithm_type& a, std::chrono::nanoseconds now,
                         std::uint64_t cost) {
        return s->acquire(k, a, now, cost);
    }
    srl::outcome peek(std::string_view k, const algorithm_type& a, std::chrono::nanoseconds now,
                      std::uint64_t cost) {
        return s->peek(k, a, now, cost);
    }
    void release(std::string_view k, const algorithm_type& a, std::chrono::nanoseconds now,
                 std::uint64_t cost) {
        s->release(k, a, now, cost);
    }
};
using in_memory_ref = storage_ref<srl::in_memory_storage<>>;

// The lock-free storage: its lookups begin before the clock read, and its admit
// decides without the count.
struct lock_free_ref : storage_ref<srl::concurrent_storage<srl::gcra>> {
    using lookup = storage_type::started_lookup;
    using storage_ref::acquire;
    lookup start_lookup(std::string_view k) const noexcept { return s->start_lookup(k); }
    srl::admission admit(const lookup& l, const algorithm_type& a, std::chrono::nanoseconds now,
                         std::uint64_t cost) {
        return s->admit(l, a, now, cost);
    }
    srl::outcome acquire(const lookup& l, const algorithm_type& a, std::chrono::nanoseconds now,
                         std::uint64_t cost) {
        return s->acquire(l, a, now, cost);
    }
};

template <class Observer, class Ref = in_memory_ref>
using bench_limiter = srl::limiter<view_key, Ref, srl::null_sink, srl::steady_clock, Observer>;

const m::decision_metrics& shared_metrics() {
    static const m::decision_metrics dm;
    return dm;
}

// The control: an observer that touches no shared memory and does about a nanosecond
// of work (three dependent multiplies on a thread-local word). Whatever it costs on top
// of `off` is what any work after the decision costs, not what counting costs.
struct control_observer {
    void on_decision(const srl::decision& d, std::chrono::nanoseconds) const {
        static thread_local std::uint64_t acc = 1;
        std::uint64_t a = acc + d.count;
        a *= 0x9E3779B97F4A7C15ull;
        a *= 0x9E3779B97F4A7C15ull;
        a *= 0x9E3779B97F4A7C15ull;
        acc = a;
    }
};

// decision_metrics told whole decisions only (no on_outcome), as observers were
// before the outcome-only form: a one-rule limiter's allow() then takes check()'s path.
struct whole_decisions {
    m::decision_metrics dm = shared_metrics();
    m::decision_metrics::rule_slot bind(std::string_view name) const { return dm.bind(name); }
    void on_decision(m::decision_metrics::rule_slot r, const srl::decision& d,
                     const srl::decision_timer& t) const {
        dm.on_decision(r, d, t);
    }
    void on_decision(m::decision_metrics::rule_slot r, const srl::decision& d,
                     std::chrono::nanoseconds t) const {
        dm.on_decision(r, d, t);
    }
    void on_decision(const srl::decision& d, std::chrono::nanoseconds t) const {
        dm.on_decision(d, t);
    }
};
static_assert(srl::detail::times_lazily<whole_decisions> &&
              !srl::detail::hears_outcomes<whole_decisions>);

// The storage of a working set, created and warmed up once.
template <class Storage>
Storage& shared_storage(std::size_t nkeys) {
    static std::mutex mu;
    static std::vector<std::pair<std::size_t, std::unique_ptr<Storage>>> all;
    std::lock_guard<std::mutex> lock(mu);
    for (auto& [n, s] : all)
        if (n == nkeys) return *s;
    srl::in_memory_options o;
    o.max_keys = nkeys * 2 + 1024;
    o.shards = 64;
    all.emplace_back(nkeys, std::make_unique<Storage>(o));
    return *all.back().second;
}

// One limiter per (observer, storage, working set), shared by the threads of a run,
// warmed up.
template <class Observer, class Ref = in_memory_ref>
bench_limiter<Observer, Ref>& shared_limiter(std::size_t nkeys) {
    using limiter_type = bench_limiter<Observer, Ref>;
    static std::mutex mu;
    static std::vector<std::pair<std::size_t, std::unique_ptr<limiter_type>>> all;
    std::lock_guard<std::mutex> lock(mu);
    for (auto& [n, l] : all)
        if (n == nkeys) return *l;
    Observer obs{};
    if constexpr (std::is_same_v<Observer, m::decision_metrics>) obs = shared_metrics();
    auto l = std::make_unique<limiter_type>(
        view_key{},
        std::vector<srl::rule_config>{
            {"api", "1000000/s",
             std::is_same_v<typename Ref::algorithm_type, srl::gcra> ? "gcra" : "token_bucket"}},
        srl::limiter_options{}, Ref{&shared_storage<typename Ref::storage_type>(nkeys)},
        srl::null_sink{}, srl::steady_clock{}, obs);
    for (const auto& k : keys(nkeys)) (void)l->check(k);
    all.emplace_back(nkeys, std::move(l));
    return *all.back().second;
}

template <class Observer>
void run_limiter(benchmark::State& state, std::size_t nkeys) {
    auto& lim = shared_limiter<Observer>(nkeys);
    const auto& ks = keys(nkeys);
    std::size_t i = static_cast<std::size_t>(state.thread_index()) * (nkeys / 2 + 1);
    for (auto _ : state) {
        const std::string& k = ks[nkeys == 1 ? 0 : i % nkeys];
        i += 7919;
        const srl::verdict v = lim.check(k);
        benchmark::DoNotOptimize(v);
    }
    state.SetItemsProcessed(state.iterations());
}

// limiter.allow on the lock-free storage, each thread in its own random order.
template <class Observer>
void run_allow(benchmark::State& state, std::size_t nkeys) {
    auto& lim = shared_limiter<Observer, lock_free_ref>(nkeys);
    const auto& ks = keys(nkeys);
    const auto& order = srl_bench::walk(nkeys, state.thread_index());
    std::size_t i = 0;
    for (auto _ : state) {
        const bool allowed = lim.allow(ks[order[i]]);
        i = i + 1 == nkeys ? 0 : i + 1;
        benchmark::DoNotOptimize(allowed);
    }
    state.SetItemsProcessed(state.iterations());
}

// The observer alone, as the limiter calls it for a one-rule request: the bound rule
// and a timer on the decision's start.
void bm_observer(benchmark::State& state) {
    const m::decision_metrics& dm = shared_metrics();
    const auto rule = dm.bind("api");
    const srl::steady_clock clock;
    srl::decision d;
    d.rule = "api";
    for (auto _ : state) {
        const srl::decision_timer timer(clock, std::chrono::nanoseconds(100));
        dm.on_decision(rule, d, timer);
        benchmark::ClobberMemory();
    }
}

void bm_scrape(benchmark::State& state) {
    m::decision_metrics dm;
    std::vector<std::string> names;
    for (int i = 0; i < 1000; ++i) names.push_back("rule_" + std::to_string(i));
    srl::decision d;
    for (std::size_t i = 0; i < names.size(); ++i) {
        d.rule = names[i];
        for (std::size_t n = 0; n <= i % 7; ++n)
            dm.on_decision(d, std::chrono::nanoseconds(1000 + 10 * n));
    }
    m::registry reg;
    reg.add(m::build_info{});
    reg.add(dm);
    std::size_t bytes = 0;
    for (auto _ : state) {
        const std::string text = reg.scrape();
        bytes = text.size();
        benchmark::DoNotOptimize(text.data());
    }
    state.counters["bytes"] = static_cast<double>(bytes);
}

// Registers `fn` as `name`, run by 1 and by 2 threads, timed in wall-clock time.
template <class Fn>
void add(const std::string& name, Fn fn) {
    benchmark::RegisterBenchmark(name.c_str(), fn)->Threads(1)->Threads(2)->UseRealTime();
}

void register_all() {
    struct set {
        const char* name;
        std::size_t keys;
    };
    for (const set s : {set{"hot_key", 1}, set{"keys_100k", 100'000}}) {
        const std::size_t n = s.keys;
        const std::string check = std::string("metrics/") + s.name + "/";
        add(check + "off", [n](benchmark::State& st) { run_limiter<srl::null_observer>(st, n); });
        add(check + "control", [n](benchmark::State& st) { run_limiter<control_observer>(st, n); });
        add(check + "on", [n](benchmark::State& st) { run_limiter<m::decision_metrics>(st, n); });
        const std::string allow = std::string("metrics/allow/") + s.name + "/";
        add(allow + "off", [n](benchmark::State& st) { run_allow<srl::null_observer>(st, n); });
        add(allow + "on", [n](benchmark::State& st) { run_allow<m::decision_metrics>(st, n); });
        add(allow + "whole", [n](benchmark::State& st) { run_allow<whole_decisions>(st, n); });
    }
    add("metrics/observer_only", bm_observer);
    benchmark::RegisterBenchmark("metrics/scrape_1000_rules", bm_scrape)
        ->Unit(benchmark::kMicrosecond);
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
