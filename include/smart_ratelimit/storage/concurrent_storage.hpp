// smart_ratelimit/storage/concurrent_storage.hpp
// Bounded in-process storage whose decisions take no lock. Keys hash with per-storage
// secrets to shards, each an open-addressing table of one-word slots (a 16-bit
// fingerprint beside the node pointer) that readers probe without locking; only
// inserting a key and evicting one lock the shard. A decision on a stored key reads
// its state under a seqlock and, when the state changes, publishes it with one
// compare-and-swap on the key's version word; a decision that changes nothing (a
// token-bucket or fixed-window denial) writes nothing, so threads that hammer one
// key share its cache line instead of bouncing it.
#pragma once

#include <smart_ratelimit/algorithms/any_algorithm.hpp>
#include <smart_ratelimit/concepts.hpp>
#include <smart_ratelimit/decision.hpp>
#include <smart_ratelimit/detail/concurrent_node.hpp>
#include <smart_ratelimit/detail/hash.hpp>
#include <smart_ratelimit/detail/time_math.hpp>
#include <smart_ratelimit/storage/in_memory_storage.hpp>

#include <algorithm>
#include <atomic>
#include <bit>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <limits>
#include <memory>
#include <mutex>
#include <new>
#include <random>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

namespace smart_ratelimit {

/// In-memory storage for algorithm states whose decisions on stored keys are lock-free.
///
/// Same options, bound and statistics as in_memory_storage, different machinery:
/// - Lookup: each shard's table has a fixed capacity of twice its share of max_keys
///   (a full shard is half loaded, so a probe stays short), allocated zeroed and
///   touched only as keys arrive. A slot is one 64-bit word: a 16-bit fingerprint of
///   the key's hash and a 48-bit node pointer (x86-64 and AArch64 user addresses). The
///   probe starts where the hash's low 32 bits, scaled to the capacity, point (so the
///   capacity need not be a power of two). Readers take no lock; a
///   reader that misses (or races with an eviction) retries under the shard's lock,
///   so a miss is never taken for an absent key. Each thread remembers the node it
///   last decided on (one per storage type); when its decision before was on that
///   node too (a hot client, or a rule whose key is the same for every request), the
///   next decision tries the node first and, when it holds the key, skips the hash and
///   the probe. (A thread_local: in code built with -fPIC for a shared library,
///   reaching it costs a call.) Otherwise the limiter begins the lookup before it
///   reads its clock (start_lookup: the hash, and the slot's line prefetched), so that
///   the table's cache miss overlaps the clock read.
/// - State: a trivially copyable state (every built-in algorithm but the exact
///   sliding window) is copied out under the key's seqlock, decided on, and written
///   back with one compare-and-swap when it changed. A decision that lost a race with
///   a concurrent writer backs off and decides once more on the new state without the
///   lock (the winner's write most often leaves a state that denies, and a denial
///   writes nothing); a second loss locks the key first. Other states (the exact
///   sliding window, any_algorithm) are decided under the key's own spin lock, the
///   same CAS, held for the algorithm's few nanoseconds, never across a call that
///   can block.
/// - Eviction (under the shard's lock), when a shard is full: a clock hand sweeps the
///   table from where it stopped, taking the first idle key (its state as good as
///   fresh; idle times are kept to 67 ms, rounded up, so a key turns idle late, never
///   early) among at least `eviction_scan` keys, else the first key with quota left
///   that was not used since the hand last passed (CLOCK), and a key over its limit
///   only when the shard holds nothing else. So a flood of fresh keys cannot reset a
///   blocked client's quota.
/// - Memory: nodes are carved from per-shard blocks (no allocator header per key), reused
///   within their key-size class, and returned to the heap only with the storage (a
///   lock-free reader may still be looking at an evicted node); each class keeps at
///   most as many nodes as the shard ever held at once. A token-bucket key of up to
///   16 bytes costs 56 bytes of node and 16 of table. Keys are at most 65,535 bytes
///   (longer ones throw std::length_error; the limiter's keys are at most 255).
/// - Hash flooding: the keys hash with secrets drawn per storage, and a shard whose
///   placement probes past key_table's cap rehashes with SipHash-1-3 for good.
/// Thread safety: every member may be called concurrently. The Mutex guards inserts
/// and evictions; null_mutex makes those single-threaded.
template <algorithm Algorithm, class Mutex = std::mutex>
class concurrent_storage {
public:
    using algorithm_type = Algorithm;
    using state_type = typename Algorithm::state_type;
    using mutex_type = Mutex;

