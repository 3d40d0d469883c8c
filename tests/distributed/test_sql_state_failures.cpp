// tests/distributed/test_sql_state_failures.cpp
// The SQL state storage against a private PostgreSQL this test starts on a free
// 127.0.0.1 port (initdb in a temporary directory, as the postgres user when run
// as root), stops mid-run (immediate shutdown) and starts again: every call gets
// its policy's answer, the breaker opens, and service recovers with state intact.
// Also frozen mid-run (SIGSTOP to its process group) under resilient_storage's
// bounded-wait mode: every call is answered by the policy within the timeout.
#include <catch2/catch.hpp>

#include "../support/test_env.hpp"

#include <smart_ratelimit/clock.hpp>
#include <smart_ratelimit/soci/state_storage.hpp>
#include <smart_ratelimit/storage/resilient_storage.hpp>

#include <arpa/inet.h>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <vector>
#include <netinet/in.h>
#include <pwd.h>
#include <string>
#include <sys/socket.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

namespace srl = smart_ratelimit;
namespace ssql = smart_ratelimit::soci;
using namespace std::chrono_literals;

namespace {

int free_port() {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
    socklen_t len = sizeof a;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    ::close(fd);
    return ntohs(a.sin_port);
}

/// A private PostgreSQL server; stopped by its own PID.
class private_postgres {
public:
    private_postgres() {
        const char* b = std::getenv("SMART_RATELIMIT_TEST_PG_BIN");
        bin_ = b != nullptr ? b : "/usr/lib/postgresql/15/bin";
        char tmpl[] = "/tmp/srl-sqlpg.XXXXXX";
        REQUIRE(::mkdtemp(tmpl) != nullptr);
        dir_ = tmpl;
        if (::getuid() == 0) {
            const passwd* pw = ::getpwnam("postgres");
            REQUIRE(pw != nullptr);
            uid_ = pw->pw_uid;
            gid_ = pw->pw_gid;
            REQUIRE(::chown(dir_.c_str(), uid_, gid_) == 0);
        }
        const std::string as = ::getuid() == 0 ? "setpriv --reuid=postgres --regid=postgres --init-groups " : "";
        const std::string init = as + bin_ + "/initdb -D " + dir_ + "/pg -U srl --auth=trust -E UTF8 --locale=C.UTF-8 >" +
                                 dir_ + "/initdb.log 2>&1";
        REQUIRE(std::system(init.c_str()) == 0);
        port_ = free_port();
        start();
        REQUIRE(std::system((bin_ + "/createdb -h 127.0.0.1 -p " + std::to_string(port_) + " -U srl srl_test").c_str()) ==
                0);
    }
    ~private_postgres() {
        stop(SIGINT);
        std::system(("rm -rf " + dir_).c_str());
    }
    std::string url() const { return "postgresql://srl@127.0.0.1:" + std::to_string(port_) + "/srl_test?connect_timeout=2"; }

    void start() {
        pid_ = ::fork();
        REQUIRE(pid_ >= 0);
        if (pid_ == 0) {
            const int log = ::open((dir_ + "/pg.log").c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
            ::dup2(log, 1);
            ::dup2(log, 2);
            if (::getuid() == 0 && (::setgid(gid_) != 0 || ::setuid(uid_) != 0)) ::_exit(127);
            const std::string postgres = bin_ + "/postgres", data = dir_ + "/pg", port = std::to_string(port_),
                              sockets = "unix_socket_directories=" + dir_;
            ::execl(postgres.c_str(), postgres.c_str(), "-D", data.c_str(), "-p", port.c_str(), "-c",
                    "listen_addresses=127.0.0.1", "-c", sockets.c_str(), "-c", "fsync=off", static_cast<char*>(nullptr));
            ::_exit(127);
        }
        const std::string ready = bin_ + "/pg_isready -q -h 127.0.0.1 -p " + std::to_string(port_);
        for (int i = 0; i < 600; ++i) {  // up to a minute on a busy machine
            if (std::system(ready.c_str()) == 0) return;
            std::this_thread::sleep_for(100ms);
        }
        FAIL("private PostgreSQL did not start; see " + dir_ + "/pg.log");
    }

    /// Freezes the server: SIGSTOP to the postmaster (so it forks no one), then to each
    /// of its children (backends run in their own sessions); thaw() resumes them all.
    void freeze() {
        REQUIRE(pid_ > 0);
        REQUIRE(::kill(pid_, SIGSTOP) == 0);
        frozen_ = children();
        for (const pid_t c : frozen_) ::kill(c, SIGSTOP);
    }
    void thaw() {
        for (const pid_t c : frozen_) ::kill(c, SIGCONT);
        frozen_.clear();
        if (pid_ > 0) ::kill(pid_, SIGCONT);
    }

    /// Stops the server (SIGQUIT: immediate shutdown, like a crash) and waits for it.
    void stop(int sig = SIGQUIT) {
        if (pid_ <= 0) return;
        thaw();
        ::kill(pid_, sig);
        int st = 0;
        for (int i = 0; i < 300; ++i) {
            if (::waitpid(pid_, &st, WNOHANG) == pid_) {
                pid_ = -1;
                return;
            }
            std::this_thread::sleep_for(100ms);
        }
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, &st, 0);
        pid_ = -1;
    }

private:
    std::vector<pid_t> children() const {
        std::vector<pid_t> out;
        for (const auto& e : std::filesystem::directory_iterator("/proc")) {
            const std::string name = e.path().filename().string();
            if (name.find_first_not_of("0123456789") != std::string::npos) continue;
            std::ifstream stat(e.path() / "stat");
            std::string line;
            if (!std::getline(stat, line)) continue;
            const auto close = line.rfind(')');  // "pid (comm) state ppid ..."
            if (close == std::string::npos) continue;
            std::istringstream rest(line.substr(close + 1));
            char state = 0;
            long ppid = 0;
            if (rest >> state >> ppid && ppid == pid_) out.push_back(static_cast<pid_t>(std::stol(name)));
        }
        return out;
    }

