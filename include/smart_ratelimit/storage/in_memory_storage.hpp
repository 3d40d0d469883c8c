// smart_ratelimit/storage/in_memory_storage.hpp
// Bounded, sharded in-process storage of algorithm states. Keys hash with per-process
// secrets to one of a power-of-two number of shards, each a hash map under its own
// mutex; a full shard evicts an idle key first (one whose state is as good as fresh),
// else a least recently used one (CLOCK, the second-chance LRU), and a key over its
// limit only when the shard holds nothing else.
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
    /// The hash's mixing constants come from it, and with 0 the strong fallback's key
    /// is drawn separately; a fixed seed makes all of them reproducible (for tests).
    std::uint64_t seed = 0;
    /// How many least recently used keys a full shard inspects for an idle one.
    std::size_t eviction_scan = 8;
};

/// Counters of in_memory_storage, summed over shards.
struct in_memory_stats {
    std::size_t keys = 0;
    std::uint64_t evictions_idle = 0;  ///< evicted keys whose state was as good as fresh
    std::uint64_t evictions_lru = 0;   ///< evicted keys that still held quota (LRU)
    /// Evicted keys that had spent their whole quota (the shard held no other kind).
    std::uint64_t evictions_over_limit = 0;
    /// Shards whose table switched to SipHash-1-3 after a probe longer than the cap.
    std::size_t strong_hash_shards = 0;
    /// The longest table probe of any shard (slots past a key's home slot).
    std::size_t longest_probe = 0;
    std::uint64_t evictions() const noexcept {
        return evictions_idle + evictions_lru + evictions_over_limit;
    }
};

namespace detail {

/// How an in-memory storage splits its key bound over shards.
struct storage_layout {
    unsigned shard_bits = 0;    ///< log2 of the number of shards
    std::size_t per_shard = 1;  ///< each shard's share of max_keys
};

/// The shard layout of `o` and the storage's hash secrets, shared by the in-memory
/// storages. The shard count is a power of two, at most `o.shards`, and small enough
/// that each shard holds at least 16 keys (so small bounds are not eaten by hash
/// imbalance). With `o.seed == 0` the seed is drawn from std::random_device (and
/// `salt`, the storage's address) and written back, and the SipHash key gets 128 bits
/// of its own; a fixed seed derives every secret reproducibly. `o.max_keys == 0`
/// becomes 1.
inline storage_layout layout_storage(in_memory_options& o, const void* salt, hash_secret& secret) {
    if (o.max_keys == 0) o.max_keys = 1;
    std::size_t n = 1;
    while (n * 2 <= o.shards && n * 2 * 16 <= o.max_keys) n *= 2;
    storage_layout l;
    while ((std::size_t{1} << l.shard_bits) < n) ++l.shard_bits;
    l.per_shard = o.max_keys / n;
    if (o.seed == 0) {
        std::random_device rd;
        const auto draw = [&rd] { return mix64((static_cast<std::uint64_t>(rd()) << 32) ^ rd()); };
        o.seed = draw() ^ reinterpret_cast<std::uintptr_t>(salt);
        secret = make_hash_secret(o.seed);
        secret.sip[0] = draw();  // 128 bits of their own, not derived from the seed
        secret.sip[1] = draw();
    } else {
        secret = make_hash_secret(o.seed);
    }
    return l;
}

}  // namespace detail

