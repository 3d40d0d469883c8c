// tests/soci/test_event_store.cpp
// The SOCI event store on a real SQLite file and a real PostgreSQL server:
// database URLs, migrations, round trips, streaming reads, poison rows, store
// failures reported as `failed`, and cleanup_old's batch boundaries.
#include "support/closed_port.hpp"
#include "support/event_store_support.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

using namespace srl_test;
namespace ssoci = smart_ratelimit::soci;
using srl::event;
using srl::event_time;
using std::chrono::microseconds;

namespace {

/// A fresh database of one engine: a SQLite file in a temp dir or a new PG database.
struct engine_db {
    std::unique_ptr<temp_dir> dir;
    std::unique_ptr<pg_database> pg;
    std::string url;

    explicit engine_db(const std::string& engine, const std::string& tag) {
        if (engine == "sqlite") {
            dir = std::make_unique<temp_dir>();
            url = dir->sqlite_url();
        } else {
            pg = std::make_unique<pg_database>(tag);
            url = pg->url();
        }
    }
    bool available() const { return !url.empty(); }
};

std::vector<event> drain(ssoci::event_stream s) {
    std::vector<event> out;
    for (const event& e : s) out.push_back(e);
    return out;
}

event at(std::int64_t us, std::string key = "ip:1.2.3.4", bool allowed = true) {
    return srl::make_event(event_time{microseconds{us}}, key, "/p", "GET", allowed, 1, 10);
}

}  // namespace

static_assert(std::ranges::input_range<ssoci::event_stream>);
static_assert(std::same_as<std::ranges::range_value_t<ssoci::event_stream>, event>);

// ---- database URLs ----------------------------------------------------------------

TEST_CASE("database URLs parse into SOCI connection strings", "[soci][url]") {
    auto rel = ssoci::parse_database_url("sqlite:///relative/events.db");
    CHECK(rel.kind == ssoci::dialect::sqlite);
    CHECK(rel.path == "relative/events.db");
    auto abs = ssoci::parse_database_url("sqlite:////var/lib/srl/events%20log.db");
    CHECK(abs.path == "/var/lib/srl/events log.db");
    CHECK(abs.soci_backend() == "sqlite3");

    auto pg =
        ssoci::parse_database_url("postgresql://us%40er:p%3Ass'w@db.example.com:6543/rate%2Dlimit");
    CHECK(pg.kind == ssoci::dialect::postgresql);
    CHECK(pg.user == "us@er");
    CHECK(pg.password == "p:ss'w");
    CHECK(pg.host == "db.example.com");
    CHECK(pg.port == "6543");
    CHECK(pg.dbname == "rate-limit");
    CHECK(pg.soci_connect_string() ==
          "dbname='rate-limit' host='db.example.com' port=6543 user='us@er' password='p:ss\\'w' "
          "options='-c client_min_messages=warning' connect_timeout=5 keepalives=1 "
          "keepalives_idle=10 keepalives_interval=5 keepalives_count=3 tcp_user_timeout=30000");
    CHECK(pg.redacted() == "postgresql://us%40er:***@db.example.com:6543/rate%2Dlimit");

    auto short_form = ssoci::parse_database_url("postgres://localhost/events?sslmode=require");
    CHECK(short_form.kind == ssoci::dialect::postgresql);
    CHECK(short_form.port.empty());
    REQUIRE(short_form.options.size() == 1);
    CHECK(short_form.options[0].first == "sslmode");
    // Session settings go first in `options`; the URL's own options and bounds win.
    auto own = ssoci::parse_database_url(
        "postgresql://h/db?keepalives_idle=60&options=-c%20statement_timeout%3D9000");
    ssoci::session_settings settings;
    settings.statement_timeout = std::chrono::milliseconds(2500);
    CHECK(own.soci_connect_string(settings) ==
          "dbname='db' host='h' keepalives_idle='60' options='-c client_min_messages=warning -c "
          "statement_timeout=2500 -c statement_timeout=9000' connect_timeout=5 keepalives=1 "
          "keepalives_interval=5 keepalives_count=3 tcp_user_timeout=30000");
    auto v6 = ssoci::parse_database_url("postgresql://u@[::1]:5432/db");
    CHECK(v6.host == "::1");
}

TEST_CASE("a bad database URL is a config_error that names it", "[soci][url]") {
    const char* bad[] = {
        "",
        "events.db",
        "mysql://u@h/db",
        "sqlite://events.db",
        "sqlite:///",
        "sqlite:///dir/",
        "sqlite:///x.db?mode=ro",
        "postgresql://u@h:99999/db",
        "postgresql://u@h:12a/db",
        "postgresql://u@h:/db",
        "postgresql://u@h",
        "postgresql://u@h/",
        "postgresql://u@h/a%zzb",
        "postgresql://u@h/db?novalue",
        "postgresql://u@h/db name",
    };
    for (const char* url : bad) {
        INFO(url);
        try {
            ssoci::parse_database_url(url);
            FAIL("accepted");
        } catch (const srl::config_error& e) {
            CHECK(std::string(e.what()).find("'" + std::string(url) + "'") != std::string::npos);
        }
    }
    try {
        ssoci::parse_database_url("postgresql://u:secret@h:0/db");
        FAIL("accepted");
    } catch (const srl::config_error& e) {
        CHECK(std::string(e.what()).find("secret") == std::string::npos);
        CHECK(std::string(e.what()).find("postgresql://u:***@h:0/db") != std::string::npos);
    }
}

// ---- migrations ---------------------------------------------------------------------