    /// The longest placement probe before a shard switches to SipHash-1-3 (the same
    /// cap as in_memory_storage's tables; see key_table).
    static constexpr std::size_t default_probe_cap = detail::key_table<int>::default_probe_cap;

    concurrent_storage() : concurrent_storage(in_memory_options{}) {}
    /// `probe_cap`: as default_probe_cap (a smaller cap switches sooner: for tests).
    explicit concurrent_storage(in_memory_options o, std::size_t probe_cap = default_probe_cap)
        : opts_(o), probe_cap_(probe_cap) {
        static_assert(sizeof(void*) == 8, "concurrent_storage packs 48-bit pointers");
        static_assert(std::endian::native == std::endian::little,
                      "concurrent_storage keeps keys as little-endian words");
        const detail::storage_layout layout = detail::layout_storage(opts_, this, secret_);
        shard_bits_ = layout.shard_bits;
        per_shard_ = layout.per_shard;
        const std::size_t n = shard_count();
        capacity_ = std::max<std::size_t>(16, 2 * per_shard_);
        if (capacity_ > std::numeric_limits<std::uint32_t>::max())
            throw std::length_error("concurrent_storage: too many keys per shard");
        shards_ = std::make_unique<shard[]>(n);
        for (std::size_t i = 0; i < n; ++i) {
            shards_[i].slots.reset(static_cast<std::uint64_t*>(std::calloc(capacity_, 8)));
            if (!shards_[i].slots) throw std::bad_alloc();
        }
    }

    concurrent_storage(const concurrent_storage&) = delete;
    concurrent_storage& operator=(const concurrent_storage&) = delete;
    concurrent_storage(concurrent_storage&&) noexcept = default;
    concurrent_storage& operator=(concurrent_storage&& o) noexcept {
        if (this != &o) {
            free_all();
            opts_ = o.opts_;
            probe_cap_ = o.probe_cap_;
            secret_ = o.secret_;
            shard_bits_ = o.shard_bits_;
            per_shard_ = o.per_shard_;
            capacity_ = o.capacity_;
            shards_ = std::move(o.shards_);
            id_ = std::move(o.id_);  // this storage's old nodes are gone with its old id
        }
        return *this;
    }
    ~concurrent_storage() { free_all(); }

    // ---- storage_backend -------------------------------------------------------------

    outcome acquire(std::string_view key, const Algorithm& a, std::chrono::nanoseconds now,
                    std::uint64_t cost) {
        return acquire(start_lookup(key), a, now, cost);
    }

    /// acquire's decision and write, by try_admit: without the numbers only an outcome
    /// reports (limiter::allow).
    admission admit(std::string_view key, const Algorithm& a, std::chrono::nanoseconds now,
                    std::uint64_t cost) {
        return admit(start_lookup(key), a, now, cost);
    }

    /// A decision's lookup, begun before its time is known (start_lookup): its key and,
    /// when begun, the key's hash. Good for one acquire or admit, on any thread.
    class started_lookup {
    public:
        std::string_view key() const noexcept { return key_; }

    private:
        friend concurrent_storage;
        started_lookup(std::string_view key, bool hashed, std::uint64_t hash) noexcept
            : key_(key), hash_(hash), hashed_(hashed) {}
        std::string_view key_;
        std::uint64_t hash_;
        bool hashed_;  // else acquire or admit does the whole lookup
    };

    /// Begins a decision on `key` before its time is read: hashes the key and starts
    /// fetching its slot's cache line, so that the table's miss overlaps the clock read
    /// (a precise clock read, steady_clock's, waits for every earlier load to
    /// complete, but not for a prefetch). The limiter begins the lookup, reads its
    /// clock, then calls acquire or admit with it. Begins nothing on a thread whose
    /// last two decisions (on storages of this type) were on one key: that key (a hot
    /// client, or a rule with one key for every request) is most likely next, and found
    /// from the node remembered, with no hash and no probe; tested before the clock
    /// read, the loads of that test would hold the read up.
    [[gnu::always_inline]] started_lookup start_lookup(std::string_view key) const noexcept {
        if (recent_.repeated) return {key, false, 0};
        return {key, true, hash_and_prefetch(key)};
    }

    /// acquire(l.key(), a, now, cost) with the lookup `l` begun.
    outcome acquire(const started_lookup& l, const Algorithm& a, std::chrono::nanoseconds now,
                    std::uint64_t cost) {
        return write(
            l, now.count(), [&](state_type& s) { return a.try_acquire(s, now, cost); },
            [&](node& n, const outcome& o) { mark(n, now, admission::of(o)); });
    }

