// smart_ratelimit/clock.hpp
// Clock policies. A clock gives `now()`, nanoseconds since an arbitrary epoch, for
// limiting, and `wall_now()`, the UTC time stamped on events. steady_clock is the
// default; coarse_steady_clock trades resolution (a few ms) for a cheaper read;
// manual_clock is set and advanced by hand, for tests and simulations.
#pragma once

#include <smart_ratelimit/event.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <time.h>

namespace smart_ratelimit {

/// The system clock rounded to microseconds: the default event timestamp.
inline event_time system_wall_now() noexcept {
    return std::chrono::time_point_cast<std::chrono::microseconds>(
        std::chrono::system_clock::now());
}

/// The system clock read with CLOCK_REALTIME_COARSE where the platform has it (one
/// scheduler tick of resolution, a fraction of the cost); elsewhere system_wall_now().
/// For figures shown in whole seconds, such as X-RateLimit-Reset.
inline event_time system_wall_now_coarse() noexcept {
#if defined(CLOCK_REALTIME_COARSE)
    timespec ts;
    ::clock_gettime(CLOCK_REALTIME_COARSE, &ts);
    return event_time{std::chrono::seconds(ts.tv_sec) +
                      std::chrono::microseconds(ts.tv_nsec / 1000)};
#else
    return system_wall_now();
#endif
}

/// The precise monotonic clock (std::chrono::steady_clock).
/// Thread safety: stateless, safe from any thread.
struct steady_clock {
    std::chrono::nanoseconds now() const noexcept {
        return std::chrono::duration_cast<std::chrono::nanoseconds>(
            std::chrono::steady_clock::now().time_since_epoch());
    }
    event_time wall_now() const noexcept { return system_wall_now(); }
    /// Optional member (see clock_policy): the wall time to a scheduler tick.
    event_time wall_now_coarse() const noexcept { return system_wall_now_coarse(); }
};

/// A monotonic clock read with CLOCK_MONOTONIC_COARSE where the platform has it
/// (resolution of one scheduler tick, typically 1-4 ms, at a fraction of the cost
/// of a precise read); elsewhere the same as steady_clock. Good for periods of a
/// second or more; token refills then happen in tick-sized steps.
/// Thread safety: stateless, safe from any thread.
struct coarse_steady_clock {
    std::chrono::nanoseconds now() const noexcept {
#if defined(CLOCK_MONOTONIC_COARSE)
        timespec ts;
        ::clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
        return std::chrono::seconds(ts.tv_sec) + std::chrono::nanoseconds(ts.tv_nsec);
#else
        return steady_clock{}.now();
#endif
    }
    event_time wall_now() const noexcept { return system_wall_now(); }
    event_time wall_now_coarse() const noexcept { return system_wall_now_coarse(); }
};

/// A clock that moves only when told to. Copies share one time line, so a test
/// keeps a copy and advances the one inside a limiter. It can step backwards.
/// wall_now() is the wall time set at construction (or by set_wall) plus the
/// monotonic time elapsed since then.
/// Thread safety: all members are safe to call concurrently.
class manual_clock {
public:
    /// Starts at `start` (default 1000 s, so early windows are not at zero) and at
    /// the wall time `wall` (default 2024-01-01T00:00:00Z).
    explicit manual_clock(std::chrono::nanoseconds start = std::chrono::seconds(1000),
                          event_time wall = event_time(std::chrono::seconds(1704067200)))
        : state_(std::make_shared<state>()) {
        state_->now.store(start.count(), std::memory_order_relaxed);
        const auto start_us = std::chrono::duration_cast<std::chrono::microseconds>(start);
        state_->wall_base.store((wall.time_since_epoch() - start_us).count(),
                                std::memory_order_relaxed);
    }

    std::chrono::nanoseconds now() const noexcept {
        return std::chrono::nanoseconds(state_->now.load(std::memory_order_acquire));
    }
    event_time wall_now() const noexcept {
        const auto us = std::chrono::duration_cast<std::chrono::microseconds>(now()).count();
        return event_time(
            std::chrono::microseconds(state_->wall_base.load(std::memory_order_acquire) + us));
    }

    /// Sets the monotonic time (may go backwards); the wall time moves with it.
    void set(std::chrono::nanoseconds t) noexcept {
        state_->now.store(t.count(), std::memory_order_release);
    }
    /// Moves the monotonic time by `d` (negative steps backwards).
    void advance(std::chrono::nanoseconds d) noexcept {
        state_->now.fetch_add(d.count(), std::memory_order_acq_rel);
    }
    /// Sets the wall time reported now, without moving the monotonic time.
    void set_wall(event_time wall) noexcept {
        const auto us = std::chrono::duration_cast<std::chrono::microseconds>(now()).count();
        state_->wall_base.store(wall.time_since_epoch().count() - us, std::memory_order_release);
    }

private:
    struct state {
        std::atomic<std::int64_t> now{0};        // ns
        std::atomic<std::int64_t> wall_base{0};  // us since the Unix epoch at now == 0
    };
    std::shared_ptr<state> state_;
};

}  // namespace smart_ratelimit
