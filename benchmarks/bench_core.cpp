// benchmarks/bench_core.cpp
// ns per decision of the core limiter (concurrent_storage<gcra>: the token bucket kept
// as GCRA; concurrent_storage<token_bucket> under core/token_bucket/; the sharded
// in_memory_storage with the algorithm chosen at run time under core/sharded/):
// one hot key, 100k and 1M-key working sets, 1 and 2 threads, with the clock read
// included or `now` passed in; plus the clock reads and the bare algorithms. Names are
// stable: scripts/bench-peers.sh picks its rows by them.
//
// Benchmark names (Google Benchmark appends "/threads:N"):
//   core/clock/{steady,coarse,tsc}                       one clock read
//   core/algorithm/<name>                                try_acquire on a local state
//   core/storage/hot_key[_token_bucket]                  concurrent_storage::acquire on
//                                                        one key, `now` passed in
//   core/hot_key/{now_passed,steady_clock,coarse_clock,tsc_clock}  one key, limiter.check (mostly
//                                                        denied: 1,000,000/s)
//   core/hot_key_allow/{now_passed,steady_clock,coarse_clock,tsc_clock}  one key at 10^9/s: every
//                                                        decision admits
//   core/floor/{steady_clock,coarse_clock,tsc_clock}     the floor of one decision: a
//                                                        clock read and one CAS on a
//                                                        preallocated 64-bit slot (GCRA)
//   core/floor_100k/steady_clock                         the same among 100k keys: the
//                                                        key read, then one CAS in that
//                                                        key's own preallocated line
//   core/unshared/steady_clock                           a clock read on each thread and
//                                                        nothing shared: how the machine
//                                                        scales work from 1 thread to 2
//   core/memory/keys_1m                                  heap bytes per stored key
//   core/machine/{walk_8mib,round_trip}                  the machine: a dependent load
//                                                        in 8 MiB, a line's round trip
//                                                        between two threads' cores
//   core/keys_100k/{now_passed,steady_clock,coarse_clock,tsc_clock}
//   core/keys_1m/{now_passed,steady_clock,coarse_clock,tsc_clock}
//   core/allow/<set>/{now_passed,steady_clock,coarse_clock,tsc_clock}  the same sets,
//                                                        limiter.allow: yes or no, no verdict
//   core/token_bucket/<set>/{now_passed,steady_clock}   the same on token_bucket's state
//   core/sharded/<set>/{now_passed,steady_clock}        the same on in_memory_storage<>
//   core/hash/{keyed,siphash13}/<bytes>                  one key hash
//   core/hash_flood/{random,colliding}                   300 keys built to collide under
//                                                        the public-constant hash, or random
//                                                        keys of the same length; storage
// Every 2-thread limiter and floor row reports how far apart its two cores were
// (round_trip_{before,after}_ns: see core_distance).
#include <benchmark/benchmark.h>

#include "bench_keys.hpp"

#include <smart_ratelimit/smart_ratelimit.hpp>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <memory>
#include <mutex>
#include <random>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace srl = smart_ratelimit;

