// tests/tools/test_sql_state_cli.cpp
// `smart-ratelimit cleanup` and `smart-ratelimit limit --store sqlite:/// |
// postgresql://` run as built: per-table counts (text and JSON), dry runs, batches,
// events left alone, bad arguments (64), a missing schema or database (69), and
// 30 concurrent `limit` processes at limit 10 admitting exactly 10.
#include <catch2/catch.hpp>

#include "../support/cli_runner.hpp"
#include "../support/test_env.hpp"

#include <smart_ratelimit/soci/state_storage.hpp>

#include <atomic>
#include <cstdio>
#include <string>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

namespace ssql = smart_ratelimit::soci;

namespace {

using run_result = srl_test::cli_result;

/// `smart-ratelimit <args>`, the arguments as the shell reads them, with `env`
/// ("NAME=value") set.
run_result run(const std::string& args, const std::vector<std::string>& env = {}) {
    const srl_test::temp_dir cwd("sqlcli");
    return srl_test::run_cli_words(cwd, args, "", env);
}

int next_id() {
    static std::atomic<int> n{0};
    return n++;
}

struct sqlite_file {
    std::string path =
        "/tmp/srl-sqlcli-" + std::to_string(::getpid()) + "-" + std::to_string(next_id()) + ".db";
    ~sqlite_file() {
        for (const char* suffix : {"", "-wal", "-shm"}) std::remove((path + suffix).c_str());
    }
    std::string url() const { return "sqlite:///" + path; }
};

long long count(const std::string& url, const std::string& table) {
    const auto u = ssql::parse_database_url(url);
    auto sql = ssql::open_session(u);
    long long n = 0;
    *sql << "SELECT COUNT(*) FROM " + table, soci::into(n);
    return n;
}

/// A migrated SQLite database with 5 expired counters, 4 expired sliding entries,
/// 1 live counter and entry, 2 idle token buckets (one 10 days old, one 8), 1 idle
/// leaky bucket (8.5 days), 1 recent bucket of each kind and 3 events.
void seed(const std::string& url) {
    REQUIRE(run("migrate --database " + url).code == 0);
    const auto u = ssql::parse_database_url(url);
    auto sql = ssql::open_session(u);
    ssql::sql_state_storage s(url);
    const long long now = s.database_now_ns();
    const long long day = 86'400'000'000'000LL;
    const long long past = now - 1'000'000'000LL, future = now + day;
    for (int i = 0; i < 5; ++i) {
        const std::string k = "c" + std::to_string(i);
        *sql << "INSERT INTO ratelimit_counter VALUES (:k, 'fixed_window', 0, 1, 0, :e)",
            soci::use(k), soci::use(past);
    }
    for (int i = 0; i < 4; ++i)
        *sql << "INSERT INTO ratelimit_sliding_entry (key, at_ns, units, expires_at_ns) VALUES "
                "('s', 0, 1, :e)",
            soci::use(past);
    *sql << "INSERT INTO ratelimit_counter VALUES ('live', 'fixed_window', 0, 1, 0, :e)",
        soci::use(future);
    *sql << "INSERT INTO ratelimit_sliding_entry (key, at_ns, units, expires_at_ns) VALUES "
            "('live', 0, 1, :e)",
        soci::use(future);
    const long long d10 = now - 10 * day, d8 = now - 8 * day, d8h = now - 8 * day - day / 2,
                    d1 = now - day;
    *sql << "INSERT INTO ratelimit_token_bucket VALUES ('t10', 0, 0, 0, :t)", soci::use(d10);
    *sql << "INSERT INTO ratelimit_token_bucket VALUES ('t8', 0, 0, 0, :t)", soci::use(d8);
    *sql << "INSERT INTO ratelimit_token_bucket VALUES ('t1', 0, 0, 0, :t)", soci::use(d1);
    *sql << "INSERT INTO ratelimit_leaky_bucket VALUES ('l8', 0, 0, 0, :t)", soci::use(d8h);
    *sql << "INSERT INTO ratelimit_leaky_bucket VALUES ('l1', 0, 0, 0, :t)", soci::use(d1);
    for (int i = 0; i < 3; ++i)
        *sql << "INSERT INTO ratelimit_event (timestamp, key, allowed, count, \"limit\") VALUES "
                "(0, 'old', 0, 1, 1)";
}

}  // namespace

