// smart_ratelimit/limiter.hpp
// limiter<KeyExtractor, Storage, Sink, Clock, Observer>: applies a fixed list of
// rules to requests. check() decides without logging (a limiter used from handler
// code writes no events), allow() gives only its yes or no; check_and_record() also
// writes one event per rule decision to the sink, and is what the HTTP middleware
// calls. A store that cannot decide gives degraded decisions, which the failure
// policy lets through or refuses.
#pragma once

#include <smart_ratelimit/algorithms/any_algorithm.hpp>
#include <smart_ratelimit/clock.hpp>
#include <smart_ratelimit/concepts.hpp>
#include <smart_ratelimit/decision.hpp>
#include <smart_ratelimit/error.hpp>
#include <smart_ratelimit/event.hpp>
#include <smart_ratelimit/limiter_options.hpp>
#include <smart_ratelimit/observer.hpp>
#include <smart_ratelimit/rule.hpp>
#include <smart_ratelimit/sinks/null_sink.hpp>
#include <smart_ratelimit/storage/failure_policy.hpp>
#include <smart_ratelimit/storage/in_memory_storage.hpp>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace smart_ratelimit {

/// What the HTTP layer knows about a request, for its events.
struct request_info {
    std::string_view path;  ///< without the query string
    std::string_view method;
    std::optional<std::string_view> ip_address;  ///< the socket peer, if known
    std::optional<std::string_view> user_id;     ///< the authenticated user, if any
    std::string_view fallback_key;  ///< overrides limiter_options::fallback_key when not empty
};

/// Applies rules to requests.
///
/// Each rule keys its state as "rule:<name>:<inner key>" (the unnamed rule: the inner
/// key itself); keys over max_key_size bytes are shortened with a digest. With several
/// rules, every rule is evaluated and quota is consumed only when all of them pass
/// (peek all, then acquire all, rolling back if a concurrent request got in between).
/// Shadow rules decide and log but never block; a cost > 1 weighs a request more.
/// A storage that cannot decide answers a degraded outcome (or throws: the limiter
/// catches and treats it the same); such a decision is `degraded`, consumes nothing,
/// and passes or refuses the request as options().on_store_failure says. When one
/// rule is degraded and fails closed, the quota the others took is given back.
/// A throwing sink or observer never changes a decision: the limiter catches and counts.
/// allow() gives check()'s answer alone, for callers that need no verdict.
/// Thread safety: check, check_at, check_and_record and allow may be called concurrently
/// from any number of threads (given a thread-safe storage, sink and observer); the
/// rules are fixed at construction.
template <class KeyExtractor, storage_backend Storage = in_memory_storage<>,
          event_sink Sink = null_sink, clock Clock = steady_clock,
          observer Observer = null_observer>
class limiter {
public:
    using key_extractor_type = KeyExtractor;
    using storage_type = Storage;
    using sink_type = Sink;
    using clock_type = Clock;
    using observer_type = Observer;
    using algorithm_type = typename Storage::algorithm_type;
    using rule_type = basic_rule<algorithm_type>;

    /// Builds the rules from configuration; throws config_error naming the bad rule,
    /// rate, algorithm or name, and for 0 or more than verdict::max_rules rules, or
    /// duplicate names.
    limiter(KeyExtractor key_extractor, const std::vector<rule_config>& rules,
            limiter_options options = {}, Storage storage = Storage{}, Sink sink = Sink{},
            Clock clock = Clock{}, Observer observer = Observer{})
        : limiter(std::move(key_extractor), make_rules(rules), std::move(options),
                  std::forward<Storage>(storage), std::forward<Sink>(sink),
                  std::forward<Clock>(clock), std::forward<Observer>(observer)) {}

    /// As above, with rules already built (e.g. a specific algorithm object).
    limiter(KeyExtractor key_extractor, std::vector<rule_type> rules, limiter_options options,
            Storage storage = Storage{}, Sink sink = Sink{}, Clock clock = Clock{},
            Observer observer = Observer{})
        : key_extractor_(std::move(key_extractor)),
          storage_(std::forward<Storage>(storage)),
          sink_(std::forward<Sink>(sink)),
          clock_(std::forward<Clock>(clock)),
          observer_(std::forward<Observer>(observer)),
          rules_(std::move(rules)),
          options_(std::move(options)) {
        validate();
        cache_limits();
        if constexpr (detail::observes_decisions<Observer>)
            for (std::size_t i = 0; i < rules_.size(); ++i)
                bindings_.bind(observer_, i, rules_[i].name);
    }

