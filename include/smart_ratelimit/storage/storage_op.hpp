// smart_ratelimit/storage/storage_op.hpp
// storage_op: the three operations of a storage_backend (acquire, peek, release),
// one name for every storage that passes an operation around (the Redis scripts,
// the SQL state storage, the resilience decorator's workers).
#pragma once

namespace smart_ratelimit {

/// An operation of a storage_backend. The values are fixed: the Redis scripts
/// receive them as numbers.
enum class storage_op { acquire = 0, peek = 1, release = 2 };

}  // namespace smart_ratelimit
