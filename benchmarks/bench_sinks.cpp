// benchmarks/bench_sinks.cpp
// The cost of recording an event on the request path: ns per event offered to
// the async sink (a writer that discards, one and two producer threads), next to
// the cost of copying an event and of a bare mutex + vector push measured in the
// same run; and the ring buffer's record cost.
#include <benchmark/benchmark.h>

#include <smart_ratelimit/event.hpp>
#include <smart_ratelimit/sinks/async_sink.hpp>
#include <smart_ratelimit/sinks/ring_buffer_sink.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <vector>

namespace srl = smart_ratelimit;

namespace {

struct discard_writer {
    srl::batch_result write_batch(std::span<const srl::event> rows) noexcept {
        return {rows.size(), 0, 0};
    }
};

// A typical decision: short key, path and method (the strings fit in SSO).
const srl::event& prototype() {
    static const srl::event e =
        srl::make_event(srl::event_time{std::chrono::microseconds{1'700'000'000'000'000}},
                        "ip:203.0.113.5", "/api/login", "POST", true, 3, 100, "203.0.113.5");
    return e;
}

// A decision with a named rule and a long path (heap-allocated strings).
const srl::event& long_prototype() {
    static const srl::event e = srl::make_event(
        srl::event_time{std::chrono::microseconds{1'700'000'000'000'000}},
        "rule:login:ip:2001:db8:85a3::8a2e:370:7334", "/api/v1/accounts/12345/sessions/login",
        "POST", false, 101, 100, "2001:db8:85a3::8a2e:370:7334", "user-1234567890");
    return e;
}

std::unique_ptr<srl::async_sink<discard_writer>> g_sink;

void make_sink(const benchmark::State&) {
    srl::async_sink_options o;
    o.queue_capacity = 1 << 16;
    o.max_batch = 512;
    g_sink = std::make_unique<srl::async_sink<discard_writer>>(discard_writer{}, o);
}
void drop_sink(const benchmark::State&) { g_sink.reset(); }

void report_drops(benchmark::State& state) {
    if (state.thread_index() != 0) return;
    const auto s = g_sink->stats();
    state.counters["queue_full_%"] = s.offered ? 100.0 * static_cast<double>(s.dropped_queue_full) /
                                                     static_cast<double>(s.offered)
                                               : 0.0;
}

// Baseline: what building the event costs the caller on its own.
void BM_event_copy(benchmark::State& state) {
    const srl::event& proto = state.range(0) ? long_prototype() : prototype();
    for (auto _ : state) {
        srl::event e = proto;
        benchmark::DoNotOptimize(e);
    }
    state.SetItemsProcessed(state.iterations());
}

// Baseline: the cheapest locked queue, a mutex and a reserved vector, cleared when full.
void BM_mutex_vector_push(benchmark::State& state) {
    static std::mutex m;
    static std::vector<srl::event> v = [] {
        std::vector<srl::event> r;
        r.reserve(1 << 16);
        return r;
    }();
    const srl::event& proto = prototype();
    for (auto _ : state) {
        srl::event e = proto;
        std::lock_guard<std::mutex> lock(m);
        if (v.size() == (1u << 16)) v.clear();
        v.push_back(std::move(e));
    }
    state.SetItemsProcessed(state.iterations());
}

// The request path: build the event, move it into the sink.
void BM_async_record_move(benchmark::State& state) {
    const srl::event& proto = state.range(0) ? long_prototype() : prototype();
    for (auto _ : state) {
        srl::event e = proto;
        g_sink->record(std::move(e));
    }
    state.SetItemsProcessed(state.iterations());
    report_drops(state);
}

// Accepted events only: each iteration offers a burst of state.range(0) events (no
// more than the queue holds, so none is dropped), then waits untimed for the writer.
// Time per iteration / burst = ns per accepted event.
void BM_async_record_burst(benchmark::State& state) {
    const auto burst = state.range(0);
    const srl::event& proto = prototype();
    for (auto _ : state) {
        for (std::int64_t i = 0; i < burst; ++i) {
            srl::event e = proto;
            g_sink->record(std::move(e));
        }
        state.PauseTiming();
        g_sink->flush();
        state.ResumeTiming();
    }
    state.SetItemsProcessed(state.iterations() * burst);
    report_drops(state);
}

// Recording an existing event by const reference: the sink copies it.
void BM_async_record_copy(benchmark::State& state) {
    const srl::event& proto = state.range(0) ? long_prototype() : prototype();
    for (auto _ : state) g_sink->record(proto);
    state.SetItemsProcessed(state.iterations());
    report_drops(state);
}

template <class Sink>
void BM_ring_record(benchmark::State& state) {
    static Sink sink(4096);
    const srl::event& proto = state.range(0) ? long_prototype() : prototype();
    for (auto _ : state) sink.record(proto);
    state.SetItemsProcessed(state.iterations());
}

}  // namespace

// Arg 0: short SSO strings; arg 1: long strings that allocate when copied.
BENCHMARK(BM_event_copy)->Arg(0)->Arg(1);
BENCHMARK(BM_mutex_vector_push)->Threads(1)->Threads(2)->UseRealTime();
BENCHMARK(BM_async_record_move)
    ->Arg(0)
    ->Arg(1)
    ->Threads(1)
    ->Threads(2)
    ->UseRealTime()
    ->Setup(make_sink)
    ->Teardown(drop_sink);
BENCHMARK(BM_async_record_burst)
    ->Arg(4096)
    ->Threads(1)
    ->Threads(2)
    ->UseRealTime()
    ->Setup(make_sink)
    ->Teardown(drop_sink);
BENCHMARK(BM_async_record_copy)
    ->Arg(0)
    ->Arg(1)
    ->Threads(1)
    ->Threads(2)
    ->UseRealTime()
    ->Setup(make_sink)
    ->Teardown(drop_sink);
BENCHMARK_TEMPLATE(BM_ring_record, srl::ring_buffer_sink_st)->Arg(0)->Arg(1);
BENCHMARK_TEMPLATE(BM_ring_record, srl::ring_buffer_sink_mt)
    ->Arg(0)
    ->Arg(1)
    ->Threads(1)
    ->Threads(2)
    ->UseRealTime();

BENCHMARK_MAIN();