TEST_CASE("cleanup --dry-run counts per table and deletes nothing", "[cli][cleanup]") {
    sqlite_file f;
    seed(f.url());
    const auto r = run("cleanup --dry-run --database " + f.url());
    INFO(r.out << r.err);
    REQUIRE(r.code == 0);
    CHECK(
        r.out.find(
            "cleanup: dry run, would delete 12 row(s) (ratelimit_counter 5, "
            "ratelimit_sliding_entry 4, "
            "ratelimit_token_bucket 2, ratelimit_leaky_bucket 1; stale days 7, batch size 1000)") ==
        0);
    CHECK(count(f.url(), "ratelimit_counter") == 6);
    CHECK(count(f.url(), "ratelimit_sliding_entry") == 5);
    CHECK(count(f.url(), "ratelimit_token_bucket") == 3);
}

TEST_CASE("cleanup deletes expired and stale rows in batches and never touches events",
          "[cli][cleanup]") {
    sqlite_file f;
    seed(f.url());
    const auto r =
        run("cleanup --json --verbose --batch-size 2 --stale-days 9 --database " + f.url());
    INFO(r.err);
    REQUIRE(r.code == 0);
    // --stale-days 9: only the 10-day token bucket goes; the 8-day and 8.5-day buckets stay.
    CHECK(
        r.out ==
        "{\"dry_run\":false,\"stale_days\":9,\"batch_size\":2,\"tables\":{\"ratelimit_counter\":5,"
        "\"ratelimit_sliding_entry\":4,\"ratelimit_token_bucket\":1,\"ratelimit_leaky_bucket\":0},"
        "\"total\":10}\n");
    // --verbose: every batch on stderr (counters 2+2+1, entries 2+2, one token bucket).
    CHECK(r.err.find("cleanup: ratelimit_counter: deleted 2 row(s)\ncleanup: ratelimit_counter: "
                     "deleted 2 row(s)\n"
                     "cleanup: ratelimit_counter: deleted 1 row(s)\n") == 0);
    CHECK(r.err.find("cleanup: ratelimit_token_bucket: deleted 1 row(s)") != std::string::npos);
    CHECK(count(f.url(), "ratelimit_counter") == 1);
    CHECK(count(f.url(), "ratelimit_sliding_entry") == 1);
    CHECK(count(f.url(), "ratelimit_token_bucket") == 2);
    CHECK(count(f.url(), "ratelimit_leaky_bucket") == 2);
    CHECK(count(f.url(), "ratelimit_event") == 3);
    // The default of 7 days then takes the rest of the idle buckets.
    const auto again = run("cleanup --json --database " + f.url());
    CHECK(
        again.out.find("\"ratelimit_token_bucket\":1,\"ratelimit_leaky_bucket\":1},\"total\":2}") !=
        std::string::npos);
    CHECK(count(f.url(), "ratelimit_event") == 3);
}

TEST_CASE("cleanup reads the database from RATELIMIT_DATABASE_URL", "[cli][cleanup]") {
    sqlite_file f;
    seed(f.url());
    const auto r = run("cleanup", {"RATELIMIT_DATABASE_URL=" + f.url()});
    INFO(r.out << r.err);
    CHECK(r.code == 0);
    CHECK(r.out.find("cleanup: deleted 12 row(s)") == 0);
}

TEST_CASE("cleanup rejects bad arguments with exit 64 and names them", "[cli][cleanup]") {
    sqlite_file f;
    seed(f.url());
    struct bad_case {
        std::string args;
        std::string says;
    };
    for (const auto& c :
         {bad_case{"--batch-size 0", "--batch-size"}, bad_case{"--batch-size -5", "-5"},
          bad_case{"--batch-size many", "many"}, bad_case{"--stale-days -1", "--stale-days"},
          bad_case{"--stale-days 1.5", "1.5"}, bad_case{"--dry-run=yes", "--dry-run"},
          bad_case{"--older-than-days 3", "--older-than-days"}}) {
        const auto r = run("cleanup " + c.args + " --database " + f.url());
        INFO(c.args << " -> " << r.err);
        CHECK(r.code == 64);
        CHECK(r.err.find(c.says) != std::string::npos);
        CHECK(r.out.empty());
    }
    CHECK(count(f.url(), "ratelimit_counter") == 6);
    const auto bad_url = run("cleanup --database mysql://x/y");
    CHECK(bad_url.code == 64);
    CHECK(bad_url.err.find("mysql://x/y") != std::string::npos);
}

TEST_CASE("cleanup exits 69 without the state tables or the database", "[cli][cleanup]") {
    sqlite_file f;
    auto r = run("cleanup --database " + f.url());
    CHECK(r.code == 69);
    CHECK(r.err.find("smart-ratelimit migrate") != std::string::npos);
    r = run("cleanup --database 'postgresql://nobody@127.0.0.1:1/none?connect_timeout=2'");
    CHECK(r.code == 69);
    CHECK(r.err.find("127.0.0.1:1") != std::string::npos);
    CHECK(r.out.empty());
}

