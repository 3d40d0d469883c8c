// smart_ratelimit/algorithms/gcra.hpp
// gcra: the token bucket's decisions from two words of state, for the in-process hot
// path (concurrent_storage<gcra>). The bucket is kept as the time it will be full
// again (GCRA's theoretical arrival time, "tat") instead of a count of tokens, so a
// decision is a comparison and an addition (and a division for the count it reports),
// with no refill to compute. Clock steps back, costs over the capacity and times at
// the ends of their range take a slower path out of line.
#pragma once

#include <smart_ratelimit/algorithms/token_bucket.hpp>
#include <smart_ratelimit/decision.hpp>
#include <smart_ratelimit/detail/time_math.hpp>
#include <smart_ratelimit/error.hpp>
#include <smart_ratelimit/rate.hpp>

#include <chrono>
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>

namespace smart_ratelimit {

/// GCRA over whole nanoseconds: capacity limit(), one unit back every interval() =
/// period() / limit(). A request of `cost` passes when max(tat, now) + cost*interval
/// is at most limit()*interval ahead of now, and moves tat there.
///
/// Its decisions (allowed, count, remaining, reset_after, retry_after) are
/// token_bucket's whenever period/limit is a whole number of nanoseconds (1000/s,
/// 5/min, 1,000,000/s...), backward clock steps and reordered reads included. When it
/// is not, the interval is rounded up to the next nanosecond, which slows the rate by
/// less than a millionth for intervals of 1 ms or more; shorter intervals that are
/// not whole (e.g. 3,000,000/s) are refused: use token_bucket, which is exact for
/// every rate with a third word of state. leaky_bucket is GCRA kept exact the same
/// way, and it is what any_algorithm and the SQL and Redis stores run under the name
/// "gcra"; this class is for in-process storages with the algorithm as a type
/// (`concurrent_storage<gcra>`), where it is the fastest token bucket.
///
/// A backwards clock step refills nothing and drains nothing (tat moves with the
/// clock); a `now` at most reorder_window behind the latest write's is a clock read
/// that lost a race with another thread's: it is decided at that write's time and its
/// waits count from there. A denial writes nothing (but a rebase).
/// Thread safety: immutable; the caller serializes access to a state.
class gcra {
public:
    static constexpr std::string_view algorithm_name = "gcra";
    static constexpr std::int64_t reorder_window = token_bucket::reorder_window;
    /// The shortest interval that is rounded up when not whole; shorter ones must be
    /// whole (the constructor throws otherwise).
    static constexpr std::int64_t min_rounded_interval = 1'000'000;

    struct state_type {
        std::int64_t tat = detail::fresh_time;   // when the bucket is full again
        std::int64_t last = detail::fresh_time;  // the time of the latest write
    };

    /// Throws config_error for an invalid rate, or one whose interval is shorter than
    /// min_rounded_interval and not a whole number of nanoseconds.
    explicit gcra(rate r)
        : rate_(r),
          interval_(interval_of(r)),
          tau_(interval_ * static_cast<std::int64_t>(r.limit)) {}

    std::uint64_t limit() const noexcept { return rate_.limit; }
    std::chrono::nanoseconds period() const noexcept { return rate_.period; }
    /// The time one unit takes to come back (period / limit, rounded up).
    std::chrono::nanoseconds interval() const noexcept {
        return std::chrono::nanoseconds(interval_);
    }
    std::string_view name() const noexcept { return algorithm_name; }

    outcome try_acquire(state_type& s, std::chrono::nanoseconds now,
                        std::uint64_t cost) const noexcept {
        const step st = fast_step(s, now.count(), cost);
        if (!st.taken) [[unlikely]]
            return decide_stepped(s, now.count(), cost);
        outcome o;
        o.allowed = st.allowed;
        o.retry_after = std::chrono::nanoseconds(st.over);
        o.count = units(st.ahead);
        o.remaining = detail::headroom(rate_.limit, o.count);
        o.reset_after = std::chrono::nanoseconds(st.ahead);
        return o;
    }

    /// try_acquire's decision and state change, without the count's division.
    admission try_admit(state_type& s, std::chrono::nanoseconds now,
                        std::uint64_t cost) const noexcept {
        const step st = fast_step(s, now.count(), cost);
        if (!st.taken) [[unlikely]]
            return admission::of(decide_stepped(s, now.count(), cost));
        // remaining == 0 <=> ceil(ahead / interval) >= limit <=> ahead > tau - interval
        return {st.allowed, false, st.ahead > tau_ - interval_, std::chrono::nanoseconds(st.ahead)};
    }

    outcome peek(const state_type& s, std::chrono::nanoseconds now,
                 std::uint64_t cost) const noexcept {
        state_type copy = s;
        return try_acquire(copy, now, cost);
    }

    void release(state_type& s, std::chrono::nanoseconds now, std::uint64_t cost) const noexcept {
        const moment at = align(s, now.count());
        const std::uint64_t given = cost < rate_.limit ? cost : rate_.limit;
        const detail::int128 back =
            static_cast<detail::int128>(s.tat) - static_cast<std::int64_t>(given) * interval_;
        s.tat = back > at.time ? static_cast<std::int64_t>(back) : at.time;
        s.last = at.time;  // as a write at that time (token_bucket's refill moves it too)
    }

private:
    // The time a decision is made at, and how far behind it the caller's `now` was.
    struct moment {
        std::int64_t time;
        std::int64_t lag = 0;
        bool rebased = false;  // the state was shifted with a backward clock step
    };