    /// admit(l.key(), a, now, cost) with the lookup `l` begun.
    admission admit(const started_lookup& l, const Algorithm& a, std::chrono::nanoseconds now,
                    std::uint64_t cost) {
        return write(
            l, now.count(), [&](state_type& s) { return try_admit(a, s, now, cost); },
            [&](node& n, const admission& d) { mark(n, now, d); });
    }

    outcome peek(std::string_view key, const Algorithm& a, std::chrono::nanoseconds now,
                 std::uint64_t cost) {
        return read(key, [&](const state_type* s) {
            return a.peek(s == nullptr ? state_type{} : *s, now, cost);
        });
    }

    void release(std::string_view key, const Algorithm& a, std::chrono::nanoseconds now,
                 std::uint64_t cost) {
        const std::uint64_t h = hash(key);
        shard& sh = shard_for(h);
        if (!lookup(sh, key, h).n) {  // a miss may be a race: ask again under the lock
            std::lock_guard<Mutex> lock(sh.mutex);
            if (!lookup(sh, key, h).n) return;  // absent: nothing to give back
        }
        write(
            started_lookup(key, false, 0), now.count(),
            [&](state_type& s) {
                a.release(s, now, cost);
                return 0;
            },
            [](node&, int) {});
    }

    // ---- state_store -----------------------------------------------------------------

    /// Inserts `init` when `key` is absent, then returns fn(state&), run while the key
    /// is locked. States touched this way are never considered idle (only LRU-evicted).
    /// fn's result is returned by value.
    template <class Fn>
    auto update(std::string_view key, const state_type& init, Fn&& fn)
        -> std::decay_t<std::invoke_result_t<Fn&, state_type&>> {
        const std::uint64_t h = hash(key);
        shard& sh = shard_for(h);
        for (;;) {
            found f = lookup(sh, key, h);
            if (!f.n)
                f = lookup_or_insert(sh, key, h, std::numeric_limits<std::int64_t>::min(), &init);
            if ((f.version & node::locked) || !try_lock(f)) {
                pause();
                continue;
            }
            std::atomic_thread_fence(std::memory_order_release);
            node& n = *f.n;
            touch(n);
            n.pin();
            unlock_guard guard{n, f.version};
            if constexpr (optimistic) {
                state_type s = cell_type::decode(n.cell.load());
                struct write_back {  // also when fn throws after changing the copy
                    node& n;
                    const state_type& s;
                    ~write_back() { n.cell.store(cell_type::encode(s)); }
                } back{n, s};
                return std::invoke(fn, s);
            } else {
                return std::invoke(fn, n.cell.state);
            }
        }
    }

    /// Returns fn(const state_type*) on a consistent copy of the key's state (or the
    /// state itself, under the key's lock, for states that cannot be copied racily);
    /// nullptr when `key` is absent.
    template <class Fn>
    decltype(auto) visit(std::string_view key, Fn&& fn) const {
        return const_cast<concurrent_storage*>(this)->read(key, std::forward<Fn>(fn));
    }

    /// Removes `key`; returns whether it was present.
    bool erase(std::string_view key) {
        const std::uint64_t h = hash(key);
        shard& sh = shard_for(h);
        std::lock_guard<Mutex> lock(sh.mutex);
        const found f = lookup(sh, key, h);
        if (!f.n) return false;
        kill(sh, f.n);
        return true;
    }

    /// Number of stored keys (a snapshot).
    std::size_t size() const {
        std::size_t n = 0;
        for (std::size_t i = 0; i < shard_count(); ++i) {
            std::lock_guard<Mutex> lock(shards_[i].mutex);
            n += shards_[i].size;
        }
        return n;
    }

    in_memory_stats stats() const {
        in_memory_stats s;
        for (std::size_t i = 0; i < shard_count(); ++i) {
            const shard& sh = shards_[i];
            std::lock_guard<Mutex> lock(sh.mutex);
            s.keys += sh.size;
            s.evictions_idle += sh.evictions_idle;
            s.evictions_lru += sh.evictions_lru;
            s.evictions_over_limit += sh.evictions_over_limit;
            if (sh.strong.load(std::memory_order_relaxed)) ++s.strong_hash_shards;
            if (sh.longest_probe > s.longest_probe) s.longest_probe = sh.longest_probe;
        }
        return s;
    }

