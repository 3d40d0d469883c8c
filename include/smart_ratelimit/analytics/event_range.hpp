// smart_ratelimit/analytics/event_range.hpp
// What the analytics functions accept: `event_range`, any input range whose
// elements are events, and `event_traits<T>`, the customization point that lets
// a user's own row type be analysed in place, without copying it into `event`.
// Also the analytics window: `window_start(now, days)`.
#pragma once

#include <chrono>
#include <concepts>
#include <cstdint>
#include <limits>
#include <ranges>
#include <string_view>
#include <type_traits>

#include <smart_ratelimit/event.hpp>

namespace smart_ratelimit {

/// Reads the fields the analytics need from an event-like value.
///
/// For types shaped like `event` (`event_shaped`: members `e.timestamp`, `e.key`,
/// `e.rule_name`, `e.path`, `e.method`, `e.allowed`, `e.count`, `e.limit`) the default
/// reads them, so `event` and any struct with those members work as they are.
/// Specialize it for a type with other names or representations:
///
/// | expression                       | type (convertible to)  | meaning                        |
/// |----------------------------------|------------------------|--------------------------------|
/// | `event_traits<T>::timestamp(e)`  | `event_time`           | UTC time of the decision       |
/// | `event_traits<T>::key(e)`        | `std::string_view`     | the rate-limit key             |
/// | `event_traits<T>::rule_name(e)`  | `std::string_view`     | the rule, `""` for none        |
/// | `event_traits<T>::path(e)`       | `std::string_view`     | request path                   |
/// | `event_traits<T>::method(e)`     | `std::string_view`     | HTTP method                    |
/// | `event_traits<T>::allowed(e)`    | `bool`                 | false when blocked             |
/// | `event_traits<T>::count(e)`      | `std::int64_t`         | count at decision time         |
/// | `event_traits<T>::limit(e)`      | `std::int64_t`         | the configured limit           |
/// | `event_traits<T>::outcome(e)`    | `outcome_kind`         | optional: the four-way outcome; without it, `allowed` decides (allowed or blocked) |
///
/// `allowed(e)` must be true for a degraded event (the store could not decide: not a
/// denial), so every blocked count excludes degraded events by construction; the
/// degraded count comes from `outcome(e)`.
/// `e` is a `const T&`. Accessors may return views into `e` or values; the
/// functions copy what they keep before moving to the next element.
template <class T>
struct event_traits {};  // not an event unless specialized or shaped like `event`

/// Types with the members of `event` (the default event_traits applies to them).
template <class T>
concept event_shaped = requires(const T& e) {
    event_time(e.timestamp);
    std::string_view(e.key);
    std::string_view(e.rule_name);
    std::string_view(e.path);
    std::string_view(e.method);
    static_cast<bool>(e.allowed);
    static_cast<std::int64_t>(e.count);
    static_cast<std::int64_t>(e.limit);
};

template <event_shaped T>
struct event_traits<T> {
    static event_time timestamp(const T& e) { return event_time(e.timestamp); }
    static std::string_view key(const T& e) { return e.key; }
    static std::string_view rule_name(const T& e) { return e.rule_name; }
    static std::string_view path(const T& e) { return e.path; }
    static std::string_view method(const T& e) { return e.method; }
    static bool allowed(const T& e) { return static_cast<bool>(e.allowed); }
    static std::int64_t count(const T& e) { return static_cast<std::int64_t>(e.count); }
    static std::int64_t limit(const T& e) { return static_cast<std::int64_t>(e.limit); }
};

namespace detail {
template <class T>
concept traits_give_outcome = requires(const T& e) {
    { event_traits<T>::outcome(e) } -> std::convertible_to<outcome_kind>;
};
template <class T>
concept has_outcome_member = requires(const T& e) {
    { e.outcome } -> std::convertible_to<outcome_kind>;
};
}  // namespace detail

/// The outcome of `e`: event_traits<T>::outcome(e) when the traits provide it, else
/// an `outcome` member of an event-shaped type, else what `allowed` says (allowed or
/// blocked), as for rows older than the outcome.
template <class T>
outcome_kind outcome_of(const T& e) {
    if constexpr (detail::traits_give_outcome<T>)
        return event_traits<T>::outcome(e);
    else if constexpr (event_shaped<T> && detail::has_outcome_member<T>)
        return e.outcome;
    else
        return outcome_of_allowed(static_cast<bool>(event_traits<T>::allowed(e)));
}

/// analysable_event: `event_traits<T>` provides every accessor of the table above.
template <class T>
concept analysable_event = requires(const T& e) {
    { event_traits<T>::timestamp(e) } -> std::convertible_to<event_time>;
    { event_traits<T>::key(e) } -> std::convertible_to<std::string_view>;
    { event_traits<T>::rule_name(e) } -> std::convertible_to<std::string_view>;
    { event_traits<T>::path(e) } -> std::convertible_to<std::string_view>;
    { event_traits<T>::method(e) } -> std::convertible_to<std::string_view>;
    { event_traits<T>::allowed(e) } -> std::convertible_to<bool>;
    { event_traits<T>::count(e) } -> std::convertible_to<std::int64_t>;
    { event_traits<T>::limit(e) } -> std::convertible_to<std::int64_t>;
};

/// The element type of an event range, without cv/ref.
template <class R>
using range_event_t = std::remove_cvref_t<std::ranges::range_reference_t<R>>;

/// event_range: an input range (one pass is enough) whose elements are analysable
/// events: `std::vector<event>`, a ring-buffer snapshot, a generator of rows
/// streamed from SQL, `std::vector<my_row>` with `event_traits<my_row>`.
/// The functions read every element once, in order, never store iterators and
/// never keep references to elements (elements may be prvalues).
template <class R>
concept event_range = std::ranges::input_range<R> && analysable_event<range_event_t<R>>;

/// The system clock as an `event_time`: the default `now` of every function.
inline event_time event_clock_now() noexcept {
    return std::chrono::time_point_cast<std::chrono::microseconds>(
        std::chrono::system_clock::now());
}

/// The first instant of a `days`-day window ending at `now`: `now - days * 24h`.
/// An event is in the window when `timestamp >= window_start(now, days)` (inclusive).
/// `days` is not clamped: 0 gives `now` itself, a negative count a start in the
/// future (only events stamped at or after it count). Arithmetic saturates at the
/// limits of `event_time` instead of overflowing (|days| beyond ~290,000 years).
constexpr event_time window_start(event_time now, std::int64_t days) noexcept {
    using rep = event_time::rep;
    constexpr rep day_us = rep{86'400'000'000};
    constexpr rep max = std::numeric_limits<rep>::max();
    constexpr rep min = std::numeric_limits<rep>::min();
    const rep n = now.time_since_epoch().count();
    rep span = 0;
    if (days > max / day_us)
        span = max;
    else if (days < min / day_us)
        span = min;
    else
        span = static_cast<rep>(days) * day_us;
    rep start = 0;
    if (__builtin_sub_overflow(n, span, &start)) start = span > 0 ? min : max;
    return event_time{std::chrono::microseconds{start}};
}

}  // namespace smart_ratelimit
