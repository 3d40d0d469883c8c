// smart_ratelimit/detail/key_table.hpp
// key_table: the per-shard hash table of the in-memory storage. Open addressing with
// linear probing over (hash, node*) slots, so a lookup usually costs one slot read and
// one node read; each node holds its key bytes inline, after the value, and the links
// of the shard's eviction list. Not synchronized: the shard's mutex guards it.
#pragma once

#include <smart_ratelimit/detail/hash.hpp>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <new>
#include <string_view>
#include <utility>

namespace smart_ratelimit::detail {

template <class V>
class key_table {
public:
    // Nodes come from plain operator new (no over-alignment: glibc serves an aligned
    // request from a larger block and spaced 118-byte nodes 256-384 bytes apart, which
    // doubled the memory a large key set touches). A lookup's loads from one node are
    // independent of each other, so a node spanning two lines costs about one miss.
    struct node {
        std::uint64_t hash = 0;
        node* prev = nullptr;  // eviction list: towards the head (newest)
        node* next = nullptr;  // towards the tail (oldest)
        std::uint32_t key_size = 0;
        bool referenced = false;
        V value;

        const char* key_bytes() const noexcept { return reinterpret_cast<const char*>(this + 1); }
        std::string_view key() const noexcept { return {key_bytes(), key_size}; }
    };

    key_table() = default;
    key_table(const key_table&) = delete;
    key_table& operator=(const key_table&) = delete;
    key_table(key_table&& o) noexcept
        : slots_(std::move(o.slots_)),
          mask_(std::exchange(o.mask_, 0)),
          size_(std::exchange(o.size_, 0)) {}
    key_table& operator=(key_table&& o) noexcept {
        if (this != &o) {
            clear();
            slots_ = std::move(o.slots_);
            mask_ = std::exchange(o.mask_, 0);
            size_ = std::exchange(o.size_, 0);
        }
        return *this;
    }
    ~key_table() { clear(); }

    std::size_t size() const noexcept { return size_; }

    node* find(std::string_view key, std::uint64_t h) const noexcept {
        if (size_ == 0) return nullptr;
        for (std::size_t i = h & mask_;; i = (i + 1) & mask_) {
            const slot& s = slots_[i];
            if (s.n == nullptr) return nullptr;
            if (s.hash == h && s.n->key_size == key.size() &&
                equal_bytes(s.n->key_bytes(), key.data(), key.size()))
                return s.n;
        }
    }

    /// Inserts `key` (which must be absent) with `value`; returns its node.
    template <class... Args>
    node* insert(std::string_view key, std::uint64_t h, Args&&... args) {
        if ((size_ + 1) * 2 > capacity()) grow();
        void* mem = allocate(sizeof(node) + key.size());
        node* n = ::new (mem) node{h, nullptr, nullptr, 0, false, V(std::forward<Args>(args)...)};
        n->key_size = static_cast<std::uint32_t>(key.size());
        copy_bytes(reinterpret_cast<char*>(n + 1), key.data(), key.size());
        place(slots_.get(), mask_, n);
        ++size_;
        return n;
    }

    /// Removes and destroys `n` (which must be in the table).
    void erase(node* n) noexcept {
        std::size_t i = n->hash & mask_;
        while (slots_[i].n != n) i = (i + 1) & mask_;
        // Backward-shift deletion: keep every probe sequence unbroken.
        std::size_t j = i;
        for (;;) {
            j = (j + 1) & mask_;
            if (slots_[j].n == nullptr) break;
            const std::size_t k = slots_[j].hash & mask_;
            const bool stays = i <= j ? (i < k && k <= j) : (i < k || k <= j);
            if (stays) continue;
            slots_[i] = slots_[j];
            i = j;
        }
        slots_[i] = slot{};
        --size_;
        destroy(n);
    }

    void clear() noexcept {
        for (std::size_t i = 0; slots_ && i <= mask_; ++i) {
            if (slots_[i].n) destroy(slots_[i].n);
            slots_[i] = slot{};
        }
        size_ = 0;
    }

private:
    struct slot {
        std::uint64_t hash = 0;
        node* n = nullptr;
    };

    std::size_t capacity() const noexcept { return slots_ ? mask_ + 1 : 0; }

    static void place(slot* slots, std::size_t mask, node* n) noexcept {
        std::size_t i = n->hash & mask;
        while (slots[i].n != nullptr) i = (i + 1) & mask;
        slots[i] = slot{n->hash, n};
    }

    void grow() {
        const std::size_t cap = capacity() == 0 ? 16 : capacity() * 2;
        auto fresh = std::make_unique<slot[]>(cap);
        for (std::size_t i = 0; i < capacity(); ++i)
            if (slots_[i].n) place(fresh.get(), cap - 1, slots_[i].n);
        slots_ = std::move(fresh);
        mask_ = cap - 1;
    }

    static constexpr bool over_aligned = alignof(node) > __STDCPP_DEFAULT_NEW_ALIGNMENT__;
    static void* allocate(std::size_t size) {
        if constexpr (over_aligned)
            return ::operator new (size, std::align_val_t{alignof(node)});
        else
            return ::operator new(size);
    }
    static void deallocate(node* n) noexcept {
        if constexpr (over_aligned)
            ::operator delete (static_cast<void*>(n), std::align_val_t{alignof(node)});
        else
            ::operator delete(static_cast<void*>(n));
    }

    static void destroy(node* n) noexcept {
        n->~node();
        deallocate(n);
    }

    std::unique_ptr<slot[]> slots_;
    std::size_t mask_ = 0;
    std::size_t size_ = 0;
};

}  // namespace smart_ratelimit::detail
