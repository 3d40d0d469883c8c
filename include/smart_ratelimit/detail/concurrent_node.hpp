// smart_ratelimit/detail/concurrent_node.hpp
// concurrent_node: one key of concurrent_storage. Every field a reader may touch
// without the shard's lock is an atomic word, so a lookup that races with an eviction
// reads stale words, never torn or freed memory: nodes are recycled within their
// shard's size class and freed only with the storage. The version word is a seqlock
// and, with its low bit, the key's own write lock. A node is a 16-byte header, the
// state and the key's words: 56 bytes for a token bucket and a key of up to 16 bytes.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <new>
#include <string_view>
#include <type_traits>

namespace smart_ratelimit::detail {

/// A node's key capacity class: exact 8-byte words up to 16 words (128 bytes), then
/// powers of two. Free nodes are reused only within their class.
inline std::size_t key_class(std::size_t key_size) noexcept {
    const std::size_t words = key_size == 0 ? 1 : (key_size + 7) / 8;
    if (words <= 16) return words;
    std::size_t cls = 17, cap = 32;
    while (cap < words) {
        cap *= 2;
        ++cls;
    }
    return cls;
}
inline std::size_t class_words(std::size_t cls) noexcept {
    return cls <= 16 ? cls : std::size_t{32} << (cls - 17);
}

/// The state of a key, stored so that a reader without the key's lock may copy it:
/// a trivially copyable state as relaxed atomic words (optimistic reads validated by
/// the version), any other state as itself (touched only under the key's lock).
template <class State, bool Words = std::is_trivially_copyable_v<State>>
struct state_cell {
    static constexpr bool optimistic = false;
    State state{};
};

template <class State>
struct state_cell<State, true> {
    static constexpr bool optimistic = true;
    static constexpr std::size_t words = (sizeof(State) + 7) / 8;
    /// The state as words, passed by value: kept in registers, so that no load of a
    /// copy spans two narrower stores (a store-forwarding stall costs more than the
    /// rest of a decision's copy and compare).
    using image = std::array<std::uint64_t, words>;

    std::atomic<std::uint64_t> word[words] = {};

    image load() const noexcept {
        image out;
        for (std::size_t i = 0; i < words; ++i) out[i] = word[i].load(std::memory_order_relaxed);
        return out;
    }
    void store(const image& in) noexcept {
        for (std::size_t i = 0; i < words; ++i) word[i].store(in[i], std::memory_order_relaxed);
    }
    static State decode(const image& in) noexcept {
        State s;
        if constexpr (exact) {  // word by word: one 8-byte store each, read back as such
            for (std::size_t i = 0; i < words; ++i)
                std::memcpy(reinterpret_cast<unsigned char*>(&s) + 8 * i, &in[i], 8);
        } else {
            std::memcpy(&s, in.data(), sizeof(State));
        }
        return s;
    }
    static image encode(const State& s) noexcept {
        if constexpr (exact) {  // word by word too: a wider load would span two stores
            image out;
            for (std::size_t i = 0; i < words; ++i)
                std::memcpy(&out[i], reinterpret_cast<const unsigned char*>(&s) + 8 * i, 8);
            return out;
        } else {
            image out{};
            std::memcpy(out.data(), &s, sizeof(State));
            return out;
        }
    }
    static bool same(const image& a, const image& b) noexcept {
        bool eq = true;
        for (std::size_t i = 0; i < words; ++i) eq &= a[i] == b[i];
        return eq;
    }

private:
    // The state is its words, with no padding whose bits a copy leaves unspecified.
    static constexpr bool exact =
        sizeof(State) == sizeof(image) && std::has_unique_object_representations_v<State>;
};

template <class State>
struct concurrent_node {
    using cell_type = state_cell<State>;

    // version: bit 0 = locked by a writer, bit 1 = dead (evicted, or free for reuse);
    // every publication adds 4, so a reader that saw v and sees v again saw no change.
    static constexpr std::uint64_t locked = 1, dead = 2, step = 4;

    /// The longest key a node holds.
    static constexpr std::size_t max_key_size = std::numeric_limits<std::uint16_t>::max();

    /// Idle times are kept in ticks of 2^26 ns (67 ms), rounded up, as 32 bits that
    /// wrap: enough to compare times up to 4.5 years apart (a rate's period is at most
    /// a year). A key becomes idle for eviction at most one tick late, never early.
    static constexpr int tick_shift = 26;
    /// An idle time further ahead than this (2.2 years) is "never".
    static constexpr std::int64_t max_idle_ahead = std::int64_t{1} << (tick_shift + 30);
    // flags: the last write left no quota; the state is never idle.
    static constexpr std::uint8_t over_flag = 1, pinned_flag = 2;

    std::atomic<std::uint64_t> version{dead};
    std::atomic<std::uint32_t> idle_tick{0};  // see idle(); meaningless when pinned
    std::atomic<std::uint16_t> key_size{0};   // also gives the node's size class
    std::atomic<std::uint8_t> referenced{0};  // CLOCK's second-chance bit
    std::atomic<std::uint8_t> flags{pinned_flag};
    cell_type cell;

    std::atomic<std::uint64_t>* key_words() noexcept {
        return reinterpret_cast<std::atomic<std::uint64_t>*>(this + 1);
    }
    const std::atomic<std::uint64_t>* key_words() const noexcept {
        return reinterpret_cast<const std::atomic<std::uint64_t>*>(this + 1);
    }

    /// The bytes a node of `cls` takes, key words included (a multiple of 8).
    static std::size_t bytes(std::size_t cls) noexcept {
        static_assert(alignof(concurrent_node) <= 8 && sizeof(concurrent_node) % 8 == 0);
        return sizeof(concurrent_node) + class_words(cls) * 8;
    }

