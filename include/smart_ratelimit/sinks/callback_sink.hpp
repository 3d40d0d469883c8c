// smart_ratelimit/sinks/callback_sink.hpp
// callback_sink: hands each event to a user callable. The callable is stored by
// type (no std::function on the hot path unless you choose it); the Mutex parameter
// serializes calls for callables that are not thread-safe (`_mt` / `_st` aliases).
#pragma once

#include <smart_ratelimit/null_mutex.hpp>
#include <smart_ratelimit/event.hpp>

#include <functional>
#include <mutex>
#include <type_traits>
#include <utility>

namespace smart_ratelimit {

/// Calls `fn(const event&)` for every event. Exceptions propagate to the limiter,
/// which catches and counts them (the decision is unaffected).
/// Thread safety: with a real Mutex, calls are serialized; with null_mutex (the
/// default) the callable itself must be safe to call concurrently.
template <class Fn, class Mutex = null_mutex>
class callback_sink {
public:
    explicit callback_sink(Fn fn) : fn_(std::move(fn)) {}

    callback_sink(const callback_sink& o) : fn_(o.fn_) {}
    callback_sink(callback_sink&& o) noexcept(std::is_nothrow_move_constructible_v<Fn>)
        : fn_(std::move(o.fn_)) {}

    void record(const event& e) {
        std::lock_guard<Mutex> lock(mutex_);
        std::invoke(fn_, e);
    }

    const Fn& callback() const noexcept { return fn_; }

private:
    [[no_unique_address]] Fn fn_;
    [[no_unique_address]] Mutex mutex_;
};

template <class Fn>
callback_sink(Fn) -> callback_sink<Fn>;

/// A callback sink whose calls are serialized by a std::mutex.
template <class Fn>
using callback_sink_mt = callback_sink<Fn, std::mutex>;
/// A callback sink with no locking (the callable must be thread-safe, or one thread uses it).
template <class Fn>
using callback_sink_st = callback_sink<Fn, null_mutex>;

/// A type-erased callback sink, for configurations decided at run time.
using function_sink = callback_sink<std::function<void(const event&)>, std::mutex>;

}  // namespace smart_ratelimit