/// In-memory storage for algorithm states (a storage_backend and a state_store).
/// Lookups of existing keys do not allocate (heterogeneous lookup by string_view).
/// A key becomes idle once its last decision's reset_after has passed; such keys go
/// first when a shard is full, since dropping them changes no decision: the shard
/// looks at its `eviction_scan` oldest keys for one. Otherwise it evicts by CLOCK, the
/// usual approximation of least-recently-used: keys sit in insertion order, a lookup
/// only sets a "referenced" bit (no list surgery, so no extra cache misses on the hot
/// path), and eviction gives referenced keys a second chance before taking the oldest
/// unreferenced one. A key whose last decision left it no quota (over its limit) sits
/// in a second list and is evicted only when the shard holds no other key: a flood of
/// fresh keys cannot reset a blocked client's quota.
/// Hash flooding: the key hash is keyed by secrets drawn per storage, and a shard whose
/// table probes past a cap rehashes with SipHash-1-3, so lookups stay short even if
/// the fast hash were beaten.
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
        const detail::storage_layout layout = detail::layout_storage(opts_, this, secret_);
        shard_bits_ = layout.shard_bits;
        per_shard_ = layout.per_shard;
        const std::size_t n = shard_count();
        shards_ = std::make_unique<shard[]>(n);
        for (std::size_t i = 0; i < n; ++i) shards_[i].table = table_type(secret_.sip);
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
        node* n = find_or_insert(sh, key, h, now.count(), nullptr);
        entry& e = n->value;
        const outcome o = a.try_acquire(e.state, now, cost);
        e.idle_at = detail::sat_add(now.count(), o.reset_after.count());
        const bool over = o.remaining == 0;
        if (over != (n->list == over_list)) {  // moves between the shard's eviction lists
            unlink(sh, n);
            n->list = over ? over_list : keys_list;
            push_front(sh, n);
        }
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
        entry& e = find_or_insert(sh, key, h, sh.latest, &init)->value;
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
            s.evictions_over_limit += shards_[i].evictions_over_limit;
            if (shards_[i].table.strong()) ++s.strong_hash_shards;
            if (shards_[i].table.longest_probe() > s.longest_probe)
                s.longest_probe = shards_[i].table.longest_probe();
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

    // The eviction list a node is in (node::list): keys_list for keys with quota left,
    // over_list for keys whose last decision left no quota.
    static constexpr std::uint8_t keys_list = 0, over_list = 1;

    // An eviction list: keys in insertion order (or moved to the head by CLOCK).
    struct list {
        node* head = nullptr;  // most recently inserted (or given a second chance)
        node* tail = nullptr;  // oldest
    };

    struct alignas(64) shard {
        mutable Mutex mutex;
        table_type table;
        list keys;  // keys with quota left (or touched only through update)
        list over;  // keys over their limit, in the order they got there
        std::int64_t latest = std::numeric_limits<std::int64_t>::min();
        std::uint64_t evictions_idle = 0;
        std::uint64_t evictions_lru = 0;
        std::uint64_t evictions_over_limit = 0;
    };

    std::uint64_t hash(std::string_view key) const noexcept {
        return detail::keyed_hash(key, secret_);
    }
    shard& shard_for(std::uint64_t h) noexcept {
        return shards_[shard_bits_ == 0 ? 0 : static_cast<std::size_t>(h >> (64 - shard_bits_))];
    }
    const shard& shard_for(std::uint64_t h) const noexcept {
        return shards_[shard_bits_ == 0 ? 0 : static_cast<std::size_t>(h >> (64 - shard_bits_))];
    }

    static list& list_of(shard& sh, const node* n) noexcept {
        return n->list == over_list ? sh.over : sh.keys;
    }
    static void unlink(shard& sh, node* n) noexcept {
        list& l = list_of(sh, n);
        if (n->prev)
            n->prev->next = n->next;
        else
            l.head = n->next;
        if (n->next)
            n->next->prev = n->prev;
        else
            l.tail = n->prev;
        n->prev = n->next = nullptr;
    }
    static void push_front(shard& sh, node* n) noexcept {
        list& l = list_of(sh, n);
        n->prev = nullptr;
        n->next = l.head;
        if (l.head) l.head->prev = n;
        l.head = n;
        if (!l.tail) l.tail = n;
    }

    void evict(shard& sh, node* victim, std::uint64_t shard::*counter) {
        ++(sh.*counter);
        unlink(sh, victim);
        sh.table.erase(victim);
    }

    // The first idle key among the `eviction_scan` oldest of `l`, or nullptr.
    node* idle_near_tail(const list& l, std::int64_t now) const noexcept {
        node* n = l.tail;
        for (std::size_t i = 0; n != nullptr && i < opts_.eviction_scan; ++i, n = n->prev)
            if (n->value.idle_at <= now) return n;
        return nullptr;
    }

    // CLOCK over `l`: referenced keys go back to the head with the bit cleared; returns
    // the first unreferenced one from the tail (after l's length, the tail), or nullptr.
    static node* clock_victim(shard& sh, list& l) noexcept {
        const std::size_t limit = sh.table.size();
        for (std::size_t step = 0; l.tail != nullptr; ++step) {
            node* t = l.tail;
            if (!t->referenced || step >= limit) return t;
            t->referenced = false;
            unlink(sh, t);
            push_front(sh, t);
        }
        return nullptr;
    }

    // In order: an idle key (over-limit keys first: the oldest of them are the likeliest
    // to have recovered), a key with quota left, and only when the shard holds nothing
    // else, a key over its limit; least recently used first (CLOCK) in both lists.
    void evict_one(shard& sh, std::int64_t now) {
        if (node* n = idle_near_tail(sh.over, now)) return evict(sh, n, &shard::evictions_idle);
        if (node* n = idle_near_tail(sh.keys, now)) return evict(sh, n, &shard::evictions_idle);
        if (node* n = clock_victim(sh, sh.keys)) return evict(sh, n, &shard::evictions_lru);
        if (node* n = clock_victim(sh, sh.over)) return evict(sh, n, &shard::evictions_over_limit);
    }

    node* find_or_insert(shard& sh, std::string_view key, std::uint64_t h, std::int64_t now,
                         const state_type* init) {
        if (now > sh.latest) sh.latest = now;
        if (node* n = sh.table.find(key, h)) {
            n->referenced = true;
            return n;
        }
        if (sh.table.size() >= per_shard_) evict_one(sh, sh.latest);
        node* n = init ? sh.table.insert(key, h, entry{*init}) : sh.table.insert(key, h);
        push_front(sh, n);
        return n;
    }

    in_memory_options opts_;
    detail::hash_secret secret_;  // every secret of the key hashes, drawn per storage
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
