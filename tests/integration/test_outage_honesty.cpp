// tests/integration/test_outage_honesty.cpp
// The outage-honesty proof: a limiter over a real store (a private Redis, a private
// PostgreSQL) that is KILLED mid-run, restarted, then FROZEN (SIGSTOP) and thawed,
// while innocent clients keep sending and one abuser is over its limit. Every
// decision is logged as the HTTP middleware logs it (check_key_and_record) into a
// ring buffer and, through an async_sink, into a SQLite event log. Then, on both
// logs: no degraded request is blocked anywhere (events, summary, top offenders,
// CSV, rule hits, drill-down, alertable offenders), the degraded count is the number
// of degraded requests, and the alerts name only the abuser. The verdicts follow the
// failure policy (fail_closed refuses, fail_open passes, neither is blocked()), and
// no quota is spent by the requests the store could not decide.
// The breaker's open period runs on the manual clock; only the store timeouts
// (a few hundred milliseconds) are real time.
#include <catch2/catch.hpp>

#include "support/redis_server.hpp"
#include "support/private_postgres.hpp"
#include "support/temp_dir.hpp"
#include "support/test_env.hpp"

#include <smart_ratelimit/alerts.hpp>
#include <smart_ratelimit/analytics.hpp>
#include <smart_ratelimit/clock.hpp>
#include <smart_ratelimit/limiter.hpp>
#include <smart_ratelimit/redis.hpp>
#include <smart_ratelimit/sinks.hpp>
#include <smart_ratelimit/soci.hpp>
#include <smart_ratelimit/soci/state_storage.hpp>
#include <smart_ratelimit/storage/resilient_storage.hpp>

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace srl = smart_ratelimit;
namespace rds = smart_ratelimit::redis;
namespace ssql = smart_ratelimit::soci;
using namespace std::chrono_literals;

namespace {

constexpr std::uint64_t limit = 10;
const std::string rate = "10/30d";  // one fixed window for the whole run
constexpr auto open_for = 5s;
constexpr int innocents = 4;
const std::string abuser = "ip:abuser";
const std::string abuser_key = "rule:api:ip:abuser";
const std::string probe_key = "rule:api:ip:probe";

std::string innocent(int i) { return "ip:innocent-" + std::to_string(i); }
std::string full_key(const std::string& inner) { return "rule:api:" + inner; }

/// The breaker and the bounded wait: three failures open it for five (manual) seconds;
/// calls run on two workers and nobody waits more than 300 ms for a frozen server.
srl::resilience_options resilience() {
    srl::resilience_options o;
    o.timeout = 300ms;
    o.wait_workers = 2;
    o.failure_threshold = 3;
    o.open_for = open_for;
    o.half_open_probes = 1;
    return o;
}

/// A private redis-server (no persistence: a killed Redis comes back empty).
struct redis_backend {
    static constexpr const char* name = "Redis";
    static constexpr bool keeps_state_when_killed = false;
    using storage_type =
        srl::resilient_storage<rds::redis_storage, srl::no_failover, srl::manual_clock>;

    srl_test::redis_server server;
    int runs = 0;
    bool frozen = false;

    bool available() const { return true; }
    storage_type make_storage(const srl::manual_clock& clock) {
        auto o = rds::redis_options_from_url(server.url(), 200ms, 200ms, 4);
        o.prefix = "outage-" + std::to_string(++runs) + ":";
        o.errors = rds::on_error::raise;
        return storage_type(rds::redis_storage(o), resilience(), {}, clock);
    }
    void kill() { server.kill(); }
    void start() { server.start(); }
    void freeze() {
        server.freeze();
        frozen = true;
    }
    void thaw() {
        if (frozen) server.thaw();
        frozen = false;
    }
};

/// A private PostgreSQL (its data survives a kill), one database per run.
struct postgres_backend {
    static constexpr const char* name = "PostgreSQL";
    static constexpr bool keeps_state_when_killed = true;
    using storage_type =
        srl::resilient_storage<ssql::sql_state_storage, srl::no_failover, srl::manual_clock>;

    srl_test::private_postgres pg;
    int runs = 0;

