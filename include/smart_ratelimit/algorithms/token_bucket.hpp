// smart_ratelimit/algorithms/token_bucket.hpp
// Token bucket: `limit` tokens of capacity, refilled continuously at limit/period.
// Refill is exact integer arithmetic (the fractional token is carried), so there is
// no drift however the clock is sampled. 24 bytes of state. A decision divides once
// for its waits when a token is a whole number of nanoseconds (1,000,000/s: 1,000 ns),
// up to twice otherwise, and once more only when a whole token has refilled since the
// state's time.
#pragma once

#include <smart_ratelimit/decision.hpp>
#include <smart_ratelimit/detail/time_math.hpp>
#include <smart_ratelimit/rate.hpp>

#include <chrono>
#include <cstdint>
#include <string_view>

namespace smart_ratelimit {

/// Token bucket with capacity limit() and one token every period()/limit().
/// A new key starts full. A backwards clock step refills nothing and drains nothing;
/// a forward jump of any size refills at most to capacity. A `now` at most
/// `reorder_window` behind the state's time is a decision whose clock read lost a race
/// with another thread's, not a clock step: it refills nothing, moves nothing back
/// (rebasing would refill that span twice), and its waits count from the state's time.
/// Thread safety: immutable; the caller serializes access to a state.
class token_bucket {
public:
    static constexpr std::string_view algorithm_name = "token_bucket";
    /// How far behind the state's time a `now` may be and still count as a race
    /// between threads' clock reads rather than a step of the clock (1 ms).
    static constexpr std::int64_t reorder_window = 1'000'000;

    struct state_type {
        std::int64_t last = detail::fresh_time;  // time of the last refill
        std::uint64_t used = 0;                  // tokens missing from a full bucket
        std::uint64_t credit = 0;                // partial token, in ns*limit units (< period)
    };

    explicit token_bucket(rate r) noexcept
        : rate_(r),
          interval_(r.limit != 0 && r.period.count() % static_cast<std::int64_t>(r.limit) == 0
                        ? static_cast<std::uint64_t>(r.period.count()) / r.limit
                        : 0) {}

    std::uint64_t limit() const noexcept { return rate_.limit; }
    std::chrono::nanoseconds period() const noexcept { return rate_.period; }
    std::string_view name() const noexcept { return algorithm_name; }

    /// A denial leaves `s` as it was (refilling later gives the same tokens), unless
    /// the clock stepped back: so a storage may skip writing a state nothing changed.
    outcome try_acquire(state_type& s, std::chrono::nanoseconds now,
                        std::uint64_t cost) const noexcept {
        state_type r = s;
        refill(r, now.count());
        outcome o;
        const std::uint64_t tokens = detail::headroom(rate_.limit, r.used);
        const time_to_refill until(*this, r);
        if (cost > rate_.limit) {
            o.allowed = false;
            o.retryable = false;
            o.retry_after = never;
        } else if (cost <= tokens) {
            o.allowed = true;
            r.used += cost;
        } else {
            o.allowed = false;
            o.retry_after = until(r.used - (rate_.limit - cost));
        }
        o.count = r.used;
        o.remaining = detail::headroom(rate_.limit, r.used);
        o.reset_after = until(r.used);
        if (r.last > now.count()) {  // a reordered read: the waits start at r.last
            const std::int64_t lag = r.last - now.count();
            o.reset_after = std::chrono::nanoseconds(detail::sat_add(o.reset_after.count(), lag));
            if (!o.allowed && o.retry_after != never)
                o.retry_after =
                    std::chrono::nanoseconds(detail::sat_add(o.retry_after.count(), lag));
        }
        if (o.allowed || r.last < s.last) s = r;  // a denial writes only a rebase
        return o;
    }

    outcome peek(const state_type& s, std::chrono::nanoseconds now,
                 std::uint64_t cost) const noexcept {
        state_type copy = s;
        return try_acquire(copy, now, cost);
    }

    void release(state_type& s, std::chrono::nanoseconds now, std::uint64_t cost) const noexcept {
        refill(s, now.count());
        s.used -= cost < s.used ? cost : s.used;
        if (s.used == 0) s.credit = 0;
    }

private:
    void refill(state_type& s, std::int64_t now) const noexcept {
        if (s.last == detail::fresh_time) {
            s.last = now;  // new key
            return;
        }
        if (now <= s.last) {  // the clock stepped back (rebase, keep the tokens) or a race
            if (static_cast<detail::int128>(s.last) - now > reorder_window) s.last = now;
            return;
        }
        if (s.used == 0) {
            s.last = now;
            s.credit = 0;
            return;
        }
        const auto pp = static_cast<std::uint64_t>(rate_.period.count());
        const auto elapsed = static_cast<std::uint64_t>(static_cast<detail::int128>(now) - s.last);
        // elapsed may be up to 2^64; cap it at one period, which already refills fully.
        const std::uint64_t e = elapsed < pp ? elapsed : pp;
        const detail::uint128 c = detail::mul(e, rate_.limit) + s.credit;
        s.last = now;
        if (c < pp) {  // no whole token yet (a hot key's usual case): no division
            s.credit = static_cast<std::uint64_t>(c);
            return;
        }
        const detail::quot_rem added = detail::divmod(c, pp);
        if (added.quot >= s.used) {
            s.used = 0;
            s.credit = 0;
        } else {
            s.used -= static_cast<std::uint64_t>(added.quot);
            s.credit = added.rem;
        }
    }

    // The time until n more tokens have been refilled into a refilled state:
    // ceil((n * period - credit) / limit). With a whole number of ns per token
    // (interval_), that is n * interval_ - floor(credit / limit), and the one division
    // is shared by every n asked about (a denial asks twice).
    class time_to_refill {
    public:
        time_to_refill(const token_bucket& a, const state_type& s) noexcept
            : a_(a), credit_(s.credit), whole_(a.interval_ != 0 ? s.credit / a.limit() : 0) {}

        std::chrono::nanoseconds operator()(std::uint64_t n) const noexcept {
            if (n == 0) return std::chrono::nanoseconds(0);
            if (a_.interval_ != 0) return detail::to_ns(detail::mul(n, a_.interval_) - whole_);
            const auto pp = static_cast<std::uint64_t>(a_.rate_.period.count());
            return detail::to_ns(detail::ceil_div(detail::mul(n, pp) - credit_, a_.limit()));
        }

    private:
        const token_bucket& a_;
        std::uint64_t credit_;
        std::uint64_t whole_;
    };

    rate rate_;
    std::uint64_t interval_;  // period / limit when whole ns, else 0
};

}  // namespace smart_ratelimit