    std::size_t shard_count() const noexcept { return std::size_t{1} << shard_bits_; }
    std::size_t max_keys() const noexcept { return per_shard_ * shard_count(); }
    const in_memory_options& options() const noexcept { return opts_; }

private:
    using node = detail::concurrent_node<state_type>;
    using cell_type = typename node::cell_type;
    static constexpr bool optimistic = cell_type::optimistic;
    static constexpr std::uint64_t pointer_bits = 48;
    static constexpr std::uint64_t pointer_mask = (std::uint64_t{1} << pointer_bits) - 1;

    struct free_slots {
        void operator()(std::uint64_t* p) const noexcept { std::free(p); }
    };

    struct alignas(64) shard {
        // Read by every lookup (kept apart from what inserts write).
        std::unique_ptr<std::uint64_t[], free_slots> slots;
        std::atomic<bool> strong{false};  // the table hashes with SipHash-1-3
        // Written under the mutex.
        alignas(64) mutable Mutex mutex;
        std::size_t size = 0;
        std::size_t hand = 0;  // the eviction clock's position in the table
        std::size_t longest_probe = 0;
        std::int64_t latest = std::numeric_limits<std::int64_t>::min();
        std::vector<node*> free;    // heads of the dead nodes' lists, by key class
        std::vector<void*> blocks;  // where the nodes live
        char* block_next = nullptr;
        char* block_end = nullptr;
        std::uint64_t evictions_idle = 0;
        std::uint64_t evictions_lru = 0;
        std::uint64_t evictions_over_limit = 0;
    };

    struct found {
        node* n = nullptr;
        std::uint64_t version = 0;
    };

    static void pause() noexcept {
#if defined(__x86_64__) || defined(__i386__)
        _mm_pause();
#elif defined(__aarch64__)
        asm volatile("yield");
#endif
    }

    // A decision that has lost this many races to other writers locks the key for its
    // next attempt.
    static constexpr unsigned losses_before_locking = 2;

    // Exponential back-off between attempts on a contended key: the writer that holds
    // the line gets to finish instead of having it pulled away by every retry.
    struct backoff {
        unsigned spins = 1;
        void operator()() noexcept {
            for (unsigned i = 0; i < spins; ++i) pause();
            if (spins < 64) spins *= 2;
        }
    };

    // Waits while `n` is locked by a writer (reading only its version).
    static void wait_unlocked(const node& n, backoff& wait) noexcept {
        while (n.version.load(std::memory_order_relaxed) & node::locked) wait();
    }

    std::uint64_t hash(std::string_view key) const noexcept {
        return detail::keyed_hash(key, secret_);
    }
    shard& shard_for(std::uint64_t h) const noexcept {
        return shards_[shard_bits_ == 0 ? 0 : static_cast<std::size_t>(h >> (64 - shard_bits_))];
    }
    std::uint64_t table_hash(const shard& sh, std::string_view key,
                             std::uint64_t h) const noexcept {
        return sh.strong.load(std::memory_order_acquire) ? detail::strong_hash(key, secret_) : h;
    }
    static std::atomic_ref<std::uint64_t> slot(const shard& sh, std::size_t i) noexcept {
        return std::atomic_ref<std::uint64_t>(sh.slots[i]);
    }
    static std::uint64_t fingerprint(std::uint64_t th) noexcept { return (th >> 32) & 0xffff; }
    static node* node_of(std::uint64_t word) noexcept {
        return reinterpret_cast<node*>(static_cast<std::uintptr_t>(word & pointer_mask));
    }
    // The first slot a table hash probes (its low 32 bits scaled to the capacity) and
    // the next one.
    std::size_t home(std::uint64_t th) const noexcept {
        return static_cast<std::size_t>(((th & 0xffffffffu) * capacity_) >> 32);
    }
    std::size_t next(std::size_t i) const noexcept { return i + 1 == capacity_ ? 0 : i + 1; }
    // The table hash of a stored node (under the shard's lock).
    std::uint64_t table_hash(const shard& sh, const node* n) const noexcept {
        const std::string_view key = n->key_view();
        return sh.strong.load(std::memory_order_relaxed) ? detail::strong_hash(key, secret_)
                                                         : hash(key);
    }

