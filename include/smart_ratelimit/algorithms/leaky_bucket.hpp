// smart_ratelimit/algorithms/leaky_bucket.hpp
// Leaky bucket as a meter, implemented as GCRA (generic cell rate algorithm): one
// theoretical arrival time per key instead of a counter. Requests drain at
// limit/period with a burst of up to `limit`. 24 bytes of state.
#pragma once

#include <smart_ratelimit/decision.hpp>
#include <smart_ratelimit/detail/time_math.hpp>
#include <smart_ratelimit/rate.hpp>

#include <chrono>
#include <cstdint>
#include <string_view>

namespace smart_ratelimit {

/// GCRA leaky bucket. With emission interval T = period/limit (kept exactly, as a
/// whole part plus a remainder in 1/limit ns), a request of `cost` passes when
/// max(tat, now) + cost*T - now <= period, and moves tat there. The bucket "level"
/// reported as `count` is ceil((tat - now) / T). A backwards clock step shifts tat
/// by the same amount, so the level is unchanged.
/// Thread safety: immutable; the caller serializes access to a state.
class leaky_bucket {
public:
    static constexpr std::string_view algorithm_name = "leaky_bucket";

    struct state_type {
        std::int64_t last = detail::fresh_time;  // the latest `now` seen
        std::int64_t tat = 0;                    // theoretical arrival time, whole ns
        std::uint64_t tat_frac = 0;              // plus tat_frac / limit ns
    };

    explicit leaky_bucket(rate r) noexcept : rate_(r) {}

    std::uint64_t limit() const noexcept { return rate_.limit; }
    std::chrono::nanoseconds period() const noexcept { return rate_.period; }
    std::string_view name() const noexcept { return algorithm_name; }

    outcome try_acquire(state_type& s, std::chrono::nanoseconds now,
                        std::uint64_t cost) const noexcept {
        const std::int64_t n = now.count();
        normalize(s, n);
        const std::uint64_t lim = rate_.limit;
        const auto pp = static_cast<std::uint64_t>(rate_.period.count());
        outcome o;
        // level after this request, in ns*limit units: (tat - now)*limit + frac + cost*period
        const detail::uint128 level = backlog(s, n);
        if (cost > lim) {
            o.allowed = false;
            o.retryable = false;
            o.retry_after = never;
        } else {
            const detail::uint128 after = level + detail::mul(cost, pp);
            const detail::uint128 cap = detail::mul(lim, pp);
            if (after <= cap) {
                o.allowed = true;
                advance(s, cost);
            } else {
                o.allowed = false;
                o.retry_after = detail::to_ns(detail::ceil_div(after - cap, lim));
            }
        }
        const detail::uint128 now_level = backlog(s, n);
        o.count = static_cast<std::uint64_t>(detail::ceil_div(now_level, pp));
        if (o.count > lim) o.count = lim;
        o.remaining = lim - o.count;
        o.reset_after = detail::to_ns(detail::ceil_div(now_level, lim));
        return o;
    }

    outcome peek(const state_type& s, std::chrono::nanoseconds now,
                 std::uint64_t cost) const noexcept {
        state_type copy = s;
        return try_acquire(copy, now, cost);
    }

    void release(state_type& s, std::chrono::nanoseconds now, std::uint64_t cost) const noexcept {
        const std::int64_t n = now.count();
        normalize(s, n);
        const detail::uint128 level = backlog(s, n);
        const detail::uint128 give =
            detail::mul(cost, static_cast<std::uint64_t>(rate_.period.count()));
        const detail::uint128 left = give >= level ? 0 : level - give;
        set_backlog(s, n, left);
    }

private:
    // Brings tat up to now (an empty bucket) and rebases on backwards steps.
    void normalize(state_type& s, std::int64_t now) const noexcept {
        if (s.last == detail::fresh_time) {
            s = state_type{now, now, 0};
            return;
        }
        if (now < s.last) s.tat = detail::sat_add(s.tat, now - s.last);  // shift with the clock
        s.last = now;
        if (s.tat < now || (s.tat == now && s.tat_frac == 0)) {
            s.tat = now;
            s.tat_frac = 0;
        }
    }

    // (tat - now) * limit + frac, in ns*limit units; tat >= now after normalize.
    detail::uint128 backlog(const state_type& s, std::int64_t now) const noexcept {
        const auto ahead = static_cast<std::uint64_t>(static_cast<detail::int128>(s.tat) - now);
        return detail::mul(ahead, rate_.limit) + s.tat_frac;
    }

    void set_backlog(state_type& s, std::int64_t now, detail::uint128 b) const noexcept {
        const detail::quot_rem qr = detail::divmod(b, rate_.limit);
        s.tat = now + static_cast<std::int64_t>(qr.quot);
        s.tat_frac = qr.rem;
    }

    void advance(state_type& s, std::uint64_t cost) const noexcept {
        const detail::uint128 inc =
            detail::mul(cost, static_cast<std::uint64_t>(rate_.period.count()));
        const detail::quot_rem qr = detail::divmod(inc, rate_.limit);
        const std::uint64_t f = qr.rem + s.tat_frac;  // both < limit <= 10^9
        s.tat += static_cast<std::int64_t>(qr.quot) + static_cast<std::int64_t>(f / rate_.limit);
        s.tat_frac = f % rate_.limit;
    }

    rate rate_;
};

}  // namespace smart_ratelimit