    bool available() {
        if (!pg) {
            if (srl_test::servers_required()) FAIL("SMART_RATELIMIT_TEST_PG_BIN is not set");
            return false;
        }
        if (!pg.running()) pg.start();
        return true;
    }
    storage_type make_storage(const srl::manual_clock& clock) {
        const std::string db = "outage_" + std::to_string(++runs);
        pg.create_database(db);
        {
            auto sql = ssql::open_session(ssql::parse_database_url(pg.url(db)));
            const ssql::migration_set sets[] = {ssql::state_migrations};
            ssql::migrate(*sql, ssql::dialect::postgresql, sets);
        }
        ssql::sql_state_options o;
        o.errors = ssql::on_error::raise;
        o.max_connections = 2;
        return storage_type(ssql::sql_state_storage(pg.url(db), o), resilience(), {}, clock);
    }
    void kill() { pg.kill(); }
    void start() { pg.start(); }
    void freeze() { pg.freeze(); }
    void thaw() { pg.thaw(); }
};

/// Resumes a frozen server when the scope ends (a failed REQUIRE must not leave the
/// storage's workers stuck on it while the limiter is destroyed).
template <class Backend>
struct thaw_guard {
    Backend& b;
    ~thaw_guard() { b.thaw(); }
};

struct inner_key {
    std::string operator()(const std::string& s) const { return s; }
};

struct recording_mailer {
    std::vector<srl::mail>* sent;
    srl::send_status send(const srl::mail& m) {
        sent->push_back(m);
        return srl::send_status::success();
    }
};
struct recording_webhook {
    std::vector<std::string>* bodies;
    srl::send_status post(std::string_view, std::string_view body) {
        bodies->emplace_back(body);
        return srl::send_status::success();
    }
};

using event_log = srl::async_sink<ssql::event_store>;
using fanout = srl::fanout_sink<srl::ring_buffer_sink_mt&, event_log&>;

/// What the verdicts said, request by request: the ground truth the logs and the
/// analytics are checked against.
struct tally {
    struct row {
        std::string key;  // the full storage key
        srl::outcome_kind kind;
    };
    std::vector<row> rows;
    std::map<std::string, std::int64_t> requests, blocked, degraded;
    std::int64_t total_blocked = 0, total_degraded = 0;
    std::chrono::nanoseconds slowest{0};

    void add(const std::string& key, const srl::decision& d) {
        rows.push_back({key, d.kind()});
        ++requests[key];
        if (d.blocked()) ++blocked[key], ++total_blocked;
        if (d.degraded) ++degraded[key], ++total_degraded;
    }
    std::int64_t total() const { return static_cast<std::int64_t>(rows.size()); }
};

template <class Backend>
class outage_run {
public:
    using storage_type = typename Backend::storage_type;
    using limiter_type = srl::limiter<inner_key, storage_type, fanout, srl::manual_clock>;

    outage_run(Backend& b, srl::failure_policy p)
        : backend(b),
          policy(p),
          store(migrated(dir.sqlite_url("events.db"))),
          log(std::in_place, srl::async_sink_options{}, dir.sqlite_url("events.db")),
          lim(inner_key{}, std::vector<srl::rule_config>{{"api", rate, "fixed_window"}}, options(p),
              b.make_storage(clock), fanout(ring, log), clock) {}

    static ssql::event_store migrated(const std::string& url) {
        ssql::event_store s(url);
        s.migrate();
        return s;
    }
    static srl::limiter_options options(srl::failure_policy p) {
        srl::limiter_options o;
        o.on_store_failure = p;
        return o;
    }

    /// One request of `inner` (as the middleware sends it), timed and tallied.
    srl::verdict send(const std::string& inner) {
        const std::string ip = "192.0.2." + std::to_string(inner.size());
        const srl::request_info info{"/api/items", "GET", std::string_view(ip), std::nullopt, {}};
        const auto t0 = std::chrono::steady_clock::now();
        const auto v = lim.check_key_and_record(inner, info);
        const auto took = std::chrono::steady_clock::now() - t0;
        if (took > t.slowest) t.slowest = took;
        REQUIRE(v.size() == 1);
        t.add(full_key(inner), v[0]);
        return v;
    }