    // The live node holding `key`, with the version at which its key matched; {} on a
    // miss. Without the shard's lock a miss may be a race; with it, it is exact.
    found lookup(const shard& sh, std::string_view key, std::uint64_t h) const noexcept {
        const std::uint64_t th = table_hash(sh, key, h);
        const std::uint64_t fp = fingerprint(th);
        for (std::size_t i = home(th), probes = 0; probes < capacity_; i = next(i), ++probes) {
            const std::uint64_t w = slot(sh, i).load(std::memory_order_acquire);
            if (w == 0) return {};
            if ((w >> pointer_bits) != fp) continue;
            node* n = node_of(w);
            const std::uint64_t v = n->version.load(std::memory_order_acquire);
            if ((v & node::dead) == 0 && n->holds(key)) return {n, v};
        }
        return {};
    }

    // The key's node, inserting it (with `init`, or a fresh state) when absent.
    found lookup_or_insert(shard& sh, std::string_view key, std::uint64_t h, std::int64_t now,
                           const state_type* init) {
        std::lock_guard<Mutex> lock(sh.mutex);
        if (now > sh.latest) sh.latest = now;
        if (const found f = lookup(sh, key, h); f.n) return f;
        if (key.size() > node::max_key_size)
            throw std::length_error("concurrent_storage: a key is longer than " +
                                    std::to_string(node::max_key_size) + " bytes");
        if (sh.size >= per_shard_) evict_one(sh);
        node* n = take_node(sh, key.size());
        n->set_key(key);
        if constexpr (optimistic) {
            n->cell.store(cell_type::encode(init ? *init : state_type{}));
        } else {
            n->cell.state = init ? *init : state_type{};
        }
        n->pin();
        n->referenced.store(0, std::memory_order_relaxed);
        const std::uint64_t v = (n->version.load(std::memory_order_relaxed) | 3) + 1;
        n->version.store(v, std::memory_order_release);
        const std::size_t probe = place(sh, n, table_hash(sh, key, h));
        ++sh.size;
        if (probe > sh.longest_probe) sh.longest_probe = probe;
        if (probe > probe_cap_ && !sh.strong.load(std::memory_order_relaxed)) go_strong(sh);
        return {n, v};
    }

    // A dead node of the class of `key_size`-byte keys from the shard's free list,
    // else a new one.
    node* take_node(shard& sh, std::size_t key_size) {
        const std::size_t cls = detail::key_class(key_size);
        if (cls < sh.free.size() && sh.free[cls] != nullptr) {
            node* n = sh.free[cls];
            sh.free[cls] = n->next_free();
            return n;
        }
        if (sh.free.size() <= cls) sh.free.resize(cls + 1, nullptr);  // kill() needs the head
        return node::create(carve(sh, node::bytes(cls)), key_size);
    }

    // `bytes` (a multiple of 8) from the shard's current block, starting a new block
    // (twice the last one, 1 KiB to 64 KiB, or `bytes` if larger) when it is used up.
    void* carve(shard& sh, std::size_t bytes) {
        if (static_cast<std::size_t>(sh.block_end - sh.block_next) < bytes) {
            std::size_t size = std::size_t{1024} << std::min<std::size_t>(sh.blocks.size(), 6);
            if (size < bytes) size = bytes;
            sh.blocks.reserve(sh.blocks.size() + 1);
            void* block = std::malloc(size);
            if (block == nullptr) throw std::bad_alloc();
            if (reinterpret_cast<std::uintptr_t>(block) + size >
                (std::uintptr_t{1} << pointer_bits)) {
                std::free(block);
                throw std::bad_alloc();  // addresses that do not fit a slot
            }
            sh.blocks.push_back(block);
            sh.block_next = static_cast<char*>(block);
            sh.block_end = sh.block_next + size;
        }
        void* p = sh.block_next;
        sh.block_next += bytes;
        return p;
    }

    // Stores `n` in the first free slot from the home of its table hash `th`; returns
    // the probe length.
    std::size_t place(shard& sh, node* n, std::uint64_t th) noexcept {
        std::size_t i = home(th), probe = 0;
        while (slot(sh, i).load(std::memory_order_relaxed) != 0) {
            i = next(i);
            ++probe;
        }
        slot(sh, i).store((fingerprint(th) << pointer_bits) | reinterpret_cast<std::uintptr_t>(n),
                          std::memory_order_release);
        return probe;
    }

