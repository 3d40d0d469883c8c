// smart_ratelimit/algorithms/sliding_window_approx.hpp
// Approximate sliding window (weighted counter, as popularised by Cloudflare): the
// previous window's count weighted by how much of it still overlaps the sliding
// window, plus the current window's count. 24 bytes of state whatever the limit.
#pragma once

#include <smart_ratelimit/decision.hpp>
#include <smart_ratelimit/detail/time_math.hpp>
#include <smart_ratelimit/rate.hpp>

#include <chrono>
#include <cstdint>
#include <string_view>

namespace smart_ratelimit {

/// Weighted-counter sliding window. The estimate is
/// floor(previous * (period - elapsed) / period) + current, where elapsed is the time
/// since the current window started; a request passes when estimate + cost <= limit.
/// It assumes the previous window's requests were spread evenly, so it can admit a
/// little more or less than the exact log; use sliding_window for the exact one.
/// Thread safety: immutable; the caller serializes access to a state.
class sliding_window_approx {
public:
    static constexpr std::string_view algorithm_name = "sliding_window_approx";

    struct state_type {
        std::int64_t window_start = detail::fresh_time;
        std::uint64_t current = 0;
        std::uint64_t previous = 0;
    };

    explicit sliding_window_approx(rate r) noexcept : rate_(r) {}

    std::uint64_t limit() const noexcept { return rate_.limit; }
    std::chrono::nanoseconds period() const noexcept { return rate_.period; }
    std::string_view name() const noexcept { return algorithm_name; }

    outcome try_acquire(state_type& s, std::chrono::nanoseconds now,
                        std::uint64_t cost) const noexcept {
        refresh(s, now.count());
        const std::int64_t n = now.count();
        const std::uint64_t est = estimate(s, n);
        outcome o;
        if (cost > rate_.limit) {
            o.allowed = false;
            o.retryable = false;
            o.retry_after = never;
        } else if (cost <= detail::headroom(rate_.limit, est)) {
            o.allowed = true;
            s.current += cost;
        } else {
            o.allowed = false;
            o.retry_after = retry_after(s, n, cost);
        }
        o.count = o.allowed ? est + cost : est;
        o.remaining = detail::headroom(rate_.limit, o.count);
        o.reset_after = reset_after(s, n);
        return o;
    }

    outcome peek(const state_type& s, std::chrono::nanoseconds now,
                 std::uint64_t cost) const noexcept {
        state_type copy = s;
        return try_acquire(copy, now, cost);
    }

    void release(state_type& s, std::chrono::nanoseconds now, std::uint64_t cost) const noexcept {
        refresh(s, now.count());
        s.current -= cost < s.current ? cost : s.current;
    }

private:
    std::int64_t p() const noexcept { return rate_.period.count(); }

    void refresh(state_type& s, std::int64_t now) const noexcept {
        const std::int64_t w = detail::align_down(now, p());
        if (s.window_start == detail::fresh_time) {
            s = state_type{w, 0, 0};
        } else if (w > s.window_start) {
            const bool adjacent = w - s.window_start == p();
            s.previous = adjacent ? s.current : 0;
            s.current = 0;
            s.window_start = w;
        } else if (w < s.window_start) {
            s.window_start = w;  // clock stepped back: keep the counts
        }
    }

    // floor(prev * (p - elapsed) / p): the previous window's weighted share.
    std::uint64_t weighted_previous(std::uint64_t prev, std::int64_t elapsed) const noexcept {
        const auto left = static_cast<std::uint64_t>(p() - elapsed);
        if (prev == 0) return 0;
        return static_cast<std::uint64_t>(
            detail::div(detail::mul(prev, left), static_cast<std::uint64_t>(p())));
    }

    std::uint64_t estimate(const state_type& s, std::int64_t now) const noexcept {
        const std::uint64_t e = weighted_previous(s.previous, now - s.window_start) + s.current;
        return e < rate_.limit ? e : rate_.limit;
    }

    // Smallest elapsed e in [0, p] with floor(prev * (p - e) / p) <= budget.
    std::int64_t elapsed_needed(std::uint64_t prev, std::uint64_t budget) const noexcept {
        if (prev <= budget) return 0;
        const auto pp = static_cast<std::uint64_t>(p());
        // prev * (p - e) < (budget + 1) * p  <=>  p - e <= ceil((budget+1)*p / prev) - 1
        const detail::uint128 c = detail::ceil_div(detail::mul(budget + 1, pp), prev);
        const detail::uint128 left = c - 1;  // max allowed (p - e)
        return left >= pp ? 0 : p() - static_cast<std::int64_t>(left);
    }

    std::chrono::nanoseconds retry_after(const state_type& s, std::int64_t now,
                                         std::uint64_t cost) const noexcept {
        const std::uint64_t lim = rate_.limit;
        if (s.current <= lim - cost) {
            const std::int64_t e = elapsed_needed(s.previous, lim - cost - s.current);
            const std::int64_t at = s.window_start + e;
            const auto d = detail::positive_diff(at, now);
            return d.count() > 0 ? d : std::chrono::nanoseconds(1);
        }
        const std::int64_t e = elapsed_needed(s.current, lim - cost);
        return detail::positive_diff(s.window_start + p() + e, now);
    }

    std::chrono::nanoseconds reset_after(const state_type& s, std::int64_t now) const noexcept {
        if (s.current > 0) return detail::positive_diff(s.window_start + 2 * p(), now);
        if (s.previous > 0) return detail::positive_diff(s.window_start + p(), now);
        return std::chrono::nanoseconds(0);
    }

    rate rate_;
};

}  // namespace smart_ratelimit
