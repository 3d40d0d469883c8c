// tests/support/free_port.hpp
// A TCP port on 127.0.0.1 that was free a moment ago (bound to port 0, then released),
// for the private servers the tests start (PostgreSQL, Redis). Where a test needs an
// address where nothing listens, closed_port holds the port instead.
#pragma once

#include "closed_port.hpp"

namespace srl_test {

inline int free_port() { return closed_port().port(); }

}  // namespace srl_test
