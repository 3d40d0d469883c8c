// smart_ratelimit/sinks/impl/async_sink.hpp
// Out-of-line bodies of async_sink: the enqueue path, the writer loop with its
// size/time batching, retries with backoff, flush and shutdown.
// Included at the bottom of sinks/async_sink.hpp; do not include directly.
#pragma once

#include <algorithm>
#include <string>

namespace smart_ratelimit {

namespace detail {
inline void check_async_sink_options(const async_sink_options& o) {
    auto fail = [](const char* field, const std::string& why) {
        throw config_error(std::string("async_sink_options.") + field + ": " + why);
    };
    if (o.queue_capacity == 0) fail("queue_capacity", "must be at least 1, got 0");
    if (o.max_batch == 0) fail("max_batch", "must be at least 1, got 0");
    if (o.max_delay.count() < 0)
        fail("max_delay",
             "must not be negative, got " + std::to_string(o.max_delay.count()) + " ms");
    if (o.initial_backoff.count() < 0)
        fail("initial_backoff",
             "must not be negative, got " + std::to_string(o.initial_backoff.count()) + " ms");
    if (o.max_backoff < o.initial_backoff)
        fail("max_backoff", "must be at least initial_backoff (" +
                                std::to_string(o.initial_backoff.count()) + " ms), got " +
                                std::to_string(o.max_backoff.count()) + " ms");
    if (o.shutdown_timeout.count() < 0)
        fail("shutdown_timeout",
             "must not be negative, got " + std::to_string(o.shutdown_timeout.count()) + " ms");
}

// now + d, saturating at time_point::max() instead of overflowing.
template <class Clock>
typename Clock::time_point saturating_after(typename Clock::time_point now,
                                            std::chrono::milliseconds d) noexcept {
    using std::chrono::duration_cast;
    const auto room = duration_cast<std::chrono::milliseconds>(Clock::time_point::max() - now);
    if (d >= room) return Clock::time_point::max();
    return now + d;
}
}  // namespace detail

template <event_batch_writer Writer>
async_sink<Writer>::async_sink(Writer writer, async_sink_options options)
    : writer_(std::forward<Writer>(writer)), options_(options) {
    start();
}

template <event_batch_writer Writer>
template <class... Args>
async_sink<Writer>::async_sink(std::in_place_t, async_sink_options options, Args&&... args)
    : writer_(std::forward<Args>(args)...), options_(options) {
    start();
}

template <event_batch_writer Writer>
void async_sink<Writer>::start() {
    detail::check_async_sink_options(options_);
    queue_.reserve(options_.queue_capacity);
    thread_ = std::thread([this] { run(); });
}

template <event_batch_writer Writer>
async_sink<Writer>::~async_sink() {
    stop();
}

// ---- the request path ------------------------------------------------------------

template <event_batch_writer Writer>
template <class E>
void async_sink<Writer>::offer(E&& e) noexcept {
    bool wake = false;
    bool drop = false;
    {
        std::lock_guard<std::mutex> lock(mutex_);
        // Only producers (under the lock) write offered_: a plain store suffices.
        offered_.store(offered_.load(std::memory_order_relaxed) + 1, std::memory_order_release);
        if (closed_ || queue_.size() >= options_.queue_capacity) {
            drop = true;
        } else {
            try {
                queue_.push_back(std::forward<E>(e));  // capacity is reserved: no reallocation
            } catch (...) {                            // copying the strings ran out of memory
                drop = true;
            }
        }
        if (drop) {
            bump(dropped_queue_full_, 1);
        } else {
            ++accepted_;
            if (writer_idle_) {
                writer_idle_ = false;
                wake = true;
            } else if (writer_waiting_batch_ && queue_.size() >= options_.max_batch) {
                writer_waiting_batch_ = false;
                wake = true;
            }
        }
    }
    if (drop) dropped(drop_reason::queue_full, 1);
    if (wake) work_cv_.notify_one();
}

template <event_batch_writer Writer>
async_sink_stats async_sink<Writer>::stats() const noexcept {
    // Outcomes first, offered last: every outcome read has its offer counted.
    async_sink_stats s;
    s.written = written_.load(std::memory_order_acquire);
    s.dropped_invalid_row = dropped_invalid_row_.load(std::memory_order_acquire);
    s.dropped_write_error = dropped_write_error_.load(std::memory_order_acquire);
    s.dropped_queue_full = dropped_queue_full_.load(std::memory_order_acquire);
    s.batches = batches_.load(std::memory_order_acquire);
    s.retries = retries_.load(std::memory_order_acquire);
    s.offered = offered_.load(std::memory_order_acquire);
    return s;
}

template <event_batch_writer Writer>
bool async_sink<Writer>::running() const noexcept {
    std::lock_guard<std::mutex> lock(mutex_);
    return !closed_ && !writer_exited_;
}

// ---- flush and stop ----------------------------------------------------------------

template <event_batch_writer Writer>
void async_sink<Writer>::flush() {
    std::unique_lock<std::mutex> lock(mutex_);
    const std::uint64_t target = accepted_;
    if (resolved_ >= target || writer_exited_) return;
    flush_target_ = std::max(flush_target_, target);
    if (writer_waiting_batch_) {
        writer_waiting_batch_ = false;
        work_cv_.notify_one();
    }
    ++flush_waiters_;
    done_cv_.wait(lock, [&] { return resolved_ >= target || writer_exited_; });
    --flush_waiters_;
}

template <event_batch_writer Writer>
template <class Rep, class Period>
bool async_sink<Writer>::flush_for(std::chrono::duration<Rep, Period> timeout) {
    std::unique_lock<std::mutex> lock(mutex_);
    const std::uint64_t target = accepted_;
    if (resolved_ >= target || writer_exited_) return true;
    flush_target_ = std::max(flush_target_, target);
    if (writer_waiting_batch_) {
        writer_waiting_batch_ = false;
        work_cv_.notify_one();
    }
    ++flush_waiters_;
    const bool done =
        done_cv_.wait_for(lock, timeout, [&] { return resolved_ >= target || writer_exited_; });
    --flush_waiters_;
    return done;
}

template <event_batch_writer Writer>
void async_sink<Writer>::stop() noexcept {
    {
        std::lock_guard<std::mutex> lock(mutex_);
        if (!closed_) {
            closed_ = true;
            shutdown_deadline_ =
                detail::saturating_after<clock>(clock::now(), options_.shutdown_timeout);
        }
    }
    work_cv_.notify_one();
    std::lock_guard<std::mutex> join_lock(join_mutex_);
    if (thread_.joinable() && thread_.get_id() != std::this_thread::get_id()) thread_.join();
}

// ---- the writer thread ---------------------------------------------------------------

template <event_batch_writer Writer>
void async_sink<Writer>::run() noexcept {
    std::vector<event> batch;
    batch.reserve(options_.queue_capacity);
    std::unique_lock<std::mutex> lock(mutex_);
    for (;;) {
        if (queue_.empty()) {
            if (closed_) break;
            writer_idle_ = true;
            work_cv_.wait(lock, [&] { return !queue_.empty() || closed_; });
            writer_idle_ = false;
            continue;
        }
        const auto ready = [&] {
            return closed_ || queue_.size() >= options_.max_batch || flush_target_ > taken_;
        };
        if (!ready()) {
            const auto deadline = detail::saturating_after<clock>(clock::now(), options_.max_delay);
            writer_waiting_batch_ = true;
            work_cv_.wait_until(lock, deadline, ready);
            writer_waiting_batch_ = false;
        }
        batch.swap(queue_);  // producers keep the reserved capacity of the other buffer
        taken_ += batch.size();
        lock.unlock();
        write_all(batch);
        batch.clear();
        lock.lock();
    }
    writer_exited_ = true;
    done_cv_.notify_all();
}

template <event_batch_writer Writer>
void async_sink<Writer>::write_all(std::vector<event>& batch) noexcept {
    const std::span<const event> all(batch);
    for (std::size_t off = 0; off < all.size(); off += options_.max_batch) {
        const auto chunk = all.subspan(off, std::min(options_.max_batch, all.size() - off));
        write_chunk(chunk);
        resolve(chunk.size());
    }
}

template <event_batch_writer Writer>
void async_sink<Writer>::write_chunk(std::span<const event> chunk) noexcept {
    if (shutdown_expired()) {
        bump(dropped_write_error_, chunk.size());
        dropped(drop_reason::write_error, chunk.size());
        return;
    }
    bump(batches_, 1);
    std::span<const event> pending = chunk;
    auto backoff = options_.initial_backoff;
    for (std::size_t attempt = 0;; ++attempt) {
        const batch_result r = call_writer(pending);
        bump(written_, r.written);
        bump(dropped_invalid_row_, r.invalid);
        dropped(drop_reason::invalid_row, r.invalid);
        if (r.failed == 0) return;
        pending = pending.last(r.failed);
        if (attempt >= options_.max_retries || !wait_backoff(backoff)) {
            bump(dropped_write_error_, r.failed);
            dropped(drop_reason::write_error, r.failed);
            return;
        }
        backoff = backoff > options_.max_backoff / 2 ? options_.max_backoff : backoff * 2;
        bump(retries_, 1);
    }
}

template <event_batch_writer Writer>
batch_result async_sink<Writer>::call_writer(std::span<const event> rows) noexcept {
    batch_result r;
    try {
        r = writer_.write_batch(rows);
    } catch (...) {
        return batch_result{0, 0, rows.size()};
    }
    // Keep the accounting exact even if a writer reports inconsistent numbers.
    r.written = std::min(r.written, rows.size());
    r.invalid = std::min(r.invalid, rows.size() - r.written);
    r.failed = rows.size() - r.written - r.invalid;
    return r;
}

// Waits `d` before a retry; false when the shutdown deadline passed meanwhile.
template <event_batch_writer Writer>
bool async_sink<Writer>::wait_backoff(std::chrono::milliseconds d) noexcept {
    std::unique_lock<std::mutex> lock(mutex_);
    const auto until = detail::saturating_after<clock>(clock::now(), d);
    // stop() may shorten the wait by setting a deadline: re-evaluate on each wake.
    for (;;) {
        const auto limit = std::min(until, shutdown_deadline_);
        if (clock::now() >= limit) break;
        work_cv_.wait_until(lock, limit);
    }
    return clock::now() < shutdown_deadline_;
}

template <event_batch_writer Writer>
bool async_sink<Writer>::shutdown_expired() noexcept {
    std::lock_guard<std::mutex> lock(mutex_);
    return closed_ && clock::now() >= shutdown_deadline_;
}

template <event_batch_writer Writer>
void async_sink<Writer>::resolve(std::size_t n) noexcept {
    std::lock_guard<std::mutex> lock(mutex_);
    resolved_ += n;
    if (flush_waiters_ > 0) done_cv_.notify_all();
}

}  // namespace smart_ratelimit
