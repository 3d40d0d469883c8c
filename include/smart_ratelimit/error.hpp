// smart_ratelimit/error.hpp
// The exception types the library throws. Configuration mistakes (a bad rate
// string, a bad setting, a bad URL) throw config_error at construction time;
// request-path failures are never exceptions, they are values plus counters.
#pragma once

#include <stdexcept>
#include <string>

namespace smart_ratelimit {

/// A configuration value was rejected. The message names the offending input.
class config_error : public std::invalid_argument {
public:
    using std::invalid_argument::invalid_argument;
};

/// A storage or database operation failed (connection, query, schema).
class storage_error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

}  // namespace smart_ratelimit