    limiter(const limiter&) = delete;
    limiter& operator=(const limiter&) = delete;

    /// Decides on `req` at the clock's current time. Writes no event.
    template <request_for<KeyExtractor> Request>
    verdict check(const Request& req, std::uint64_t cost = 1) {
        auto&& key = key_extractor_(req);
        return decide<false>(std::string_view(key), read_clock(), cost, nullptr);
    }

    /// Decides on `req` at time `now` (no clock read). Writes no event.
    template <request_for<KeyExtractor> Request>
    verdict check_at(const Request& req, std::chrono::nanoseconds now, std::uint64_t cost = 1) {
        auto&& key = key_extractor_(req);
        return decide<false>(std::string_view(key), given(now), cost, nullptr);
    }

    /// Decides on an already extracted inner key (e.g. "user:42"). Writes no event.
    verdict check_key(std::string_view inner_key, std::uint64_t cost = 1) {
        return decide<false>(inner_key, read_clock(), cost, nullptr);
    }

    /// Whether `req` may proceed: check(req).allowed(), consuming the same quota, with
    /// no verdict built. For callers that need only the answer (no headers, no
    /// per-rule detail), as Guava's tryAcquire() and Go's Allow() give. Writes no
    /// event. With one rule and an observer that takes no decisions or hears outcomes
    /// alone (on_outcome, as metrics::decision_metrics does) it skips the verdict, and
    /// the count on storages and algorithms that can decide without it
    /// (concurrent_storage<gcra>); otherwise it is check().
    template <request_for<KeyExtractor> Request>
    bool allow(const Request& req, std::uint64_t cost = 1) {
        auto&& key = key_extractor_(req);
        return admit(std::string_view(key), read_clock(), cost);
    }

    /// allow() at time `now` (no clock read).
    template <request_for<KeyExtractor> Request>
    bool allow_at(const Request& req, std::chrono::nanoseconds now, std::uint64_t cost = 1) {
        auto&& key = key_extractor_(req);
        return admit(std::string_view(key), given(now), cost);
    }

    /// allow() on an already extracted inner key ("" = the fallback key).
    bool allow_key(std::string_view inner_key, std::uint64_t cost = 1) {
        return admit(inner_key, read_clock(), cost);
    }

    /// Decides on `req` and writes one event per rule decision to the sink (stamped
    /// with clock().wall_now()). Used by the HTTP middleware.
    template <request_for<KeyExtractor> Request>
    verdict check_and_record(const Request& req, const request_info& info, std::uint64_t cost = 1) {
        auto&& key = key_extractor_(req);
        return decide<true>(std::string_view(key), read_clock(), cost, &info);
    }

    /// check_and_record on an already extracted inner key ("" = the fallback key).
    verdict check_key_and_record(std::string_view inner_key, const request_info& info,
                                 std::uint64_t cost = 1) {
        return decide<true>(inner_key, read_clock(), cost, &info);
    }

    const KeyExtractor& key_extractor() const noexcept { return key_extractor_; }
    Storage& storage() noexcept { return storage_; }
    const Storage& storage() const noexcept { return storage_; }
    Sink& sink() noexcept { return sink_; }
    const Sink& sink() const noexcept { return sink_; }
    const Clock& clock() const noexcept { return clock_; }
    Observer& observer() noexcept { return observer_; }
    const Observer& observer() const noexcept { return observer_; }
    const std::vector<rule_type>& rules() const noexcept { return rules_; }
    const limiter_options& options() const noexcept { return options_; }

    /// Number of times the sink or the observer threw (the decisions were unaffected).
    std::uint64_t sink_failures() const noexcept {
        return sink_failures_.load(std::memory_order_relaxed);
    }

    /// Fills `d` from rule `rule_index`'s outcome `o`: the decision check() would make
    /// of it, the failure policy applied to a degraded outcome. For code that runs the
    /// rules' storage calls itself (the HTTP middleware across several limiters).
    void make_decision(decision& d, std::size_t rule_index, const outcome& o) const noexcept {
        fill(d, rules_[rule_index], o);
    }

    /// Tells the observer about `d` (a decision of this limiter's rules made outside
    /// check(), by make_decision). `elapsed`: the time it took, or not_timed.
    void observe(const decision& d, std::chrono::nanoseconds elapsed) noexcept {
        if constexpr (detail::observes_decisions<Observer>) {
            for (std::size_t i = 0; i < rules_.size(); ++i)
                if (d.rule.data() == rules_[i].name.data()) return observe(i, d, elapsed);
            try {  // not one of this limiter's rules: the observer's unbound form
                observer_.on_decision(d, elapsed);
            } catch (...) {
                sink_failures_.fetch_add(1, std::memory_order_relaxed);
            }
        }
    }

