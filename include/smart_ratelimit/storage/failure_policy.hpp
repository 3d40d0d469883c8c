// smart_ratelimit/storage/failure_policy.hpp
// What happens when a store (Redis, SQL) cannot decide: the storage answers a
// `degraded` outcome (or throws, for a decorator to handle), and the limiter's one
// `failure_policy` decides whether such a request passes (fail_open) or is refused
// (fail_closed, answered 503 by the HTTP middleware). Never a 429, never "blocked".
#pragma once

#include <chrono>
#include <string_view>

#include <smart_ratelimit/decision.hpp>

namespace smart_ratelimit {

/// Whether a request whose decision is degraded proceeds. One setting for every
/// storage: limiter_options::on_store_failure, RATELIMIT_FAIL_OPEN in the settings.
/// Default closed, as the original library.
enum class failure_policy { fail_closed, fail_open };

constexpr std::string_view to_string(failure_policy p) noexcept {
    return p == failure_policy::fail_open ? "fail_open" : "fail_closed";
}

/// What a storage that talks to a server does when the server fails on the request
/// path: answer degraded_outcome() (`degrade`, the default) or throw storage_error
/// (`raise`) so that a decorator (resilient_storage) applies its breaker and
/// failover. Every failure is counted by the storage either way.
enum class on_error { degrade, raise };

/// The answer to a request the store could not decide: degraded, not allowed (the
/// limiter's failure_policy turns it into a pass or a refusal), nothing counted,
/// and `retry_after` as the time after which asking again is worthwhile.
constexpr outcome degraded_outcome(
    std::chrono::nanoseconds retry_after = std::chrono::seconds(1)) noexcept {
    outcome o;
    o.allowed = false;
    o.degraded = true;
    o.retry_after = retry_after;
    return o;
}

}  // namespace smart_ratelimit
