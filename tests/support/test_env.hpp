// tests/support/test_env.hpp
// Where the tests find the servers scripts/test-servers.sh started: the
// PostgreSQL and Redis URLs come from the environment. When CI (or
// SMART_RATELIMIT_REQUIRE_SERVERS=1) is set a missing server is a failure, never a skip.
#pragma once

#include <catch2/catch.hpp>

#include <cstdlib>
#include <optional>
#include <string>

namespace srl_test {

inline bool servers_required() {
    const char* req = std::getenv("SMART_RATELIMIT_REQUIRE_SERVERS");
    return req != nullptr && std::string(req) == "1";
}

inline std::optional<std::string> env(const char* name) {
    const char* v = std::getenv(name);
    if (v == nullptr || *v == '\0') return std::nullopt;
    return std::string(v);
}

/// The PostgreSQL URL (postgresql://user@127.0.0.1:port/db) or nullopt. FAILs the
/// current test when servers are required but none was started.
inline std::optional<std::string> postgres_url() {
    auto url = env("SMART_RATELIMIT_TEST_PG_URL");
    if (!url && servers_required()) FAIL("SMART_RATELIMIT_TEST_PG_URL is not set");
    return url;
}

/// The Redis URL (redis://127.0.0.1:port) or nullopt, as postgres_url().
inline std::optional<std::string> redis_url() {
    auto url = env("SMART_RATELIMIT_TEST_REDIS_URL");
    if (!url && servers_required()) FAIL("SMART_RATELIMIT_TEST_REDIS_URL is not set");
    return url;
}

}  // namespace srl_test