    /// Builds a node for keys of `key_size` bytes in `mem` (bytes(key_class(key_size))
    /// bytes, 8-aligned); dead until published. Destroy it with destroy(); the memory
    /// stays the caller's.
    static concurrent_node* create(void* mem, std::size_t key_size) noexcept {
        auto* n = ::new (mem) concurrent_node();
        n->key_size.store(static_cast<std::uint16_t>(key_size), std::memory_order_relaxed);
        for (std::size_t i = 0; i < class_words(key_class(key_size)); ++i)
            ::new (&n->key_words()[i]) std::atomic<std::uint64_t>(0);
        return n;
    }
    static void destroy(concurrent_node* n) noexcept { n->~concurrent_node(); }

    /// The size class of the key the node holds or last held.
    std::size_t size_class() const noexcept {
        return key_class(key_size.load(std::memory_order_relaxed));
    }

    /// The next free node, in a dead node (under the shard's lock): kept in its first
    /// key word, which a racing reader may compare with a key but never matches while
    /// the node is dead.
    concurrent_node* next_free() const noexcept {
        return reinterpret_cast<concurrent_node*>(
            static_cast<std::uintptr_t>(key_words()[0].load(std::memory_order_relaxed)));
    }
    void set_next_free(concurrent_node* next) noexcept {
        key_words()[0].store(reinterpret_cast<std::uintptr_t>(next), std::memory_order_relaxed);
    }

    /// Records the outcome of a write at `now`: the state is as good as fresh from
    /// `idle_at` on, and `over` when it left no quota.
    void mark(std::int64_t now, std::int64_t idle_at, bool over) noexcept {
        const bool never =
            idle_at > now && static_cast<std::uint64_t>(idle_at) - static_cast<std::uint64_t>(now) >
                                 static_cast<std::uint64_t>(max_idle_ahead);
        idle_tick.store(tick_up(idle_at), std::memory_order_relaxed);
        flags.store(static_cast<std::uint8_t>((over ? over_flag : 0) | (never ? pinned_flag : 0)),
                    std::memory_order_relaxed);
    }
    /// Never idle (a state written by other means than a decision).
    void pin() noexcept { flags.store(pinned_flag, std::memory_order_relaxed); }

    bool over() const noexcept { return flags.load(std::memory_order_relaxed) & over_flag; }
    /// Whether the state is as good as fresh at `now`.
    bool idle(std::int64_t now) const noexcept {
        if (flags.load(std::memory_order_relaxed) & pinned_flag) return false;
        const auto now_tick = static_cast<std::uint32_t>(now >> tick_shift);
        return static_cast<std::int32_t>(now_tick - idle_tick.load(std::memory_order_relaxed)) >= 0;
    }
    static std::uint32_t tick_up(std::int64_t t) noexcept {
        constexpr std::int64_t part = (std::int64_t{1} << tick_shift) - 1;
        return static_cast<std::uint32_t>((t >> tick_shift) + ((t & part) != 0 ? 1 : 0));
    }

    /// Writes `key` (which must fit the class); the tail word is zero-padded.
    void set_key(std::string_view key) noexcept {
        const std::size_t words = class_words(size_class());
        for (std::size_t i = 0; i < words; ++i)
            key_words()[i].store(word_of(key, i), std::memory_order_relaxed);
        key_size.store(static_cast<std::uint16_t>(key.size()), std::memory_order_relaxed);
    }

    /// Whether the node holds `key` (a racy read: valid only if the version is unchanged).
    /// Inlined: it is on every decision's path, and called from more than one place.
    [[gnu::always_inline]] bool holds(std::string_view key) const noexcept {
        const std::size_t n = key.size();
        if (key_size.load(std::memory_order_relaxed) != n) return false;
        const char* p = key.data();
        const std::atomic<std::uint64_t>* w = key_words();
        std::size_t i = 0;
        for (; i + 8 <= n; i += 8, ++w)
            if (w->load(std::memory_order_relaxed) != load8(p + i)) return false;
        return i == n || w->load(std::memory_order_relaxed) == tail_word(p + i, n - i);
    }

    /// The stored key, in place (under the shard's lock, where no one writes it).
    std::string_view key_view() const noexcept {
        return {reinterpret_cast<const char*>(key_words()),
                key_size.load(std::memory_order_relaxed)};
    }

    static std::uint64_t word_of(std::string_view key, std::size_t i) noexcept {
        const std::size_t at = i * 8;
        if (at + 8 <= key.size()) return load8(key.data() + at);
        return at < key.size() ? tail_word(key.data() + at, key.size() - at) : 0;
    }
    static std::uint64_t load8(const char* p) noexcept {
        std::uint64_t w;
        std::memcpy(&w, p, 8);
        return w;
    }
    // The last 1-7 bytes of a key as a zero-padded word (as memcpy into a zeroed
    // word), built in a register from two overlapping loads: a word assembled from
    // narrower stores on the stack would stall the load that reads it back.
    [[gnu::always_inline]] static std::uint64_t tail_word(const char* p, std::size_t n) noexcept {
        if (n >= 4) {
            std::uint32_t lo, hi;
            std::memcpy(&lo, p, 4);
            std::memcpy(&hi, p + n - 4, 4);
            return lo | (std::uint64_t{hi} << (8 * (n - 4)));  // the overlap agrees
        }
        const auto byte = [p](std::size_t i) {
            return std::uint64_t{static_cast<unsigned char>(p[i])};
        };
        return byte(0) | (byte(n >> 1) << (8 * (n >> 1))) | (byte(n - 1) << (8 * (n - 1)));
    }
};

}  // namespace smart_ratelimit::detail
