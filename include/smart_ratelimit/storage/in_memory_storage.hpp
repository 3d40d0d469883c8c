// smart_ratelimit/storage/in_memory_storage.hpp
// Bounded, sharded in-process storage of algorithm states. Keys hash with a
// per-process random seed to one of a power-of-two number of shards, each a hash map
// under its own mutex; a full shard evicts an idle key first (one whose state is as
// good as fresh), else a least recently used one (CLOCK, the second-chance LRU).
#pragma once

#include <smart_ratelimit/algorithms/any_algorithm.hpp>
#include <smart_ratelimit/concepts.hpp>
#include <smart_ratelimit/decision.hpp>
#include <smart_ratelimit/detail/hash.hpp>
#include <smart_ratelimit/detail/key_table.hpp>
#include <smart_ratelimit/null_mutex.hpp>
#include <smart_ratelimit/detail/time_math.hpp>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

namespace smart_ratelimit {

/// Options of in_memory_storage.
struct in_memory_options {
    /// Upper bound on stored keys. Each shard holds at most max_keys / shards keys.
    std::size_t max_keys = 1'000'000;
    /// Number of shards, rounded down to a power of two and to at most max_keys / 16.
    std::size_t shards = 64;
    /// Hash seed; 0 draws a random one (the default: attackers cannot aim at a shard).
    std::uint64_t seed = 0;
    /// How many least recently used keys a full shard inspects for an idle one.
    std::size_t eviction_scan = 8;
};

/// Counters of in_memory_storage, summed over shards.
struct in_memory_stats {
    std::size_t keys = 0;
    std::uint64_t evictions_idle = 0;  ///< evicted keys whose state was as good as fresh
    std::uint64_t evictions_lru = 0;   ///< evicted keys that still held quota (LRU)
    std::uint64_t evictions() const noexcept { return evictions_idle + evictions_lru; }
};

/// In-memory storage for algorithm states (a storage_backend and a state_store).
/// Lookups of existing keys do not allocate (heterogeneous lookup by string_view).
/// A key becomes idle once its last decision's reset_after has passed; such keys go
/// first when a shard is full, since dropping them changes no decision: the shard
/// looks at its `eviction_scan` oldest keys for one. Otherwise it evicts by CLOCK, the
/// usual approximation of least-recently-used: keys sit in insertion order, a lookup
/// only sets a "referenced" bit (no list surgery, so no extra cache misses on the hot
/// path), and eviction gives referenced keys a second chance before taking the oldest
/// unreferenced one.
/// Thread safety: every member is safe to call concurrently when Mutex is a real
/// mutex (the default); with null_mutex (in_memory_storage_st) one thread at a time.
template <algorithm Algorithm = any_algorithm, class Mutex = std::mutex>
class in_memory_storage {
public:
    using algorithm_type = Algorithm;
    using state_type = typename Algorithm::state_type;
    using mutex_type = Mutex;

    in_memory_storage() : in_memory_storage(in_memory_options{}) {}
    explicit in_memory_storage(in_memory_options o) : opts_(o) {
        if (opts_.max_keys == 0) opts_.max_keys = 1;
        // Power of two, at most `shards`, and small enough that each shard holds at
        // least 16 keys (so small bounds are not eaten by hash imbalance).
        std::size_t n = 1;
        while (n * 2 <= opts_.shards && n * 2 * 16 <= opts_.max_keys) n *= 2;
        shard_bits_ = 0;
        while ((std::size_t{1} << shard_bits_) < n) ++shard_bits_;
        per_shard_ = opts_.max_keys / n;
        if (opts_.seed == 0) {
            std::random_device rd;
            opts_.seed = detail::mix64((static_cast<std::uint64_t>(rd()) << 32) ^ rd() ^
                                       reinterpret_cast<std::uintptr_t>(this));
        }
        mixed_seed_ = detail::mix_seed(opts_.seed);
        shards_ = std::make_unique<shard[]>(n);
    }