    // Marks `n` dead (waiting out a writer that holds it), removes its slot and keeps
    // it for reuse. Under the shard's lock.
    void kill(shard& sh, node* n) noexcept {
        std::uint64_t v = n->version.load(std::memory_order_relaxed);
        for (;;) {
            if (v & node::locked) {
                pause();
                v = n->version.load(std::memory_order_relaxed);
            } else if (n->version.compare_exchange_weak(v, (v + node::step) | node::dead,
                                                        std::memory_order_acquire)) {
                break;
            }
        }
        std::size_t i = home(table_hash(sh, n));
        while (node_of(slot(sh, i).load(std::memory_order_relaxed)) != n) i = next(i);
        // Backward-shift deletion; a reader that misses a moved key retries locked.
        for (std::size_t j = i;;) {
            j = next(j);
            const std::uint64_t w = slot(sh, j).load(std::memory_order_relaxed);
            if (w == 0) break;
            const std::size_t k = home(table_hash(sh, node_of(w)));
            const bool stays = i <= j ? (i < k && k <= j) : (i < k || k <= j);
            if (stays) continue;
            slot(sh, i).store(w, std::memory_order_release);
            i = j;
        }
        slot(sh, i).store(0, std::memory_order_release);
        --sh.size;
        if constexpr (!optimistic) n->cell.state = state_type{};  // frees what it holds
        n->set_next_free(sh.free[n->size_class()]);
        sh.free[n->size_class()] = n;
    }

    // The victim's order: an idle key, then an unreferenced key with quota left
    // (CLOCK), then any key with quota left, and a key over its limit only when the
    // shard holds nothing else.
    void evict_one(shard& sh) noexcept {
        node* idle = nullptr;
        node* unreferenced = nullptr;
        node* quota = nullptr;
        node* over = nullptr;
        std::size_t seen = 0;
        for (std::size_t step = 0; step < 2 * capacity_; ++step) {
            const std::size_t i = sh.hand;
            sh.hand = next(i);
            const std::uint64_t w = slot(sh, i).load(std::memory_order_relaxed);
            if (w == 0) continue;
            node* n = node_of(w);
            ++seen;
            const bool is_over = n->over();
            if (n->idle(sh.latest)) {
                idle = n;
                break;
            }
            if (is_over) {
                if (!over) over = n;
            } else if (n->referenced.load(std::memory_order_relaxed) != 0) {
                n->referenced.store(0, std::memory_order_relaxed);
                if (!quota) quota = n;
            } else if (!unreferenced) {
                unreferenced = n;
            }
            if (unreferenced && seen >= opts_.eviction_scan) break;
            if (seen >= 2 * sh.size + 1) break;  // every key twice: no better victim
        }
        if (idle) {
            ++sh.evictions_idle;
            kill(sh, idle);
        } else if (node* n = unreferenced ? unreferenced : quota) {
            ++sh.evictions_lru;
            kill(sh, n);
        } else if (over) {
            ++sh.evictions_over_limit;
            kill(sh, over);
        }
    }

    // Too many keys shared a probe sequence: rehash the shard with SipHash-1-3. Readers
    // meanwhile miss and retry under the lock.
    void go_strong(shard& sh) {
        std::vector<node*> nodes;
        nodes.reserve(sh.size);
        for (std::size_t i = 0; i < capacity_; ++i)
            if (const std::uint64_t w = slot(sh, i).load(std::memory_order_relaxed))
                nodes.push_back(node_of(w));
        sh.strong.store(true, std::memory_order_release);
        for (std::size_t i = 0; i < capacity_; ++i) slot(sh, i).store(0, std::memory_order_relaxed);
        std::size_t longest = 0;
        for (node* n : nodes) {
            const std::size_t probe = place(sh, n, table_hash(sh, n));
            if (probe > longest) longest = probe;
        }
        sh.longest_probe = longest;
    }

    void touch(node& n) noexcept {
        if (n.referenced.load(std::memory_order_relaxed) == 0)
            n.referenced.store(1, std::memory_order_relaxed);
    }

    // Records a write's eviction hints: when the state is fresh again, and whether it
    // is over its limit (never evicted before fresh or expired states).
    static void mark(node& n, std::chrono::nanoseconds now, const admission& d) noexcept {
        n.mark(now.count(), detail::sat_add(now.count(), d.reset_after.count()), d.exhausted);
    }

    // Locks the key's node: CAS from the version `f` saw to the same version locked.
    static bool try_lock(const found& f) noexcept {
        std::uint64_t expected = f.version;
        return f.n->version.compare_exchange_strong(expected, f.version | node::locked,
                                                    std::memory_order_acquire,
                                                    std::memory_order_relaxed);
    }

