// tests/integration/test_peek_agreement.cpp
// peek agrees across storages: after N acquires on a key, the in-memory storage
// (the core algorithms' own peek), the Redis storage (Lua scripts, private
// redis-server) and the SQL state storage (a SQLite file, and PostgreSQL when
// scripts/test-servers.sh started one) report the same allowed, count and remaining
// for every built-in algorithm.
#include <catch2/catch.hpp>

#include "support/redis_server.hpp"
#include "support/test_env.hpp"

#include <smart_ratelimit/algorithms/any_algorithm.hpp>
#include <smart_ratelimit/redis.hpp>
#include <smart_ratelimit/soci/state_storage.hpp>
#include <smart_ratelimit/storage/in_memory_storage.hpp>

#include <chrono>
#include <cstdio>
#include <optional>
#include <string>
#include <unistd.h>

namespace srl = smart_ratelimit;
namespace rds = smart_ratelimit::redis;
namespace ssql = smart_ratelimit::soci;
using namespace std::chrono_literals;

TEST_CASE(
    "peek reports the same allowed, count and remaining on the in-memory, Redis and SQL storages",
    "[peek][redis][sql_state]") {
    srl_test::redis_server server;
    auto ro = rds::redis_options_from_url(server.url(), 2000ms, 2000ms, 2);
    ro.prefix = "peek-agreement:" + std::to_string(::getpid()) + ":";
    ro.errors = rds::on_error::raise;
    rds::redis_storage redis(ro);

    const std::string path = "/tmp/srl-peek-agreement-" + std::to_string(::getpid()) + ".db";
    struct remove_file {
        std::string p;
        ~remove_file() {
            for (const char* suffix : {"", "-wal", "-shm"}) std::remove((p + suffix).c_str());
        }
    } cleanup{path};
    const std::string url = "sqlite:///" + path;
    {
        const auto u = ssql::parse_database_url(url);
        auto sql = ssql::open_session(u);
        const ssql::migration_set sets[] = {ssql::state_migrations};
        ssql::migrate(*sql, u.kind, sets);
    }
    ssql::sql_state_options so;
    so.errors = ssql::on_error::raise;
    ssql::sql_state_storage sql(url, so);
    std::optional<ssql::sql_state_storage> pg;
    if (const auto pg_url = srl_test::postgres_url()) {
        const auto u = ssql::parse_database_url(*pg_url);
        auto session = ssql::open_session(u);
        const ssql::migration_set sets[] = {ssql::state_migrations};
        ssql::migrate(*session, u.kind, sets);
        ssql::sql_state_options po = so;
        po.key_prefix = "peek-agreement:" + std::to_string(::getpid()) + ":";
        pg.emplace(*pg_url, po);
    }
    srl::in_memory_storage<> memory;

    // A long period, so the few milliseconds the servers' clocks move between calls
    // change no whole unit; the in-memory storage's clock sits mid-window.
    const auto now = std::chrono::nanoseconds(1000h + 30min);
    for (const char* name : {"fixed_window", "sliding_window", "sliding_window_approx",
                             "token_bucket", "leaky_bucket"}) {
        const srl::any_algorithm a(name, srl::rate{10, 24h});
        for (const std::uint64_t n : {0u, 1u, 4u, 9u, 10u}) {
            for (const std::uint64_t cost : {1u, 3u, 11u}) {
                const std::string key =
                    std::string(name) + ":" + std::to_string(n) + ":" + std::to_string(cost);
                for (std::uint64_t i = 0; i < n; ++i) {
                    REQUIRE(memory.acquire(key, a, now, 1).allowed);
                    REQUIRE(redis.acquire(key, a, now, 1).allowed);
                    REQUIRE(sql.acquire(key, a, now, 1).allowed);
                    if (pg) REQUIRE(pg->acquire(key, a, now, 1).allowed);
                }
                const auto m = memory.peek(key, a, now, cost);
                const auto r = redis.peek(key, a, now, cost);
                const auto q = sql.peek(key, a, now, cost);
                INFO(name << " after " << n << " acquires, peek cost " << cost << ": memory {"
                          << m.allowed << ", " << m.count << ", " << m.remaining << "} redis {"
                          << r.allowed << ", " << r.count << ", " << r.remaining << "} sql {"
                          << q.allowed << ", " << q.count << ", " << q.remaining << "}");
                CHECK(r.allowed == m.allowed);
                CHECK(r.count == m.count);
                CHECK(r.remaining == m.remaining);
                CHECK(q.allowed == m.allowed);
                CHECK(q.count == m.count);
                CHECK(q.remaining == m.remaining);
                if (pg) {
                    const auto g = pg->peek(key, a, now, cost);
                    INFO("postgresql {" << g.allowed << ", " << g.count << ", " << g.remaining
                                        << "}");
                    CHECK(g.allowed == m.allowed);
                    CHECK(g.count == m.count);
                    CHECK(g.remaining == m.remaining);
                    CHECK(pg->acquire(key, a, now, cost).allowed == m.allowed);
                }
                // And peek consumed nothing: the next acquire sees the same state.
                CHECK(memory.acquire(key, a, now, cost).allowed == m.allowed);
                CHECK(redis.acquire(key, a, now, cost).allowed == m.allowed);
                CHECK(sql.acquire(key, a, now, cost).allowed == m.allowed);
            }
        }
    }
}
