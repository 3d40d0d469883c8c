// smart_ratelimit/fwd.hpp
// Forward declarations of the core types, for headers that only name them (in a
// function signature or a pointer) and want to avoid the full definitions.
#pragma once

#include <mutex>

namespace smart_ratelimit {

struct rate;
struct event;
struct outcome;
struct decision;
class verdict;
class key_buffer;
struct rule_config;
struct request_info;
struct limiter_options;
struct in_memory_options;
struct in_memory_stats;

struct steady_clock;
struct coarse_steady_clock;
class manual_clock;

class fixed_window;
class sliding_window;
class sliding_window_approx;
class token_bucket;
class leaky_bucket;
class gcra;
class any_algorithm;

struct null_mutex;
struct null_sink;
template <class Fn, class Mutex>
class callback_sink;

class fixed_key;
template <class Fn>
class key_function;
template <class... Parts>
class composite_key;

}  // namespace smart_ratelimit