    in_memory_storage(const in_memory_storage&) = delete;
    in_memory_storage& operator=(const in_memory_storage&) = delete;
    in_memory_storage(in_memory_storage&&) noexcept = default;
    in_memory_storage& operator=(in_memory_storage&&) noexcept = default;

    // ---- storage_backend -------------------------------------------------------------

    outcome acquire(std::string_view key, const Algorithm& a, std::chrono::nanoseconds now,
                    std::uint64_t cost) {
        const std::uint64_t h = hash(key);
        shard& sh = shard_for(h);
        std::lock_guard<Mutex> lock(sh.mutex);
        entry& e = find_or_insert(sh, key, h, now.count(), nullptr);
        const outcome o = a.try_acquire(e.state, now, cost);
        e.idle_at = detail::sat_add(now.count(), o.reset_after.count());
        return o;
    }

    outcome peek(std::string_view key, const Algorithm& a, std::chrono::nanoseconds now,
                 std::uint64_t cost) {
        const std::uint64_t h = hash(key);
        shard& sh = shard_for(h);
        std::lock_guard<Mutex> lock(sh.mutex);
        const node* n = sh.table.find(key, h);
        if (n == nullptr) return a.peek(state_type{}, now, cost);
        return a.peek(n->value.state, now, cost);
    }

    void release(std::string_view key, const Algorithm& a, std::chrono::nanoseconds now,
                 std::uint64_t cost) {
        const std::uint64_t h = hash(key);
        shard& sh = shard_for(h);
        std::lock_guard<Mutex> lock(sh.mutex);
        node* n = sh.table.find(key, h);
        if (n != nullptr) a.release(n->value.state, now, cost);
    }

    // ---- state_store -----------------------------------------------------------------

    /// Inserts `init` when `key` is absent, then returns fn(state&) run under the lock.
    /// States touched this way are never considered idle (only LRU-evicted).
    template <class Fn>
    decltype(auto) update(std::string_view key, const state_type& init, Fn&& fn) {
        const std::uint64_t h = hash(key);
        shard& sh = shard_for(h);
        std::lock_guard<Mutex> lock(sh.mutex);
        entry& e = find_or_insert(sh, key, h, sh.latest, &init);
        e.idle_at = std::numeric_limits<std::int64_t>::max();
        return std::invoke(std::forward<Fn>(fn), e.state);
    }

    /// Returns fn(const state_type*) run under the lock; nullptr when `key` is absent.
    template <class Fn>
    decltype(auto) visit(std::string_view key, Fn&& fn) const {
        const std::uint64_t h = hash(key);
        const shard& sh = shard_for(h);
        std::lock_guard<Mutex> lock(sh.mutex);
        const node* n = sh.table.find(key, h);
        const state_type* p = n == nullptr ? nullptr : &n->value.state;
        return std::invoke(std::forward<Fn>(fn), p);
    }

    /// Removes `key`; returns whether it was present.
    bool erase(std::string_view key) {
        const std::uint64_t h = hash(key);
        shard& sh = shard_for(h);
        std::lock_guard<Mutex> lock(sh.mutex);
        node* n = sh.table.find(key, h);
        if (n == nullptr) return false;
        unlink(sh, n);
        sh.table.erase(n);
        return true;
    }

    /// Number of stored keys (a snapshot).
    std::size_t size() const {
        std::size_t n = 0;
        for (std::size_t i = 0; i < shard_count(); ++i) {
            std::lock_guard<Mutex> lock(shards_[i].mutex);
            n += shards_[i].table.size();
        }
        return n;
    }

    in_memory_stats stats() const {
        in_memory_stats s;
        for (std::size_t i = 0; i < shard_count(); ++i) {
            std::lock_guard<Mutex> lock(shards_[i].mutex);
            s.keys += shards_[i].table.size();
            s.evictions_idle += shards_[i].evictions_idle;
            s.evictions_lru += shards_[i].evictions_lru;
        }
        return s;
    }

