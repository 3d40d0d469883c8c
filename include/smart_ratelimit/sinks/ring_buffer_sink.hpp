// smart_ratelimit/sinks/ring_buffer_sink.hpp
// A bounded in-memory sink that keeps the last N events, for tests, a small
// dashboard without a database, or a "recent decisions" view. Its snapshot is a
// std::vector<event>, so it is an event range the analytics functions accept.
#pragma once

#include <cstddef>
#include <cstdint>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include <smart_ratelimit/error.hpp>
#include <smart_ratelimit/event.hpp>
#include <smart_ratelimit/null_mutex.hpp>

namespace smart_ratelimit {

/// Keeps the most recent `capacity` events; older ones are overwritten.
/// Recording reuses the storage of the slot it overwrites, so once the buffer has
/// wrapped a copy only allocates for strings longer than the slot's old ones.
/// `record` never throws: an event that cannot be copied (out of memory) is
/// counted by `failed()` and skipped.
/// Thread safety: with Mutex = std::mutex (`ring_buffer_sink_mt`) every member may
/// be called concurrently; with null_mutex (`ring_buffer_sink_st`) one thread only.
template <class Mutex>
class ring_buffer_sink {
public:
    using mutex_type = Mutex;

    static constexpr std::size_t default_capacity = 1000;

    /// Throws config_error when capacity is 0.
    explicit ring_buffer_sink(std::size_t capacity = default_capacity) : capacity_(capacity) {
        if (capacity == 0)
            throw config_error("ring_buffer_sink: capacity must be at least 1, got 0");
    }

    /// Takes over another buffer's events and counters (a limiter stores its sink by
    /// value). `o` is left empty with the same capacity.
    ring_buffer_sink(ring_buffer_sink&& o) : capacity_(o.capacity_) {
        std::lock_guard<Mutex> lock(o.mutex_);
        buf_ = std::move(o.buf_);
        head_ = std::exchange(o.head_, 0);
        recorded_ = o.recorded_;
        failed_ = o.failed_;
        o.buf_.clear();
    }
    ring_buffer_sink(const ring_buffer_sink&) = delete;
    ring_buffer_sink& operator=(const ring_buffer_sink&) = delete;

    void record(const event& e) noexcept { put(e); }
    void record(event&& e) noexcept { put(std::move(e)); }

    /// The retained events, oldest first (the order they were recorded in): the
    /// order to hand to the analytics, which take the later of two events with equal
    /// timestamps as the newer one. A consistent copy: an event recorded
    /// concurrently is either wholly in it or not at all.
    std::vector<event> snapshot() const {
        std::lock_guard<Mutex> lock(mutex_);
        std::vector<event> out;
        out.reserve(buf_.size());
        for (std::size_t i = 0; i < buf_.size(); ++i) out.push_back(buf_[index_of(i)]);
        return out;
    }

    /// The retained events, newest first, for display.
    std::vector<event> snapshot_newest_first() const {
        std::lock_guard<Mutex> lock(mutex_);
        std::vector<event> out;
        out.reserve(buf_.size());
        for (std::size_t i = buf_.size(); i-- > 0;) out.push_back(buf_[index_of(i)]);
        return out;
    }

    /// Events currently retained: min(capacity, recorded()) unless cleared.
    std::size_t size() const {
        std::lock_guard<Mutex> lock(mutex_);
        return buf_.size();
    }
    std::size_t capacity() const noexcept { return capacity_; }

    /// Events recorded since construction (overwritten ones included).
    std::uint64_t recorded() const {
        std::lock_guard<Mutex> lock(mutex_);
        return recorded_;
    }
    /// Events that could not be stored (allocation failure).
    std::uint64_t failed() const {
        std::lock_guard<Mutex> lock(mutex_);
        return failed_;
    }

    /// Forgets the retained events (the counters are kept).
    void clear() {
        std::lock_guard<Mutex> lock(mutex_);
        buf_.clear();
        head_ = 0;
    }

private:
    // Logical position i (0 = oldest) to the physical slot.
    std::size_t index_of(std::size_t i) const noexcept {
        const std::size_t p = head_ + i;
        return p < buf_.size() ? p : p - buf_.size();
    }

    template <class E>
    void put(E&& e) noexcept {
        std::lock_guard<Mutex> lock(mutex_);
        try {
            if (buf_.size() < capacity_) {
                if (buf_.capacity() == buf_.size()) reserve_more();
                buf_.push_back(std::forward<E>(e));
            } else {
                buf_[head_] = std::forward<E>(e);
                head_ = head_ + 1 == capacity_ ? 0 : head_ + 1;
            }
            ++recorded_;
        } catch (...) {
            ++failed_;
        }
    }

    // Grows geometrically up to the capacity, so a large, mostly empty buffer
    // does not reserve its full size up front.
    void reserve_more() {
        const std::size_t want = buf_.capacity() < capacity_ / 2 ? buf_.capacity() * 2 : capacity_;
        buf_.reserve(want < 16 ? (capacity_ < 16 ? capacity_ : 16) : want);
    }

    const std::size_t capacity_;
    [[no_unique_address]] mutable Mutex mutex_;  // guards everything below
    std::vector<event> buf_;  // physical slots; logical oldest at head_ once full
    std::size_t head_ = 0;
    std::uint64_t recorded_ = 0;
    std::uint64_t failed_ = 0;
};

/// Thread-safe ring buffer sink.
using ring_buffer_sink_mt = ring_buffer_sink<std::mutex>;
/// Single-threaded ring buffer sink (no locking).
using ring_buffer_sink_st = ring_buffer_sink<null_mutex>;

}  // namespace smart_ratelimit