    /// A request while the store is down: degraded, never blocked, refused or let
    /// through as the policy says, nothing counted.
    void send_during_outage(const std::string& inner) {
        const auto v = send(inner);
        INFO(inner);
        CHECK(v.degraded());
        CHECK(v[0].kind() == srl::outcome_kind::degraded);
        CHECK_FALSE(v.blocked());
        CHECK_FALSE(v[0].blocked());
        CHECK(v.allowed() == (policy == srl::failure_policy::fail_open));
        CHECK(v[0].rejects() == (policy == srl::failure_policy::fail_closed));
        CHECK(v[0].count == 0);
        CHECK(v.retry_after() >= (policy == srl::failure_policy::fail_closed ? 1s : 0s));
    }

    /// Once the server is back: let the open period pass on the manual clock and probe
    /// with a peek of a key nobody uses (a real request would change the tallies),
    /// until the breaker closes.
    void recover() {
        bool ok = false;
        for (int i = 0; i < 40 && !ok; ++i) {
            clock.advance(open_for + 1s);
            const auto o = lim.storage().peek(probe_key, lim.rules()[0].algorithm, clock.now(), 1);
            ok = !o.degraded && lim.storage().state() == srl::breaker_state::closed;
            if (!ok) std::this_thread::sleep_for(50ms);
        }
        REQUIRE(ok);
    }

