// smart_ratelimit/sinks/null_mutex.hpp
// A mutex that does nothing, for sinks used from one thread only. Sinks that
// take a Mutex parameter come as `_mt` (std::mutex) and `_st` (null_mutex)
// aliases, as spdlog's sinks do.
#pragma once

namespace smart_ratelimit {

/// Satisfies Lockable and does no locking.
/// Thread safety: none; use it only where one thread owns the sink.
struct null_mutex {
    constexpr void lock() noexcept {}
    constexpr void unlock() noexcept {}
    constexpr bool try_lock() noexcept { return true; }
};

}  // namespace smart_ratelimit
