// smart_ratelimit/health_checks.hpp
// Checks for a health_report that need no database: a storage circuit breaker
// (`check_breaker`, ok while closed) and an async_sink's writer thread
// (`check_event_writer`, ok while the sink runs). Standard headers only; the
// database checks are in soci/health.hpp.
#pragma once

#include <smart_ratelimit/health.hpp>
#include <smart_ratelimit/sinks/async_sink.hpp>
#include <smart_ratelimit/storage/resilient_storage.hpp>

#include <concepts>
#include <string>
#include <utility>

namespace smart_ratelimit {

/// The name of a breaker state: "closed", "open" or "half_open".
constexpr const char* breaker_state_name(breaker_state s) noexcept {
    switch (s) {
        case breaker_state::closed:
            return "closed";
        case breaker_state::open:
            return "open";
        case breaker_state::half_open:
            return "half_open";
    }
    return "unknown";
}

/// A check named `name` (e.g. "breaker:redis"): ok when `state` is closed; the
/// detail is the state's name. Half-open counts as not ok: the store has failed
/// and is only being probed.
inline health_check check_breaker(std::string name, breaker_state state) {
    return health_check{std::move(name), state == breaker_state::closed, breaker_state_name(state)};
}

/// Anything with a circuit breaker: `s.state()` returns its breaker_state.
template <class S>
concept has_breaker = requires(const S& s) {
    { s.state() } -> std::same_as<breaker_state>;
};

/// As above, reading `storage.state()` (a resilient_storage, or anything
/// has_breaker). Thread safety: as the storage's state().
template <has_breaker Storage>
health_check check_breaker(std::string name, const Storage& storage) {
    return check_breaker(std::move(name), storage.state());
}

/// A check named `name` (e.g. "event_writer"): ok while `sink` runs (not stopped,
/// writer thread alive). The detail is "running" or "stopped", followed by the
/// rows dropped so far when there are any, so a running writer that loses events
/// is visible without failing the check. Thread safety: may be called from any
/// thread while the sink is in use.
template <class Writer>
health_check check_event_writer(std::string name, const async_sink<Writer>& sink) {
    const bool running = sink.running();
    std::string detail = running ? "running" : "stopped";
    const auto s = sink.stats();
    if (s.dropped() > 0)
        detail += ", " + std::to_string(s.dropped()) + " of " + std::to_string(s.offered) +
                  " events dropped";
    return health_check{std::move(name), running, std::move(detail)};
}

}  // namespace smart_ratelimit
