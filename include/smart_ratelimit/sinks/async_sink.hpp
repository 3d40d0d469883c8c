// smart_ratelimit/sinks/async_sink.hpp
// The asynchronous batching sink: the request path pushes an event into a
// bounded queue (never blocking, never throwing) and one writer thread hands
// batches to an event_batch_writer (e.g. the SOCI event store), retrying store
// failures with bounded backoff. Every offered event is written or counted.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <mutex>
#include <span>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include <smart_ratelimit/error.hpp>
#include <smart_ratelimit/event.hpp>
#include <smart_ratelimit/sinks/batch_writer.hpp>
#include <smart_ratelimit/sinks/sink_stats.hpp>

namespace smart_ratelimit {

/// Tuning of an async_sink. Every field is checked by the constructor, which
/// throws config_error naming the field.
struct async_sink_options {
    /// Events that may wait in the queue; past it, record() drops (queue_full).
    /// The batch the writer is working on is not counted against it.
    std::size_t queue_capacity = 8192;
    /// Largest batch handed to the writer in one write_batch call.
    std::size_t max_batch = 512;
    /// A partial batch is written at most this long after the writer saw its
    /// first event.
    std::chrono::milliseconds max_delay{200};
    /// Further attempts for the failed rows of a batch before they are dropped
    /// as write_error.
    std::size_t max_retries = 5;
    /// Wait before the first retry; doubled for each further one, up to max_backoff.
    std::chrono::milliseconds initial_backoff{50};
    std::chrono::milliseconds max_backoff{2000};
    /// How long stop() keeps retrying a failing store before it drops what is left
    /// as write_error. Rows the store accepts are always written.
    std::chrono::milliseconds shutdown_timeout{5000};
    /// Called with the reason and the number of events each time events are dropped,
    /// outside the queue's lock: on the producer's thread for queue_full, on the writer
    /// thread otherwise (a cold path: keep it short). How drops reach observers (logs,
    /// alerts; metrics read stats() at scrape time). An exception from it is swallowed.
    /// Empty: nothing is called.
    std::function<void(drop_reason reason, std::uint64_t count)> on_drop;
};

/// Sends events to `Writer` (an event_batch_writer) from a background thread.
///
/// - `record(e)` costs a lock, a move (or copy) into a preallocated buffer and,
///   rarely, a notification; it never blocks on the writer and never throws.
/// - The writer thread takes the whole queue at once (the queue is a double
///   buffer: two vectors swapped under the lock) and writes it in batches of at
///   most `max_batch`, when `max_batch` events are waiting, when `max_delay` has
///   passed since it saw the first one, on flush(), or on stop().
/// - Rows a batch_result reports `failed` are retried with exponential backoff
///   while new events keep queueing; the failed rows are taken to be the last
///   `failed` rows of the batch (a writer writes in order and stops at the first
///   store failure). After `max_retries` they are dropped as write_error, and the
///   next batch starts afresh, so writing resumes by itself when the store
///   recovers. `invalid` rows are dropped as invalid_row and never retried.
///   A writer that throws is treated as having failed the whole batch.
/// - Accounting: written + dropped + in_flight == offered at any time, and
///   written + dropped == offered once flush() or stop() has returned (with no
///   producer recording meanwhile).
/// - Events from one producer thread reach the writer in the order recorded.
///
/// Not movable (its thread refers to it): give a limiter `async_sink<W>&`, or a
/// fanout_sink that holds it by reference.
/// Thread safety: record(), flush(), stats() and stop() may be called from any
/// thread concurrently, but not from inside the writer. The writer is only ever
/// called from the sink's own thread.
template <event_batch_writer Writer>
class async_sink {
public:
    using writer_type = Writer;

    /// Starts the writer thread. Throws config_error on bad options.
    explicit async_sink(Writer writer, async_sink_options options = {});

    /// Constructs the writer in place from `args`.
    template <class... Args>
    explicit async_sink(std::in_place_t, async_sink_options options, Args&&... args);

    async_sink(const async_sink&) = delete;
    async_sink& operator=(const async_sink&) = delete;

