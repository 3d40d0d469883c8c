// smart_ratelimit/detail/concurrent_node.hpp
// concurrent_node: one key of concurrent_storage. Every field a reader may touch
// without the shard's lock is an atomic word, so a lookup that races with an eviction
// reads stale words, never torn or freed memory: nodes are recycled within their
// shard's size class and freed only with the storage. The version word is a seqlock
// and, with its low bit, the key's own write lock.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <new>
#include <string>
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
    using image = std::uint64_t[words];

    std::atomic<std::uint64_t> word[words] = {};

    void load(image& out) const noexcept {
        for (std::size_t i = 0; i < words; ++i) out[i] = word[i].load(std::memory_order_relaxed);
    }
    void store(const image& in) noexcept {
        for (std::size_t i = 0; i < words; ++i) word[i].store(in[i], std::memory_order_relaxed);
    }
    static State decode(const image& in) noexcept {
        State s;
        std::memcpy(&s, in, sizeof(State));
        return s;
    }
    static void encode(const State& s, image& out) noexcept {
        std::memset(out, 0, sizeof out);
        std::memcpy(out, &s, sizeof(State));
    }
};

template <class State>
struct concurrent_node {
    using cell_type = state_cell<State>;

    // version: bit 0 = locked by a writer, bit 1 = dead (evicted, or free for reuse);
    // every publication adds 4, so a reader that saw v and sees v again saw no change.
    static constexpr std::uint64_t locked = 1, dead = 2, step = 4;

    std::atomic<std::uint64_t> version{dead};
    /// When the key's state becomes as good as fresh (eviction prefers such keys).
    std::atomic<std::int64_t> idle_at{std::numeric_limits<std::int64_t>::max()};
    // Under the shard's lock only: the table hash, or in a dead node the next free one.
    std::uint64_t table_hash = 0;
    std::atomic<std::uint32_t> key_size{0};
    std::atomic<std::uint8_t> referenced{0};  // CLOCK's second-chance bit
    std::atomic<std::uint8_t> over{0};        // the last write left no quota
    std::uint16_t size_class = 0;             // immutable
    cell_type cell;

    std::atomic<std::uint64_t>* key_words() noexcept {
        return reinterpret_cast<std::atomic<std::uint64_t>*>(this + 1);
    }
    const std::atomic<std::uint64_t>* key_words() const noexcept {
        return reinterpret_cast<const std::atomic<std::uint64_t>*>(this + 1);
    }

    /// A node of `cls` with its key words; dead until published.
    static concurrent_node* allocate(std::size_t cls) {
        static_assert(alignof(concurrent_node) <= __STDCPP_DEFAULT_NEW_ALIGNMENT__);
        static_assert(sizeof(concurrent_node) % 8 == 0);
        const std::size_t words = class_words(cls);
        void* mem = ::operator new(sizeof(concurrent_node) + words * 8);
        auto* n = ::new (mem) concurrent_node();
        n->size_class = static_cast<std::uint16_t>(cls);
        for (std::size_t i = 0; i < words; ++i)
            ::new (&n->key_words()[i]) std::atomic<std::uint64_t>(0);
        return n;
    }
    static void free(concurrent_node* n) noexcept {
        n->~concurrent_node();
        ::operator delete(static_cast<void*>(n));
    }

    /// Writes `key` (which must fit the class); the tail word is zero-padded.
    void set_key(std::string_view key) noexcept {
        const std::size_t words = class_words(size_class);
        for (std::size_t i = 0; i < words; ++i)
            key_words()[i].store(word_of(key, i), std::memory_order_relaxed);
        key_size.store(static_cast<std::uint32_t>(key.size()), std::memory_order_relaxed);
    }

    /// Whether the node holds `key` (a racy read: valid only if the version is unchanged).
    bool holds(std::string_view key) const noexcept {
        const std::size_t n = key.size();
        if (key_size.load(std::memory_order_relaxed) != n) return false;
        const char* p = key.data();
        const std::atomic<std::uint64_t>* w = key_words();
        std::size_t i = 0;
        for (; i + 8 <= n; i += 8, ++w)
            if (w->load(std::memory_order_relaxed) != load8(p + i)) return false;
        return i == n || w->load(std::memory_order_relaxed) == tail_word(p + i, n - i);
    }

    /// The stored key (under the shard's lock).
    std::string key() const {
        std::string out(key_size.load(std::memory_order_relaxed), '\0');
        for (std::size_t i = 0; i * 8 < out.size(); ++i) {
            const std::uint64_t w = key_words()[i].load(std::memory_order_relaxed);
            std::memcpy(out.data() + i * 8, &w, out.size() - i * 8 < 8 ? out.size() - i * 8 : 8);
        }
        return out;
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
    // The last 1-7 bytes of a key as a zero-padded word (as memcpy into a zeroed word).
    static std::uint64_t tail_word(const char* p, std::size_t n) noexcept {
        std::uint64_t w = 0;
        switch (n) {  // fixed-size copies: no call to memcpy on the lookup path
            case 7:
                std::memcpy(&w, p, 7);
                break;
            case 6:
                std::memcpy(&w, p, 6);
                break;
            case 5:
                std::memcpy(&w, p, 5);
                break;
            case 4:
                std::memcpy(&w, p, 4);
                break;
            case 3:
                std::memcpy(&w, p, 3);
                break;
            case 2:
                std::memcpy(&w, p, 2);
                break;
            default:
                std::memcpy(&w, p, 1);
                break;
        }
        return w;
    }
};

}  // namespace smart_ratelimit::detail
