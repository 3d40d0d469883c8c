// smart_ratelimit/storage/resilient_storage.hpp
// resilient_storage<Primary, Failover, Clock>: bounds a failing store, as a storage
// decorator. It wraps any storage_backend whose failures are exceptions (e.g. a
// Redis storage with on_error::raise) and answers a degraded outcome when it cannot
// get an answer, with a latency bound, a circuit breaker (closed, open, half-open
// with probing), optional failover to a second storage, and a counter for every
// outcome. Whether a degraded request passes is the limiter's failure_policy. An opt-in
// bounded-wait mode runs calls on a small pool of worker threads it owns and stops
// waiting at the timeout, so a frozen backend cannot hold a request longer.
#pragma once

#include <smart_ratelimit/clock.hpp>
#include <smart_ratelimit/concepts.hpp>
#include <smart_ratelimit/decision.hpp>
#include <smart_ratelimit/error.hpp>
#include <smart_ratelimit/storage/failure_policy.hpp>
#include <smart_ratelimit/storage/storage_op.hpp>

#include <atomic>
#include <chrono>
#include <concepts>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

namespace smart_ratelimit {

/// The circuit breaker's state.
enum class breaker_state { closed, open, half_open };

/// Settings of resilient_storage.
struct resilience_options {
    /// A call slower than this counts as a failure. Without bounded-wait workers the
    /// slow answer is still used and the wait itself is bounded only by the wrapped
    /// storage's own timeouts (Redis: the per-command timeout), which should be at most
    /// this. With them, the caller stops waiting here and gets a degraded answer.
    std::chrono::milliseconds timeout{500};
    /// Bounded-wait mode when > 0: calls to the primary run on this many worker
    /// threads owned by the decorator, and the caller waits at most `timeout`. When
    /// every worker is busy (stuck on a frozen backend), a call fails fast with the
    /// degraded answer instead of queueing. 0 (the default): calls run on the caller's
    /// thread. At most max_wait_workers; bounded wait needs a timeout above zero.
    std::uint32_t wait_workers = 0;
    static constexpr std::uint32_t max_wait_workers = 256;
    /// Consecutive failures that open the breaker.
    std::uint32_t failure_threshold = 5;
    /// How long the breaker stays open before letting probes through (breaker clock).
    std::chrono::nanoseconds open_for = std::chrono::seconds(5);
    /// Calls let through at once while half-open; one success closes the breaker.
    std::uint32_t half_open_probes = 1;
    /// Called after the breaker changes state, with the old and new state, outside the
    /// breaker's mutex, on the thread whose call changed it (a cold path). How breaker
    /// changes reach observers (logs, alerts; metrics read state() at scrape time).
    /// An exception from it is swallowed. Empty: nothing is called.
    std::function<void(breaker_state from, breaker_state to)> on_breaker_change;
};

/// Every outcome, counted.
struct resilience_stats {
    std::uint64_t successes = 0;          ///< answered by the primary storage
    std::uint64_t failures = 0;           ///< primary calls that threw
    std::uint64_t slow_calls = 0;         ///< primary calls slower than the timeout
    std::uint64_t short_circuited = 0;    ///< calls not sent to the primary (breaker open)
    std::uint64_t probes = 0;             ///< half-open probe calls
    std::uint64_t opened = 0;             ///< times the breaker opened
    std::uint64_t recovered = 0;          ///< times a probe closed it again
    std::uint64_t failover_answers = 0;   ///< answered by the failover storage
    std::uint64_t failover_failures = 0;  ///< failover calls that threw
    std::uint64_t degraded_answers = 0;   ///< calls answered degraded (no store could decide)
    std::uint64_t timed_out = 0;          ///< bounded wait: calls abandoned at the timeout
    std::uint64_t workers_exhausted = 0;  ///< bounded wait: calls refused, every worker busy
    std::uint64_t late_completions = 0;   ///< bounded wait: abandoned calls that finished later
};

/// The Failover parameter when there is no second storage.
struct no_failover {};

namespace detail {
template <class F, class Algorithm>
concept failover_storage =
    storage_backend<F> && std::same_as<typename F::algorithm_type, Algorithm>;
template <class Failover, class Algorithm>
inline constexpr bool failover_fits = failover_storage<Failover, Algorithm>;
template <class Algorithm>
inline constexpr bool failover_fits<no_failover, Algorithm> = true;
}  // namespace detail

/// The decorator. Primary (and Failover, unless no_failover) are storage_backends
/// with the same algorithm_type; their failures are exceptions. Clock drives the
/// breaker's open period only (inject a manual_clock in tests); call latency and the
/// bounded wait are measured on std::chrono::steady_clock. Copies share the primary
/// storage, the breaker, the counters and the workers.
///
/// Bounded-wait mode (options().wait_workers > 0): each primary call is copied (key,
/// algorithm, now, cost) into a task for an idle worker; the caller waits on the result
/// until `timeout`. On timeout the caller gets the failover's or a degraded answer,
/// the breaker records a failure (`timed_out`), and the stuck call finishes in the
/// background, its result discarded (`late_completions`). A timed-out call that has not
/// started yet is skipped. Trade-off: an acquire that times out but later succeeds in
/// the background has consumed quota that nobody used (no refund is sent: the backend
/// is presumably unhealthy, and a refund could itself hang); at most `wait_workers`
/// such acquires per key are in flight, so the over-consumption is bounded by that
/// times the cost, and it is the conservative direction (fewer requests allowed, never
/// more). A timed-out release may likewise still apply later. When every worker is
/// busy the call is refused at once (`workers_exhausted`, a breaker failure). The last
/// copy's destructor waits for running calls to return (a frozen backend must be
/// resumed or its connection time out before the decorator can be destroyed).
/// Thread safety: all operations may be called concurrently (given thread-safe
/// wrapped storages, which bounded-wait mode requires); the breaker is guarded by a
/// mutex held only to read or flip it.
template <storage_backend Primary, class Failover = no_failover, clock Clock = steady_clock>
requires detail::failover_fits<Failover, typename Primary::algorithm_type>
class resilient_storage {
public:
    using algorithm_type = typename Primary::algorithm_type;
    static constexpr bool has_failover = !std::is_same_v<Failover, no_failover>;

