// smart_ratelimit/concepts.hpp
// The customization points of the limiter, one concept each, documented as
// expression tables: clock, algorithm, state_store, storage_backend,
// key_extractor_for and event_sink. tests/core/test_concepts.cpp proves each table
// with an archetype and checks that typical mistakes are rejected.
#pragma once

#include <smart_ratelimit/decision.hpp>
#include <smart_ratelimit/event.hpp>

#include <chrono>
#include <concepts>
#include <cstdint>
#include <string_view>
#include <type_traits>
#include <utility>

namespace smart_ratelimit {

/// clock: where the limiter gets the time.
///
/// | expression     | type                     | meaning                                      |
/// |----------------|--------------------------|----------------------------------------------|
/// | `c.now()`      | `std::chrono::nanoseconds` | monotonic time since an arbitrary epoch; may step backwards only for test clocks |
/// | `c.wall_now()` | `event_time`             | UTC time stamped on events                   |
///
/// `c` is a const C. Both must be noexcept-cheap and safe to call from any thread.
/// Optional: `c.wall_now_coarse()` -> `event_time`, the wall time to a scheduler
/// tick (a few ms), used where whole seconds are shown (X-RateLimit-Reset); without
/// it, wall_now() is used (see wall_now_coarse below).
template <class C>
concept clock = requires(const C& c) {
    { c.now() } -> std::same_as<std::chrono::nanoseconds>;
    { c.wall_now() } -> std::same_as<event_time>;
};

/// The clock's coarse wall time when it offers one, else its wall_now().
template <clock C>
event_time wall_now_coarse(const C& c) noexcept {
    if constexpr (requires {
                      { c.wall_now_coarse() } -> std::same_as<event_time>;
                  })
        return c.wall_now_coarse();
    else
        return c.wall_now();
}

/// algorithm: a pure rate-limiting rule over a small per-key state.
///
/// | expression                     | type              | meaning                                 |
/// |--------------------------------|-------------------|-----------------------------------------|
/// | `A::state_type`                | semiregular type  | per-key state; default-constructed = fresh (never used) |
/// | `a.limit()`                    | `std::uint64_t`   | capacity in units                       |
/// | `a.period()`                   | `nanoseconds`     | the period the limit applies to         |
/// | `a.try_acquire(s, now, cost)`  | `outcome`         | decides and, when allowed, consumes `cost` units |
/// | `a.peek(cs, now, cost)`        | `outcome`         | the decision try_acquire would make, without changing anything |
/// | `a.release(s, now, cost)`      | `void`            | gives back `cost` units consumed by an earlier allowed try_acquire (best effort) |
/// | `a.try_admit(s, now, cost)`    | `admission`       | optional: try_acquire's decision and state change, without the count (see try_admit below) |
///
/// `a` is a const A, `s` a `state_type&`, `cs` a `const state_type&`, `now` nanoseconds,
/// `cost` std::uint64_t. The algorithm never reads a clock: `now` is passed in. It must
/// tolerate `now` going backwards (no drain, no negative wait), huge forward jumps
/// (refill to capacity at most) and never overflow. `cost > limit()` is denied with
/// retryable == false and retry_after == never.
/// Thread safety: `a` is immutable; the caller serializes access to `s`.
template <class A>
concept algorithm = std::semiregular<typename A::state_type> &&
    requires(const A& a, typename A::state_type& s, const typename A::state_type& cs,
             std::chrono::nanoseconds now, std::uint64_t cost) {
    { a.limit() } -> std::same_as<std::uint64_t>;
    { a.period() } -> std::same_as<std::chrono::nanoseconds>;
    { a.try_acquire(s, now, cost) } -> std::same_as<outcome>;
    { a.peek(cs, now, cost) } -> std::same_as<outcome>;
    { a.release(s, now, cost) } -> std::same_as<void>;
};

/// try_acquire's decision, state change and admission::of(outcome), by
/// `a.try_admit(s, now, cost)` when A offers it (a decision that skips what only an
/// outcome reports, e.g. the division behind its count), else from `a.try_acquire`.
template <algorithm A>
admission try_admit(const A& a, typename A::state_type& s, std::chrono::nanoseconds now,
                    std::uint64_t cost) {
    if constexpr (requires {
                      { a.try_admit(s, now, cost) } -> std::same_as<admission>;
                  })
        return a.try_admit(s, now, cost);
    else
        return admission::of(a.try_acquire(s, now, cost));
}

/// state_store: a map from keys to states with an atomic update-with-callback
/// (libcuckoo's uprase_fn), never get-then-set.
///
/// | expression                  | type      | meaning                                             |
/// |-----------------------------|-----------|-----------------------------------------------------|
/// | `S::state_type`             | type      | the stored value                                    |
/// | `s.update(key, init, fn)`   | `fn`'s result | inserts `init` when `key` is absent, then runs `fn(state&)` under the store's lock and returns its result |
/// | `s.visit(key, fn)`          | `fn`'s result | runs `fn(const state_type*)` under the lock; nullptr when `key` is absent; inserts nothing |
///
/// `key` is a std::string_view (looked up without allocating when present).
/// Thread safety: all operations are safe to call concurrently; two callers that
/// update a new key at once create exactly one state.
template <class S>
concept state_store = requires(S& s, std::string_view key, const typename S::state_type& init) {
    typename S::state_type;
    {
        s.update(key, init, [](typename S::state_type&) { return 0; })
        } -> std::same_as<int>;
    {
        s.visit(key, [](const typename S::state_type*) { return 0; })
        } -> std::same_as<int>;
};

/// storage_backend: what the limiter needs from storage. Each operation is one
/// atomic read-decide-write on one key (a lock, a SQL transaction, a Redis script).
///
/// | expression                     | type        | meaning                                         |
/// |--------------------------------|-------------|-------------------------------------------------|
/// | `S::algorithm_type`            | algorithm   | the algorithm (or closed variant of algorithms) the storage runs |
/// | `s.acquire(key, a, now, cost)` | `outcome`   | a.try_acquire on the key's state, atomically     |
/// | `s.peek(key, a, now, cost)`    | `outcome`   | a.peek on the key's state; changes nothing      |
/// | `s.release(key, a, now, cost)` | `void`      | a.release on the key's state (refund of an acquire the limiter rolls back) |
/// | `s.admit(key, a, now, cost)`   | `admission` | optional: acquire by try_admit (limiter::allow uses it; without it, acquire) |
/// | `s.start_lookup(key)`          | `L`         | optional (see starts_lookups): begins a decision on `key` before `now` is known |
/// | `s.acquire(l, a, now, cost)`   | `outcome`   | with start_lookup: acquire on the key `l` was begun for |
/// | `s.admit(l, a, now, cost)`     | `admission` | with start_lookup and admit: admit on the key `l` was begun for |
///
/// `a` is a const algorithm_type. Storages that run the algorithm inside a server may
/// ignore `now` and use the server's clock. Request-path failures are reported as
/// outcomes (fail open/closed) and counted by the storage, not thrown.
/// Thread safety: all operations are safe to call concurrently.
template <class S>
concept storage_backend = algorithm<typename S::algorithm_type> &&
    requires(S& s, std::string_view key, const typename S::algorithm_type& a,
             std::chrono::nanoseconds now, std::uint64_t cost) {
    { s.acquire(key, a, now, cost) } -> std::same_as<outcome>;
    { s.peek(key, a, now, cost) } -> std::same_as<outcome>;
    { s.release(key, a, now, cost) } -> std::same_as<void>;
};

/// starts_lookups: a storage_backend that begins a decision's lookup before its time
/// is known. `l = s.start_lookup(key)` (noexcept, no allocation) does what needs only
/// the key (concurrent_storage: hashes the key and prefetches its slot, unless the
/// thread's remembered node is likely to hold it); `s.acquire(l, a, now, cost)` then
/// decides as `s.acquire(key, a, now, cost)` would. The limiter begins the lookup,
/// reads its clock, then decides, so that the lookup's memory latency overlaps the
/// clock read.
template <class S>
concept starts_lookups = storage_backend<S> &&
    requires(S& s, std::string_view key, const typename S::algorithm_type& a,
             std::chrono::nanoseconds now, std::uint64_t cost) {
    { s.start_lookup(key) }
    noexcept;
    { s.acquire(s.start_lookup(key), a, now, cost) } -> std::same_as<outcome>;
};

/// key_extractor_for<K, Request>: turns a request into the client's key.
///
/// | expression | type                             | meaning                               |
/// |------------|----------------------------------|---------------------------------------|
/// | `k(req)`   | convertible to std::string_view  | the key, e.g. "ip:203.0.113.5"; "" when unknown (the limiter then uses its fallback key) |
///
/// `k` is a const K, `req` a const Request&. A returned std::string_view must stay
/// valid until the limiter's call returns.
/// Thread safety: called concurrently from every thread that checks requests.
template <class K, class Request>
concept key_extractor_for = requires(const K& k, const Request& req) {
    { k(req) } -> std::convertible_to<std::string_view>;
};

/// request_for<Request, K>: key_extractor_for<K, Request> with the request first, to
/// constrain a request type in place (`template <request_for<K> Request>`).
template <class Request, class K>
concept request_for = key_extractor_for<K, Request>;

/// event_sink: receives one event per decision the middleware makes.
///
/// | expression     | type   | meaning                                          |
/// |----------------|--------|--------------------------------------------------|
/// | `s.record(e)`  | any    | takes the event (copy it if kept); should not block |
///
/// `s` is an S&, `e` a const event&. A sink that throws never changes a decision: the
/// limiter catches, counts (limiter::sink_failures()) and carries on.
/// Thread safety: called concurrently from every thread that checks requests.
template <class S>
concept event_sink = requires(S& s, const event& e) {
    s.record(e);
};

}  // namespace smart_ratelimit
