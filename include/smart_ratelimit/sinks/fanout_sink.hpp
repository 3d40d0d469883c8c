// smart_ratelimit/sinks/fanout_sink.hpp
// A sink that records every event to each of a compile-time list of sinks, in
// order: e.g. a ring buffer for a live view plus an async_sink to the database.
// A sink that throws is counted and skipped; the others still get the event.
#pragma once

#include <array>
#include <concepts>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <tuple>
#include <type_traits>
#include <utility>

#include <smart_ratelimit/event.hpp>

namespace smart_ratelimit {

/// Records to each of `Sinks...` in order. A sink type may be a reference
/// (`fanout_sink<ring_buffer_sink_mt&, my_async_sink&>`) to share a sink that is
/// owned elsewhere; the deduction guide holds lvalue arguments by reference and
/// rvalue arguments by value.
/// `record` never throws: an exception from sink I is caught, counted by
/// `failures(I)`, and the remaining sinks still receive the event. Given an
/// rvalue, the last sink receives it as an rvalue (put an async_sink last).
/// Thread safety: as safe as the least thread-safe sink in the list; the failure
/// counters are atomic.
template <class... Sinks>
class fanout_sink {
    static_assert(sizeof...(Sinks) > 0, "fanout_sink needs at least one sink");

public:
    static constexpr std::size_t size = sizeof...(Sinks);

    /// Default-constructs (value) sinks.
    fanout_sink() = default;

    /// Constructs each sink from the matching argument.
    template <class... Args>
    requires(sizeof...(Args) == sizeof...(Sinks) &&
             sizeof...(Args) > 0) explicit fanout_sink(Args&&... args)
        : sinks_(std::forward<Args>(args)...) {}

    /// Copies and moves take the sinks along (a limiter stores its sink by value);
    /// the failure counts start from the source's.
    fanout_sink(const fanout_sink& o) requires(std::copy_constructible<Sinks>&&...)
        : sinks_(o.sinks_) {
        copy_failures(o);
    }
    fanout_sink(fanout_sink&& o) noexcept((std::is_nothrow_move_constructible_v<Sinks> &&
                                           ...)) requires(std::move_constructible<Sinks>&&...)
        : sinks_(std::move(o.sinks_)) {
        copy_failures(o);
    }
    fanout_sink& operator=(const fanout_sink&) = delete;

    void record(const event& e) noexcept { record_each(e, std::index_sequence_for<Sinks...>{}); }
    /// As above, but the last sink gets the event moved (the others only read it):
    /// a limiter's fresh event then reaches e.g. an async_sink without a copy.
    void record(event&& e) noexcept {
        record_each(std::as_const(e), std::make_index_sequence<size - 1>{});
        try {
            std::get<size - 1>(sinks_).record(std::move(e));
        } catch (...) {
            failures_[size - 1].fetch_add(1, std::memory_order_relaxed);
        }
    }

    /// The I-th sink.
    template <std::size_t I>
    auto& sink() noexcept {
        return std::get<I>(sinks_);
    }
    template <std::size_t I>
    const auto& sink() const noexcept {
        return std::get<I>(sinks_);
    }

    /// Exceptions caught from the i-th sink.
    std::uint64_t failures(std::size_t i) const noexcept {
        return i < size ? failures_[i].load(std::memory_order_relaxed) : 0;
    }
    /// Exceptions caught from all sinks.
    std::uint64_t failures() const noexcept {
        std::uint64_t n = 0;
        for (const auto& f : failures_) n += f.load(std::memory_order_relaxed);
        return n;
    }

private:
    void copy_failures(const fanout_sink& o) noexcept {
        for (std::size_t i = 0; i < size; ++i)
            failures_[i].store(o.failures_[i].load(std::memory_order_relaxed),
                               std::memory_order_relaxed);
    }

    template <std::size_t... I>
    void record_each(const event& e, std::index_sequence<I...>) noexcept {
        (record_one<I>(e), ...);
    }

    template <std::size_t I>
    void record_one(const event& e) noexcept {
        try {
            std::get<I>(sinks_).record(e);
        } catch (...) {
            failures_[I].fetch_add(1, std::memory_order_relaxed);
        }
    }

    std::tuple<Sinks...> sinks_;
    std::array<std::atomic<std::uint64_t>, sizeof...(Sinks)> failures_{};
};

template <class... Sinks>
fanout_sink(Sinks&&...) -> fanout_sink<Sinks...>;

}  // namespace smart_ratelimit
