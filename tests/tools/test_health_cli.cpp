// tests/tools/test_health_cli.cpp
// `smart-ratelimit health`, run as built: a migrated SQLite file is healthy (0);
// an un-migrated or partly migrated one is unhealthy (1) naming the sets behind;
// a missing file is unreachable (69) and still missing afterwards, also through
// RATELIMIT_DATABASE_URL and the default URL; PostgreSQL healthy and with nothing
// listening (69, password redacted); --json parses; bad arguments are 64.
#include <catch2/catch.hpp>

#include "support/run_tool.hpp"
#include "support/temp_dir.hpp"
#include "support/test_env.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#include <smart_ratelimit/detail/json_reader.hpp>
#include <smart_ratelimit/soci/event_store.hpp>
#include <smart_ratelimit/soci/health.hpp>

namespace fs = std::filesystem;
namespace sq = smart_ratelimit::soci;
namespace sd = smart_ratelimit::detail;
using srl_test::run_tool;
using srl_test::slurp;

namespace {

bool contains(const std::string& s, const std::string& part) {
    return s.find(part) != std::string::npos;
}

/// The parsed --json output: status, and each check's name -> (ok, detail).
struct parsed_report {
    std::string status;
    std::vector<std::tuple<std::string, bool, std::string>> checks;
};

parsed_report parse_report(const std::string& text) {
    const auto root = sd::json_reader::parse(text, "health --json");
    parsed_report r;
    const auto* obj = root.as_object();
    REQUIRE(obj != nullptr);
    for (const auto& [k, v] : *obj) {
        if (k == "status") {
            REQUIRE(v.as_string() != nullptr);
            r.status = *v.as_string();
        } else if (k == "checks") {
            REQUIRE(v.as_array() != nullptr);
            for (const auto& c : *v.as_array()) {
                std::string name, detail;
                bool ok = false;
                REQUIRE(c.as_object() != nullptr);
                for (const auto& [ck, cv] : *c.as_object()) {
                    if (ck == "name") name = *cv.as_string();
                    if (ck == "ok") ok = *cv.as_bool();
                    if (ck == "detail") detail = *cv.as_string();
                }
                r.checks.emplace_back(name, ok, detail);
            }
        }
    }
    return r;
}

/// A TCP port on 127.0.0.1 where nothing listens: bound (so nobody else takes it)
/// but never listening, so connecting is refused at once. Released on destruction.
class closed_port {
public:
    closed_port() {
        fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
        REQUIRE(fd_ >= 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        REQUIRE(::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
        socklen_t len = sizeof a;
        REQUIRE(::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len) == 0);
        port_ = ntohs(a.sin_port);
    }
    ~closed_port() { ::close(fd_); }
    closed_port(const closed_port&) = delete;
    closed_port& operator=(const closed_port&) = delete;
    int port() const noexcept { return port_; }

private:
    int fd_ = -1;
    int port_ = 0;
};

}  // namespace

TEST_CASE("health is 0 on a migrated SQLite database and prints one summary line",
          "[tools][health]") {
    srl_test::temp_dir dir("health");
    const std::string url = dir.sqlite_url();
    REQUIRE(run_tool({"migrate", "--database", url}, dir.path()).status == 0);

    const auto r = run_tool({"health", "--database", url}, dir.path());
    INFO(r.out << r.err);
    CHECK(r.status == 0);
    CHECK(r.out.rfind("health: ok | database ok: ", 0) == 0);
    CHECK(contains(r.out, "migrations ok: current: events v4, analytics v"));
    CHECK(contains(r.out, "state v2"));
    CHECK(std::count(r.out.begin(), r.out.end(), '\n') == 1);
    CHECK(r.err.empty());

    const auto quiet = run_tool({"health", "--quiet", "--database", url}, dir.path());
    CHECK(quiet.status == 0);
    CHECK(quiet.out.empty());

    // The same database through RATELIMIT_DATABASE_URL.
    CHECK(run_tool({"health"}, dir.path(), {"RATELIMIT_DATABASE_URL=" + url}).status == 0);
}

TEST_CASE("health --json prints a report that parses, with every check named", "[tools][health]") {
    srl_test::temp_dir dir("health");
    const std::string url = dir.sqlite_url();
    REQUIRE(run_tool({"migrate", "--database", url}, dir.path()).status == 0);
    const auto ok = run_tool({"health", "--json", "--database", url}, dir.path());
    REQUIRE(ok.status == 0);
    const auto report = parse_report(ok.out);
    CHECK(report.status == "ok");
    REQUIRE(report.checks.size() == 2);
    CHECK(std::get<0>(report.checks[0]) == "database");
    CHECK(std::get<1>(report.checks[0]));
    CHECK(std::get<0>(report.checks[1]) == "migrations");
    CHECK(std::get<1>(report.checks[1]));

    const auto missing =
        run_tool({"health", "--json", "--database", dir.sqlite_url("missing.db")}, dir.path());
    CHECK(missing.status == 69);
    const auto down = parse_report(missing.out);
    CHECK(down.status == "unhealthy");
    REQUIRE(down.checks.size() == 2);
    CHECK_FALSE(std::get<1>(down.checks[0]));
    CHECK(contains(std::get<2>(down.checks[0]), "no database file"));
    CHECK_FALSE(std::get<1>(down.checks[1]));
}

TEST_CASE("health is 1 on an un-migrated SQLite file and names every set behind",
          "[tools][health]") {
    srl_test::temp_dir dir("health");
    const std::string url = dir.sqlite_url();
    {
        // An existing database with no schema of ours.
        auto sql = sq::open_session(sq::parse_database_url(url));
        *sql << "CREATE TABLE unrelated (x INTEGER)";
    }
    const auto r = run_tool({"health", "--database", url}, dir.path());
    INFO(r.out << r.err);
    CHECK(r.status == 1);
    CHECK(r.out.rfind("health: unhealthy | database ok: ", 0) == 0);
    CHECK(contains(r.out, "migrations FAILED: behind: events v0 < v4, analytics v0 < v"));
    CHECK(contains(r.out, "alerts v0 < v1, state v0 < v2 (run migrate)"));
}

TEST_CASE("health is 1 when one migration set is behind and 0 when one is newer than the build",
          "[tools][health]") {
    srl_test::temp_dir dir("health");
    const std::string url = dir.sqlite_url();
    REQUIRE(run_tool({"migrate", "--database", url}, dir.path()).status == 0);
    {
        auto sql = sq::open_session(sq::parse_database_url(url));
        *sql << "DELETE FROM ratelimit_schema_version WHERE component = 'state'";
    }
    auto r = run_tool({"health", "--database", url}, dir.path());
    INFO(r.out << r.err);
    CHECK(r.status == 1);
    CHECK(contains(r.out,
                   "migrations FAILED: behind: state v0 < v2 (run migrate); current: events v4"));

    REQUIRE(run_tool({"migrate", "--database", url}, dir.path()).status == 0);
    {
        auto sql = sq::open_session(sq::parse_database_url(url));
        *sql << "INSERT INTO ratelimit_schema_version (component, version, description)"
                " VALUES ('events', 99, 'from a newer build')";
    }
    r = run_tool({"health", "--database", url}, dir.path());
    CHECK(r.status == 0);
    CHECK(contains(r.out,
                   "migrations ok: newer than this build: events v99 > v4; current: analytics v"));
}

TEST_CASE("health is 69 for a missing SQLite file and never creates it", "[tools][health]") {
    srl_test::temp_dir dir("health");
    const fs::path file = dir.path() / "absent.db";
    const auto r = run_tool({"health", "--database", dir.sqlite_url("absent.db")}, dir.path());
    INFO(r.out << r.err);
    CHECK(r.status == 69);
    CHECK(contains(r.out, "database FAILED: no database file at sqlite:///"));
    CHECK(contains(r.out, "migrations FAILED: not checked"));
    CHECK_FALSE(fs::exists(file));

    // The same through RATELIMIT_DATABASE_URL, and the default file in the working directory.
    CHECK(
        run_tool({"health"}, dir.path(), {"RATELIMIT_DATABASE_URL=" + dir.sqlite_url("absent.db")})
            .status == 69);
    CHECK(run_tool({"health"}, dir.path()).status == 69);
    CHECK_FALSE(fs::exists(file));
    CHECK_FALSE(fs::exists(dir.path() / "smart_ratelimit.db"));
    for (const auto& entry : fs::directory_iterator(dir.path()))
        CHECK(entry.path().extension() == ".txt");  // only the captured outputs
}

TEST_CASE("health is 69 for a file that is not a database, and leaves it as it was",
          "[tools][health]") {
    srl_test::temp_dir dir("health");
    const fs::path file = dir.path() / "junk.db";
    std::ofstream(file) << "this is not a database, just some text long enough to be a header\n";
    const auto before = slurp(file);
    const auto r = run_tool({"health", "--database", dir.sqlite_url("junk.db")}, dir.path());
    CHECK(r.status == 69);
    CHECK(contains(r.out, "not a database"));
    CHECK(slurp(file) == before);
}

TEST_CASE("health on PostgreSQL is 0 after migrate", "[tools][health][postgresql]") {
    const auto pg = srl_test::postgres_url();
    if (!pg) return;
    srl_test::temp_dir dir("health");
    REQUIRE(run_tool({"migrate", "--database", *pg}, dir.path()).status == 0);
    const auto r = run_tool({"health", "--database", *pg}, dir.path());
    INFO(r.out << r.err);
    CHECK(r.status == 0);
    CHECK(contains(r.out, "migrations ok: current: events v4"));
    const auto json = run_tool({"health", "--json"}, dir.path(), {"RATELIMIT_DATABASE_URL=" + *pg});
    CHECK(json.status == 0);
    CHECK(parse_report(json.out).status == "ok");
}

TEST_CASE(
    "health is 69 when nothing listens at the PostgreSQL address, without showing the password",
    "[tools][health][postgresql]") {
    srl_test::temp_dir dir("health");
    closed_port port;
    const std::string url =
        "postgresql://srl:s3cret-pass@127.0.0.1:" + std::to_string(port.port()) + "/srl";
    const auto r = run_tool({"health", "--database", url, "--timeout", "2"}, dir.path());
    INFO(r.out << r.err);
    CHECK(r.status == 69);
    CHECK(contains(r.out, "database FAILED: cannot query postgresql://srl:***@127.0.0.1:"));
    CHECK_FALSE(contains(r.out, "s3cret-pass"));
    CHECK_FALSE(contains(r.err, "s3cret-pass"));
    const auto json = run_tool({"health", "--json", "--database", url}, dir.path());
    CHECK(json.status == 69);
    CHECK(parse_report(json.out).status == "unhealthy");
    CHECK_FALSE(contains(json.out, "s3cret-pass"));
}

TEST_CASE("health rejects bad arguments with 64 and documents its exit codes", "[tools][health]") {
    srl_test::temp_dir dir("health");
    CHECK(run_tool({"health", "--json", "--quiet"}, dir.path()).status == 64);
    CHECK(run_tool({"health", "--bogus"}, dir.path()).status == 64);
    CHECK(run_tool({"health", "extra"}, dir.path()).status == 64);
    CHECK(run_tool({"health", "--timeout", "0"}, dir.path()).status == 64);
    CHECK(run_tool({"health", "--database", "mysql://x/y"}, dir.path()).status == 64);
    const auto help = run_tool({"health", "--help"}, dir.path());
    CHECK(help.status == 0);
    for (const char* code :
         {"0   healthy", "1   unhealthy", "64  bad arguments", "69  the database cannot"})
        CHECK(contains(help.out, code));
    CHECK_FALSE(fs::exists(dir.path() / "smart_ratelimit.db"));
}

TEST_CASE("check_database on a database_url built by hand names it without the password",
          "[soci][health]") {
    closed_port port;
    sq::database_url url;
    url.kind = sq::dialect::postgresql;
    url.user = "srl";
    url.password = "hunter2-secret";
    url.host = "127.0.0.1";
    url.port = std::to_string(port.port());
    url.dbname = "srl";
    const std::vector<sq::migration_set> sets{sq::event_log_migrations};
    sq::database_check_options o;
    o.timeout = std::chrono::seconds(2);
    const auto report = sq::check_database(url, sets, o);
    CHECK_FALSE(report.ok());
    REQUIRE(report.checks.size() == 2);
    CHECK(report.checks[0].name == sq::database_check_name);
    CHECK(contains(report.checks[0].detail, "postgresql://srl:***@127.0.0.1:" + url.port + "/srl"));
    CHECK_FALSE(contains(report.to_json(), "hunter2-secret"));
    CHECK(report.checks[1] == smart_ratelimit::health_check{
                                  "migrations", false, "not checked: the database is unreachable"});

    srl_test::temp_dir dir("health");
    const auto missing = sq::check_database(dir.sqlite_url("nope.db"), sets);
    CHECK_FALSE(missing.ok());
    CHECK_FALSE(fs::exists(dir.path() / "nope.db"));
}