namespace {

using srl_bench::keys;
using srl_bench::view_key;
using srl_bench::walk;

// The limiter measured against peers: lock-free decisions on a token bucket kept as
// GCRA (gcra: the token bucket's decisions at this rate, from two words). The same
// storage on token_bucket's three words is measured beside it under
// core/token_bucket/, and the sharded, mutex-guarded in_memory_storage with the
// algorithm chosen at run time under core/sharded/.
using concurrent = srl::concurrent_storage<srl::gcra>;
using concurrent_token_bucket = srl::concurrent_storage<srl::token_bucket>;
using sharded = srl::in_memory_storage<>;

// The rule's algorithm name for a storage: its algorithm's, or the token bucket by
// name for any_algorithm.
template <class Storage>
std::string algorithm_of() {
    using A = typename Storage::algorithm_type;
    if constexpr (requires { A::algorithm_name; })
        return std::string(A::algorithm_name);
    else
        return "token_bucket";
}

template <class Clock, class Storage = concurrent>
using bench_limiter = srl::limiter<view_key, Storage, srl::null_sink, Clock>;

constexpr const char* bench_rate = "1000000/s";
constexpr const char* allow_rate = "1000000000/s";  // far above any thread's attempts

template <class Clock, class Storage = concurrent>
std::unique_ptr<bench_limiter<Clock, Storage>> make_limiter(std::size_t max_keys,
                                                            const char* rate) {
    srl::in_memory_options o;
    o.max_keys = max_keys;
    o.shards = 64;
    return std::make_unique<bench_limiter<Clock, Storage>>(
        view_key{}, std::vector<srl::rule_config>{{"", rate, algorithm_of<Storage>()}},
        srl::limiter_options{}, Storage(o));
}

enum class clock_mode { now_passed, clocked };

// A cache line handed between two threads: thread 0 passes it (writes the next odd
// value, then waits for the answer), thread 1 answers (waits for an odd value, writes
// the next even one). Even when at rest, so each exchange starts where the last ended;
// the two threads must make as many exchanges.
struct baton {
    alignas(64) static inline std::atomic<std::uint64_t> value{0};
    static void pass() noexcept {
        const std::uint64_t v = value.load(std::memory_order_acquire) + 1;
        value.store(v, std::memory_order_release);
        while (value.load(std::memory_order_acquire) != v + 1) {}
    }
    static void answer() noexcept {
        std::uint64_t v;
        while (((v = value.load(std::memory_order_acquire)) & 1) == 0) {}
        value.store(v + 1, std::memory_order_release);
    }
};

// How far apart a 2-thread run's two cores were: the ns for a cache line to go from
// one thread to the other and back (the median of 5 batches of 400 hand-overs),
// measured just before the timed decisions and just after them, outside the timer,
// and reported by thread 0 as `round_trip_before_ns` and `round_trip_after_ns`. A VM's
// host may place its vCPUs near each other or far apart, and move them within
// seconds (core/machine/round_trip, scripts/bench-machine.sh); the 2-thread rows
// follow that placement (on one key each write moves the key's line between the
// cores; among 100k keys the far core misses in the other's cache).
// scripts/bench-peers.sh prints it beside those rows; the Go and Guava peers measure
// it the same way.
class core_distance {
public:
    explicit core_distance(benchmark::State& state) : before_(measure(state)) {}
    void report(benchmark::State& state) const {
        const double after = measure(state);
        if (state.thread_index() != 0 || state.threads() != 2) return;
        state.counters["round_trip_before_ns"] = before_;
        state.counters["round_trip_after_ns"] = after;
    }

private:
    static double measure(const benchmark::State& state) {
        constexpr std::size_t batches = 5, hand_overs = 400;
        if (state.threads() != 2) return 0;
        if (state.thread_index() == 1) {
            for (std::size_t k = 0; k < batches * hand_overs; ++k) baton::answer();
            return 0;
        }
        std::array<double, batches> means{};
        for (double& mean : means) {
            const auto start = std::chrono::steady_clock::now();
            for (std::size_t k = 0; k < hand_overs; ++k) baton::pass();
            const std::chrono::duration<double, std::nano> took =
                std::chrono::steady_clock::now() - start;
            mean = took.count() / hand_overs;
        }
        std::sort(means.begin(), means.end());
        return means[batches / 2];  // a batch interrupted by the scheduler does not count
    }

