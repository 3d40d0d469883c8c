// benchmarks/bench_keys.hpp
// What the limiter benchmarks share: the request that is its own key (viewed, no
// allocation), the scattered key working sets ("user:<n>"), built once per size, and
// a process that has started a thread, as a server has; and each thread's walk over a
// working set in its own random order, as the peers walk theirs.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <numeric>
#include <random>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace srl_bench {

// The request is the key itself; the extractor views it (no allocation).
struct view_key {
    std::string_view operator()(const std::string& s) const noexcept { return s; }
};

// n distinct keys, built on first use and kept for the program's life.
inline const std::vector<std::string>& keys(std::size_t n) {
    static std::mutex m;
    static std::vector<std::unique_ptr<std::vector<std::string>>> cache;
    std::lock_guard<std::mutex> lock(m);
    for (auto& c : cache)
        if (c->size() == n) return *c;
    auto v = std::make_unique<std::vector<std::string>>();
    v->reserve(n);
    for (std::size_t i = 0; i < n; ++i)
        v->push_back("user:" + std::to_string(i * 2654435761u % 1000000007u));
    cache.push_back(std::move(v));
    return *cache.back();
}

// The order in which thread `thread` visits n keys: a random permutation of 0..n-1,
// its own per thread, built on first use. Random rather than strided, so that no
// hardware prefetcher learns where the next key's state lives (a strided walk over
// states allocated in key order would let it).
inline const std::vector<std::uint32_t>& walk(std::size_t n, int thread) {
    static std::mutex m;
    struct made {
        std::size_t n;
        int thread;
        std::unique_ptr<std::vector<std::uint32_t>> order;
    };
    static std::vector<made> cache;
    std::lock_guard<std::mutex> lock(m);
    for (auto& c : cache)
        if (c.n == n && c.thread == thread) return *c.order;
    auto v = std::make_unique<std::vector<std::uint32_t>>(n);
    std::iota(v->begin(), v->end(), std::uint32_t{0});
    std::mt19937_64 rng(static_cast<std::uint64_t>(thread) + 1);
    std::shuffle(v->begin(), v->end(), rng);
    cache.push_back(made{n, thread, std::move(v)});
    return *cache.back().order;
}

// Call first in main(). Until a process starts its first thread, glibc takes a cheaper
// path for an uncontended mutex (a lock and unlock cost about 4 ns here, against 13 ns
// once any thread has existed), so 1-thread cases run before any 2-thread one would
// measure a process no server is. Every peer (Go, the JVM) always has threads.
inline void as_a_server_process() {
    std::thread([] {}).join();
}

}  // namespace srl_bench