    /// Stops the sink as stop() does.
    ~async_sink();

    /// Queues a copy of `e`; drops it (queue_full) when the queue is full or closed.
    void record(const event& e) noexcept { offer(e); }
    /// Queues `e` by moving it: the cheapest way to hand over an event.
    void record(event&& e) noexcept { offer(std::move(e)); }

    /// Blocks until every event recorded before the call is written or dropped.
    /// While the store is failing this lasts until the retry budget runs out.
    void flush();

    /// As flush(), but gives up after `timeout`; returns true when everything
    /// recorded before the call was written or dropped.
    template <class Rep, class Period>
    bool flush_for(std::chrono::duration<Rep, Period> timeout);

    /// Closes the queue, writes what is queued (retrying a failing store for at
    /// most `shutdown_timeout`), and joins the writer thread. Events recorded
    /// afterwards are dropped as queue_full. Idempotent.
    void stop() noexcept;

    /// The counters, readable at any time.
    async_sink_stats stats() const noexcept;

    /// True while the sink accepts events and its writer thread runs: false once
    /// stop() was called (or the destructor began) or the writer thread has exited.
    /// For health checks; a running sink may still be dropping rows (see stats()).
    bool running() const noexcept;

    const async_sink_options& options() const noexcept { return options_; }

    /// The writer. Touch it only when the sink is stopped or the writer type is
    /// itself safe to use concurrently.
    Writer& writer() noexcept { return writer_; }
    const Writer& writer() const noexcept { return writer_; }

private:
    using clock = std::chrono::steady_clock;

    template <class E>
    void offer(E&& e) noexcept;
    void start();
    void run() noexcept;
    void write_all(std::vector<event>& batch) noexcept;
    void write_chunk(std::span<const event> chunk) noexcept;
    batch_result call_writer(std::span<const event> rows) noexcept;
    bool wait_backoff(std::chrono::milliseconds d) noexcept;
    bool shutdown_expired() noexcept;
    void resolve(std::size_t n) noexcept;
    static void bump(std::atomic<std::uint64_t>& c, std::uint64_t n) noexcept {
        c.fetch_add(n, std::memory_order_release);
    }
    void dropped(drop_reason r, std::uint64_t n) const noexcept {
        if (n == 0 || !options_.on_drop) return;
        try {
            options_.on_drop(r, n);
        } catch (...) {}
    }

    [[no_unique_address]] Writer writer_;
    const async_sink_options options_;

    // Everything below up to the counters is guarded by mutex_.
    mutable std::mutex mutex_;
    std::condition_variable work_cv_;    // wakes the writer
    std::condition_variable done_cv_;    // wakes flush() callers
    std::vector<event> queue_;           // producers append here
    bool closed_ = false;                // stop() was called
    bool writer_idle_ = false;           // writer waits for a first event
    bool writer_waiting_batch_ = false;  // writer waits for a full batch or max_delay
    bool writer_exited_ = false;
    std::uint64_t accepted_ = 0;      // events put into queue_
    std::uint64_t taken_ = 0;         // events moved out of queue_ by the writer
    std::uint64_t resolved_ = 0;      // taken events written or dropped
    std::uint64_t flush_target_ = 0;  // a flush() waits for resolved_ to reach this
    std::size_t flush_waiters_ = 0;
    clock::time_point shutdown_deadline_ = clock::time_point::max();

    std::mutex join_mutex_;
    std::thread thread_;

    // Counters: incremented with release, read with acquire (offered last).
    std::atomic<std::uint64_t> offered_{0};
    std::atomic<std::uint64_t> written_{0};
    std::atomic<std::uint64_t> dropped_queue_full_{0};
    std::atomic<std::uint64_t> dropped_write_error_{0};
    std::atomic<std::uint64_t> dropped_invalid_row_{0};
    std::atomic<std::uint64_t> batches_{0};
    std::atomic<std::uint64_t> retries_{0};
};

}  // namespace smart_ratelimit

#include <smart_ratelimit/sinks/impl/async_sink.hpp>
