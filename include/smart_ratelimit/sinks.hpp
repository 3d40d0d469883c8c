// smart_ratelimit/sinks.hpp
// The event sinks, standard headers only: null and callback sinks, the ring
// buffer, the fan-out, and the asynchronous batching sink with its writer
// contract and counters. Store adapters (SOCI) have their own headers.
#pragma once

#include <smart_ratelimit/sinks/async_sink.hpp>
#include <smart_ratelimit/sinks/batch_writer.hpp>
#include <smart_ratelimit/sinks/callback_sink.hpp>
#include <smart_ratelimit/sinks/fanout_sink.hpp>
#include <smart_ratelimit/sinks/null_sink.hpp>
#include <smart_ratelimit/sinks/ring_buffer_sink.hpp>
#include <smart_ratelimit/sinks/sink_stats.hpp>