TEST_CASE("migrate creates the event table and its indexes once and is idempotent",
          "[soci][schema]") {
    const std::string engine = GENERATE(as<std::string>{}, "sqlite", "postgresql");
    engine_db db(engine, "migrate");
    if (!db.available()) return;
    INFO(engine);
    ssoci::event_store store(db.url);
    CHECK_FALSE(store.schema_current());

    auto first = store.migrate();
    REQUIRE(first.size() == 4);
    CHECK(first[0].component == "events");
    CHECK(first[0].version == 1);
    CHECK(first[1].version == 2);
    CHECK(first[2].version == 3);
    CHECK(first[3].version == 4);
    CHECK(store.schema_current());
    CHECK(store.migrate().empty());
    CHECK(store.migrate().empty());

    auto sql = store.open_session();
    CHECK(ssoci::schema_version(*sql, "events") == 4);
    std::vector<std::string> names(10);
    if (engine == "sqlite")
        *sql << "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = "
                "'ratelimit_event'"
                " ORDER BY name",
            soci::into(names);
    else
        *sql << "SELECT indexname FROM pg_indexes WHERE tablename = 'ratelimit_event' ORDER BY "
                "indexname",
            soci::into(names);
    CHECK(std::count(names.begin(), names.end(), "ratelimit_event_timestamp_idx") == 1);
    CHECK(std::count(names.begin(), names.end(), "ratelimit_event_key_timestamp_idx") == 1);
    CHECK(std::count(names.begin(), names.end(), "ratelimit_event_allowed_timestamp_idx") == 1);
    CHECK(std::count(names.begin(), names.end(), "ratelimit_event_degraded_timestamp_idx") == 1);
}

TEST_CASE("migrate applies several migration sets and checks their versions", "[soci][schema]") {
    temp_dir dir;
    ssoci::event_store store(dir.sqlite_url());
    static constexpr ssoci::migration extra_steps[] = {
        {1, "extra table", "CREATE TABLE IF NOT EXISTS extra_t (a INTEGER)",
         "CREATE TABLE IF NOT EXISTS extra_t (a INTEGER)"},
        {2, "extra index", "CREATE INDEX IF NOT EXISTS extra_t_a ON extra_t (a)",
         "CREATE INDEX IF NOT EXISTS extra_t_a ON extra_t (a)"},
    };
    const ssoci::migration_set extra{"extra", extra_steps};
    auto applied = store.migrate(std::span(&extra, 1));
    CHECK(applied.size() == 6);  // events v1 .. v4 and the two extra steps
    CHECK(store.migrate(std::span(&extra, 1)).empty());

    static constexpr ssoci::migration gap[] = {{2, "starts at two", "SELECT 1", "SELECT 1"}};
    const ssoci::migration_set bad{"gap", gap};
    CHECK_THROWS_AS(store.migrate(std::span(&bad, 1)), srl::config_error);

    static constexpr ssoci::migration broken[] = {
        {1, "bad sql", "CREATE TABLE (", "CREATE TABLE ("}};
    const ssoci::migration_set failing{"broken", broken};
    try {
        store.migrate(std::span(&failing, 1));
        FAIL("no error");
    } catch (const srl::storage_error& e) {
        CHECK(std::string(e.what()).find("broken version 1") != std::string::npos);
    }
    auto sql = store.open_session();
    CHECK(ssoci::schema_version(*sql, "broken") == 0);
}

// ---- writing and reading ------------------------------------------------------------