    static std::int64_t interval_of(rate r) {
        if (r.limit == 0 || r.limit > rate::max_limit || r.period.count() <= 0 ||
            r.period > rate::max_period)
            throw config_error("gcra: the rate must be 1 to 1000000000 units per 1 ns to 365 days");
        const auto limit = static_cast<std::int64_t>(r.limit);
        const std::int64_t whole = r.period.count() / limit;
        if (r.period.count() % limit == 0) return whole;
        if (whole + 1 >= min_rounded_interval) return whole + 1;
        throw config_error("gcra: " + std::to_string(r.limit) + " per " +
                           std::to_string(r.period.count()) +
                           " ns gives an interval shorter than 1 ms that is not a whole number "
                           "of nanoseconds; use token_bucket for this rate");
    }

    // Brings `s` to `now`: a fresh state starts full at now; a step back within
    // reorder_window of the latest write decides at that write's time; a longer one
    // moves tat back with the clock, keeping the bucket's level.
    static moment align(state_type& s, std::int64_t now) noexcept {
        if (s.last == detail::fresh_time) {
            s.tat = now;
            return {now};
        }
        if (now >= s.last) return {now};
        const detail::int128 behind = static_cast<detail::int128>(s.last) - now;
        if (behind <= reorder_window) return {s.last, static_cast<std::int64_t>(behind)};
        const detail::int128 tat = static_cast<detail::int128>(s.tat) - behind;
        constexpr auto min = std::numeric_limits<std::int64_t>::min() + 1;  // not fresh_time
        s.tat = tat < min ? min : static_cast<std::int64_t>(tat);
        s.last = now;
        return {now, 0, true};
    }

    // The common decision, inline: `now` at or after the latest write, cost within the
    // capacity, no sum past the end of the time range. Admits by moving tat cost
    // intervals on from max(tat, now) when that stays within tau of now.
    struct step {
        bool taken = false;  // false: the case is decide_stepped's
        bool allowed = false;
        std::int64_t ahead = 0;  // tat - now after the decision
        std::int64_t over = 0;   // denied: how far the request would put tat past tau
    };
    step fast_step(state_type& s, std::int64_t n, std::uint64_t cost) const noexcept {
        const std::int64_t start = s.tat > n ? s.tat : n;  // a fresh tat is the minimum
        std::int64_t next, ahead_next;
        if (n < s.last || cost > rate_.limit ||
            __builtin_add_overflow(start, static_cast<std::int64_t>(cost) * interval_, &next) ||
            __builtin_sub_overflow(next, n, &ahead_next)) [[unlikely]]
            return {};
        if (ahead_next > tau_) return {true, false, start - n, ahead_next - tau_};
        s.tat = next;
        s.last = n;
        return {true, true, ahead_next, 0};
    }

    // try_acquire when `now` is behind the latest write, cost exceeds the capacity, or
    // the times are near the ends of their range: out of the hot path.
    [[gnu::noinline]] outcome decide_stepped(state_type& s, std::int64_t n,
                                             std::uint64_t cost) const noexcept {
        state_type r = s;
        const moment at = align(r, n);
        const std::int64_t start = r.tat > at.time ? r.tat : at.time;
        outcome o;
        std::int64_t end = start;  // tat after the decision
        if (cost > rate_.limit) {
            o.retryable = false;
            o.retry_after = never;
        } else {
            // cost*interval <= tau < 2^63; the sum may pass the last representable
            // time only on a clock at its end: then nothing more passes.
            const detail::int128 next =
                static_cast<detail::int128>(start) + static_cast<std::int64_t>(cost) * interval_;
            if (next - at.time <= tau_ && next <= std::numeric_limits<std::int64_t>::max()) {
                o.allowed = true;
                end = static_cast<std::int64_t>(next);
            } else {
                o.retry_after = add_lag(next - tau_ - at.time, at.lag);
            }
        }
        const auto ahead = static_cast<detail::int128>(end) - at.time;  // >= 0
        o.count = ahead > std::numeric_limits<std::int64_t>::max()
                      ? rate_.limit
                      : units(static_cast<std::int64_t>(ahead));
        o.remaining = detail::headroom(rate_.limit, o.count);
        o.reset_after = add_lag(ahead, at.lag);
        if (o.allowed) {
            r.tat = end;
            r.last = at.time;
        }
        if (o.allowed || at.rebased) s = r;
        return o;
    }

    // ceil(ns / interval) for 0 <= ns.
    std::uint64_t units(std::int64_t ns) const noexcept {
        return ns == 0
                   ? 0
                   : (static_cast<std::uint64_t>(ns) - 1) / static_cast<std::uint64_t>(interval_) +
                         1;
    }

    static std::chrono::nanoseconds add_lag(detail::int128 ns, std::int64_t lag) noexcept {
        return detail::to_ns(static_cast<detail::uint128>(ns + lag));
    }

    rate rate_;
    std::int64_t interval_;
    std::int64_t tau_;  // limit * interval: how far ahead tat may be
};

}  // namespace smart_ratelimit
