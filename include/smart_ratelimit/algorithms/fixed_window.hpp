// smart_ratelimit/algorithms/fixed_window.hpp
// Fixed window counter: at most `limit` units in each period-aligned window
// [k*period, (k+1)*period) of the clock. Cheapest state (16 bytes), but a client can
// spend up to 2*limit across a window boundary.
#pragma once

#include <smart_ratelimit/decision.hpp>
#include <smart_ratelimit/detail/time_math.hpp>
#include <smart_ratelimit/rate.hpp>

#include <chrono>
#include <cstdint>
#include <string_view>

namespace smart_ratelimit {

/// Fixed window counter. Backwards clock steps move the window back without
/// clearing it (no quota is gained or lost); a forward jump starts a fresh window.
/// Thread safety: immutable; the caller serializes access to a state.
class fixed_window {
public:
    static constexpr std::string_view algorithm_name = "fixed_window";

    struct state_type {
        std::int64_t window_start = detail::fresh_time;
        std::uint64_t count = 0;
    };

    explicit fixed_window(rate r) noexcept : rate_(r) {}

    std::uint64_t limit() const noexcept { return rate_.limit; }
    std::chrono::nanoseconds period() const noexcept { return rate_.period; }
    std::string_view name() const noexcept { return algorithm_name; }

    outcome try_acquire(state_type& s, std::chrono::nanoseconds now,
                        std::uint64_t cost) const noexcept {
        refresh(s, now.count());
        outcome o = evaluate(s, now.count(), cost);
        if (o.allowed) {
            s.count += cost;
            o.count = s.count;
            o.remaining = rate_.limit - s.count;
            o.reset_after = reset_after(s, now.count());
        }
        return o;
    }

    outcome peek(const state_type& s, std::chrono::nanoseconds now,
                 std::uint64_t cost) const noexcept {
        state_type copy = s;
        return try_acquire(copy, now, cost);
    }

    void release(state_type& s, std::chrono::nanoseconds now, std::uint64_t cost) const noexcept {
        refresh(s, now.count());
        s.count -= cost < s.count ? cost : s.count;
    }

private:
    void refresh(state_type& s, std::int64_t now) const noexcept {
        const std::int64_t w = detail::align_down(now, rate_.period.count());
        if (s.window_start == detail::fresh_time || w > s.window_start) {
            s.window_start = w;
            s.count = 0;
        } else if (w < s.window_start) {
            s.window_start = w;  // clock stepped back: keep the count
        }
    }

    std::chrono::nanoseconds reset_after(const state_type& s, std::int64_t now) const noexcept {
        if (s.count == 0) return std::chrono::nanoseconds(0);
        return detail::positive_diff(s.window_start + rate_.period.count(), now);
    }

    outcome evaluate(const state_type& s, std::int64_t now, std::uint64_t cost) const noexcept {
        outcome o;
        o.count = s.count;
        o.remaining = detail::headroom(rate_.limit, s.count);
        o.reset_after = reset_after(s, now);
        if (cost > rate_.limit) {
            o.allowed = false;
            o.retryable = false;
            o.retry_after = never;
        } else if (cost <= detail::headroom(rate_.limit, s.count)) {
            o.allowed = true;
        } else {
            o.allowed = false;
            o.retry_after = detail::positive_diff(s.window_start + rate_.period.count(), now);
        }
        return o;
    }

    rate rate_;
};

}  // namespace smart_ratelimit
