// smart_ratelimit/smart_ratelimit.hpp
// The core umbrella header: the limiter, rates, decisions, clocks, the built-in
// algorithms, in-memory storage, generic and IP key extractors, the sinks
// (null, callback, ring buffer, fan-out, async batching), analytics and settings.
// Standard headers only; the SOCI, Beast, Redis and SMTP adapters have their own.
#pragma once

#include <smart_ratelimit/version.hpp>
#include <smart_ratelimit/error.hpp>
#include <smart_ratelimit/event.hpp>
#include <smart_ratelimit/rate.hpp>
#include <smart_ratelimit/clock.hpp>
#include <smart_ratelimit/decision.hpp>
#include <smart_ratelimit/concepts.hpp>
#include <smart_ratelimit/observer.hpp>
#include <smart_ratelimit/algorithms/fixed_window.hpp>
#include <smart_ratelimit/algorithms/sliding_window.hpp>
#include <smart_ratelimit/algorithms/sliding_window_approx.hpp>
#include <smart_ratelimit/algorithms/token_bucket.hpp>
#include <smart_ratelimit/algorithms/leaky_bucket.hpp>
#include <smart_ratelimit/algorithms/gcra.hpp>
#include <smart_ratelimit/algorithms/any_algorithm.hpp>
#include <smart_ratelimit/storage/concurrent_storage.hpp>
#include <smart_ratelimit/storage/in_memory_storage.hpp>
#include <smart_ratelimit/storage/failure_policy.hpp>
#include <smart_ratelimit/storage/storage_op.hpp>
#include <smart_ratelimit/keys/fixed_key.hpp>
#include <smart_ratelimit/keys/key_function.hpp>
#include <smart_ratelimit/keys/composite_key.hpp>
#include <smart_ratelimit/sinks/null_sink.hpp>
#include <smart_ratelimit/sinks/callback_sink.hpp>
#include <smart_ratelimit/sinks.hpp>
#include <smart_ratelimit/keys/ip.hpp>
#include <smart_ratelimit/keys/cidr.hpp>
#include <smart_ratelimit/rule.hpp>
#include <smart_ratelimit/limiter.hpp>
#include <smart_ratelimit/analytics.hpp>
#include <smart_ratelimit/health.hpp>
#include <smart_ratelimit/settings.hpp>
