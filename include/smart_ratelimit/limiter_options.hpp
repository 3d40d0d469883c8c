// smart_ratelimit/limiter_options.hpp
// limiter_options: the limiter-wide settings (fallback key, shadow mode, what a
// degraded decision does). settings.hpp's limiter_options_from(settings) fills the
// one the settings object carries (RATELIMIT_FAIL_OPEN).
#pragma once

#include <smart_ratelimit/storage/failure_policy.hpp>

#include <string>

namespace smart_ratelimit {

/// Limiter-wide settings.
struct limiter_options {
    /// The inner key used when the key extractor yields "" (never "unlimited"). All
    /// such requests share it, so they are limited together. check_and_record() can
    /// override it per request (the HTTP middleware passes the client's IP key).
    std::string fallback_key = "anonymous";
    /// Puts every rule in shadow mode: decide and log, never block.
    bool shadow = false;
    /// What a degraded decision (the store could not decide) does to the request:
    /// refuse it (fail_closed, the default; the middleware answers 503) or let it
    /// through (fail_open). Either way it is never a denial nor counted as blocked.
    failure_policy on_store_failure = failure_policy::fail_closed;
};

}  // namespace smart_ratelimit