TEST_CASE("every field round-trips, microseconds, nulls and unicode included", "[soci][store]") {
    const std::string engine = GENERATE(as<std::string>{}, "sqlite", "postgresql");
    engine_db db(engine, "roundtrip");
    if (!db.available()) return;
    INFO(engine);
    ssoci::event_store store(db.url);
    store.migrate();

    std::vector<event> in;
    in.push_back(srl::make_event(event_time{microseconds{1'764'000'000'123'456}},
                                 "rule:login:ip:203.0.113.5", "/api/login", "POST", false, 11, 10,
                                 "203.0.113.5", "42"));
    in.push_back(srl::make_event(event_time{microseconds{1'764'000'000'123'457}}, "user:Zoë",
                                 "/café/日本語\t\"quoted\"\\slash\nnewline", "GET", true, 1, 10));
    in.push_back(srl::make_event(event_time{microseconds{-86'400'000'001}}, "ip:2001:db8::1", "/",
                                 "PATCH", true, 0, 0, "2001:db8::1"));
    in.push_back(srl::make_event(event_time{microseconds{253'402'300'799'999'999}}, "k", "", "",
                                 true, std::numeric_limits<std::int64_t>::max(),
                                 std::numeric_limits<std::int64_t>::min()));
    const auto r = store.write_batch(in);
    CHECK(r.written == 4);
    CHECK(r.invalid == 0);
    CHECK(r.failed == 0);

    auto out = drain(store.events({.order = ssoci::event_order::oldest_first}));
    std::vector<event> expected{in[2], in[0], in[1], in[3]};
    REQUIRE(out.size() == expected.size());
    for (std::size_t i = 0; i < out.size(); ++i) {
        INFO(i);
        CHECK(out[i] == expected[i]);
    }
    CHECK_FALSE(out[2].ip_address.has_value());
    CHECK_FALSE(out[2].user_id.has_value());
    CHECK(out[1].rule_name == "login");
}

TEST_CASE("every outcome round-trips, and rows without one read from allowed",
          "[soci][store][outcome]") {
    const std::string engine = GENERATE(as<std::string>{}, "sqlite", "postgresql");
    engine_db db(engine, "outcome");
    if (!db.available()) return;
    INFO(engine);
    ssoci::event_store store(db.url);
    store.migrate();
    using srl::outcome_kind;
    std::vector<event> in;
    std::int64_t t = 1'000'000;
    for (const auto k : {outcome_kind::allowed, outcome_kind::blocked, outcome_kind::shadow_blocked,
                         outcome_kind::degraded})
        in.push_back(srl::make_event(event_time{microseconds{t++}}, "k", "/p\tq", "GET", k, 3, 2));
    in.push_back(in[3]);
    in.back().path = std::string("/bad\xFF\0utf8", 10);  // sanitized: the outcome survives
    in.back().timestamp = event_time{microseconds{t++}};
    REQUIRE(store.write_batch(in).written == 5);
    auto out = drain(store.events({.order = ssoci::event_order::oldest_first}));
    REQUIRE(out.size() == 5);
    for (std::size_t i = 0; i < 4; ++i) CHECK(out[i] == in[i]);
    CHECK(out[4].outcome == outcome_kind::degraded);
    CHECK(out[4].allowed);
    auto sql = store.open_session();
    std::vector<std::string> texts(8);
    *sql << "SELECT outcome FROM ratelimit_event ORDER BY id", soci::into(texts);
    CHECK(texts ==
          std::vector<std::string>{"allowed", "blocked", "shadow_blocked", "degraded", "degraded"});

    // Another (older) writer leaves outcome NULL; a foreign one writes unknown text or
    // an outcome that disagrees with allowed: all read as outcome_of_allowed(allowed).
    const std::string f = engine == "sqlite" ? "0" : "false",
                      tr = engine == "sqlite" ? "1" : "true";
    const std::string ts = engine == "sqlite" ? "2000000" : "'1970-01-01 00:00:02+00'";
    *sql << "INSERT INTO ratelimit_event (timestamp, key, allowed, count, \"limit\") VALUES (" +
                ts + ", 'old', " + f + ", 1, 1)";
    *sql << "INSERT INTO ratelimit_event (timestamp, key, allowed, count, \"limit\") VALUES (" +
                ts + ", 'old', " + tr + ", 1, 1)";
    *sql << "INSERT INTO ratelimit_event (timestamp, key, allowed, count, \"limit\", outcome) "
            "VALUES (" +
                ts + ", 'odd', " + f + ", 1, 1, 'throttled')";
    *sql << "INSERT INTO ratelimit_event (timestamp, key, allowed, count, \"limit\", outcome) "
            "VALUES (" +
                ts + ", 'odd', " + f + ", 1, 1, 'degraded')";
    *sql << "INSERT INTO ratelimit_event (timestamp, key, allowed, count, \"limit\", outcome) "
            "VALUES (" +
                ts + ", 'odd', " + tr + ", 1, 1, 'shadow_blocked')";
    auto old_rows = drain(store.events(
        {.since = event_time{microseconds{2'000'000}}, .order = ssoci::event_order::oldest_first}));
    REQUIRE(old_rows.size() == 5);
    const outcome_kind expected[] = {outcome_kind::blocked, outcome_kind::allowed,
                                     outcome_kind::blocked, outcome_kind::blocked,
                                     outcome_kind::allowed};
    for (std::size_t i = 0; i < 5; ++i) {
        INFO(i);
        CHECK(old_rows[i].outcome == expected[i]);
        CHECK(old_rows[i].allowed == srl::allowed_column(old_rows[i].outcome));
    }
}

TEST_CASE("an event whose outcome disagrees with allowed is invalid, alone",
          "[soci][store][outcome]") {
    const std::string engine = GENERATE(as<std::string>{}, "sqlite", "postgresql");
    engine_db db(engine, "outcome_invalid");
    if (!db.available()) return;
    INFO(engine);
    ssoci::event_store store(db.url);
    store.migrate();
    std::vector<event> in{at(1), at(2), at(3), at(4)};
    in[1].outcome = srl::outcome_kind::blocked;  // allowed stays true
    in[2].allowed = false;                       // outcome stays allowed
    in[3].outcome = srl::outcome_kind::degraded;
    const auto r = store.write_batch(in);
    CHECK(r.written == 2);
    CHECK(r.invalid == 2);
    CHECK(r.failed == 0);
    auto out = drain(store.events({.order = ssoci::event_order::oldest_first}));
    REQUIRE(out.size() == 2);
    CHECK(out[0] == in[0]);
    CHECK(out[1] == in[3]);
}

TEST_CASE("a database at events v2 is written without the outcome until it is migrated",
          "[soci][store][outcome]") {
    const std::string engine = GENERATE(as<std::string>{}, "sqlite", "postgresql");
    engine_db db(engine, "outcome_v2");
    if (!db.available()) return;
    INFO(engine);
    ssoci::event_store store(db.url);
    {
        auto sql = store.open_session();
        const ssoci::migration_set v2{ssoci::event_log_migrations.component,
                                      ssoci::event_log_migrations.steps.first(2)};
        ssoci::migrate(*sql, store.sql_dialect(), std::span(&v2, 1));
    }
    const auto degraded = [](std::int64_t us) {
        return srl::make_event(event_time{microseconds{us}}, "k", "/", "GET",
                               srl::outcome_kind::degraded, 1, 1);
    };
    REQUIRE(store.write_batch(std::vector<event>{degraded(1), at(2, "k", false)}).written == 2);
    CHECK(store.last_error().empty());
    // Readable as before: no outcome column, so allowed decides.
    auto before = drain(store.events({.order = ssoci::event_order::oldest_first}));
    REQUIRE(before.size() == 2);
    CHECK(before[0].outcome == srl::outcome_kind::allowed);
    CHECK(before[1].outcome == srl::outcome_kind::blocked);
    // Migrated while the writer keeps its connection: the next batch writes outcomes,
    // the older rows stay NULL and read as before (events v3, then v4).
    CHECK(store.migrate().size() == 2);
    REQUIRE(store.write_batch(std::vector<event>{degraded(3)}).written == 1);
    auto after = drain(store.events({.order = ssoci::event_order::oldest_first}));
    REQUIRE(after.size() == 3);
    CHECK(after[0].outcome == srl::outcome_kind::allowed);
    CHECK(after[1].outcome == srl::outcome_kind::blocked);
    CHECK(after[2] == degraded(3));
    // Lost version rows: the migrations run again without harm (ADD COLUMN IF NOT
    // EXISTS; a table partitioned already stays as it is).
    auto sql = store.open_session();
    *sql << "DELETE FROM ratelimit_schema_version WHERE component = 'events' AND version >= 3";
    CHECK(store.migrate().size() == 2);
    CHECK(drain(store.events({.order = ssoci::event_order::oldest_first})) == after);
}

TEST_CASE("reads stream newest first in chunks, filtered by window and key", "[soci][store]") {
    const std::string engine = GENERATE(as<std::string>{}, "sqlite", "postgresql");
    engine_db db(engine, "stream");
    if (!db.available()) return;
    INFO(engine);
    ssoci::event_store store(db.url);
    store.migrate();

    // 25 events, two per timestamp for the tie-break on id, keys a/b alternating.
    std::vector<event> in;
    for (int i = 0; i < 25; ++i) in.push_back(at(1'000'000 + (i / 2) * 10, i % 2 == 0 ? "a" : "b"));
    REQUIRE(store.write_batch(in).written == 25);

    auto all = drain(store.events({.chunk = 4}));
    REQUIRE(all.size() == 25);
    for (std::size_t i = 1; i < all.size(); ++i) CHECK(all[i - 1].timestamp >= all[i].timestamp);
    // Ties keep insertion order reversed (newest id first).
    CHECK(all[1].key == "b");  // event 24 alone at 120, then 23 ("b") before 22 ("a") at 110
    CHECK(all[2].key == "a");
    CHECK(all[0].timestamp == event_time{microseconds{1'000'120}});

    auto windowed = drain(store.events({.since = event_time{microseconds{1'000'020}},
                                        .until = event_time{microseconds{1'000'050}},
                                        .chunk = 3}));
    CHECK(windowed.size() == 8);  // timestamps 20, 30, 40, 50: two each, both ends inclusive
    CHECK(windowed.front().timestamp == event_time{microseconds{1'000'050}});
    CHECK(windowed.back().timestamp == event_time{microseconds{1'000'020}});

    auto keyed =
        drain(store.events({.since = event_time{microseconds{1'000'020}}, .key = "b", .chunk = 2}));
    CHECK(keyed.size() == 10);  // "b" = odd i; i = 5, 7, ..., 23 are at or after 20
    for (const auto& e : keyed) CHECK(e.key == "b");

    auto oldest = drain(store.events({.order = ssoci::event_order::oldest_first, .chunk = 7}));
    REQUIRE(oldest.size() == 25);
    std::vector<event> reversed(all.rbegin(), all.rend());
    CHECK(oldest == reversed);

    CHECK(store.count() == 25);
    CHECK(store.count({.key = "a"}) == 13);
    CHECK(drain(store.events({.key = "nobody"})).empty());
    CHECK_THROWS_AS(store.events({.chunk = 0}), srl::config_error);
}

TEST_CASE("poison rows are sanitized or dropped alone, never sinking their batch",
          "[soci][store]") {
    const std::string engine = GENERATE(as<std::string>{}, "sqlite", "postgresql");
    engine_db db(engine, "poison");
    if (!db.available()) return;
    INFO(engine);
    ssoci::event_store store(db.url);
    store.migrate();

    std::vector<event> in;
    for (int i = 0; i < 10; ++i) in.push_back(at(1'000 + i, "k" + std::to_string(i)));
    in[1].key = std::string("nul\0byte", 8);
    in[2].path = "/bad\xff\xfeutf8\xc3";
    in[3].path = std::string(2000, 'p');    // over the 500 cap
    in[4].user_id = std::string(300, 'u');  // over the 255 cap
    in[5].method =
        "\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac";  // 12 bytes: cut at a boundary
    in[6].timestamp = event_time{microseconds{253'402'300'800'000'000}};  // year 10000
    in[7].ip_address = std::string("1.2.3.4\0", 8);
    const auto r = store.write_batch(in);
    CHECK(r.written == 9);
    CHECK(r.invalid == 1);
    CHECK(r.failed == 0);

    auto out = drain(store.events({.order = ssoci::event_order::oldest_first}));
    REQUIRE(out.size() == 9);
    CHECK(out[1].key == "nulbyte");
    CHECK(out[2].path == "/bad\xef\xbf\xbd\xef\xbf\xbdutf8\xef\xbf\xbd");
    CHECK(out[3].path == std::string(500, 'p'));
    CHECK(out[4].user_id == std::string(255, 'u'));
    CHECK(out[5].method == "\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac");
    CHECK(out[6].key == "k7");
    CHECK(out[6].ip_address == "1.2.3.4");
}

TEST_CASE("a row the database rejects is bisected out and the rest of the batch is written",
          "[soci][store]") {
    const std::string engine = GENERATE(as<std::string>{}, "sqlite", "postgresql");
    engine_db db(engine, "reject");
    if (!db.available()) return;
    INFO(engine);
    ssoci::event_store store(db.url);
    store.migrate();
    {
        auto sql = store.open_session();
        if (engine == "sqlite")
            *sql << "CREATE TRIGGER reject_poison BEFORE INSERT ON ratelimit_event"
                    " WHEN NEW.path = '/poison' BEGIN SELECT RAISE(ABORT, 'poison row'); END";
        else
            *sql
                << "ALTER TABLE ratelimit_event ADD CONSTRAINT no_poison CHECK (path <> '/poison')";
    }
    std::vector<event> in;
    for (int i = 0; i < 37; ++i) in.push_back(at(5'000 + i, "k" + std::to_string(i)));
    for (int i : {0, 13, 14, 36}) in[static_cast<std::size_t>(i)].path = "/poison";
    const auto r = store.write_batch(in);
    CHECK(r.written == 33);
    CHECK(r.invalid == 4);
    CHECK(r.failed == 0);
    auto out = drain(store.events({.order = ssoci::event_order::oldest_first}));
    REQUIRE(out.size() == 33);
    CHECK(out.front().key == "k1");
    CHECK(out.back().key == "k35");
    // The writer keeps working afterwards.
    CHECK(store.write_batch(std::vector<event>{at(9'999)}).written == 1);
}

TEST_CASE("a missing table fails the batch without throwing and writing resumes after migrate",
          "[soci][store][failure]") {
    const std::string engine = GENERATE(as<std::string>{}, "sqlite", "postgresql");
    engine_db db(engine, "missing");
    if (!db.available()) return;
    INFO(engine);
    ssoci::event_store store(db.url);
    std::vector<event> in{at(1), at(2), at(3)};
    auto r = store.write_batch(in);
    CHECK(r.failed == 3);
    CHECK(r.written == 0);
    CHECK(r.invalid == 0);
    CHECK_FALSE(store.last_error().empty());

    store.migrate();
    r = store.write_batch(in);
    CHECK(r.written == 3);
    CHECK(store.count() == 3);

    // Dropped under our feet: failed again, not invalid.
    store.open_session()->once << "DROP TABLE ratelimit_event";
    r = store.write_batch(in);
    CHECK(r.failed == 3);
    CHECK(r.invalid == 0);
}

TEST_CASE("an unreachable database fails batches without throwing", "[soci][store][failure]") {
    const srl_test::closed_port closed;
    ssoci::event_store pg("postgresql://srl@" + closed.address() + "/nothing");
    std::vector<event> in{at(1), at(2)};
    const auto r = pg.write_batch(in);
    CHECK(r.failed == 2);
    CHECK(r.written == 0);
    CHECK(pg.connects() == 0);
    CHECK_THROWS_AS(pg.migrate(), srl::storage_error);
    CHECK_THROWS_AS(pg.events(), srl::storage_error);
    CHECK_THROWS_AS(pg.cleanup_old(), srl::storage_error);

    ssoci::event_store nowhere("sqlite:////nonexistent-dir-srl/x/events.db");
    CHECK(nowhere.write_batch(in).failed == 2);
    // A row invalid on its own merit ahead of the failure is still invalid, not failed.
    in.insert(in.begin(), at(0));
    in.front().timestamp = event_time{microseconds{-70'000'000'000'000'000}};
    const auto r2 = pg.write_batch(in);
    CHECK(r2.invalid == 1);
    CHECK(r2.failed == 2);
    CHECK_THROWS_AS(nowhere.migrate(), srl::storage_error);
}

TEST_CASE("invalid timestamps before a store failure count as invalid, the rest as a failed tail",
          "[soci][store][failure]") {
    temp_dir dir;
    ssoci::event_store store(dir.sqlite_url());  // never migrated: every write fails
    std::vector<event> in{at(1), at(2), at(3)};
    in[0].timestamp = event_time{microseconds{-70'000'000'000'000'000}};  // before year 1
    const auto r = store.write_batch(in);
    CHECK(r.invalid == 1);
    CHECK(r.failed == 2);
    CHECK(r.written + r.invalid + r.failed == in.size());
}

// ---- retention ---------------------------------------------------------------------

TEST_CASE("cleanup_old deletes strictly older rows in batches and keeps the rest",
          "[soci][retention]") {
    const std::string engine = GENERATE(as<std::string>{}, "sqlite", "postgresql");
    engine_db db(engine, "cleanup");
    if (!db.available()) return;
    INFO(engine);
    ssoci::event_store store(db.url);
    store.migrate();
    const event_time now{microseconds{1'764'000'000'000'000}};
    const auto day = std::chrono::hours{24};
    std::vector<event> in;
    for (int i = 0; i < 10; ++i)
        in.push_back(at((now - 31 * day - microseconds{i}).time_since_epoch().count(), "old"));
    in.push_back(
        at((now - 30 * day).time_since_epoch().count(), "cutoff"));  // exactly on the cutoff: kept
    in.push_back(at((now - 1 * day).time_since_epoch().count(), "new"));
    REQUIRE(store.write_batch(in).written == 12);

    CHECK(store.cleanup_old(30, 3, now) == 10);
    auto left = drain(store.events());
    REQUIRE(left.size() == 2);
    CHECK(left[0].key == "new");
    CHECK(left[1].key == "cutoff");
    CHECK(store.cleanup_old(30, 3, now) == 0);

    // One microsecond later the cutoff row is strictly older.
    CHECK(store.cleanup_old(30, 1000, now + microseconds{1}) == 1);
    CHECK(store.cleanup_old(0, 1, now + 2 * day) == 1);
    CHECK(store.count() == 0);
}

TEST_CASE("cleanup_old rejects a batch size of zero or less and negative days",
          "[soci][retention]") {
    temp_dir dir;
    ssoci::event_store store(dir.sqlite_url());
    store.migrate();
    CHECK_THROWS_AS(store.cleanup_old(30, 0), srl::config_error);
    CHECK_THROWS_AS(store.cleanup_old(30, -1), srl::config_error);
    CHECK_THROWS_AS(store.cleanup_old(-1, 10), srl::config_error);
    CHECK(store.cleanup_old(30, 1) == 0);
}

TEST_CASE("migration SQL splits on statement ends, not inside quotes, bodies or triggers",
          "[soci][schema]") {
    using ssoci::detail::split_statements;
    CHECK(split_statements("CREATE TABLE a (x INT);\n CREATE INDEX i ON a (x) ;") ==
          std::vector<std::string>{"CREATE TABLE a (x INT)", "CREATE INDEX i ON a (x)"});
    CHECK(split_statements(
              "INSERT INTO a VALUES (';'); SELECT \"semi;colon\" FROM a -- note; here\n;") ==
          std::vector<std::string>{"INSERT INTO a VALUES (';')",
                                   "SELECT \"semi;colon\" FROM a -- note; here"});
    CHECK(
        split_statements(
            "CREATE TRIGGER t AFTER INSERT ON a BEGIN UPDATE b SET n = n + CASE WHEN NEW.x THEN 1 "
            "ELSE 0 END; INSERT INTO c VALUES (1); END; SELECT 1") ==
        std::vector<std::string>{
            "CREATE TRIGGER t AFTER INSERT ON a BEGIN UPDATE b SET n = n + CASE WHEN NEW.x "
            "THEN 1 ELSE 0 END; INSERT INTO c VALUES (1); END",
            "SELECT 1"});
    CHECK(split_statements(
              "CREATE FUNCTION f() RETURNS trigger AS $body$ BEGIN x := 1; RETURN NEW; END $body$ "
              "LANGUAGE plpgsql; CREATE TRIGGER t AFTER INSERT ON a FOR EACH ROW EXECUTE FUNCTION "
              "f()") ==
          std::vector<std::string>{
              "CREATE FUNCTION f() RETURNS trigger AS $body$ BEGIN x := 1; RETURN NEW; END "
              "$body$ LANGUAGE plpgsql",
              "CREATE TRIGGER t AFTER INSERT ON a FOR EACH ROW EXECUTE FUNCTION f()"});
    CHECK(split_statements("  ;; ").empty());
}

// ---- batch hooks (SQLite writer) ------------------------------------------------------

namespace {
/// A per-row trigger that skips the writer's hooked batches, and a hook that does
/// its work once per batch: both record into hook_log, so the test sees who ran.
void install_toy_hook(soci::session& sql, const std::string& hook_sql) {
    sql << "CREATE TABLE hook_log (source TEXT NOT NULL, first_id INTEGER, last_id INTEGER, n "
           "INTEGER)";
    sql << "CREATE TRIGGER toy_per_row AFTER INSERT ON ratelimit_event"
           " WHEN NOT EXISTS (SELECT 1 FROM ratelimit_event_batch)"
           " BEGIN INSERT INTO hook_log VALUES ('row', NEW.id, NEW.id, 1); END";
    sql << "INSERT INTO ratelimit_event_batch_hook (component, step, statement) VALUES ('toy', 1, "
           ":s)",
        soci::use(hook_sql);
}
const std::string toy_hook_sql =
    "INSERT INTO hook_log SELECT 'batch', b.first_id, b.last_id,"
    " (SELECT COUNT(*) FROM ratelimit_event e WHERE e.id BETWEEN b.first_id AND b.last_id)"
    " FROM ratelimit_event_batch b";

/// A migrated SQLite store with the toy trigger and `hook_sql` registered.
struct hooked_store {
    temp_dir dir;
    ssoci::event_store store{dir.sqlite_url()};
    std::unique_ptr<soci::session> sql;
    explicit hooked_store(const std::string& hook_sql) {
        store.migrate();
        sql = store.open_session();
        install_toy_hook(*sql, hook_sql);
    }
};
}  // namespace

TEST_CASE("the SQLite writer runs registered batch hooks once per batch, in its transaction",
          "[soci][store][hooks]") {
    hooked_store h(toy_hook_sql);
    auto& store = h.store;
    auto& sql = h.sql;

    std::vector<event> batch;
    for (int i = 0; i < 25; ++i) batch.push_back(at(1'000 + i, "k" + std::to_string(i)));
    REQUIRE(store.write_batch(batch).written == 25);
    REQUIRE(store.write_batch(std::vector<event>(batch.begin(), batch.begin() + 5)).written == 5);
    // One 'batch' row per batch with its id range; the per-row trigger skipped them.
    std::vector<std::string> source(10);
    std::vector<long long> first(10), last(10), n(10);
    *sql << "SELECT source, first_id, last_id, n FROM hook_log ORDER BY rowid", soci::into(source),
        soci::into(first), soci::into(last), soci::into(n);
    REQUIRE(source.size() == 2);
    CHECK(source[0] == "batch");
    CHECK(last[0] - first[0] + 1 == 25);
    CHECK(n[0] == 25);
    CHECK(first[1] == last[0] + 1);
    CHECK(n[1] == 5);
    // The marker row never outlives the transaction.
    long long markers = -1;
    *sql << "SELECT COUNT(*) FROM ratelimit_event_batch", soci::into(markers);
    CHECK(markers == 0);
    // Any other INSERT fires the per-row trigger as before.
    *sql << "INSERT INTO ratelimit_event (timestamp, key, allowed, count, \"limit\") VALUES (5, "
            "'x', 1, 1, 1)";
    long long rows = 0;
    *sql << "SELECT COUNT(*) FROM hook_log WHERE source = 'row'", soci::into(rows);
    CHECK(rows == 1);
    // A poison row is bisected out; every written sub-batch ran the hook.
    *sql << "CREATE TRIGGER reject_poison BEFORE INSERT ON ratelimit_event"
            " WHEN NEW.path = '/poison' BEGIN SELECT RAISE(ABORT, 'poison row'); END";
    std::vector<event> mixed;
    for (int i = 0; i < 8; ++i) mixed.push_back(at(2'000 + i, "m" + std::to_string(i)));
    mixed[3].path = "/poison";
    const auto r = store.write_batch(mixed);
    CHECK(r.written == 7);
    CHECK(r.invalid == 1);
    long long hooked = 0, total = 0;
    *sql << "SELECT COALESCE(SUM(n), 0) FROM hook_log WHERE source = 'batch'", soci::into(hooked);
    *sql << "SELECT COUNT(*) FROM ratelimit_event", soci::into(total);
    CHECK(hooked == total - 1);  // every row but the console's INSERT went through a hook
}

TEST_CASE("a hook that fails costs speed, not rows: the per-row triggers take over",
          "[soci][store][hooks][failure]") {
    hooked_store h("INSERT INTO no_such_table SELECT 1");
    auto& store = h.store;
    auto& sql = h.sql;
    std::vector<event> batch;
    for (int i = 0; i < 4; ++i) batch.push_back(at(1'000 + i));
    const auto r = store.write_batch(batch);
    CHECK(r.written == 4);
    CHECK(r.failed == 0);
    CHECK(store.last_error().find("batch hook") != std::string::npos);
    long long per_row = 0, events = 0;
    *sql << "SELECT COUNT(*) FROM hook_log WHERE source = 'row'", soci::into(per_row);
    *sql << "SELECT COUNT(*) FROM ratelimit_event", soci::into(events);
    CHECK(per_row == 4);
    CHECK(events == 4);
}

TEST_CASE("a hook that fails while it runs: the batch is written again with the triggers on",
          "[soci][store][hooks][failure]") {
    // Every trigger skips hooked batches, so the writer turns them off for the
    // batch; the hook then fails at run time (NOT NULL), and the rewrite needs
    // them back on.
    hooked_store h("INSERT INTO hook_log (source) VALUES (NULL)");
    std::vector<event> batch;
    for (int i = 0; i < 6; ++i) batch.push_back(at(1'000 + i));
    const auto r = h.store.write_batch(batch);
    CHECK(r.written == 6);
    CHECK(h.store.last_error().find("batch hook") != std::string::npos);
    long long per_row = 0;
    *h.sql << "SELECT COUNT(*) FROM hook_log WHERE source = 'row'", soci::into(per_row);
    CHECK(per_row == 6);
    // Later batches on the same connection skip the hooks and keep the triggers on.
    REQUIRE(h.store.write_batch(std::vector<event>{at(2'000), at(2'001)}).written == 2);
    *h.sql << "SELECT COUNT(*) FROM hook_log WHERE source = 'row'", soci::into(per_row);
    CHECK(per_row == 8);
}

TEST_CASE(
    "a trigger that does not skip hooked batches keeps every trigger firing for the writer's rows",
    "[soci][store][hooks]") {
    hooked_store h(toy_hook_sql);
    *h.sql << "CREATE TABLE audit (what TEXT NOT NULL, id INTEGER)";
    std::vector<event> batch;
    for (int i = 0; i < 7; ++i) batch.push_back(at(1'000 + i));
    // Only batch-aware triggers: the writer may switch them off; nothing changes.
    REQUIRE(h.store.write_batch(batch).written == 7);
    // A plain audit trigger on the events, and one on a table a hook writes.
    *h.sql << "CREATE TRIGGER audit_events AFTER INSERT ON ratelimit_event"
              " BEGIN INSERT INTO audit VALUES ('event', NEW.id); END";
    REQUIRE(h.store.write_batch(batch).written == 7);
    *h.sql << "DROP TRIGGER audit_events";
    *h.sql << "CREATE TRIGGER audit_log AFTER INSERT ON hook_log BEGIN INSERT INTO audit VALUES "
              "('log', NULL); END";
    REQUIRE(h.store.write_batch(batch).written == 7);
    CHECK(h.store.last_error().empty());
    long long events = 0, logs = 0, batches = 0, per_row = 0;
    *h.sql << "SELECT COUNT(*) FROM audit WHERE what = 'event'", soci::into(events);
    *h.sql << "SELECT COUNT(*) FROM audit WHERE what = 'log'", soci::into(logs);
    *h.sql << "SELECT COUNT(*) FROM hook_log WHERE source = 'batch'", soci::into(batches);
    *h.sql << "SELECT COUNT(*) FROM hook_log WHERE source = 'row'", soci::into(per_row);
    CHECK(events == 7);   // the audit trigger saw every row of the second batch
    CHECK(logs == 1);     // the hook's insert into hook_log fired its trigger in the third
    CHECK(batches == 3);  // the hook ran for every batch
    CHECK(per_row == 0);  // and the batch-aware trigger skipped them all
}

TEST_CASE("which triggers leave the writer's hooked batches alone", "[soci][store][hooks]") {
    using ssoci::detail::trigger_skips_batches;
    // The analytics rollup trigger's shape: an INSERT trigger that skips marked batches.
    CHECK(trigger_skips_batches(
        "ratelimit_event",
        "CREATE TRIGGER ratelimit_rollup_ai AFTER INSERT ON ratelimit_event"
        " WHEN NOT EXISTS (SELECT 1 FROM ratelimit_event_batch) BEGIN SELECT 1; END"));
    // Triggers for other events on the events table: the writer only inserts.
    CHECK(trigger_skips_batches(
        "ratelimit_event",
        "CREATE TRIGGER d AFTER DELETE ON ratelimit_event BEGIN INSERT INTO x VALUES (1); END"));
    CHECK(trigger_skips_batches(
        "ratelimit_event",
        "create trigger u after update of allowed\non ratelimit_event begin select 1; end"));
    // An INSERT trigger that does not skip them, in any spelling.
    CHECK_FALSE(trigger_skips_batches(
        "ratelimit_event", "CREATE TRIGGER a AFTER INSERT ON ratelimit_event BEGIN SELECT 1; END"));
    CHECK_FALSE(trigger_skips_batches(
        "ratelimit_event",
        "create trigger a before insert\ton ratelimit_event begin select 1; end"));
    CHECK_FALSE(trigger_skips_batches(
        "ratelimit_event",
        "CREATE TRIGGER a INSTEAD OF INSERT ON ratelimit_event BEGIN SELECT 1; END"));
    // The event is read from the header, whatever the trigger is called or its body does.
    CHECK(trigger_skips_batches(
        "ratelimit_event",
        "CREATE TRIGGER IF NOT EXISTS main.on_insert AFTER DELETE ON ratelimit_event"
        " BEGIN INSERT INTO x VALUES (1); END"));
    CHECK(trigger_skips_batches("ratelimit_event",
                                "CREATE TEMP TRIGGER [my \"insert\"] BEFORE UPDATE ON "
                                "ratelimit_event BEGIN SELECT 1; END"));
    CHECK_FALSE(trigger_skips_batches(
        "ratelimit_event",
        "CREATE TRIGGER \"on\" AFTER INSERT ON ratelimit_event BEGIN SELECT 1; END"));
    CHECK_FALSE(trigger_skips_batches(
        "ratelimit_event", "CREATE TRIGGER begin INSERT ON ratelimit_event BEGIN SELECT 1; END"));
    CHECK_FALSE(trigger_skips_batches("ratelimit_event",
                                      "CREATE TRIGGER \"a \"\"delete\"\" b\" AFTER INSERT ON "
                                      "ratelimit_event BEGIN SELECT 1; END"));
    // The skip must be the whole WHEN clause: combined with another condition, or
    // only in the body, the trigger may do something for the writer's rows.
    CHECK_FALSE(trigger_skips_batches(
        "ratelimit_event",
        "CREATE TRIGGER a AFTER INSERT ON ratelimit_event WHEN NEW.allowed = 0 OR"
        " NOT EXISTS (SELECT 1 FROM ratelimit_event_batch) BEGIN SELECT 1; END"));
    CHECK_FALSE(trigger_skips_batches(
        "ratelimit_event",
        "CREATE TRIGGER a AFTER INSERT ON ratelimit_event WHEN NOT EXISTS (SELECT 1"
        " FROM ratelimit_event_batch) AND NEW.allowed = 0 BEGIN SELECT 1; END"));
    CHECK_FALSE(trigger_skips_batches(
        "ratelimit_event",
        "CREATE TRIGGER a AFTER INSERT ON ratelimit_event BEGIN INSERT INTO x SELECT 1"
        " WHERE NOT EXISTS (SELECT 1 FROM ratelimit_event_batch); SELECT 2; END"));
    // Spelling and spacing of the skip do not matter; FOR EACH ROW and a schema may be there.
    CHECK(trigger_skips_batches(
        "ratelimit_event",
        "create trigger \"t\" after insert on main.ratelimit_event for each row\n"
        "  when not exists(select 1 from ratelimit_event_batch)\nbegin select 1; end"));
    // A text of another shape is not understood, so it may matter.
    CHECK_FALSE(trigger_skips_batches("ratelimit_event", "CREATE TRIGGER"));
    CHECK_FALSE(trigger_skips_batches("ratelimit_event", ""));
    CHECK_FALSE(trigger_skips_batches("ratelimit_event",
                                      "CREATE TRIGGER \"unterminated AFTER DELETE ON x"));
    // Any trigger on another table may matter (the hooks write other tables).
    CHECK_FALSE(trigger_skips_batches(
        "ratelimit_rollup_hour",
        "CREATE TRIGGER h AFTER UPDATE ON ratelimit_rollup_hour BEGIN SELECT 1; END"));
}

TEST_CASE("hooks changed while the writer runs are picked up by the next batch",
          "[soci][store][hooks]") {
    hooked_store h(toy_hook_sql);
    auto& store = h.store;
    auto& sql = h.sql;
    REQUIRE(store.write_batch(std::vector<event>{at(1)}).written == 1);
    const std::string changed =
        "INSERT INTO hook_log SELECT 'changed', first_id, last_id, 0 FROM ratelimit_event_batch";
    *sql << "UPDATE ratelimit_event_batch_hook SET statement = :s", soci::use(changed);
    REQUIRE(store.write_batch(std::vector<event>{at(2)}).written == 1);
    CHECK(store.last_error().empty());
    *sql << "DELETE FROM ratelimit_event_batch_hook";
    REQUIRE(store.write_batch(std::vector<event>{at(3)}).written == 1);
    std::vector<std::string> source(10);
    *sql << "SELECT source FROM hook_log ORDER BY rowid", soci::into(source);
    CHECK(source == std::vector<std::string>{"batch", "changed", "row"});
}

TEST_CASE("a database at events v1 (no hook tables) is written as before", "[soci][store][hooks]") {
    temp_dir dir;
    ssoci::event_store store(dir.sqlite_url());
    {
        auto sql = store.open_session();
        const ssoci::migration_set v1{ssoci::event_log_migrations.component,
                                      ssoci::event_log_migrations.steps.first(1)};
        ssoci::migrate(*sql, ssoci::dialect::sqlite, std::span(&v1, 1));
        CHECK(ssoci::schema_version(*sql, "events") == 1);
    }
    CHECK(store.write_batch(std::vector<event>{at(1), at(2)}).written == 2);
    CHECK(store.count({}) == 2);
}

TEST_CASE("the PostgreSQL writer runs at read committed whatever the database's default",
          "[soci][store][postgresql]") {
    pg_database pg("isolation");
    if (pg.url().empty()) return;
    ssoci::event_store store(pg.url());
    store.migrate();
    {
        // A stricter default for every new session, and a trigger that records the
        // isolation level each insert statement ran at.
        auto sql = store.open_session();
        *sql << "ALTER DATABASE " + pg.url().substr(pg.url().rfind('/') + 1) +
                    " SET default_transaction_isolation TO 'repeatable read'";
        *sql << "CREATE TABLE seen_isolation (level TEXT NOT NULL)";
        *sql << "CREATE FUNCTION record_isolation() RETURNS trigger LANGUAGE plpgsql AS $f$ BEGIN"
                " INSERT INTO seen_isolation VALUES (current_setting('transaction_isolation'));"
                " RETURN NULL; END $f$";
        *sql << "CREATE TRIGGER record_isolation AFTER INSERT ON ratelimit_event"
                " FOR EACH STATEMENT EXECUTE FUNCTION record_isolation()";
    }
    auto fresh = store.open_session();  // a new session gets the new default
    std::string level;
    *fresh << "SHOW transaction_isolation", soci::into(level);
    REQUIRE(level == "repeatable read");
    REQUIRE(store.write_batch(std::vector<event>{at(1), at(2, "ip:5.6.7.8", false)}).written == 2);
    std::vector<std::string> seen(4);
    *fresh << "SELECT level FROM seen_isolation", soci::into(seen);
    CHECK(seen == std::vector<std::string>{"read committed"});
}

TEST_CASE("a PostgreSQL session gets its settings when it connects, and the URL's options win",
          "[soci][url][postgresql]") {
    pg_database pg("settings");
    if (pg.url().empty()) return;
    ssoci::session_settings settings;
    settings.statement_timeout = std::chrono::milliseconds(2500);
    auto show = [](::soci::session& sql, const std::string& name) {
        std::string v;
        sql << "SHOW " + name, ::soci::into(v);
        return v;
    };
    auto sql = ssoci::open_session(ssoci::parse_database_url(pg.url()), settings);
    CHECK(show(*sql, "statement_timeout") == "2500ms");
    CHECK(show(*sql, "client_min_messages") == "warning");
    auto plain = ssoci::open_session(ssoci::parse_database_url(pg.url()));
    CHECK(show(*plain, "statement_timeout") == "0");
    auto own = ssoci::open_session(
        ssoci::parse_database_url(pg.url() + "?options=-c%20statement_timeout%3D7s"), settings);
    CHECK(show(*own, "statement_timeout") == "7s");
    // The server enforces it: a statement longer than the timeout is cancelled.
    CHECK_THROWS_WITH(*sql << "SELECT pg_sleep(5)",
                      Catch::Contains("canceling statement due to statement timeout"));
}
