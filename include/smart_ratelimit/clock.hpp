// smart_ratelimit/clock.hpp
// Clock policies. A clock gives `now()`, nanoseconds since an arbitrary epoch, for
// limiting, and `wall_now()`, the UTC time stamped on events. steady_clock is the
// default; coarse_steady_clock trades resolution (a few ms) for a cheaper read;
// tsc_clock reads the CPU's time-stamp counter (full resolution, half the cost of a
// precise read, where the counter is invariant); manual_clock is set and advanced by
// hand, for tests and simulations.
#pragma once

#include <smart_ratelimit/detail/time_math.hpp>
#include <smart_ratelimit/event.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <limits>
#include <memory>
#include <thread>
#include <time.h>

#if defined(__x86_64__)
#include <cpuid.h>
#include <x86intrin.h>
#endif

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

namespace detail {

/// How tsc_clock turns counter ticks into steady_clock nanoseconds: measured once per
/// process (see calibrated_tsc).
struct tsc_scale {
    bool usable = false;            // an invariant counter was found and measured
    std::uint64_t tsc0 = 0;         // a counter reading...
    std::int64_t ns0 = 0;           // ...and the steady time it was read at
    std::uint64_t ns_per_tick = 0;  // 32.32 fixed point
};

#if defined(__x86_64__)
/// Whether the time-stamp counter ticks at a constant rate in every power state
/// (CPUID 8000_0007h, EDX bit 8), so that ticks measure time.
inline bool invariant_tsc() noexcept {
    unsigned a = 0, b = 0, c = 0, d = 0;
    // GCC's cpuid.h returns unsigned, Clang's int: compare as unsigned for both.
    if (static_cast<unsigned>(__get_cpuid_max(0x80000000u, nullptr)) < 0x80000007u) return false;
    __get_cpuid(0x80000007u, &a, &b, &c, &d);
    return (d & (1u << 8)) != 0;
}

/// A counter reading paired with the steady time at it: the middle of the tightest of
/// a few steady reads bracketing a counter read.
inline void tsc_sample(std::uint64_t& tsc, std::int64_t& ns) noexcept {
    std::int64_t width = std::numeric_limits<std::int64_t>::max();
    for (int i = 0; i < 8; ++i) {
        const std::int64_t before = steady_clock{}.now().count();
        const std::uint64_t t = __rdtsc();
        const std::int64_t after = steady_clock{}.now().count();
        if (after - before < width) {
            width = after - before;
            tsc = t;
            ns = before + (after - before) / 2;
        }
    }
}
#endif

/// The process's tsc_scale, measured on first use: two samples 20 ms apart (the first
/// tsc_clock constructed waits for them), so the rate is right to a few parts per
/// million. Not usable (tsc_clock then reads steady_clock) off x86-64 or without an
/// invariant counter.
inline const tsc_scale& calibrated_tsc() {
    static const tsc_scale scale = [] {
        tsc_scale s;
#if defined(__x86_64__)
        if (!invariant_tsc()) return s;
        std::uint64_t t0 = 0, t1 = 0;
        std::int64_t n0 = 0, n1 = 0;
        tsc_sample(t0, n0);
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
        tsc_sample(t1, n1);
        if (t1 <= t0 || n1 <= n0) return s;
        s.ns_per_tick =
            static_cast<std::uint64_t>((static_cast<uint128>(n1 - n0) << 32) / (t1 - t0));
        s.tsc0 = t1;
        s.ns0 = n1;
        s.usable = s.ns_per_tick != 0;
#endif
        return s;
    }();
    return scale;
}

}  // namespace detail

/// A monotonic clock read from the CPU's time-stamp counter: on x86-64 with an
/// invariant counter, rdtsc and a multiply (compare core/clock/tsc with
/// core/clock/steady in bench_core), on steady_clock's time line. Its rate is measured against
/// steady_clock once per process, when the first tsc_clock is constructed (which takes
/// 20 ms), to a few parts per million: a one-hour window may come out milliseconds
/// long or short, and the two clocks drift apart by that much per hour, so do not mix
/// their times in one storage. The counter must be synchronized across cores (the
/// kernel checks at boot; a virtual machine's hypervisor must pass an invariant
/// counter); where there is none, now() reads steady_clock.
/// Thread safety: safe from any thread.
struct tsc_clock {
    tsc_clock() : scale_(&detail::calibrated_tsc()) {}

    std::chrono::nanoseconds now() const noexcept {
#if defined(__x86_64__)
        if (scale_->usable) {
            using detail::int128;
            // Signed: another core's counter may read a little behind tsc0.
            const auto ticks = static_cast<std::int64_t>(__rdtsc() - scale_->tsc0);
            const auto ns = static_cast<std::int64_t>(
                (static_cast<int128>(ticks) * static_cast<int128>(scale_->ns_per_tick)) >> 32);
            return std::chrono::nanoseconds(scale_->ns0 + ns);
        }
#endif
        return steady_clock{}.now();
    }
    event_time wall_now() const noexcept { return system_wall_now(); }
    event_time wall_now_coarse() const noexcept { return system_wall_now_coarse(); }

    /// Whether now() reads the counter (else steady_clock).
    bool reads_counter() const noexcept { return scale_->usable; }

private:
    const detail::tsc_scale* scale_;
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
