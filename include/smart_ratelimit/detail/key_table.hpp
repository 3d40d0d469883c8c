// smart_ratelimit/detail/key_table.hpp
// key_table: the per-shard hash table of the in-memory storage. Open addressing with
// linear probing over (hash, node*) slots, so a lookup usually costs one slot read and
// one node read; each node holds its key bytes inline, after the value, and the links
// of the shard's eviction list. A placement probing further than a cap switches the
// table to SipHash-1-3 for good. Not synchronized: the shard's mutex guards it.
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
        std::uint8_t list = 0;  // which of the owner's eviction lists holds the node
        V value;

        const char* key_bytes() const noexcept { return reinterpret_cast<const char*>(this + 1); }
        std::string_view key() const noexcept { return {key_bytes(), key_size}; }
    };

    /// The longest probe (slots past a key's home) a placement may take before the table
    /// stops trusting the fast hash. The load stays at most 1/2, so random keys rarely
    /// probe far: filling the default store (64 shards of 15,625 keys) with 10^6 keys
    /// eight times gave longest probes of 28 to 44, and each further slot is about 0.8
    /// times as likely, so random keys reach 96 in about one fill of 10^6 (that shard
    /// then merely hashes slower), while 97 keys sharing one hash reach it at once.
    static constexpr std::size_t default_probe_cap = 96;

    key_table() = default;
    /// `strong_key` keys the SipHash-1-3 fallback; `probe_cap` as default_probe_cap.
    explicit key_table(const std::uint64_t (&strong_key)[2],
                       std::size_t probe_cap = default_probe_cap) noexcept
        : sip_{strong_key[0], strong_key[1]}, probe_cap_(probe_cap) {}
    key_table(const key_table&) = delete;
    key_table& operator=(const key_table&) = delete;
    key_table(key_table&& o) noexcept
        : slots_(std::move(o.slots_)),
          mask_(std::exchange(o.mask_, 0)),
          size_(std::exchange(o.size_, 0)),
          sip_{o.sip_[0], o.sip_[1]},
          probe_cap_(o.probe_cap_),
          longest_probe_(std::exchange(o.longest_probe_, 0)),
          strong_(std::exchange(o.strong_, false)) {}
    key_table& operator=(key_table&& o) noexcept {
        if (this != &o) {
            clear();
            slots_ = std::move(o.slots_);
            mask_ = std::exchange(o.mask_, 0);
            size_ = std::exchange(o.size_, 0);
            sip_[0] = o.sip_[0];
            sip_[1] = o.sip_[1];
            probe_cap_ = o.probe_cap_;
            longest_probe_ = std::exchange(o.longest_probe_, 0);
            strong_ = std::exchange(o.strong_, false);
        }
        return *this;
    }
    ~key_table() { clear(); }

    std::size_t size() const noexcept { return size_; }
    /// Whether a long probe has switched this table to SipHash-1-3.
    bool strong() const noexcept { return strong_; }
    /// The longest placement probe (slots past a key's home slot) since the table last
    /// grew or switched hashes; deletions only shorten probes, so it bounds every lookup
    /// of a present key.
    std::size_t longest_probe() const noexcept { return longest_probe_; }

    /// The node of `key`, or nullptr; `fast` is the key's fast hash (the caller's
    /// shard choice), replaced by the strong hash once the table has switched.
    node* find(std::string_view key, std::uint64_t fast) const noexcept {
        if (size_ == 0) return nullptr;
        const std::uint64_t h = table_hash(key, fast);
        for (std::size_t i = h & mask_;; i = (i + 1) & mask_) {
            const slot& s = slots_[i];
            if (s.n == nullptr) return nullptr;
            if (s.hash == h && s.n->key_size == key.size() &&
                equal_bytes(s.n->key_bytes(), key.data(), key.size()))
                return s.n;
        }
    }

    /// Inserts `key` (which must be absent) with `value`; returns its node. `fast` as
    /// for find. A placement longer than the probe cap rehashes the table with SipHash.
    template <class... Args>
    node* insert(std::string_view key, std::uint64_t fast, Args&&... args) {
        if ((size_ + 1) * 2 > capacity()) grow();
        void* mem = allocate(sizeof(node) + key.size());
        node* n = ::new (mem) node{table_hash(key, fast),         nullptr, nullptr, 0, false, 0,
                                   V(std::forward<Args>(args)...)};
        n->key_size = static_cast<std::uint32_t>(key.size());
        copy_bytes(reinterpret_cast<char*>(n + 1), key.data(), key.size());
        const std::size_t probe = place(slots_.get(), mask_, n);
        ++size_;
        if (probe > longest_probe_) longest_probe_ = probe;
        if (probe > probe_cap_ && !strong_) go_strong();
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

    std::uint64_t table_hash(std::string_view key, std::uint64_t fast) const noexcept {
        return strong_ ? siphash<1, 3>(key, sip_[0], sip_[1]) : fast;
    }

    // Puts `n` in the first free slot from its home; returns how far past home that is.
    static std::size_t place(slot* slots, std::size_t mask, node* n) noexcept {
        std::size_t i = n->hash & mask, probe = 0;
        while (slots[i].n != nullptr) {
            i = (i + 1) & mask;
            ++probe;
        }
        slots[i] = slot{n->hash, n};
        return probe;
    }

    // Re-places every node into `cap` fresh slots (after `rehash` updates its hash).
    template <class Rehash>
    void rebuild(std::size_t cap, Rehash rehash) {
        auto fresh = std::make_unique<slot[]>(cap);
        std::size_t longest = 0;
        for (std::size_t i = 0; i < capacity(); ++i) {
            if (node* n = slots_[i].n) {
                rehash(n);
                const std::size_t probe = place(fresh.get(), cap - 1, n);
                if (probe > longest) longest = probe;
            }
        }
        slots_ = std::move(fresh);
        mask_ = cap - 1;
        longest_probe_ = longest;
    }

    void grow() {
        rebuild(capacity() == 0 ? 16 : capacity() * 2, [](node*) noexcept {});
    }

    // The fast hash let too many keys pile up: rehash every key with SipHash-1-3. Only
    // the slot allocation can throw, and it comes first (the table is then unchanged).
    void go_strong() {
        rebuild(capacity(),
                [this](node* n) noexcept { n->hash = siphash<1, 3>(n->key(), sip_[0], sip_[1]); });
        strong_ = true;
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
    std::uint64_t sip_[2] = {0, 0};
    std::size_t probe_cap_ = default_probe_cap;
    std::size_t longest_probe_ = 0;
    bool strong_ = false;
};

}  // namespace smart_ratelimit::detail