    /// As above, for the decision of rule `rule_index` (as passed to make_decision).
    void observe(std::size_t rule_index, const decision& d,
                 std::chrono::nanoseconds elapsed) noexcept {
        if constexpr (detail::observes_decisions<Observer>) notify(rule_index, d, elapsed);
    }

    /// True when the observer asks to time the next decision (see observer.hpp).
    bool time_next() noexcept {
        if constexpr (detail::observes_decisions<Observer>) {
            try {
                return detail::wants_timing(observer_);
            } catch (...) {
                return false;
            }
        }
        return false;
    }

private:
    static std::vector<rule_type> make_rules(const std::vector<rule_config>& configs) {
        std::vector<rule_type> out;
        out.reserve(configs.size());
        for (const auto& c : configs) out.push_back(make_rule<algorithm_type>(c));
        return out;
    }

    void validate() const {
        if (rules_.empty()) throw config_error("a limiter needs at least one rule");
        if (rules_.size() > verdict::max_rules)
            throw config_error("a limiter has at most " + std::to_string(verdict::max_rules) +
                               " rules, got " + std::to_string(rules_.size()));
        for (std::size_t i = 0; i < rules_.size(); ++i) {
            check_rule_name(rules_[i].name);
            for (std::size_t j = 0; j < i; ++j)
                if (rules_[i].name == rules_[j].name)
                    throw config_error(rules_[i].name.empty()
                                           ? std::string("a limiter has at most one unnamed rule")
                                           : "duplicate rule name \"" + rules_[i].name + "\"");
        }
        if (options_.fallback_key.empty())
            throw config_error("limiter_options::fallback_key must not be empty");
    }

    // T: std::chrono::nanoseconds or decision_timer.
    template <class T>
    void notify(std::size_t rule_index, const decision& d, const T& elapsed) noexcept {
        try {
            bindings_.notify(observer_, rule_index, d, elapsed);
        } catch (...) {
            sink_failures_.fetch_add(1, std::memory_order_relaxed);
        }
    }

    void cache_limits() noexcept {
        for (std::size_t i = 0; i < rules_.size(); ++i) limits_[i] = rules_[i].algorithm.limit();
    }

    void fill(decision& d, const rule_type& r, const outcome& o) const noexcept {
        d.degraded = o.degraded;
        d.allowed = o.degraded ? options_.on_store_failure == failure_policy::fail_open : o.allowed;
        d.shadow = r.shadow || options_.shadow;
        d.retryable = o.retryable;
        d.limit = limits_[static_cast<std::size_t>(&r - rules_.data())];
        d.remaining = o.remaining;
        d.count = o.count;
        d.reset_after = o.reset_after;
        d.retry_after = o.degraded && o.retry_after < std::chrono::seconds(1)
                            ? std::chrono::nanoseconds(std::chrono::seconds(1))
                            : o.retry_after;
        if (o.degraded) {
            d.count = 0;
            d.remaining = 0;
            d.reset_after = std::chrono::nanoseconds{0};
        }
        d.rule = r.name;
    }

    // A storage call that throws is a store that could not decide.
    template <class Call>
    static outcome guarded(Call&& call) noexcept {
        try {
            return call();
        } catch (...) {
            return degraded_outcome();
        }
    }

    outcome acquire_one(std::string_view key, const rule_type& r, std::chrono::nanoseconds now,
                        std::uint64_t cost) noexcept {
        return guarded([&] { return storage_.acquire(key, r.algorithm, now, cost); });
    }

    void release_one(const decision& d, const rule_type& r, std::chrono::nanoseconds now,
                     std::uint64_t cost) noexcept {
        try {
            storage_.release(d.key.view(), r.algorithm, now, cost);
        } catch (...) {  // best effort: the store is failing anyway
        }
    }

    // Where a decision's time comes from: the clock, read once the key's lookup has
    // begun (see acquire_at), or the caller (check_at, allow_at). One word each, passed
    // by value in a register; the decision asks for the time once.
    struct clock_time {
        static constexpr bool clocked = true;
        const Clock* clock;
        std::chrono::nanoseconds operator()() const { return clock->now(); }
    };
    struct given_time {
        static constexpr bool clocked = false;
        std::chrono::nanoseconds now;
        std::chrono::nanoseconds operator()() const noexcept { return now; }
    };
    clock_time read_clock() const noexcept { return {&clock_}; }
    static given_time given(std::chrono::nanoseconds now) noexcept { return {now}; }