    double before_;
};

// The machine under the benchmarks, to tell its state from the code's (see
// scripts/bench-machine.sh). walk_8mib: one dependent load per iteration in a random
// cycle over 8 MiB of cache lines, about the 100k-key rows' working set: an L3 hit
// while the cache is ours, a DRAM access when the host's other tenants have taken it.
void bm_machine_walk(benchmark::State& state) {
    struct alignas(64) line {
        std::uint32_t next;
    };
    static const std::vector<line> lines = [] {
        constexpr std::uint32_t n = (8u << 20) / sizeof(line);
        std::vector<std::uint32_t> order(n);
        for (std::uint32_t i = 0; i < n; ++i) order[i] = i;
        std::mt19937_64 rng(17);
        std::shuffle(order.begin() + 1, order.end(), rng);
        std::vector<line> out(n);
        for (std::uint32_t i = 0; i < n; ++i) out[order[i]].next = order[(i + 1) % n];
        return out;
    }();
    std::uint32_t at = 0;
    for (auto _ : state) {
        at = lines[at].next;
        benchmark::DoNotOptimize(at);
    }
}

// round_trip (2 threads): a cache line handed from one thread to the other and back
// per iteration, as core_distance measures it; `round_trip_ns` is thread 0's mean.
void bm_machine_round_trip(benchmark::State& state) {
    if (state.thread_index() == 1) {
        for (auto _ : state) baton::answer();
        return;
    }
    const auto start = std::chrono::steady_clock::now();
    for (auto _ : state) baton::pass();
    const std::chrono::duration<double, std::nano> took = std::chrono::steady_clock::now() - start;
    state.counters["round_trip_ns"] = took.count() / static_cast<double>(state.iterations());
}

// One limiter per (mode, working set), shared by the threads of a run and warmed up
// (every key present) before timing.
template <class Clock, class Storage>
bench_limiter<Clock, Storage>& shared_limiter(std::size_t nkeys, const char* rate) {
    struct made {
        std::size_t keys;
        const char* rate;
        std::unique_ptr<bench_limiter<Clock, Storage>> limiter;
    };
    static std::mutex m;
    static std::vector<made> all;
    std::lock_guard<std::mutex> lock(m);
    for (auto& x : all)
        if (x.keys == nkeys && x.rate == rate) return *x.limiter;
    auto l = make_limiter<Clock, Storage>(nkeys * 2 + 1024, rate);
    for (const auto& k : keys(nkeys)) (void)l->check(k);
    all.push_back(made{nkeys, rate, std::move(l)});
    return *all.back().limiter;
}

// What a decision returns: a verdict (check, check_at), or only yes or no (allow,
// allow_at: the peers' Allow() and tryAcquire() give no more).
enum class call { check, allow };

template <class Clock, class Storage = concurrent, call Call = call::check>
void run_limiter(benchmark::State& state, std::size_t nkeys, clock_mode mode,
                 const char* rate = bench_rate) {
    auto& lim = shared_limiter<Clock, Storage>(nkeys, rate);
    const auto& ks = keys(nkeys);
    const auto& order = walk(nkeys, state.thread_index());
    std::size_t i = 0;
    // The time passed in: 50 ns per decision of thread 0, which publishes it every 64
    // decisions; every thread adds its own 50 ns steps to the last published time. So
    // the threads' times stay within 3.2 us of each other (separate counters drift
    // apart by milliseconds, and the decisions on them become clock-step rebases),
    // for one shared line written once per 64 decisions.
    static std::atomic<std::int64_t> published{0};
    constexpr std::int64_t step = 50, batch = 64;
    if (state.thread_index() == 0) published.store(Clock{}.now().count());
    std::int64_t local = 0;
    std::uint64_t allowed = 0;
    const core_distance cores(state);  // before the timer starts
    for (auto _ : state) {
        const std::string& k = ks[order[i]];
        if (++i == nkeys) i = 0;
        if (mode == clock_mode::now_passed && ++local == batch) {
            local = 0;
            if (state.thread_index() == 0)
                published.store(published.load(std::memory_order_relaxed) + step * batch,
                                std::memory_order_relaxed);
        }
        const auto passed = [&] {
            return std::chrono::nanoseconds(published.load(std::memory_order_relaxed) +
                                            step * local);
        };
        if constexpr (Call == call::allow) {
            const bool ok =
                mode == clock_mode::now_passed ? lim.allow_at(k, passed()) : lim.allow(k);
            allowed += ok ? 1 : 0;
            benchmark::DoNotOptimize(ok);
        } else {
            // Built in place, as `auto v = lim.check(k)` is: assigning a verdict to an
            // existing one copies its decisions.
            const srl::verdict v =
                mode == clock_mode::now_passed ? lim.check_at(k, passed()) : lim.check(k);
            allowed += v.allowed() ? 1 : 0;
            benchmark::DoNotOptimize(v);
        }
    }
    state.SetItemsProcessed(state.iterations());
    state.counters["allowed_ratio"] =
        benchmark::Counter(static_cast<double>(allowed), benchmark::Counter::kAvgIterations);
    cores.report(state);
}

// The floor of a decision on one key: read the clock, then admit with one CAS on a
// preallocated slot holding a GCRA theoretical arrival time (1,000,000/s, burst
// 1,000,000), as a limiter would with no lookup, no key and no result to build.
template <class Clock>
void bm_floor(benchmark::State& state) {
    static std::atomic<std::int64_t> tat{0};
    constexpr std::int64_t interval = 1000, burst = 1'000'000'000;  // ns
    const Clock clock;
    std::uint64_t allowed = 0;
    const core_distance cores(state);  // before the timer starts
    for (auto _ : state) {
        const std::int64_t now = clock.now().count();
        std::int64_t t = tat.load(std::memory_order_relaxed);
        for (;;) {
            const std::int64_t next = (t > now ? t : now) + interval;
            if (next - now > burst) break;  // denied: nothing written
            if (tat.compare_exchange_weak(t, next, std::memory_order_relaxed)) {
                ++allowed;
                break;
            }
        }
    }
    state.counters["allowed_ratio"] =
        benchmark::Counter(static_cast<double>(allowed), benchmark::Counter::kAvgIterations);
    cores.report(state);
}

// The floor's clock read alone, with nothing shared between the threads: its 2-thread
// time over its 1-thread time is how this machine scales work that shares nothing (the
// floor's 2-thread row adds only the key's line moving between the cores).
template <class Clock>
void bm_unshared(benchmark::State& state) {
    const Clock clock;
    const core_distance cores(state);
    for (auto _ : state) benchmark::DoNotOptimize(clock.now());
    cores.report(state);
}

// The floor of a decision among `nkeys` keys: read the request's key (as every peer
// must), read the clock, and admit with one CAS on a GCRA word in that key's own
// preallocated cache line (1,000,000/s, burst 1,000,000, as bench_rate). The line is
// indexed by the key's number rather than found by its bytes, but its address waits
// for them, as a lookup's does, and the next decision waits for this one: one miss
// for the key and one for its state, with no hash, no probe and no key comparison.
// The threads walk the keys as run_limiter's do.
template <class Clock>
void bm_floor_keys(benchmark::State& state, std::size_t nkeys) {
    struct alignas(64) line {
        std::atomic<std::int64_t> tat{0};
    };
    // One set of lines per working-set size, shared by the threads of a run.
    static std::mutex m;
    static std::vector<std::pair<std::size_t, std::unique_ptr<line[]>>> all;
    line* lines = nullptr;
    {
        std::lock_guard<std::mutex> lock(m);
        for (auto& [n, l] : all)
            if (n == nkeys) lines = l.get();
        if (lines == nullptr)
            lines = all.emplace_back(nkeys, std::make_unique<line[]>(nkeys)).second.get();
    }
    const auto& ks = keys(nkeys);
    const auto& order = walk(nkeys, state.thread_index());
    constexpr std::int64_t interval = 1000, burst = 1'000'000'000;  // ns
    const Clock clock;
    std::size_t i = 0;
    std::uint64_t allowed = 0;
    const core_distance cores(state);  // before the timer starts
    for (auto _ : state) {
        const std::string& k = ks[order[i]];
        std::uint64_t last8 = 0;  // keys are ASCII: the top bit is 0, the index unchanged
        std::memcpy(&last8, k.data() + k.size() - 8, 8);
        std::atomic<std::int64_t>& tat = lines[order[i] + (last8 >> 63)].tat;
        const std::int64_t now = clock.now().count();
        std::int64_t t = tat.load(std::memory_order_relaxed);
        // The next key waits for this one's state (t >= 0, so the step is 1): a loop
        // this short would otherwise start the next key's misses while this one's are
        // outstanding, which a real decision, hundreds of instructions long, cannot.
        i += 1 + static_cast<std::size_t>(static_cast<std::uint64_t>(t) >> 63);
        if (i >= nkeys) i = 0;
        for (;;) {
            const std::int64_t next = (t > now ? t : now) + interval;
            if (next - now > burst) break;
            if (tat.compare_exchange_weak(t, next, std::memory_order_relaxed)) {
                ++allowed;
                break;
            }
        }
    }
    state.counters["allowed_ratio"] =
        benchmark::Counter(static_cast<double>(allowed), benchmark::Counter::kAvgIterations);
    cores.report(state);
}

std::size_t heap_in_use() {
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 33))
    const struct mallinfo2 m = mallinfo2();
    return m.uordblks + m.hblkhd;  // large blocks (a shard's slot array) are mmapped