TEST_CASE("cleanup on PostgreSQL deletes on the server's clock", "[cli][cleanup][postgresql]") {
    const auto pg = srl_test::postgres_url();
    if (!pg) return;
    REQUIRE(run("migrate --database " + *pg).code == 0);
    const auto u = ssql::parse_database_url(*pg);
    auto sql = ssql::open_session(u);
    ssql::sql_state_storage s(*pg);
    const long long past = s.database_now_ns() - 1'000'000'000LL;
    const std::string k = "cli-cleanup-" + std::to_string(::getpid());
    *sql << "INSERT INTO ratelimit_counter VALUES (:k, 'fixed_window', 0, 1, 0, :e)", soci::use(k),
        soci::use(past);
    long long events_before = 0;
    *sql << "SELECT COUNT(*) FROM ratelimit_event", soci::into(events_before);
    auto r = run("cleanup --dry-run --json --database " + *pg);
    INFO(r.err);
    REQUIRE(r.code == 0);
    CHECK(r.out.find("\"dry_run\":true") != std::string::npos);
    long long left = 0;
    *sql << "SELECT COUNT(*) FROM ratelimit_counter WHERE key = :k", soci::into(left), soci::use(k);
    CHECK(left == 1);
    r = run("cleanup --batch-size 1 --database " + *pg);
    REQUIRE(r.code == 0);
    *sql << "SELECT COUNT(*) FROM ratelimit_counter WHERE key = :k", soci::into(left), soci::use(k);
    CHECK(left == 0);
    long long events_after = 0;
    *sql << "SELECT COUNT(*) FROM ratelimit_event", soci::into(events_after);
    CHECK(events_after == events_before);
}

TEST_CASE("limit against a SQLite store prints the decision and exits 0, then 75",
          "[cli][limit][sql]") {
    sqlite_file f;
    auto r = run("limit --store " + f.url() + " --rate 2/h --key k");
    CHECK(r.code == 69);  // no state tables yet
    CHECK(r.err.find("migrate") != std::string::npos);
    REQUIRE(run("migrate --database " + f.url()).code == 0);
    for (int i = 0; i < 2; ++i) {
        r = run("limit --store " + f.url() + " --rate 2/h --key k --algorithm token_bucket");
        INFO(r.err);
        CHECK(r.code == 0);
        CHECK(r.out.find(
                  "{\"allowed\":true,\"key\":\"k\",\"algorithm\":\"token_bucket\",\"limit\":2") ==
              0);
        CHECK(r.out.find("\"remaining\":" + std::to_string(1 - i)) != std::string::npos);
    }
    r = run("limit --store " + f.url() + " --rate 2/h --key k --algorithm token_bucket --peek");
    CHECK(r.code == 75);
    CHECK(r.out.find("\"peek\":true") != std::string::npos);
    r = run("limit --store " + f.url() + " --rate 2/h --key k --algorithm token_bucket");
    CHECK(r.code == 75);
    CHECK(r.out.find("{\"allowed\":false") == 0);
    CHECK(r.out.find("\"store\":\"" + f.url() + "\"") != std::string::npos);
    // --prefix keeps keys apart.
    CHECK(run("limit --store " + f.url() +
              " --rate 2/h --key k --algorithm token_bucket --prefix other:")
              .code == 0);
}

TEST_CASE("thirty concurrent limit processes on a SQL store at limit 10 admit exactly 10",
          "[cli][limit][sql]") {
    sqlite_file f;
    std::vector<std::string> urls{f.url()};
    if (const auto pg = srl_test::postgres_url()) urls.push_back(*pg);
    for (const auto& url : urls) {
        REQUIRE(run("migrate --database '" + url + "'").code == 0);
        for (const char* alg : {"fixed_window", "sliding_window", "token_bucket", "leaky_bucket"}) {
            const std::string key = "cli:sqlrace:" + std::to_string(::getpid()) + ":" + alg;
            const std::string cmd = "for i in $(seq 30); do (" + std::string(SRL_TOOL_PATH) +
                                    " limit --store '" + url + "' --rate 10/h --algorithm " + alg +
                                    " --key " + key +
                                    " >/dev/null 2>&1; echo $?) & done | sort | uniq -c";
            FILE* p = ::popen(cmd.c_str(), "r");
            REQUIRE(p != nullptr);
            std::string out;
            char buf[256];
            std::size_t n = 0;
            while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
            ::pclose(p);
            INFO(url << " " << alg << ":\n" << out);
            // Exactly ten 0s and twenty 75s: nothing over-admitted, nothing failed.
            CHECK(out.find(" 10 0\n") != std::string::npos);
            CHECK(out.find(" 20 75\n") != std::string::npos);
        }
    }
}
