// tests/soci/test_sql_state_failures.cpp
// The SQL state storage against a private PostgreSQL this test starts on a free
// 127.0.0.1 port (initdb in a temporary directory, as the postgres user when run
// as root: support/private_postgres.hpp), kills mid-run (SIGKILL, a crash) and
// starts again: every call gets its policy's answer, the breaker opens, and service
// recovers with state intact. Also frozen mid-run (SIGSTOP to the postmaster and
// each of its children) under resilient_storage's
// bounded-wait mode: every call is answered by the policy within the timeout. And
// the private server moves off a port another test took first.
#include <catch2/catch.hpp>

#include "support/private_postgres.hpp"
#include "support/test_env.hpp"

#include <smart_ratelimit/clock.hpp>
#include <smart_ratelimit/soci/state_storage.hpp>
#include <smart_ratelimit/storage/resilient_storage.hpp>

#include <chrono>
#include <string>
#include <thread>

namespace srl = smart_ratelimit;
namespace ssql = smart_ratelimit::soci;
using namespace std::chrono_literals;

namespace {

using srl_test::private_postgres;

/// The private server, started, with the database "srl_test" holding the state tables;
/// false (the test returns) when the PostgreSQL binaries are not configured.
bool start_with_state_tables(private_postgres& pg) {
    if (!pg) {
        if (srl_test::servers_required()) FAIL("SMART_RATELIMIT_TEST_PG_BIN is not set");
        return false;
    }
    pg.start();
    pg.create_database("srl_test");
    auto sql = ssql::open_session(ssql::parse_database_url(pg.url("srl_test")));
    const ssql::migration_set sets[] = {ssql::state_migrations};
    ssql::migrate(*sql, ssql::dialect::postgresql, sets);
    return true;
}

}  // namespace

TEST_CASE(
    "sql state: PostgreSQL killed mid-run gets the policy's answers, opens the breaker and "
    "recovers",
    "[sql_state][failure][postgresql]") {
    private_postgres pg;
    if (!start_with_state_tables(pg)) return;
    ssql::sql_state_options o;
    o.errors = ssql::on_error::raise;
    srl::resilience_options ro;
    ro.failure_threshold = 2;
    ro.open_for = 5s;
    ro.timeout = 60s;
    srl::manual_clock clock;
    srl::resilient_storage<ssql::sql_state_storage, srl::no_failover, srl::manual_clock> s(
        ssql::sql_state_storage(pg.url("srl_test"), o), ro, {}, clock);
    const srl::any_algorithm a("token_bucket", srl::rate{100, 1h});
    CHECK(s.acquire("k", a, 0ns, 1).allowed);
    CHECK(s.acquire("k", a, 0ns, 1).allowed);

    pg.kill();
    for (int i = 0; i < 5; ++i) {
        const auto t0 = std::chrono::steady_clock::now();
        CHECK(s.acquire("k", a, 0ns, 1).degraded);
        CHECK(std::chrono::steady_clock::now() - t0 < 30s);
    }
    CHECK(s.state() == srl::breaker_state::open);
    CHECK(s.stats().failures == 2);
    CHECK(s.stats().short_circuited == 3);
    CHECK(s.stats().degraded_answers == 5);

    pg.start();
    clock.advance(6s);  // the open period is over: the next call probes
    const auto o1 = s.acquire("k", a, 0ns, 1);
    CHECK(o1.allowed);
    CHECK(o1.count == 3);  // the state survived the restart
    CHECK(s.state() == srl::breaker_state::closed);
    CHECK(s.stats().recovered == 1);
}

TEST_CASE(
    "sql state: PostgreSQL frozen mid-run (SIGSTOP) gets degraded answers within the bounded wait, "
    "opens the breaker and recovers after SIGCONT",
    "[sql_state][failure][postgresql][bounded_wait]") {
    private_postgres pg;
    if (!start_with_state_tables(pg)) return;
    const srl::any_algorithm a("token_bucket", srl::rate{100, 1h});
    for (const std::string key :
         {"frozen-1", "frozen-2"}) {  // twice: a second freeze after recovery
        INFO(key);
        ssql::sql_state_options o;
        o.errors = ssql::on_error::raise;
        o.max_connections = 2;
        srl::resilience_options ro;
        ro.failure_threshold = 3;
        ro.open_for = 5s;
        ro.timeout = 300ms;
        ro.wait_workers = 2;
        srl::manual_clock clock;
        srl::resilient_storage<ssql::sql_state_storage, srl::no_failover, srl::manual_clock> s(
            ssql::sql_state_storage(pg.url("srl_test"), o), ro, {}, clock);
        srl_test::thaw_on_exit thaw{pg};  // before the decorator waits for its workers
        // Healthy, through the storage itself (no timing involved): a connection is open.
        CHECK(s.primary().acquire(key, a, 0ns, 1).allowed);
        CHECK(s.primary().acquire(key, a, 0ns, 1).count == 2);

        pg.freeze();
        for (int i = 0; i < 8; ++i) {
            const auto t0 = std::chrono::steady_clock::now();
            const auto d = s.acquire(key, a, 0ns, 1);
            CHECK(std::chrono::steady_clock::now() - t0 < 5s);  // a frozen server holds no one
            CHECK(d.degraded);
            CHECK_FALSE(d.allowed);
        }
        CHECK(s.state() == srl::breaker_state::open);
        const auto st = s.stats();
        CHECK(st.opened >= 1);
        CHECK(st.timed_out >= 1);
        CHECK(st.short_circuited >= 1);
        CHECK(st.degraded_answers == 8 - st.successes);

        pg.thaw();
        // The stuck calls return in the background and free their workers.
        const auto end = std::chrono::steady_clock::now() + 120s;
        while (s.stats().late_completions < s.stats().timed_out &&
               std::chrono::steady_clock::now() < end)
            std::this_thread::sleep_for(10ms);
        REQUIRE(s.stats().late_completions == s.stats().timed_out);
        // Service comes back by itself: once the open period ends a probe gets through
        // (retried, since one probe may still be slow on a loaded machine).
        bool recovered = false;
        for (int i = 0; i < 20 && !recovered; ++i) {
            clock.advance(6s);
            recovered =
                s.acquire(key, a, 0ns, 1).allowed && s.state() == srl::breaker_state::closed;
        }
        CHECK(recovered);
        CHECK(s.stats().recovered >= 1);
        const auto p = s.primary().peek(key, a, 0ns, 1);
        CHECK(p.allowed);
        CHECK(p.count >= 4);  // the two healthy acquires, the probe, and this peek's unit
    }
}

TEST_CASE("test servers: a private PostgreSQL whose port another server holds moves to a free one",
          "[soci][postgres][support]") {
    // What a port race between tests looks like: ours cannot bind and exits, while the
    // port answers as someone else's server.
    private_postgres other;
    if (!start_with_state_tables(other)) return;
    private_postgres ours(other.port());
    ours.start();
    CHECK(ours.port() != other.port());
    CHECK(ours.running());
    ours.create_database("mine");  // on our own server: `other` has no such database
    auto sql = ssql::open_session(ssql::parse_database_url(ours.url("mine")));
    int one = 0;
    *sql << "select 1", ::soci::into(one);
    CHECK(one == 1);
    CHECK_THROWS(ssql::open_session(ssql::parse_database_url(other.url("mine"))));
}
