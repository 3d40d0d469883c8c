// smart_ratelimit/null_mutex.hpp
// null_mutex: a Lockable that does nothing, for the single-threaded (`_st`) variants
// of storages and sinks, as spdlog does. Defined in namespace smart_ratelimit.
#pragma once

namespace smart_ratelimit {

/// A mutex that does not lock. Use only where one thread owns the object.
struct null_mutex {
    void lock() noexcept {}
    bool try_lock() noexcept { return true; }
    void unlock() noexcept {}
};

}  // namespace smart_ratelimit