    std::vector<pid_t> frozen_;
    std::string bin_, dir_;
    int port_ = 0;
    pid_t pid_ = -1;
    uid_t uid_ = 0;
    gid_t gid_ = 0;
};

}  // namespace

TEST_CASE("sql state: PostgreSQL stopped mid-run gets the policy's answers, opens the breaker and recovers",
          "[sql_state][failure][postgresql]") {
    if (!srl_test::postgres_url()) return;  // the PostgreSQL binaries come with the shared server's setup
    private_postgres pg;
    {
        auto sql = ssql::open_session(ssql::parse_database_url(pg.url()));
        const ssql::migration_set sets[] = {ssql::state_migrations};
        ssql::migrate(*sql, ssql::dialect::postgresql, sets);
    }
    ssql::sql_state_options o;
    o.errors = ssql::on_error::raise;
    srl::resilience_options ro;
    ro.failure_threshold = 2;
    ro.open_for = 5s;
    ro.timeout = 60s;
    srl::manual_clock clock;
    srl::resilient_storage<ssql::sql_state_storage, srl::no_failover, srl::manual_clock> s(
        ssql::sql_state_storage(pg.url(), o), ro, {}, clock);
    const srl::any_algorithm a("token_bucket", srl::rate{100, 1h});
    CHECK(s.acquire("k", a, 0ns, 1).allowed);
    CHECK(s.acquire("k", a, 0ns, 1).allowed);

    pg.stop();
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

namespace {
// Resumes a frozen server when the scope ends, before the decorator's destructor waits
// for its workers (a failed check must not leave a call stuck on a frozen server).
struct thaw_on_exit {
    private_postgres& pg;
    ~thaw_on_exit() { pg.thaw(); }
};
}  // namespace

TEST_CASE("sql state: PostgreSQL frozen mid-run (SIGSTOP) gets degraded answers within the bounded wait, "
          "opens the breaker and recovers after SIGCONT",
          "[sql_state][failure][postgresql][bounded_wait]") {
    if (!srl_test::postgres_url()) return;
    private_postgres pg;
    {
        auto sql = ssql::open_session(ssql::parse_database_url(pg.url()));
        const ssql::migration_set sets[] = {ssql::state_migrations};
        ssql::migrate(*sql, ssql::dialect::postgresql, sets);
    }
    const srl::any_algorithm a("token_bucket", srl::rate{100, 1h});
    for (const std::string key : {"frozen-1", "frozen-2"}) {  // twice: a second freeze after recovery
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
            ssql::sql_state_storage(pg.url(), o), ro, {}, clock);
        thaw_on_exit thaw{pg};
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
        while (s.stats().late_completions < s.stats().timed_out && std::chrono::steady_clock::now() < end)
            std::this_thread::sleep_for(10ms);
        REQUIRE(s.stats().late_completions == s.stats().timed_out);
        // Service comes back by itself: once the open period ends a probe gets through
        // (retried, since one probe may still be slow on a loaded machine).
        bool recovered = false;
        for (int i = 0; i < 20 && !recovered; ++i) {
            clock.advance(6s);
            recovered = s.acquire(key, a, 0ns, 1).allowed && s.state() == srl::breaker_state::closed;
        }
        CHECK(recovered);
        CHECK(s.stats().recovered >= 1);
        const auto p = s.primary().peek(key, a, 0ns, 1);
        CHECK(p.allowed);
        CHECK(p.count >= 4);  // the two healthy acquires, the probe, and this peek's unit
    }
}
