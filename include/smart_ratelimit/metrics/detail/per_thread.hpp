// smart_ratelimit/metrics/detail/per_thread.hpp
// The per-thread cells under the hot-path metrics: a pool hands each thread its own
// block (found through a small thread-local cache, no lock after the first use), the
// owning thread updates it with relaxed loads and stores (no read-modify-write), and
// a scrape sums every block. A thread's block returns to the pool when it exits.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

namespace smart_ratelimit::metrics::detail {

class cell_pool_base : public std::enable_shared_from_this<cell_pool_base> {
public:
    virtual ~cell_pool_base() = default;
    virtual void give_back(void* block) noexcept = 0;
};

inline std::uint64_t next_pool_id() noexcept {
    static std::atomic<std::uint64_t> next{1};
    return next.fetch_add(1, std::memory_order_relaxed);
}

// Direct-mapped cache: pool id -> this thread's block. Trivially initialized (no
// guard on access); ids are never reused, so an entry of a destroyed pool never matches.
struct fast_entry {
    std::uint64_t id;
    void* block;
};
inline constexpr std::size_t fast_entries = 16;
inline thread_local fast_entry thread_fast[fast_entries] = {};

// Every block this thread owns; given back to the pools still alive at thread exit.
struct owned_blocks {
    struct entry {
        std::uint64_t id;
        void* block;
        std::weak_ptr<cell_pool_base> pool;
    };
    std::vector<entry> entries;
    ~owned_blocks() {
        for (auto& e : entries)
            if (auto p = e.pool.lock()) p->give_back(e.block);
    }
};
inline thread_local owned_blocks thread_owned;

/// Updates a cell owned by the calling thread: a relaxed load and store, no RMW.
inline void owner_add(std::atomic<std::uint64_t>& c, std::uint64_t n) noexcept {
    c.store(c.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
}

// Block: constructible from the pool's size argument; its shared fields are atomics
// written only by the owning thread. Create with std::make_shared.
template <class Block>
class cell_pool final : public cell_pool_base {
public:
    explicit cell_pool(std::size_t arg = 0) : arg_(arg) {}

    /// The calling thread's block.
    Block& local() { return local(id_); }

    /// The same, given id(): a hot path that keeps the id beside its pool pointer
    /// saves loading it through the pointer.
    Block& local(std::uint64_t id) {
        fast_entry& f = thread_fast[id % fast_entries];
        if (f.id == id) [[likely]]
            return *static_cast<Block*>(f.block);
        return local_slow(f);
    }

    std::uint64_t id() const noexcept { return id_; }

    /// Calls f(const Block&) for every block ever handed out (the scrape).
    template <class F>
    void for_each(F&& f) const {
        std::lock_guard<std::mutex> lock(m_);
        for (const auto& b : all_) f(static_cast<const Block&>(*b));
    }

    void give_back(void* block) noexcept override {
        std::lock_guard<std::mutex> lock(m_);
        free_.push_back(static_cast<Block*>(block));  // reserved: cannot throw
    }

private:
    [[gnu::noinline]] Block& local_slow(fast_entry& f) {
        auto& owned = thread_owned.entries;
        Block* b = nullptr;
        for (auto& e : owned)
            if (e.id == id_) b = static_cast<Block*>(e.block);
        if (b == nullptr) {
            std::erase_if(owned, [](const owned_blocks::entry& e) { return e.pool.expired(); });
            owned.reserve(owned.size() + 1);
            std::lock_guard<std::mutex> lock(m_);
            if (!free_.empty()) {
                b = free_.back();
                free_.pop_back();
            } else {
                all_.reserve(all_.size() + 1);
                free_.reserve(all_.size() + 1);
                all_.push_back(std::make_unique<Block>(arg_));
                b = all_.back().get();
            }
            owned.push_back({id_, b, weak_from_this()});
        }
        f = {id_, b};
        return *b;
    }

    const std::uint64_t id_ = next_pool_id();
    const std::size_t arg_;
    mutable std::mutex m_;
    std::vector<std::unique_ptr<Block>> all_;
    std::vector<Block*> free_;
};

}  // namespace smart_ratelimit::metrics::detail
