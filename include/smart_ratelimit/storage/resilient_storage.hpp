// smart_ratelimit/storage/resilient_storage.hpp
// resilient_storage<Primary, Failover, Clock>: the store-failure policy (SPEC 4) as
// a storage decorator. It wraps any storage_backend whose failures are exceptions
// (e.g. a Redis storage with on_error::raise) and answers fail_open or fail_closed,
// with a latency bound, a circuit breaker (closed, open, half-open with probing),
// optional failover to a second storage, and a counter for every outcome.
#pragma once

#include <smart_ratelimit/clock.hpp>
#include <smart_ratelimit/concepts.hpp>
#include <smart_ratelimit/decision.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string_view>
#include <type_traits>
#include <utility>

namespace smart_ratelimit {

/// The answer when the store cannot decide. Default closed, as the reference.
enum class failure_mode { fail_closed, fail_open };

/// The circuit breaker's state.
enum class breaker_state { closed, open, half_open };

/// Settings of resilient_storage.
struct resilience_options {
    failure_mode mode = failure_mode::fail_closed;
    /// A call slower than this counts as a failure (its answer is still used). The
    /// wait itself is bounded by the wrapped storage's own timeouts (Redis: the
    /// per-command timeout), which should be at most this.
    std::chrono::milliseconds timeout{500};
    /// Consecutive failures that open the breaker.
    std::uint32_t failure_threshold = 5;
    /// How long the breaker stays open before letting probes through (breaker clock).
    std::chrono::nanoseconds open_for = std::chrono::seconds(5);
    /// Calls let through at once while half-open; one success closes the breaker.
    std::uint32_t half_open_probes = 1;
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
    std::uint64_t fail_open_answers = 0;  ///< policy answers: allowed
    std::uint64_t fail_closed_answers = 0;///< policy answers: denied
};

/// The Failover parameter when there is no second storage.
struct no_failover {};

namespace detail {
template <class Failover, class Algorithm>
inline constexpr bool failover_fits = storage_backend<Failover> &&
                                      std::is_same_v<typename Failover::algorithm_type, Algorithm>;
template <class Algorithm>
inline constexpr bool failover_fits<no_failover, Algorithm> = true;
}  // namespace detail

/// The decorator. Primary (and Failover, unless no_failover) are storage_backends
/// with the same algorithm_type; their failures are exceptions. Clock drives the
/// breaker's open period only (inject a manual_clock in tests); call latency is
/// measured on std::chrono::steady_clock. Copies share the breaker and counters.
/// Thread safety: all operations may be called concurrently (given thread-safe
/// wrapped storages); the breaker is guarded by a mutex held only to read or flip it.
template <storage_backend Primary, class Failover = no_failover, clock Clock = steady_clock>
    requires detail::failover_fits<Failover, typename Primary::algorithm_type>
class resilient_storage {
public:
    using algorithm_type = typename Primary::algorithm_type;
    static constexpr bool has_failover = !std::is_same_v<Failover, no_failover>;

    explicit resilient_storage(Primary primary, resilience_options o = {}, Failover failover = Failover{},
                               Clock clock = Clock{})
        : primary_(std::move(primary)),
          failover_(std::move(failover)),
          clock_(std::move(clock)),
          shared_(std::make_shared<shared>(o)) {
        if (o.failure_threshold == 0) shared_->opts.failure_threshold = 1;
        if (o.half_open_probes == 0) shared_->opts.half_open_probes = 1;
    }

    outcome acquire(std::string_view key, const algorithm_type& a, std::chrono::nanoseconds now,
                    std::uint64_t cost) {
        return call(a, [&](auto& s) { return s.acquire(key, a, now, cost); });
    }
    outcome peek(std::string_view key, const algorithm_type& a, std::chrono::nanoseconds now,
                 std::uint64_t cost) {
        return call(a, [&](auto& s) { return s.peek(key, a, now, cost); });
    }
    void release(std::string_view key, const algorithm_type& a, std::chrono::nanoseconds now,
                 std::uint64_t cost) {
        call(a, [&](auto& s) {
            s.release(key, a, now, cost);
            return outcome{};
        });
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
        s.fail_open_answers = c.fail_open_answers.load(std::memory_order_relaxed);
        s.fail_closed_answers = c.fail_closed_answers.load(std::memory_order_relaxed);
        return s;
    }

