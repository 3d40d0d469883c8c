// smart_ratelimit/algorithms/sliding_window.hpp
// Exact sliding window (sliding log): a request passes when the units admitted in
// the last `period` plus its cost fit in `limit`. The state keeps one entry
// (timestamp, units) per distinct admission time still in the window.
#pragma once

#include <smart_ratelimit/decision.hpp>
#include <smart_ratelimit/detail/time_math.hpp>
#include <smart_ratelimit/rate.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

namespace smart_ratelimit {

/// Exact sliding-window log. Memory per key: 16 bytes per distinct admission time in
/// the window, so at most 16 * limit bytes (admissions at the same `now` share one
/// entry); prefer sliding_window_approx for large limits with many keys.
/// An entry admitted at t counts while t > now - period. Backwards clock steps shift
/// the log with the clock, so nothing expires or reappears.
/// Thread safety: immutable; the caller serializes access to a state.
class sliding_window {
public:
    static constexpr std::string_view algorithm_name = "sliding_window";

    struct entry {
        std::int64_t at;
        std::uint64_t units;
        friend bool operator==(const entry&, const entry&) = default;
    };

    struct state_type {
        std::vector<entry> log;  // oldest first, from `head`
        std::size_t head = 0;
        std::uint64_t total = 0;  // units in log[head..]
        std::int64_t last = detail::fresh_time;
        friend bool operator==(const state_type&, const state_type&) = default;
    };

    explicit sliding_window(rate r) noexcept : rate_(r) {}

    std::uint64_t limit() const noexcept { return rate_.limit; }
    std::chrono::nanoseconds period() const noexcept { return rate_.period; }
    std::string_view name() const noexcept { return algorithm_name; }

    outcome try_acquire(state_type& s, std::chrono::nanoseconds now, std::uint64_t cost) const {
        const std::int64_t n = now.count();
        normalize(s, n);
        outcome o = evaluate(s, 0, n, cost);
        if (o.allowed && cost > 0) {
            if (s.head < s.log.size() && s.log.back().at == n)
                s.log.back().units += cost;
            else
                s.log.push_back(entry{n, cost});
            s.total += cost;
            o.count = s.total;
            o.remaining = rate_.limit - s.total;
            o.reset_after = detail::positive_diff(s.log.back().at + p(), n);
        }
        return o;
    }

    outcome peek(const state_type& s, std::chrono::nanoseconds now,
                 std::uint64_t cost) const noexcept {
        const std::int64_t n = now.count();
        const std::int64_t shift = s.last == detail::fresh_time || n >= s.last ? 0 : s.last - n;
        outcome o = s.last == detail::fresh_time ? evaluate(state_type{}, 0, n, cost)
                                                 : evaluate(s, shift, n, cost);
        if (o.allowed && cost > 0) {  // what try_acquire would report after admitting
            o.count += cost;
            o.remaining -= cost;
            o.reset_after = rate_.period;
        }
        return o;
    }

    void release(state_type& s, std::chrono::nanoseconds now, std::uint64_t cost) const {
        normalize(s, now.count());
        while (cost > 0 && s.head < s.log.size()) {
            entry& e = s.log.back();
            const std::uint64_t take = cost < e.units ? cost : e.units;
            e.units -= take;
            s.total -= take;
            cost -= take;
            if (e.units == 0) s.log.pop_back();
        }
    }

private:
    std::int64_t p() const noexcept { return rate_.period.count(); }

    // Applies a backwards shift, drops expired entries, compacts the log.
    void normalize(state_type& s, std::int64_t now) const {
        if (s.last != detail::fresh_time && now < s.last) {
            const std::int64_t shift = s.last - now;
            for (std::size_t i = s.head; i < s.log.size(); ++i) s.log[i].at -= shift;
        }
        s.last = now;
        while (s.head < s.log.size() && s.log[s.head].at <= now - p()) {
            s.total -= s.log[s.head].units;
            ++s.head;
        }
        if (s.head == s.log.size()) {
            s.log.clear();
            s.head = 0;
            if (s.log.capacity() > 64) s.log.shrink_to_fit();
        } else if (s.head >= 32 && s.head * 2 >= s.log.size()) {
            s.log.erase(s.log.begin(), s.log.begin() + static_cast<std::ptrdiff_t>(s.head));
            s.head = 0;
        }
    }

    // The decision on `s` as seen at `now`, entries shifted back by `shift`;
    // expired entries are skipped rather than removed.
    outcome evaluate(const state_type& s, std::int64_t shift, std::int64_t now,
                     std::uint64_t cost) const noexcept {
        std::size_t first = s.head;
        std::uint64_t total = s.total;
        while (first < s.log.size() && s.log[first].at - shift <= now - p()) {
            total -= s.log[first].units;
            ++first;
        }
        outcome o;
        o.count = total;
        o.remaining = detail::headroom(rate_.limit, total);
        o.reset_after = first < s.log.size()
                            ? detail::positive_diff(s.log.back().at - shift + p(), now)
                            : std::chrono::nanoseconds(0);
        if (cost > rate_.limit) {
            o.allowed = false;
            o.retryable = false;
            o.retry_after = never;
        } else if (cost <= detail::headroom(rate_.limit, total)) {
            o.allowed = true;
        } else {
            // Wait until enough of the oldest units have left the window.
            const std::uint64_t need = total - (rate_.limit - cost);
            std::uint64_t freed = 0;
            std::size_t i = first;
            while (i < s.log.size()) {
                freed += s.log[i].units;
                if (freed >= need) break;
                ++i;
            }
            o.allowed = false;
            o.retry_after = detail::positive_diff(s.log[i].at - shift + p(), now);
            if (o.retry_after.count() == 0) o.retry_after = std::chrono::nanoseconds(1);
        }
        return o;
    }

    rate rate_;
};

}  // namespace smart_ratelimit