    explicit resilient_storage(Primary primary, resilience_options o = {},
                               Failover failover = Failover{}, Clock clock = Clock{})
        : primary_(std::make_shared<Primary>(std::move(primary))),
          failover_(std::move(failover)),
          clock_(std::move(clock)),
          shared_(std::make_shared<shared>(o)) {
        if (o.failure_threshold == 0) shared_->opts.failure_threshold = 1;
        if (o.half_open_probes == 0) shared_->opts.half_open_probes = 1;
        if (o.wait_workers > resilience_options::max_wait_workers)
            throw config_error("resilience_options: wait_workers " +
                               std::to_string(o.wait_workers) + " is above the maximum of " +
                               std::to_string(resilience_options::max_wait_workers));
        if (o.wait_workers > 0 && o.timeout <= std::chrono::milliseconds(0))
            throw config_error(
                "resilience_options: timeout must be above zero with wait_workers (got " +
                std::to_string(o.timeout.count()) + " ms)");
        if (o.wait_workers > 0)
            shared_->pool.emplace(o.wait_workers, &shared_->counters.late_completions);
    }

    outcome acquire(std::string_view key, const algorithm_type& a, std::chrono::nanoseconds now,
                    std::uint64_t cost) {
        return call(op::acquire, key, a, now, cost);
    }
    outcome peek(std::string_view key, const algorithm_type& a, std::chrono::nanoseconds now,
                 std::uint64_t cost) {
        return call(op::peek, key, a, now, cost);
    }
    void release(std::string_view key, const algorithm_type& a, std::chrono::nanoseconds now,
                 std::uint64_t cost) {
        call(op::release, key, a, now, cost);
    }

    /// The breaker's state as of now (an expired open period reads as half_open).
    breaker_state state() const {
        std::lock_guard<std::mutex> lock(shared_->mutex);
        if (shared_->state == breaker_state::open && clock_.now() >= shared_->open_until)
            return breaker_state::half_open;
        return shared_->state;
    }