    // acquire_one at when()'s time, which it stores in `now`. A storage that can begin
    // the lookup before the time is known (concurrent_storage::start_lookup) begins it
    // before the clock is read, so that the key's cache misses overlap the read
    // instead of following it.
    template <class When>
    outcome acquire_at(std::string_view key, const rule_type& r, When when, std::uint64_t cost,
                       std::chrono::nanoseconds& now) {
        if constexpr (starts_lookups<Storage>) {
            const auto begun = storage_.start_lookup(key);
            now = when();
            return guarded([&] { return storage_.acquire(begun, r.algorithm, now, cost); });
        } else {
            now = when();
            return acquire_one(key, r, now, cost);
        }
    }

    // acquire_at's decision as an admission, by the storage's admit where it has one;
    // stores when()'s time in `now`.
    template <class When>
    admission admit_at(std::string_view key, const rule_type& r, When when, std::uint64_t cost,
                       std::chrono::nanoseconds& now) {
        const auto admitted = [](auto&& call) noexcept -> admission {
            try {
                return call();
            } catch (...) {
                return admission::of(degraded_outcome());
            }
        };
        if constexpr (starts_lookups<Storage> && requires {
                          storage_.admit(storage_.start_lookup(key), r.algorithm, when(), cost);
                      }) {
            const auto begun = storage_.start_lookup(key);
            now = when();
            return admitted([&] { return storage_.admit(begun, r.algorithm, now, cost); });
        } else if constexpr (requires { storage_.admit(key, r.algorithm, when(), cost); }) {
            now = when();
            return admitted([&] { return storage_.admit(key, r.algorithm, now, cost); });
        } else {
            return admission::of(acquire_at(key, r, when, cost, now));
        }
    }

    // The key a request is limited by: its own, or the fallback key for an empty one
    // (the request's own fallback first, then the limiter's).
    std::string_view or_fallback(std::string_view inner, const request_info* info) const noexcept {
        if (!inner.empty()) return inner;
        if (info != nullptr && !info->fallback_key.empty()) return info->fallback_key;
        return options_.fallback_key;
    }

    // Whether rule `r` stores its state under the inner key itself (format_key would
    // copy it unchanged: an unnamed rule and a key that fits), so that decide() and
    // admit() hand the storage the same key.
    static bool stores_inner_key(const rule_type& r, std::string_view inner) noexcept {
        return r.name.empty() && inner.size() <= max_key_size;
    }

    // allow(): one rule's decision on the stack, as decide() fills it; several rules,
    // or an observer that needs the whole decision, take decide() itself.
    template <class When>
    bool admit(std::string_view inner, When when, std::uint64_t cost) {
        constexpr bool observes = detail::observes_decisions<Observer>;
        if constexpr (!observes || detail::hears_outcomes<Observer>) {
            if (rules_.size() == 1) {
                inner = or_fallback(inner, nullptr);
                const rule_type& r = rules_.front();
                key_buffer formatted;
                std::string_view key = inner;
                if (!stores_inner_key(r, inner)) {
                    format_key(formatted, r.name, inner);
                    key = formatted.view();
                }
                std::chrono::nanoseconds now;
                const admission a = admit_at(key, r, when, cost, now);
                const bool allowed =
                    a.degraded ? options_.on_store_failure == failure_policy::fail_open : a.allowed;
                const bool shadow = r.shadow || options_.shadow;
                if constexpr (observes) {
                    const decision_timer timer =
                        When::clocked ? decision_timer(clock_, now) : decision_timer();
                    try {
                        bindings_.notify_outcome(
                            observer_, 0, decision::kind_of(a.degraded, allowed, shadow), timer);
                    } catch (...) {
                        sink_failures_.fetch_add(1, std::memory_order_relaxed);
                    }
                }
                return allowed || shadow;
            }
        }
        return decide<false>(inner, when, cost, nullptr).allowed();
    }