    std::size_t shard_count() const noexcept { return std::size_t{1} << shard_bits_; }
    std::size_t max_keys() const noexcept { return per_shard_ * shard_count(); }
    const in_memory_options& options() const noexcept { return opts_; }

private:
    struct entry {
        state_type state{};
        std::int64_t idle_at = std::numeric_limits<std::int64_t>::max();
    };
    using table_type = detail::key_table<entry>;
    using node = typename table_type::node;

    struct alignas(64) shard {
        mutable Mutex mutex;
        table_type table;
        node* head = nullptr;  // most recently inserted (or given a second chance)
        node* tail = nullptr;  // oldest
        std::int64_t latest = std::numeric_limits<std::int64_t>::min();
        std::uint64_t evictions_idle = 0;
        std::uint64_t evictions_lru = 0;
    };

    std::uint64_t hash(std::string_view key) const noexcept {
        return detail::hash_bytes_mixed(key, mixed_seed_);  // == hash_bytes(key, seed)
    }
    shard& shard_for(std::uint64_t h) noexcept {
        return shards_[shard_bits_ == 0 ? 0 : static_cast<std::size_t>(h >> (64 - shard_bits_))];
    }
    const shard& shard_for(std::uint64_t h) const noexcept {
        return shards_[shard_bits_ == 0 ? 0 : static_cast<std::size_t>(h >> (64 - shard_bits_))];
    }

    static void unlink(shard& sh, node* n) noexcept {
        if (n->prev)
            n->prev->next = n->next;
        else
            sh.head = n->next;
        if (n->next)
            n->next->prev = n->prev;
        else
            sh.tail = n->prev;
        n->prev = n->next = nullptr;
    }
    static void push_front(shard& sh, node* n) noexcept {
        n->prev = nullptr;
        n->next = sh.head;
        if (sh.head) sh.head->prev = n;
        sh.head = n;
        if (!sh.tail) sh.tail = n;
    }

    void evict(shard& sh, node* victim, bool idle) {
        if (idle)
            ++sh.evictions_idle;
        else
            ++sh.evictions_lru;
        unlink(sh, victim);
        sh.table.erase(victim);
    }

    void evict_one(shard& sh, std::int64_t now) {
        node* n = sh.tail;
        for (std::size_t i = 0; n != nullptr && i < opts_.eviction_scan; ++i, n = n->prev) {
            if (n->value.idle_at <= now) return evict(sh, n, true);
        }
        // CLOCK: referenced keys go back to the head with the bit cleared; the first
        // unreferenced one from the tail is evicted. Bounded by the shard size.
        const std::size_t limit = sh.table.size();
        for (std::size_t step = 0; sh.tail != nullptr; ++step) {
            node* t = sh.tail;
            if (!t->referenced || step >= limit) return evict(sh, t, false);
            t->referenced = false;
            unlink(sh, t);
            push_front(sh, t);
        }
    }

    entry& find_or_insert(shard& sh, std::string_view key, std::uint64_t h, std::int64_t now,
                          const state_type* init) {
        if (now > sh.latest) sh.latest = now;
        if (node* n = sh.table.find(key, h)) {
            n->referenced = true;
            return n->value;
        }
        if (sh.table.size() >= per_shard_) evict_one(sh, sh.latest);
        node* n = init ? sh.table.insert(key, h, entry{*init}) : sh.table.insert(key, h);
        push_front(sh, n);
        return n->value;
    }

    in_memory_options opts_;
    std::uint64_t mixed_seed_ = 0;  // detail::mix_seed(opts_.seed), hoisted off the hot path
    unsigned shard_bits_ = 0;
    std::size_t per_shard_ = 1;
    std::unique_ptr<shard[]> shards_;
};

/// Single-threaded in-memory storage (no locking).
template <algorithm Algorithm = any_algorithm>
using in_memory_storage_st = in_memory_storage<Algorithm, null_mutex>;

/// Thread-safe in-memory storage (the default).
template <algorithm Algorithm = any_algorithm>
using in_memory_storage_mt = in_memory_storage<Algorithm, std::mutex>;

}  // namespace smart_ratelimit