#else
    return 0;
#endif
}

// Heap bytes per key of a limiter holding 1M keys ("user:<n>", 13-14 bytes each).
void bm_memory(benchmark::State& state) {
    const auto& ks = keys(1'000'000);
    double per_key = 0, key_bytes = 0;
    srl::in_memory_stats stats;
    for (const auto& k : ks) key_bytes += static_cast<double>(k.size());
    key_bytes /= static_cast<double>(ks.size());
    for (auto _ : state) {
        const std::size_t before = heap_in_use();
        auto l = make_limiter<srl::steady_clock>(ks.size(), bench_rate);
        for (const auto& k : ks) (void)l->check(k);
        per_key = static_cast<double>(heap_in_use() - before) / static_cast<double>(ks.size());
        stats = l->storage().stats();
    }
    state.counters["bytes_per_key"] = per_key;
    state.counters["key_bytes"] = key_bytes;
    // A full table: how long the probes got, and whether random keys ever made a shard
    // give up on the fast hash (they should not).
    state.counters["longest_probe"] = static_cast<double>(stats.longest_probe);
    state.counters["strong_shards"] = static_cast<double>(stats.strong_hash_shards);
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

// The storage alone on one key, `now` passed in (1,000,000/s, mostly denied): what the
// limiter's hot_key/now_passed row costs without the limiter's own work around it.
template <class Algorithm>
void bm_storage_hot_key(benchmark::State& state) {
    srl::in_memory_options o;
    o.shards = 64;
    srl::concurrent_storage<Algorithm> storage(o);
    const Algorithm alg(srl::parse_rate(bench_rate));
    const std::string key = keys(1).front();
    std::chrono::nanoseconds now = std::chrono::seconds(1000);
    (void)storage.acquire(key, alg, now, alg.limit());  // the burst spent, as the limiter rows'
    std::uint64_t allowed = 0;
    for (auto _ : state) {
        now += std::chrono::nanoseconds(50);
        const srl::outcome out = storage.acquire(key, alg, now, 1);
        allowed += out.allowed ? 1 : 0;
        benchmark::DoNotOptimize(out);
    }
    state.counters["allowed_ratio"] =
        benchmark::Counter(static_cast<double>(allowed), benchmark::Counter::kAvgIterations);
}

// One key hash of an `n`-byte key: the storage's fast keyed hash or SipHash-1-3.
template <bool Strong>
void bm_hash(benchmark::State& state, std::size_t n) {
    const srl::detail::hash_secret k = srl::detail::make_hash_secret(42);
    std::string key(n, 'k');
    for (auto _ : state) {
        benchmark::DoNotOptimize(key.data());
        benchmark::DoNotOptimize(Strong ? srl::detail::strong_hash(key, k)
                                        : srl::detail::keyed_hash(key, k));
    }
}

// The 300 keys of the security review's hash_collision_poc.py (finding H3), built the
// same way as tests/storage/test_key_flooding.cpp builds them: one hash_bytes value for
// every seed; or `count` random keys of the same length.
std::vector<std::string> flood_keys(std::size_t count, bool colliding) {
    namespace d = srl::detail;
    std::uint64_t rng = 1;
    const auto next = [&rng] {
        rng += 0x9e3779b97f4a7c15ull;
        return d::mix64(rng);
    };
    const auto word = [](std::uint64_t w) {
        std::string s(8, '\0');
        std::memcpy(s.data(), &w, 8);
        return s;
    };
    const auto header_safe = [](std::uint64_t w) {
        for (int i = 0; i < 8; ++i) {
            const auto c = static_cast<unsigned char>(w >> (8 * i));
            if (c < 0x20 || c == 0x7f) return false;
        }
        return true;
    };
    std::vector<std::string> keys;
    std::string prefix = "rule:api:header:X-Api-Key:";
    prefix.append(48 - prefix.size(), 'a');
    if (!colliding) {
        for (std::size_t i = 0; i < count; ++i) {
            std::string k = prefix;
            while (k.size() < 184) k += static_cast<char>(0x21 + next() % 94);
            keys.push_back(std::move(k));
        }
        return keys;
    }
    const std::uint64_t p2 = d::public_mix[2], p3 = d::public_mix[3];
    d::uint128 big = 1;
    std::vector<std::uint64_t> used;
    for (const std::uint64_t q : {2,  3,  5,  7,  11, 13, 17, 19, 23, 29, 31, 37,  41, 43,
                                  47, 53, 59, 61, 67, 71, 73, 79, 83, 89, 97, 101, 103}) {
        if (big * q >= d::uint128{1} << 126) break;
        big *= q;
        used.push_back(q);
    }
    const auto hi = static_cast<std::uint64_t>(big >> 64);
    std::set<std::uint64_t> seen;
    while (keys.size() < count) {
        d::uint128 x = 1;
        for (const std::uint64_t q : used)
            if (next() & 1) x *= q;
        const d::uint128 y = big / x;
        if (x <= hi || x > ~std::uint64_t{0} || y <= hi || y > ~std::uint64_t{0}) continue;
        const auto x64 = static_cast<std::uint64_t>(x), y64 = static_cast<std::uint64_t>(y);
        if (!seen.insert(x64).second || !header_safe(x64 ^ p2) || !header_safe(y64)) continue;
        std::string k = prefix + std::string(16, 'b') + word(p2) + std::string(8, 'c') + word(p3) +
                        std::string(8, 'd') + std::string(16, 'e') + word(x64 ^ p2) + word(y64) +
                        std::string(16, 'f');
        for (int i = 0; i < 10; ++i) k += "tail";
        keys.push_back(std::move(k));
    }
    return keys;
}

// Decisions on 300 stored keys of one kind in a default-sized storage, `now` passed in.
void bm_hash_flood(benchmark::State& state, bool colliding) {
    static const std::vector<std::string> random = flood_keys(300, false);
    static const std::vector<std::string> evil = flood_keys(300, true);
    const std::vector<std::string>& keys = colliding ? evil : random;
    concurrent_token_bucket storage;
    const srl::token_bucket tb(srl::parse_rate(bench_rate));
    std::chrono::nanoseconds now = std::chrono::seconds(1000);
    for (const auto& k : keys) (void)storage.acquire(k, tb, now, 1);
    std::size_t i = 0;
    for (auto _ : state) {
        now += std::chrono::nanoseconds(50);
        benchmark::DoNotOptimize(storage.acquire(keys[i], tb, now, 1));
        i = i + 7 < keys.size() ? i + 7 : i + 7 - keys.size();
    }
    state.counters["strong_shards"] = static_cast<double>(storage.stats().strong_hash_shards);
    state.counters["longest_probe"] = static_cast<double>(storage.stats().longest_probe);
}

// Registers a limiter row, run on 1 and 2 threads and timed by the wall clock.
template <class Fn>
void add(const std::string& name, Fn fn) {
    benchmark::RegisterBenchmark(name.c_str(), fn)->Threads(1)->Threads(2)->UseRealTime();
}

void register_all() {
    benchmark::RegisterBenchmark("core/clock/steady", bm_clock<srl::steady_clock>);
    benchmark::RegisterBenchmark("core/clock/coarse", bm_clock<srl::coarse_steady_clock>);
    benchmark::RegisterBenchmark("core/clock/tsc", bm_clock<srl::tsc_clock>);
    benchmark::RegisterBenchmark("core/algorithm/fixed_window", bm_algorithm<srl::fixed_window>);
    benchmark::RegisterBenchmark("core/algorithm/sliding_window",
                                 bm_algorithm<srl::sliding_window>);
    benchmark::RegisterBenchmark("core/algorithm/sliding_window_approx",
                                 bm_algorithm<srl::sliding_window_approx>);
    benchmark::RegisterBenchmark("core/algorithm/token_bucket", bm_algorithm<srl::token_bucket>);
    benchmark::RegisterBenchmark("core/algorithm/leaky_bucket", bm_algorithm<srl::leaky_bucket>);
    benchmark::RegisterBenchmark("core/algorithm/gcra", bm_algorithm<srl::gcra>);
    benchmark::RegisterBenchmark("core/storage/hot_key", bm_storage_hot_key<srl::gcra>);
    benchmark::RegisterBenchmark("core/storage/hot_key_token_bucket",
                                 bm_storage_hot_key<srl::token_bucket>);
    for (const std::size_t n : {16, 48, 184}) {
        const std::string sz = std::to_string(n);
        benchmark::RegisterBenchmark(("core/hash/keyed/" + sz).c_str(),
                                     [n](benchmark::State& st) { bm_hash<false>(st, n); });
        benchmark::RegisterBenchmark(("core/hash/siphash13/" + sz).c_str(),
                                     [n](benchmark::State& st) { bm_hash<true>(st, n); });
    }
    benchmark::RegisterBenchmark("core/hash_flood/random",
                                 [](benchmark::State& st) { bm_hash_flood(st, false); });
    benchmark::RegisterBenchmark("core/hash_flood/colliding",
                                 [](benchmark::State& st) { bm_hash_flood(st, true); });

    struct set {
        const char* name;
        std::size_t keys;
        const char* rate;
    };
    for (const set s :
         {set{"hot_key", 1, bench_rate}, set{"hot_key_allow", 1, allow_rate},
          set{"keys_100k", 100'000, bench_rate}, set{"keys_1m", 1'000'000, bench_rate}}) {
        const std::size_t n = s.keys;
        const char* r = s.rate;
        const std::string base = std::string("core/") + s.name + "/";
        const std::string sharded_base = std::string("core/sharded/") + s.name + "/";
        const std::string token_bucket_base = std::string("core/token_bucket/") + s.name + "/";
        const std::string allow_base = std::string("core/allow/") + s.name + "/";
        using tb = concurrent_token_bucket;
        constexpr call allow = call::allow;
        add(allow_base + "now_passed", [n, r](benchmark::State& st) {
            run_limiter<srl::steady_clock, concurrent, allow>(st, n, clock_mode::now_passed, r);
        });
        add(allow_base + "steady_clock", [n, r](benchmark::State& st) {
            run_limiter<srl::steady_clock, concurrent, allow>(st, n, clock_mode::clocked, r);
        });
        add(allow_base + "coarse_clock", [n, r](benchmark::State& st) {
            run_limiter<srl::coarse_steady_clock, concurrent, allow>(st, n, clock_mode::clocked, r);
        });
        add(allow_base + "tsc_clock", [n, r](benchmark::State& st) {
            run_limiter<srl::tsc_clock, concurrent, allow>(st, n, clock_mode::clocked, r);
        });
        add(base + "now_passed", [n, r](benchmark::State& st) {
            run_limiter<srl::steady_clock>(st, n, clock_mode::now_passed, r);
        });
        add(base + "steady_clock", [n, r](benchmark::State& st) {
            run_limiter<srl::steady_clock>(st, n, clock_mode::clocked, r);
        });
        add(base + "coarse_clock", [n, r](benchmark::State& st) {
            run_limiter<srl::coarse_steady_clock>(st, n, clock_mode::clocked, r);
        });
        add(base + "tsc_clock", [n, r](benchmark::State& st) {
            run_limiter<srl::tsc_clock>(st, n, clock_mode::clocked, r);
        });
        add(token_bucket_base + "now_passed", [n, r](benchmark::State& st) {
            run_limiter<srl::steady_clock, tb>(st, n, clock_mode::now_passed, r);
        });
        add(token_bucket_base + "steady_clock", [n, r](benchmark::State& st) {
            run_limiter<srl::steady_clock, tb>(st, n, clock_mode::clocked, r);
        });
        add(sharded_base + "now_passed", [n, r](benchmark::State& st) {
            run_limiter<srl::steady_clock, sharded>(st, n, clock_mode::now_passed, r);
        });
        add(sharded_base + "steady_clock", [n, r](benchmark::State& st) {
            run_limiter<srl::steady_clock, sharded>(st, n, clock_mode::clocked, r);
        });
    }
    benchmark::RegisterBenchmark("core/floor/steady_clock", bm_floor<srl::steady_clock>)
        ->Threads(1)
        ->Threads(2)
        ->UseRealTime();
    benchmark::RegisterBenchmark("core/floor/coarse_clock", bm_floor<srl::coarse_steady_clock>)
        ->Threads(1)
        ->Threads(2)
        ->UseRealTime();
    benchmark::RegisterBenchmark("core/floor/tsc_clock", bm_floor<srl::tsc_clock>)
        ->Threads(1)
        ->Threads(2)
        ->UseRealTime();
    benchmark::RegisterBenchmark("core/unshared/steady_clock", bm_unshared<srl::steady_clock>)
        ->Threads(1)
        ->Threads(2)
        ->UseRealTime();
    benchmark::RegisterBenchmark(
        "core/floor_100k/steady_clock",
        [](benchmark::State& st) { bm_floor_keys<srl::steady_clock>(st, 100'000); })
        ->Threads(1)
        ->Threads(2)
        ->UseRealTime();
    benchmark::RegisterBenchmark("core/machine/walk_8mib", bm_machine_walk);
    benchmark::RegisterBenchmark("core/machine/round_trip", bm_machine_round_trip)
        ->Threads(2)
        ->UseRealTime();
    benchmark::RegisterBenchmark("core/memory/keys_1m", bm_memory)
        ->Iterations(1)
        ->Unit(benchmark::kMillisecond);
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
