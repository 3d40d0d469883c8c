// tests/redis/test_redis_failures.cpp
// The failure policy with a real Redis going away in the middle of a run: killed
// (then restarted on the same port) and frozen with SIGSTOP (then SIGCONT). Every
// request gets its policy's answer within the timeout, the breaker opens, and
// service recovers by itself once the server is back. The breaker's open period runs
// on a manual clock; only the command timeouts are real time. And the test servers'
// guard against a port another test took first, and the port held closed for the
// tests that need nothing listening.
#include <catch2/catch.hpp>

#include "support/closed_port.hpp"
#include "support/redis_server.hpp"
#include "support/temp_dir.hpp"

#include <smart_ratelimit/clock.hpp>
#include <smart_ratelimit/redis.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <string>
#include <thread>

namespace srl = smart_ratelimit;
namespace rds = smart_ratelimit::redis;
using namespace std::chrono_literals;

namespace {

using resilient_redis =
    srl::resilient_storage<rds::redis_storage, srl::no_failover, srl::manual_clock>;

struct scenario {
    srl_test::redis_server server;
    srl::manual_clock clock{std::chrono::seconds(1000)};
    resilient_redis storage;
    srl::any_algorithm alg{"fixed_window", srl::rate{1000, 1h}};

    scenario() : storage(make_redis(server.url()), make_opts(), {}, clock) {}

    static rds::redis_storage make_redis(const std::string& url) {
        auto o = rds::redis_options_from_url(url, 200ms, 200ms, 4);
        o.prefix = "failures:";
        o.errors = rds::on_error::raise;
        return rds::redis_storage(o);
    }
    static srl::resilience_options make_opts() {
        srl::resilience_options o;
        o.timeout = 2s;  // the Redis command timeout (200 ms) bounds each wait
        o.failure_threshold = 3;
        o.open_for = 30s;
        o.half_open_probes = 1;
        return o;
    }

    // One decision; its wall time must stay well within a few seconds.
    srl::outcome decide() {
        const auto start = std::chrono::steady_clock::now();
        const auto o = storage.acquire("k", alg, clock.now(), 1);
        const auto took = std::chrono::steady_clock::now() - start;
        CHECK(took < 5s);
        return o;
    }

    // After the server is back: advance past the open period; the first probe may
    // still race a reconnect, so allow a few periods before requiring recovery.
    void recover() {
        bool ok = false;
        for (int i = 0; i < 20 && !ok; ++i) {
            clock.advance(31s);
            ok = decide().allowed && storage.state() == srl::breaker_state::closed;
            if (!ok) std::this_thread::sleep_for(50ms);
        }
        REQUIRE(ok);
        CHECK(storage.stats().recovered >= 1);
        for (int i = 0; i < 5; ++i) CHECK(decide().allowed);
    }
};

}  // namespace

TEST_CASE("redis killed mid-run: degraded answers, the breaker opens, a restart recovers",
          "[redis][failures][breaker]") {
    scenario s;
    for (int i = 0; i < 5; ++i) REQUIRE(s.decide().allowed);
    s.server.kill();
    for (int i = 0; i < 10; ++i) {
        const auto o = s.decide();
        CHECK(o.degraded);
        CHECK_FALSE(o.allowed);
        CHECK(o.count == 0);
        CHECK(o.retry_after > 0ns);
    }
    const auto st = s.storage.stats();
    CHECK(s.storage.state() == srl::breaker_state::open);
    CHECK(st.failures == 3);  // the threshold, then the breaker stops calling
    CHECK(st.short_circuited == 7);
    CHECK(st.degraded_answers == 10);
    CHECK(st.opened == 1);

    s.server.start();  // same port
    s.recover();
}

TEST_CASE("redis frozen with SIGSTOP: degraded answers within the timeout, SIGCONT recovers",
          "[redis][failures][breaker]") {
    scenario s;
    for (int i = 0; i < 5; ++i) REQUIRE(s.decide().allowed);
    s.server.freeze();
    for (int i = 0; i < 8; ++i) CHECK(s.decide().degraded);
    const auto st = s.storage.stats();
    CHECK(st.failures == 3);
    CHECK(st.degraded_answers == 8);
    CHECK(s.storage.state() == srl::breaker_state::open);

    // Still frozen when the period ends: the probe times out and the breaker re-opens.
    s.clock.advance(31s);
    CHECK(s.decide().degraded);
    CHECK(s.storage.stats().probes == 1);
    CHECK(s.storage.stats().opened == 2);

    s.server.thaw();
    s.recover();
    CHECK(s.storage.primary().stats().connects >= 2);  // timed-out connections were replaced
}

TEST_CASE("redis frozen: every request is degraded, none waits past the timeout",
          "[redis][failures]") {
    scenario s;
    REQUIRE(s.decide().allowed);
    s.server.freeze();
    int degraded = 0;
    for (int i = 0; i < 6; ++i) degraded += s.decide().degraded ? 1 : 0;
    CHECK(degraded == 6);
    s.server.thaw();
    s.recover();
}

TEST_CASE("test servers: a redis-server whose port another server holds is not taken for ours",
          "[redis][support]") {
    // What a port race between tests looks like: our child cannot bind and exits,
    // while the port answers as someone else's server.
    srl_test::redis_server other;
    const srl_test::temp_dir dir("redis-race");
    const std::string log = (dir.path() / "redis.log").string();
    const pid_t ours = srl_test::start_redis_child(
        {"redis-server", "--bind", "127.0.0.1", "--port", std::to_string(other.port()), "--save",
         "", "--dir", dir.path().string()},
        other.port(), log);
    CHECK(ours == -1);
    CHECK(srl_test::redis_process_id(other.port()) == other.pid());
    CHECK(srl_test::tail_of(log).find("Address already in use") != std::string::npos);
}

TEST_CASE("test servers: a closed port refuses connections and cannot be taken while held",
          "[redis][support]") {
    const srl_test::closed_port closed;
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(static_cast<std::uint16_t>(closed.port()));
    const auto* addr = reinterpret_cast<const sockaddr*>(&a);

    const int client = ::socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(client >= 0);
    CHECK(::connect(client, addr, sizeof a) == -1);
    CHECK(errno == ECONNREFUSED);
    ::close(client);

    // A server's socket sets SO_REUSEADDR; the held one does not, so the bind fails.
    const int server = ::socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(server >= 0);
    const int on = 1;
    ::setsockopt(server, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
    CHECK(::bind(server, addr, sizeof a) == -1);
    CHECK(errno == EADDRINUSE);
    ::close(server);

    // And a real server started there exits instead of listening.
    const srl_test::temp_dir dir("redis-closed-port");
    const std::string log = (dir.path() / "redis.log").string();
    CHECK(srl_test::start_redis_child(
              {"redis-server", "--bind", "127.0.0.1", "--port", std::to_string(closed.port()),
               "--save", "", "--dir", dir.path().string()},
              closed.port(), log) == -1);
}