    // Which storage a thread's remembered node belongs to: a number no other storage
    // of this type has had or will have in the process. A move hands it on with the
    // nodes; the moved-from storage, and one whose nodes were freed, take a new one.
    class identity {
    public:
        identity() noexcept = default;
        identity(identity&& o) noexcept : value_(std::exchange(o.value_, next())) {}
        identity& operator=(identity&& o) noexcept {
            if (this != &o) value_ = std::exchange(o.value_, next());
            return *this;
        }
        std::uint64_t value() const noexcept { return value_; }

    private:
        static std::uint64_t next() noexcept {
            static std::atomic<std::uint64_t> last{0};
            return last.fetch_add(1, std::memory_order_relaxed) + 1;
        }
        std::uint64_t value_ = next();
    };

    // The node of the key this thread last decided on, in the storage `owner`.
    struct recent_node {
        std::uint64_t owner = 0;
        node* n = nullptr;
        // The decision before was on n too (in `owner`: one on another storage clears
        // it), so the next is likely on n's key again: start_lookup leaves it to locate.
        bool repeated = false;
    };
    static inline thread_local recent_node recent_{};

    // start_lookup's work, out of line (the caller inlines only the test of `repeated`):
    // the key's hash, its home slot's line on its way to the cache.
    [[gnu::noinline]] std::uint64_t hash_and_prefetch(std::string_view key) const noexcept {
        const std::uint64_t h = hash(key);
        const shard& sh = shard_for(h);
        __builtin_prefetch(&sh.slots[home(table_hash(sh, key, h))]);
        return h;
    }

    // The key's node, inserting it when absent. With the key's hash (`hashed`, from
    // start_lookup) a probe finds it; else the node this thread decided on last is
    // tried first (a hot key decides without hashing or probing): it is dereferenced
    // only when it is this storage's (nodes live as long as their storage), and taken
    // only when it is live and holds `key`, the test a probe makes of every candidate.
    found locate(std::string_view key, bool hashed, std::uint64_t h, std::int64_t now) {
        recent_node& last = recent_;
        if (!hashed) {
            if (last.owner == id_.value()) {
                node* n = last.n;
                const std::uint64_t v = n->version.load(std::memory_order_acquire);
                if ((v & node::dead) == 0 && n->holds(key)) {
                    if (!last.repeated) last.repeated = true;
                    return {n, v};
                }
            }
            h = hash(key);
        }
        shard& sh = shard_for(h);
        found f = lookup(sh, key, h);
        if (!f.n) f = lookup_or_insert(sh, key, h, now, nullptr);
        last = {id_.value(), f.n, f.n == last.n && last.owner == id_.value()};
        return f;
    }

    // Decides with op(state&) -> R as one atomic step on the key's state, inserting the
    // key with a fresh state when absent; mark(node&, r) records the eviction hints
    // with every write. An optimistic state is first decided on a copy and written back
    // with one CAS only when op changed it (op must be a pure function of the state, as
    // algorithms are). If another writer got in before its CAS, the decision is made
    // once more on that writer's state, still unlocked: on a hot key that is most often
    // a denial, which writes nothing, where locking would write the key's line twice
    // more while the other cores read it. A second loss, or a write seen between the
    // two reads of the version (a state caught mid-write), locks the key first, so
    // contention costs a wait, not repeated work. Other states are always decided
    // locked.
    template <class Op, class Mark>
    auto write(const started_lookup& l, std::int64_t now, Op&& op, Mark&& mark) {
        bool contended = !optimistic;
        unsigned lost = 0;  // races lost to other writers
        backoff wait;
        // One result, returned from every path: built in the caller's slot, not copied
        // there (a copy of a just-written outcome stalls on store forwarding). op's
        // result is placed into it, not assigned: an assignment would copy it from a
        // temporary, the same stall again.
        using result = std::invoke_result_t<Op&, state_type&>;
        static_assert(std::is_trivially_destructible_v<result>);
        result r{};
        const auto decide = [&](state_type& s) { ::new (static_cast<void*>(&r)) result(op(s)); };
        for (;;) {
            // l's fields one by one: a copy of the struct just built would read it back
            // wider than it was written, a load that store forwarding cannot serve.
            const found f = locate(l.key_, l.hashed_, l.hash_, now);
            if (f.version & node::locked) {
                wait_unlocked(*f.n, wait);
                continue;
            }
            node& n = *f.n;
            if constexpr (optimistic) {
                if (!contended) {
                    const auto before = n.cell.load();
                    std::atomic_thread_fence(std::memory_order_acquire);
                    if (n.version.load(std::memory_order_relaxed) != f.version) {
                        contended = true;  // a write came between the two reads
                        continue;
                    }
                    state_type s = cell_type::decode(before);
                    decide(s);
                    const auto after = cell_type::encode(s);
                    touch(n);
                    if (cell_type::same(before, after)) return r;  // reads only
                    // Test before the CAS: a CAS bound to fail would still take the
                    // line from the winner in the middle of its write.
                    if (n.version.load(std::memory_order_relaxed) != f.version || !try_lock(f)) {
                        contended = ++lost >= losses_before_locking;
                        wait();
                        continue;
                    }
                    std::atomic_thread_fence(std::memory_order_release);
                    n.cell.store(after);
                    mark(n, r);
                    n.version.store(f.version + node::step, std::memory_order_release);
                    return r;
                }
                if (!try_lock(f)) {
                    wait();
                    continue;
                }
                std::atomic_thread_fence(std::memory_order_release);
                touch(n);
                const auto before = n.cell.load();
                state_type s = cell_type::decode(before);
                decide(s);
                const auto after = cell_type::encode(s);
                const bool changed = !cell_type::same(before, after);
                if (changed) {
                    n.cell.store(after);
                    mark(n, r);
                }
                n.version.store(changed ? f.version + node::step : f.version,
                                std::memory_order_release);
                return r;
            } else {
                if (!try_lock(f)) {
                    wait();
                    continue;
                }
                touch(n);
                unlock_guard guard{n, f.version};
                decide(n.cell.state);
                mark(n, r);
                return r;
            }
        }
    }