    resilience_stats stats() const noexcept {
        const auto& c = shared_->counters;
        resilience_stats s;
        s.successes = c.successes.load(std::memory_order_relaxed);
        s.failures = c.failures.load(std::memory_order_relaxed);
        s.slow_calls = c.slow_calls.load(std::memory_order_relaxed);
        s.short_circuited = c.short_circuited.load(std::memory_order_relaxed);
        s.probes = c.probes.load(std::memory_order_relaxed);
        s.opened = c.opened.load(std::memory_order_relaxed);
        s.recovered = c.recovered.load(std::memory_order_relaxed);
        s.failover_answers = c.failover_answers.load(std::memory_order_relaxed);
        s.failover_failures = c.failover_failures.load(std::memory_order_relaxed);
        s.degraded_answers = c.degraded_answers.load(std::memory_order_relaxed);
        s.timed_out = c.timed_out.load(std::memory_order_relaxed);
        s.workers_exhausted = c.workers_exhausted.load(std::memory_order_relaxed);
        s.late_completions = c.late_completions.load(std::memory_order_relaxed);
        return s;
    }

    const resilience_options& options() const noexcept { return shared_->opts; }
    Primary& primary() noexcept { return *primary_; }
    Failover& failover() noexcept { return failover_; }
    const Clock& breaker_clock() const noexcept { return clock_; }

private:
    struct counters_t {
        std::atomic<std::uint64_t> successes{0}, failures{0}, slow_calls{0}, short_circuited{0},
            probes{0}, opened{0}, recovered{0}, failover_answers{0}, failover_failures{0},
            degraded_answers{0}, timed_out{0}, workers_exhausted{0}, late_completions{0};
    };

    // One primary call handed to a worker. The caller and the worker share it; whoever
    // comes second (a late worker, a caller that gave up) sees `abandoned` or `done`.
    struct call_slot {
        std::mutex m;
        std::condition_variable cv;
        bool started = false, done = false, abandoned = false, ok = false;
        outcome result;
    };

    // The bounded-wait workers: a fixed set of threads and a hand-off queue that never
    // holds more tasks than there are idle workers. A task returns true when its caller
    // had already given up on it. A worker counts as idle again as soon as its task
    // calls ticket.release() (after the backend call, before the caller is woken), so a
    // caller that makes its next call at once never finds its own last worker busy.
    class worker_pool;
    class worker_ticket {
    public:
        explicit worker_ticket(worker_pool& p) noexcept : pool_(p) {}
        worker_ticket(const worker_ticket&) = delete;
        worker_ticket& operator=(const worker_ticket&) = delete;
        void release() noexcept {
            if (!released_) pool_.release_one();
            released_ = true;
        }

    private:
        worker_pool& pool_;
        bool released_ = false;
    };

    class worker_pool {
    public:
        worker_pool(std::uint32_t n, std::atomic<std::uint64_t>* late) : late_(late) {
            threads_.reserve(n);
            try {
                for (std::uint32_t i = 0; i < n; ++i) threads_.emplace_back([this] { run(); });
            } catch (...) {  // could not start them all: stop the ones that did
                shut_down();
                throw;
            }
        }
        worker_pool(const worker_pool&) = delete;
        worker_pool& operator=(const worker_pool&) = delete;
        ~worker_pool() { shut_down(); }
        /// Hands the task to an idle worker; false (nothing queued) when every worker is busy.
        bool try_submit(std::function<bool(worker_ticket&)> task) {
            {
                std::lock_guard<std::mutex> lock(m_);
                if (busy_ >= threads_.size()) return false;
                ++busy_;
                queue_.push_back(std::move(task));
            }
            cv_.notify_one();
            return true;
        }

    private:
        friend class worker_ticket;
        void release_one() noexcept {
            std::lock_guard<std::mutex> lock(m_);
            --busy_;
        }

        void shut_down() {
            {
                std::lock_guard<std::mutex> lock(m_);
                stop_ = true;
            }
            cv_.notify_all();
            for (auto& t : threads_) t.join();
        }

        void run() {
            for (;;) {
                std::function<bool(worker_ticket&)> task;
                {
                    std::unique_lock<std::mutex> lock(m_);
                    cv_.wait(lock, [this] { return stop_ || !queue_.empty(); });
                    if (queue_.empty()) return;
                    task = std::move(queue_.front());
                    queue_.pop_front();
                }
                worker_ticket ticket(*this);
                const bool abandoned = task(ticket);
                task = nullptr;
                ticket.release();  // if the task did not
                if (abandoned) late_->fetch_add(1, std::memory_order_relaxed);
            }
        }