    const resilience_options& options() const noexcept { return shared_->opts; }
    Primary& primary() noexcept { return primary_; }
    Failover& failover() noexcept { return failover_; }
    const Clock& breaker_clock() const noexcept { return clock_; }

private:
    struct counters_t {
        std::atomic<std::uint64_t> successes{0}, failures{0}, slow_calls{0}, short_circuited{0}, probes{0},
            opened{0}, recovered{0}, failover_answers{0}, failover_failures{0}, fail_open_answers{0},
            fail_closed_answers{0};
    };
    struct shared {
        explicit shared(resilience_options o) : opts(o) {}
        resilience_options opts;
        std::mutex mutex;
        breaker_state state = breaker_state::closed;
        std::uint32_t consecutive_failures = 0;
        std::uint32_t probes_in_flight = 0;
        std::chrono::nanoseconds open_until{0};
        counters_t counters;
    };

    enum class admission { normal, probe, rejected };

    static void bump(std::atomic<std::uint64_t>& c) noexcept { c.fetch_add(1, std::memory_order_relaxed); }

    admission admit() {
        std::lock_guard<std::mutex> lock(shared_->mutex);
        switch (shared_->state) {
            case breaker_state::closed: return admission::normal;
            case breaker_state::open:
                if (clock_.now() < shared_->open_until) return admission::rejected;
                shared_->state = breaker_state::half_open;
                shared_->probes_in_flight = 0;
                [[fallthrough]];
            case breaker_state::half_open:
                if (shared_->probes_in_flight >= shared_->opts.half_open_probes) return admission::rejected;
                ++shared_->probes_in_flight;
                return admission::probe;
        }
        return admission::rejected;
    }

    void on_success(admission a) {
        std::lock_guard<std::mutex> lock(shared_->mutex);
        shared_->consecutive_failures = 0;
        if (a == admission::probe) {
            if (shared_->probes_in_flight > 0) --shared_->probes_in_flight;
            if (shared_->state == breaker_state::half_open) {
                shared_->state = breaker_state::closed;
                bump(shared_->counters.recovered);
            }
        }
    }

    void on_failure(admission a) {
        std::lock_guard<std::mutex> lock(shared_->mutex);
        if (a == admission::probe && shared_->probes_in_flight > 0) --shared_->probes_in_flight;
        ++shared_->consecutive_failures;
        const bool trip = a == admission::probe ? shared_->state == breaker_state::half_open
                                                : shared_->state == breaker_state::closed &&
                                                      shared_->consecutive_failures >= shared_->opts.failure_threshold;
        if (trip) {
            shared_->state = breaker_state::open;
            shared_->open_until = clock_.now() + shared_->opts.open_for;
            bump(shared_->counters.opened);
        }
    }

    std::chrono::nanoseconds open_remaining() const {
        std::lock_guard<std::mutex> lock(shared_->mutex);
        const auto left = shared_->open_until - clock_.now();
        return left > std::chrono::nanoseconds(0) ? left : std::chrono::nanoseconds(0);
    }

    template <class F>
    outcome call(const algorithm_type& a, F&& f) {
        auto& c = shared_->counters;
        const admission adm = admit();
        if (adm == admission::rejected) {
            bump(c.short_circuited);
        } else {
            if (adm == admission::probe) bump(c.probes);
            const auto start = std::chrono::steady_clock::now();
            bool ok = false;
            outcome o;
            try {
                o = f(primary_);
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
                outcome o = f(failover_);
                bump(c.failover_answers);
                return o;
            } catch (...) {
                bump(c.failover_failures);
            }
        }
        return policy_answer(a);
    }

    outcome policy_answer(const algorithm_type& a) {
        outcome o;
        if (shared_->opts.mode == failure_mode::fail_open) {
            bump(shared_->counters.fail_open_answers);
            o.allowed = true;
            o.remaining = a.limit();
            return o;
        }
        bump(shared_->counters.fail_closed_answers);
        o.allowed = false;
        o.count = a.limit();
        const auto left = open_remaining();
        o.retry_after = left > std::chrono::nanoseconds(0) ? left : std::chrono::nanoseconds(shared_->opts.timeout);
        return o;
    }

    Primary primary_;
    [[no_unique_address]] Failover failover_;
    [[no_unique_address]] Clock clock_;
    std::shared_ptr<shared> shared_;
};

}  // namespace smart_ratelimit
