// smart_ratelimit/observer.hpp
// The limiter's observer policy: hears every decision, with the time it took, so
// that metrics (metrics/ and the Prometheus endpoint), structured logs or an
// OpenTelemetry bridge can watch a running service. `null_observer`, the default,
// costs nothing.
#pragma once

#include <smart_ratelimit/decision.hpp>

#include <chrono>
#include <concepts>
#include <cstddef>
#include <string_view>
#include <type_traits>
#include <utility>

namespace smart_ratelimit {

/// The `elapsed` passed to an observer when the decision was not timed.
inline constexpr std::chrono::nanoseconds not_timed{-1};

/// The time a request's decision has taken, read from the limiter's clock only when
/// asked. Passed to observers that accept it (see `o.on_decision(d, timer)` below), so
/// that an observer which times a sample of requests decides after the fact and costs
/// the others nothing: the limiter's own start-of-decision clock read is the start.
/// Untimed (elapsed() is not_timed) for decisions at a caller's time (check_at).
/// Valid only during the on_decision call it is passed to.
class decision_timer {
public:
    /// An untimed decision.
    constexpr decision_timer() noexcept = default;

    /// A decision that started at `start` on `c` (anything with `now()` returning
    /// std::chrono::nanoseconds); `c` must outlive the timer.
    template <class Clock>
    decision_timer(const Clock& c, std::chrono::nanoseconds start) noexcept
        : read_(&read<Clock>), clock_(&c), start_(start) {}

    /// The time since the decision started (one clock read), or not_timed.
    std::chrono::nanoseconds elapsed() const {
        return read_ == nullptr ? not_timed : read_(clock_) - start_;
    }

private:
    template <class Clock>
    static std::chrono::nanoseconds read(const void* c) {
        return static_cast<const Clock*>(c)->now();
    }

    std::chrono::nanoseconds (*read_)(const void*) = nullptr;
    const void* clock_ = nullptr;
    std::chrono::nanoseconds start_{0};
};

/// observer: hears the decisions of a limiter.
///
/// | expression                | type | meaning                                           |
/// |---------------------------|------|---------------------------------------------------|
/// | `o.on_decision(d, t)`     | any  | once per rule decision of a request, after the request is decided and before its events are recorded; `t` is how long deciding the whole request took (store round trips included), or `not_timed` |
/// | `o.time_next()`           | `bool` | optional: asked before each request is decided; `true` makes the limiter read its clock again afterwards and pass the time taken. Without it nothing is timed (no extra clock read). |
/// | `o.on_decision(d, timer)` | any  | optional (with bind: `o.on_decision(h, d, timer)`): when present, the limiter calls it instead of `o.on_decision(d, t)` for the decisions it makes itself, and never asks time_next(); `timer.elapsed()` reads the clock and gives the time taken so far. For observers that time a sample: one per-thread lookup per decision instead of two. |
/// | `o.on_outcome(h, k, timer)` | any | optional, with bind: the outcome alone (`k`, an outcome_kind) of a decision of the rule bound to `h`. When present, a one-rule limiter's allow() calls it instead of building a decision for `o.on_decision`, and so keeps its short path (no verdict; no count where the store can skip it). For observers that need only the outcome, such as metrics::decision_metrics. |
/// | `o.bind(name)`            | `H`  | optional: called once per rule, in rule order, when a limiter is built. The limiter then calls `o.on_decision(h, d, t)` with that rule's `h` instead of `o.on_decision(d, t)`, so the observer resolves a rule's name once, not per decision (a Prometheus client's bound child). `H` is a small regular type. |
///
/// `o` is an O&, `d` a const decision& (its outcome is `d.kind()`, its rule `d.rule`,
/// its key `d.key`), `t` std::chrono::nanoseconds, `timer` a const decision_timer&.
/// Decisions made outside the limiter's check (limiter::observe, which the HTTP
/// middleware uses across several limiters) always reach `o.on_decision(d, t)`.
/// An observer that throws never changes a decision: the limiter catches and counts
/// it with the sink failures.
/// The limiter's clock times the decision: a manual clock gives 0 unless advanced.
/// Thread safety: called concurrently from every thread that checks requests.
/// Breaker changes and dropped events are not the limiter's: they reach observers
/// through the components' own cold-path callbacks, called outside their locks:
/// `resilience_options::on_breaker_change(from, to)` (storage/resilient_storage.hpp)
/// and `async_sink_options::on_drop(reason, count)` (sinks/async_sink.hpp). Metrics
/// need neither: metrics/collectors.hpp reads those components' state and counters
/// at scrape time. metrics::decision_metrics is the observer that counts decisions.
template <class O>
concept observer = requires(O& o, const decision& d, std::chrono::nanoseconds t) {
    o.on_decision(d, t);
};

/// bound_observer: an observer that binds each rule once (see `o.bind(name)` above).
template <class O>
concept bound_observer = observer<O> &&
    requires(O& o, std::string_view name, const decision& d, std::chrono::nanoseconds t) {
    requires std::regular<std::decay_t<decltype(o.bind(name))>>;
    o.on_decision(o.bind(name), d, t);
};

/// The observer that hears nothing; the limiter skips the calls entirely.
struct null_observer {
    static constexpr bool discards_decisions = true;
    void on_decision(const decision&, std::chrono::nanoseconds) const noexcept {}
};

namespace detail {
template <class O>
concept discards_decisions = O::discards_decisions;
template <class O>
inline constexpr bool observes_decisions = !discards_decisions<O>;

// What a limiter keeps per rule for its observer: the bound handles, or nothing.
// T: std::chrono::nanoseconds or decision_timer.
template <class O>
struct rule_bindings {
    void bind(O&, std::size_t, std::string_view) {}
    template <class T>
    void notify(O& o, std::size_t, const decision& d, const T& t) {
        o.on_decision(d, t);
    }
};

template <bound_observer O>
struct rule_bindings<O> {
    using handle = std::decay_t<decltype(std::declval<O&>().bind(std::string_view{}))>;
    handle handles[verdict::max_rules] = {};

    void bind(O& o, std::size_t rule, std::string_view name) { handles[rule] = o.bind(name); }
    template <class T>
    void notify(O& o, std::size_t rule, const decision& d, const T& t) {
        o.on_decision(handles[rule], d, t);
    }
    // Instantiated only for observers that hear outcomes (hears_outcomes).
    void notify_outcome(O& o, std::size_t rule, outcome_kind k, const decision_timer& t) {
        o.on_outcome(handles[rule], k, t);
    }
};

// The observer takes a decision_timer, in the form the limiter calls (bound or not).
template <class O>
concept times_lazily = (bound_observer<O> &&
                        requires(O & o, std::string_view name, const decision& d,
                                 const decision_timer& t) { o.on_decision(o.bind(name), d, t); }) ||
                       (!bound_observer<O> &&
                        requires(O & o, const decision& d, const decision_timer& t) {
                            o.on_decision(d, t);
                        });

// The observer hears a decision by its outcome alone (on_outcome), in the bound form.
template <class O>
concept hears_outcomes = bound_observer<O> &&
    requires(O& o, std::string_view name, outcome_kind k, const decision_timer& t) {
    o.on_outcome(o.bind(name), k, t);
};

template <class O>
bool wants_timing(O& o) noexcept {
    if constexpr (requires {
                      { o.time_next() } -> std::convertible_to<bool>;
                  })
        return static_cast<bool>(o.time_next());
    else
        return false;
}
}  // namespace detail

}  // namespace smart_ratelimit