        std::atomic<std::uint64_t>* late_;
        std::mutex m_;
        std::condition_variable cv_;
        std::deque<std::function<bool(worker_ticket&)>> queue_;
        std::size_t busy_ = 0;
        bool stop_ = false;
        std::vector<std::thread> threads_;
    };
    struct shared {
        explicit shared(resilience_options o) : opts(std::move(o)) {}
        resilience_options opts;
        std::mutex mutex;
        breaker_state state = breaker_state::closed;
        std::uint32_t consecutive_failures = 0;
        std::uint32_t probes_in_flight = 0;
        std::chrono::nanoseconds open_until{0};
        counters_t counters;
        std::optional<worker_pool> pool;  // last: joined before the counters it bumps go away
    };

    enum class admission { normal, probe, rejected };
    using op = storage_op;

    template <class S>
    static outcome invoke(S& s, op o, std::string_view key, const algorithm_type& a,
                          std::chrono::nanoseconds now, std::uint64_t cost) {
        switch (o) {
            case op::acquire:
                return s.acquire(key, a, now, cost);
            case op::peek:
                return s.peek(key, a, now, cost);
            case op::release:
                break;
        }
        s.release(key, a, now, cost);
        return outcome{};
    }

    enum class bounded_result { answered, threw, timed_out, exhausted };

    // Runs the primary call on a worker and waits for it until the timeout.
    bounded_result call_bounded(op o, std::string_view key, const algorithm_type& a,
                                std::chrono::nanoseconds now, std::uint64_t cost, outcome& out) {
        auto slot = std::make_shared<call_slot>();
        auto task = [slot, primary = primary_, o, key = std::string(key), a, now,
                     cost](worker_ticket& ticket) -> bool {
            {
                std::lock_guard<std::mutex> lock(slot->m);
                if (slot->abandoned) return true;  // the caller gave up before it started
                slot->started = true;
            }
            bool ok = false;
            outcome r;
            try {
                r = invoke(*primary, o, key, a, now, cost);
                ok = true;
            } catch (...) {}
            ticket.release();  // out of the backend: free before the caller wakes
            std::lock_guard<std::mutex> lock(slot->m);
            if (slot->abandoned) return true;
            slot->ok = ok;
            slot->result = r;
            slot->done = true;
            slot->cv.notify_one();
            return false;
        };
        if (!shared_->pool->try_submit(std::move(task))) return bounded_result::exhausted;
        const auto deadline = std::chrono::steady_clock::now() + shared_->opts.timeout;
        std::unique_lock<std::mutex> lock(slot->m);
        if (!slot->cv.wait_until(lock, deadline, [&] { return slot->done; })) {
            slot->abandoned = true;
            return bounded_result::timed_out;
        }
        if (!slot->ok) return bounded_result::threw;
        out = slot->result;
        return bounded_result::answered;
    }

    static void bump(std::atomic<std::uint64_t>& c) noexcept {
        c.fetch_add(1, std::memory_order_relaxed);
    }

    // Tells the on_breaker_change callback (outside the mutex).
    void changed(breaker_state from, breaker_state to) const noexcept {
        if (!shared_->opts.on_breaker_change) return;
        try {
            shared_->opts.on_breaker_change(from, to);
        } catch (...) {}
    }

    admission admit() {
        bool half_opened = false;
        const admission a = admit_locked(half_opened);
        if (half_opened) changed(breaker_state::open, breaker_state::half_open);
        return a;
    }

    admission admit_locked(bool& half_opened) {
        std::lock_guard<std::mutex> lock(shared_->mutex);
        switch (shared_->state) {
            case breaker_state::closed:
                return admission::normal;
            case breaker_state::open:
                if (clock_.now() < shared_->open_until) return admission::rejected;
                shared_->state = breaker_state::half_open;
                shared_->probes_in_flight = 0;
                half_opened = true;
                [[fallthrough]];
            case breaker_state::half_open:
                if (shared_->probes_in_flight >= shared_->opts.half_open_probes)
                    return admission::rejected;
                ++shared_->probes_in_flight;
                return admission::probe;
        }
        return admission::rejected;
    }