    template <bool Record, class When>
    verdict decide(std::string_view inner, When when, std::uint64_t cost,
                   const request_info* info) {
        inner = or_fallback(inner, info);
        constexpr bool lazy = detail::times_lazily<Observer>;
        const bool timed = !lazy && time_next();
        const auto start = timed ? clock_.now() : std::chrono::nanoseconds{0};
        verdict v;
        std::chrono::nanoseconds now;
        if (rules_.size() == 1) {
            const rule_type& r = rules_.front();
            decision& d = v.emplace_back();
            format_key(d.key, r.name, inner);
            // The storage hashes the caller's bytes where it can, not the copy just
            // written (wide loads of freshly stored narrow bytes wait for the stores to
            // retire).
            const std::string_view key = stores_inner_key(r, inner) ? inner : d.key.view();
            fill(d, r, acquire_at(key, r, when, cost, now));
        } else {
            now = when();
            decide_all(v, inner, now, cost);
        }
        if constexpr (detail::observes_decisions<Observer>) {
            const auto ds = v.decisions();
            if constexpr (lazy) {
                const decision_timer timer =
                    When::clocked ? decision_timer(clock_, now) : decision_timer();
                for (std::size_t i = 0; i < ds.size(); ++i) notify(i, ds[i], timer);
            } else {
                const auto elapsed = timed ? clock_.now() - start : not_timed;
                for (std::size_t i = 0; i < ds.size(); ++i) notify(i, ds[i], elapsed);
            }
        }
        if constexpr (Record) record(v, *info);
        return v;
    }

    // Several rules: peek every rule; if none refuses, acquire each; if an acquire
    // refuses (a concurrent request won the race, or the store failed closed), refund
    // the acquired ones.
    void decide_all(verdict& v, std::string_view inner, std::chrono::nanoseconds now,
                    std::uint64_t cost) {
        bool refused = false;
        for (const rule_type& r : rules_) {
            decision& d = v.emplace_back();
            format_key(d.key, r.name, inner);
            fill(d, r,
                 guarded([&] { return storage_.peek(d.key.view(), r.algorithm, now, cost); }));
            refused = refused || d.rejects();
        }
        if (refused) return;
        bool acquired[verdict::max_rules] = {};
        auto ds = v.decisions();
        for (std::size_t i = 0; i < rules_.size(); ++i) {
            // A denying shadow rule and a degraded rule (failing open) consume nothing.
            if (!ds[i].allowed || ds[i].degraded) continue;
            fill(ds[i], rules_[i], acquire_one(ds[i].key.view(), rules_[i], now, cost));
            acquired[i] = ds[i].allowed && !ds[i].degraded;
            if (ds[i].rejects()) {
                for (std::size_t j = 0; j < i; ++j)
                    if (acquired[j]) release_one(ds[j], rules_[j], now, cost);
                return;
            }
        }
    }

    void record(const verdict& v, const request_info& info) noexcept {
        if constexpr (requires { Sink::discards_events; }) {
            if constexpr (Sink::discards_events) return;
        }
        event_time ts{};
        try {
            ts = clock_.wall_now();
        } catch (...) {}
        for (const decision& d : v.decisions()) {
            try {
                sink_.record(make_event(ts, d.key.view(), info.path, info.method, d.kind(),
                                        static_cast<std::int64_t>(d.count),
                                        static_cast<std::int64_t>(d.limit), info.ip_address,
                                        info.user_id));
            } catch (...) {
                sink_failures_.fetch_add(1, std::memory_order_relaxed);
            }
        }
    }

    [[no_unique_address]] KeyExtractor key_extractor_;
    Storage storage_;
    [[no_unique_address]] Sink sink_;
    [[no_unique_address]] Clock clock_;
    [[no_unique_address]] Observer observer_;
    [[no_unique_address]] detail::rule_bindings<Observer> bindings_;
    std::vector<rule_type> rules_;
    limiter_options options_;
    std::uint64_t limits_[verdict::max_rules] = {};  // rules_[i].algorithm.limit(), cached
    std::atomic<std::uint64_t> sink_failures_{0};
};

/// A thread-safe in-memory limiter with run-time algorithm choice.
template <class KeyExtractor, event_sink Sink = null_sink, clock Clock = steady_clock>
using in_memory_limiter = limiter<KeyExtractor, in_memory_storage<>, Sink, Clock>;

/// An in-memory limiter reading the coarse monotonic clock (cheaper; ms resolution).
template <class KeyExtractor, event_sink Sink = null_sink>
using coarse_in_memory_limiter =
    limiter<KeyExtractor, in_memory_storage<>, Sink, coarse_steady_clock>;

/// An in-memory limiter driven by a manual clock, for tests and simulations.
template <class KeyExtractor, event_sink Sink = null_sink>
using manual_in_memory_limiter = limiter<KeyExtractor, in_memory_storage<>, Sink, manual_clock>;

}  // namespace smart_ratelimit
