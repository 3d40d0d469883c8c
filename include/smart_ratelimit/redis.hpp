// smart_ratelimit/redis.hpp
// The Redis adapter (target smart_ratelimit::redis, needs hiredis): the URL parser,
// connections and the bounded pool, the Lua scripts, redis_storage and the Redis
// Cluster layer. The
// Asio-friendly async_acquire lives in redis/async.hpp (needs Boost.Asio too).
#pragma once

#include <smart_ratelimit/redis/cluster.hpp>
#include <smart_ratelimit/redis/connection.hpp>
#include <smart_ratelimit/redis/connection_pool.hpp>
#include <smart_ratelimit/redis/redis_storage.hpp>
#include <smart_ratelimit/redis/redis_url.hpp>
#include <smart_ratelimit/redis/scripts.hpp>
#include <smart_ratelimit/storage/resilient_storage.hpp>