    void on_success(admission a) {
        bool closed = false;
        {
            std::lock_guard<std::mutex> lock(shared_->mutex);
            shared_->consecutive_failures = 0;
            if (a == admission::probe) {
                if (shared_->probes_in_flight > 0) --shared_->probes_in_flight;
                if (shared_->state == breaker_state::half_open) {
                    shared_->state = breaker_state::closed;
                    bump(shared_->counters.recovered);
                    closed = true;
                }
            }
        }
        if (closed) changed(breaker_state::half_open, breaker_state::closed);
    }

    void on_failure(admission a) {
        breaker_state from = breaker_state::closed;
        bool trip = false;
        {
            std::lock_guard<std::mutex> lock(shared_->mutex);
            if (a == admission::probe && shared_->probes_in_flight > 0) --shared_->probes_in_flight;
            ++shared_->consecutive_failures;
            from = shared_->state;
            trip = a == admission::probe
                       ? shared_->state == breaker_state::half_open
                       : shared_->state == breaker_state::closed &&
                             shared_->consecutive_failures >= shared_->opts.failure_threshold;
            if (trip) {
                shared_->state = breaker_state::open;
                shared_->open_until = clock_.now() + shared_->opts.open_for;
                bump(shared_->counters.opened);
            }
        }
        if (trip) changed(from, breaker_state::open);
    }

    std::chrono::nanoseconds open_remaining() const {
        std::lock_guard<std::mutex> lock(shared_->mutex);
        const auto left = shared_->open_until - clock_.now();
        return left > std::chrono::nanoseconds(0) ? left : std::chrono::nanoseconds(0);
    }

    outcome call(op op_, std::string_view key, const algorithm_type& a,
                 std::chrono::nanoseconds now, std::uint64_t cost) {
        auto& c = shared_->counters;
        const admission adm = admit();
        if (adm == admission::rejected) {
            bump(c.short_circuited);
        } else if (shared_->pool) {
            if (adm == admission::probe) bump(c.probes);
            outcome o;
            switch (call_bounded(op_, key, a, now, cost, o)) {
                case bounded_result::answered:
                    bump(c.successes);
                    on_success(adm);
                    return o;
                case bounded_result::threw:
                    bump(c.failures);
                    break;
                case bounded_result::timed_out:
                    bump(c.timed_out);
                    bump(c.slow_calls);
                    break;
                case bounded_result::exhausted:
                    bump(c.workers_exhausted);
                    break;
            }
            on_failure(adm);
        } else {
            if (adm == admission::probe) bump(c.probes);
            const auto start = std::chrono::steady_clock::now();
            bool ok = false;
            outcome o;
            try {
                o = invoke(*primary_, op_, key, a, now, cost);
                ok = true;
            } catch (...) {
                bump(c.failures);
            }
            const bool slow = std::chrono::steady_clock::now() - start > shared_->opts.timeout;
            if (slow) bump(c.slow_calls);
            if (ok && !slow) {
                bump(c.successes);
                on_success(adm);
                return o;
            }
            on_failure(adm);
            if (ok) {
                bump(c.successes);
                return o;  // slow but answered: the answer stands
            }
        }
        if constexpr (has_failover) {
            try {
                outcome o = invoke(failover_, op_, key, a, now, cost);
                bump(c.failover_answers);
                return o;
            } catch (...) {
                bump(c.failover_failures);
            }
        }
        return degraded_answer();
    }

    // Degraded, retry when the breaker lets calls through again (or after the timeout).
    outcome degraded_answer() {
        bump(shared_->counters.degraded_answers);
        const auto left = open_remaining();
        return degraded_outcome(left > std::chrono::nanoseconds(0)
                                    ? left
                                    : std::chrono::nanoseconds(shared_->opts.timeout));
    }

    std::shared_ptr<Primary> primary_;
    [[no_unique_address]] Failover failover_;
    [[no_unique_address]] Clock clock_;
    std::shared_ptr<shared> shared_;
};

}  // namespace smart_ratelimit
