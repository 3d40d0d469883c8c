// smart_ratelimit/storage/on_error.hpp
// What a storage that talks to a server (Redis, SQL) answers when the server fails
// on the request path, and the outcome it answers with. Shared by every such
// storage so that fail-open and fail-closed mean the same thing everywhere.
#pragma once

#include <chrono>
#include <cstdint>

#include <smart_ratelimit/decision.hpp>

namespace smart_ratelimit {

/// `fail_closed` denies (the reference's default), `fail_open` allows, `raise`
/// throws storage_error so a decorator (resilient_storage) applies its own policy,
/// breaker and failover. Every failure is counted by the storage either way.
enum class on_error { fail_closed, fail_open, raise };

/// The answer to a request the storage could not decide, for an algorithm whose
/// capacity is `limit`: allowed with the whole limit left when failing open, denied
/// with a one-second retry when failing closed (and for `raise`, should it be asked).
constexpr outcome failure_outcome(on_error policy, std::uint64_t limit) noexcept {
    outcome o;
    if (policy == on_error::fail_open) {
        o.allowed = true;
        o.remaining = limit;
    } else {
        o.allowed = false;
        o.count = limit;
        o.retry_after = std::chrono::seconds(1);
    }
    return o;
}

}  // namespace smart_ratelimit