    Backend& backend;
    srl::failure_policy policy;
    srl_test::temp_dir dir{"outage"};
    srl::manual_clock clock;
    ssql::event_store store;
    srl::ring_buffer_sink_mt ring{100'000};
    event_log log;
    limiter_type lim;
    tally t;
};

std::vector<srl::event> read_all(const ssql::event_store& store) {
    ssql::event_query q;
    q.order = ssql::event_order::oldest_first;
    auto stream = store.events(q);
    std::vector<srl::event> out;
    for (const auto& e : stream) out.push_back(e);
    return out;
}

/// The logged events, one per decision in request order, say what the verdicts said.
/// Mismatches are counted (one CHECK each kind, the first one shown), not one
/// failure per event.
void check_events(const std::vector<srl::event>& events, const tally& t) {
    REQUIRE(events.size() == t.rows.size());
    std::int64_t wrong_key = 0, wrong_outcome = 0, degraded_denied = 0, degraded_counted = 0,
                 innocent_denied = 0;
    std::int64_t degraded = 0, denied = 0;
    std::string first;
    auto note = [&](std::int64_t& n, std::size_t i, const char* what) {
        if (n++ == 0 && first.empty())
            first = "event " + std::to_string(i) + " (" + events[i].key + ", logged " +
                    std::string(srl::to_string(events[i].outcome)) + ", decided " +
                    std::string(srl::to_string(t.rows[i].kind)) + "): " + what;
    };
    for (std::size_t i = 0; i < events.size(); ++i) {
        const auto& e = events[i];
        if (e.key != t.rows[i].key) note(wrong_key, i, "key");
        if (e.outcome != t.rows[i].kind) note(wrong_outcome, i, "outcome");
        if (t.rows[i].kind == srl::outcome_kind::degraded) {
            ++degraded;
            if (!e.allowed) note(degraded_denied, i, "degraded but allowed == false");
            if (e.count != 0) note(degraded_counted, i, "degraded with a count");
        }
        if (!e.allowed) {
            ++denied;
            if (e.key != abuser_key || t.rows[i].kind != srl::outcome_kind::blocked)
                note(innocent_denied, i, "denied but not a real block of the abuser");
        }
    }
    INFO(first);
    CHECK(wrong_key == 0);
    CHECK(wrong_outcome == 0);
    CHECK(degraded_denied == 0);
    CHECK(degraded_counted == 0);
    CHECK(innocent_denied == 0);
    CHECK(degraded == t.total_degraded);
    CHECK(denied == t.total_blocked);
}

/// Every analytics view and the alerts, on one source (the ring buffer's events or
/// the SQL event log: the same unqualified calls find either overload).
template <class Source>
void check_analytics(Source&& source, const tally& t, srl::event_time now) {
    const std::int64_t abuser_blocks = t.blocked.at(abuser_key);
    REQUIRE(abuser_blocks == t.total_blocked);  // only the abuser was ever really blocked

    const auto summary = get_traffic_summary(source, 1, now);
    CHECK(summary.total == t.total());
    CHECK(summary.blocked == abuser_blocks);
    CHECK(summary.degraded == t.total_degraded);
    CHECK(summary.allowed == t.total() - abuser_blocks - t.total_degraded);

    const std::vector<srl::offender> only_abuser{{abuser_key, abuser_blocks}};
    CHECK(get_top_offenders(source, 1, 100, now) == only_abuser);
    CHECK(find_alertable_offenders(source, 1, 1, 100, now) == only_abuser);
    const auto csv = offenders_csv(source, 1, 1000, now);
    CHECK(csv == srl::format_offenders_csv(only_abuser));
    CHECK(csv.find("innocent") == std::string::npos);

    const auto rules = get_rule_hit_counts(source, 1, 50, now);
    REQUIRE(rules.size() == 1);
    CHECK(rules[0].rule_name == "api");
    CHECK(rules[0].hits == t.total());
    CHECK(rules[0].blocked == abuser_blocks);

    for (int i = 1; i <= innocents; ++i) {
        const auto key = full_key(innocent(i));
        INFO(key);
        const auto d = get_offender_detail(source, key, 1, 50, now);
        CHECK(d.total == t.requests.at(key));
        CHECK(d.blocked == 0);
        CHECK(d.by_path.empty());
        CHECK(d.degraded == t.degraded.at(key));
        CHECK(d.allowed == d.total - d.degraded);
    }
    const auto a = get_offender_detail(source, abuser_key, 1, 50, now);
    CHECK(a.blocked == abuser_blocks);
    CHECK(a.degraded == t.degraded.at(abuser_key));
    REQUIRE(a.by_path.size() == 1);
    CHECK(a.by_path[0].blocked_count == abuser_blocks);

    std::vector<srl::mail> mails;
    std::vector<std::string> hooks;
    recording_mailer mailer{&mails};
    recording_webhook webhook{&hooks};
    srl::alert_request req;
    req.threshold = 1;  // the lowest: any key with one block in the log is alerted
    req.days = 1;
    req.email_to = {"ops@example.com"};
    req.webhook_url = "http://127.0.0.1:9/hook";  // recorded, never sent
    req.now = now;
    const auto r = srl::send_offender_alerts(source, req, mailer, webhook);
    CHECK(r.error.empty());
    CHECK(r.offenders == only_abuser);
    REQUIRE(mails.size() == 1);
    REQUIRE(hooks.size() == 1);
    for (const auto& text : {mails[0].subject + "\n" + mails[0].body, hooks[0]}) {
        INFO(text);
        CHECK(text.find(abuser_key) != std::string::npos);
        CHECK(text.find("innocent") == std::string::npos);
        CHECK(text.find("probe") == std::string::npos);
    }
}

template <class Backend>
void run_outage(Backend& backend, srl::failure_policy policy) {
    INFO(Backend::name << ", " << srl::to_string(policy));
    outage_run<Backend> run(backend, policy);
    auto& lim = run.lim;

    // 1. Healthy: the abuser goes over its limit, the innocents stay well under.
    for (std::uint64_t i = 0; i < limit + 3; ++i) {
        const auto v = run.send(abuser);
        CHECK_FALSE(v.degraded());
        CHECK(v.blocked() == (i >= limit));
        CHECK(v[0].count == std::min<std::uint64_t>(i + 1, limit));
    }
    for (int i = 1; i <= innocents; ++i)
        for (std::uint64_t n = 1; n <= 2; ++n) {
            const auto v = run.send(innocent(i));
            CHECK(v.allowed());
            CHECK(v[0].count == n);
        }

    // 2. KILLED mid-run: every innocent keeps sending; the abuser too.
    backend.kill();
    for (int round = 0; round < 25; ++round)
        for (int i = 1; i <= innocents; ++i) run.send_during_outage(innocent(i));
    for (int i = 0; i < 5; ++i) run.send_during_outage(abuser);
    CHECK(lim.storage().state() == srl::breaker_state::open);

    // 3. Restarted on the same port: service recovers; nothing the outage refused or
    //    let through was counted (a killed Redis comes back empty: nothing at all).
    backend.start();
    run.recover();
    const std::uint64_t kept = Backend::keeps_state_when_killed ? 2 : 0;
    for (int i = 1; i <= innocents; ++i) {
        const auto v = run.send(innocent(i));
        CHECK(v.allowed());
        CHECK_FALSE(v.degraded());
        CHECK(v[0].count == kept + 1);
    }
    {
        const auto v = run.send(abuser);
        CHECK_FALSE(v.degraded());
        if (Backend::keeps_state_when_killed) {
            CHECK(v.blocked());  // still over its limit
            CHECK(v[0].count == limit);
        } else {
            CHECK(v.allowed());  // a fresh window after the empty restart
            CHECK(v[0].count == 1);
        }
    }

    // 4. FROZEN (SIGSTOP): more innocent traffic; nobody waits on the frozen server.
    std::map<std::string, std::uint64_t> before_freeze;
    for (int i = 1; i <= innocents; ++i) before_freeze[innocent(i)] = kept + 1;
    const auto stats_before = lim.storage().stats();
    {
        thaw_guard<Backend> guard{backend};
        backend.freeze();
        for (int round = 0; round < 10; ++round)
            for (int i = 1; i <= innocents; ++i) run.send_during_outage(innocent(i));
        for (int i = 0; i < 3; ++i) run.send_during_outage(abuser);
        CHECK(lim.storage().state() == srl::breaker_state::open);
        backend.thaw();
    }
    // Calls abandoned at the timeout return once the server runs again.
    const auto deadline = std::chrono::steady_clock::now() + 30s;
    while (lim.storage().stats().late_completions < lim.storage().stats().timed_out &&
           std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(10ms);
    const auto stats_after = lim.storage().stats();
    CHECK(stats_after.late_completions == stats_after.timed_out);
    run.recover();

    // 5. After the freeze: the innocents are still allowed and their counts moved by
    //    their own request, plus at most the calls that reached the frozen server and
    //    were given up on (timed out or failed): such a command waits in the server's
    //    socket and may run when it resumes. The request was answered degraded and
    //    logged so; only the store may have counted that unit.
    const auto sent_to_frozen =
        static_cast<std::int64_t>(stats_after.timed_out - stats_before.timed_out +
                                  stats_after.failures - stats_before.failures);
    std::int64_t late_units = 0;
    for (int i = 1; i <= innocents; ++i) {
        const auto v = run.send(innocent(i));
        CHECK(v.allowed());
        CHECK_FALSE(v.degraded());
        const auto extra = static_cast<std::int64_t>(v[0].count) -
                           static_cast<std::int64_t>(before_freeze[innocent(i)] + 1);
        CHECK(extra >= 0);
        late_units += extra;
    }
    CHECK(late_units <= sent_to_frozen);
    {
        const auto v = run.send(abuser);
        CHECK_FALSE(v.degraded());
        if (Backend::keeps_state_when_killed) {
            CHECK(v.blocked());
            CHECK(v[0].count == limit);  // not inflated by the outages
        } else {
            CHECK(v.allowed());
            CHECK(v[0].count == 2);
        }
    }
    CHECK(run.t.slowest < 3s);  // a dead or frozen server held no request

    // The verdicts: only the abuser was ever blocked; the outages degraded requests.
    CHECK(run.t.total_degraded == (25 + 10) * innocents + 5 + 3);
    for (const auto& [key, n] : run.t.blocked) CHECK(key == abuser_key);

    // 6. The logs and everything read from them.
    run.log.flush();
    const auto sink_stats = run.log.stats();
    CHECK(sink_stats.written == static_cast<std::uint64_t>(run.t.total()));
    CHECK(sink_stats.dropped() == 0);
    CHECK(lim.sink_failures() == 0);
    const auto now = run.clock.wall_now() + 1min;
    {
        INFO("ring buffer");
        const auto events = run.ring.snapshot();
        check_events(events, run.t);
        check_analytics(events, run.t, now);
    }
    {
        INFO("SQLite event log");
        check_events(read_all(run.store), run.t);
        check_analytics(run.store, run.t, now);
    }
}

}  // namespace

TEST_CASE(
    "outage honesty, Redis killed and frozen mid-run: degraded is never blocked, alerts name only "
    "the abuser",
    "[outage][redis][failures]") {
    redis_backend b;
    for (const auto p : {srl::failure_policy::fail_closed, srl::failure_policy::fail_open})
        run_outage(b, p);
}

TEST_CASE(
    "outage honesty, PostgreSQL killed and frozen mid-run: degraded is never blocked, alerts name "
    "only the "
    "abuser",
    "[outage][postgresql][failures]") {
    postgres_backend b;
    if (!b.available()) return;
    for (const auto p : {srl::failure_policy::fail_closed, srl::failure_policy::fail_open})
        run_outage(b, p);
}