    // Publishes the next version when a locked write ends (also when op throws).
    struct unlock_guard {
        node& n;
        std::uint64_t version;
        ~unlock_guard() { n.version.store(version + node::step, std::memory_order_release); }
    };

    // fn(const state_type*) on a consistent view of the key's state, nullptr if absent.
    template <class Fn>
    decltype(auto) read(std::string_view key, Fn&& fn) {
        const std::uint64_t h = hash(key);
        shard& sh = shard_for(h);
        for (;;) {
            found f = lookup(sh, key, h);
            if (!f.n) {
                std::unique_lock<Mutex> lock(sh.mutex);
                f = lookup(sh, key, h);
                if (!f.n) return std::invoke(fn, static_cast<const state_type*>(nullptr));
            }
            if (f.version & node::locked) {
                pause();
                continue;
            }
            node& n = *f.n;
            if constexpr (optimistic) {
                const auto img = n.cell.load();
                std::atomic_thread_fence(std::memory_order_acquire);
                if (n.version.load(std::memory_order_relaxed) != f.version) continue;
                const state_type s = cell_type::decode(img);
                return std::invoke(fn, &s);
            } else {
                std::uint64_t expected = f.version;
                if (!n.version.compare_exchange_strong(expected, f.version | node::locked,
                                                       std::memory_order_acquire,
                                                       std::memory_order_relaxed))
                    continue;
                struct restore {  // nothing changed: the same version again
                    node& n;
                    std::uint64_t v;
                    ~restore() { n.version.store(v, std::memory_order_release); }
                } guard{n, f.version};
                return std::invoke(fn, static_cast<const state_type*>(&n.cell.state));
            }
        }
    }

    void free_all() noexcept {
        if (!shards_) return;
        for (std::size_t s = 0; s < shard_count(); ++s) {
            shard& sh = shards_[s];
            for (std::size_t i = 0; sh.slots && i < capacity_; ++i)
                if (const std::uint64_t w = sh.slots[i]) node::destroy(node_of(w));
            for (node* n : sh.free)
                while (n != nullptr) {
                    node* following = n->next_free();
                    node::destroy(n);
                    n = following;
                }
            sh.free.clear();
            for (void* block : sh.blocks) std::free(block);
            sh.blocks.clear();
        }
        shards_.reset();
    }

    in_memory_options opts_;
    std::size_t probe_cap_ = default_probe_cap;
    detail::hash_secret secret_;
    unsigned shard_bits_ = 0;
    std::size_t per_shard_ = 1;
    std::size_t capacity_ = 16;  // slots per shard
    std::unique_ptr<shard[]> shards_;
    identity id_;
};

/// Single-threaded inserts (decisions still atomic, lookups lock-free).
template <algorithm Algorithm>
using concurrent_storage_st = concurrent_storage<Algorithm, null_mutex>;

}  // namespace smart_ratelimit
