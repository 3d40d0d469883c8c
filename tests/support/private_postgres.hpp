// tests/support/private_postgres.hpp
// A private PostgreSQL server for one test: initdb in a temporary directory, then
// postgres on a free port bound to 127.0.0.1 only (its socket directory private too),
// run as the postgres user when the tests run as root. A test may stop it cleanly,
// kill it (SIGKILL: a crash), freeze it (SIGSTOP) and thaw it, and start it again on
// the same port with its data intact. Every process is signalled by its own PID (the
// postmaster's, and its children's as read from /proc), never by name.
// Needs SMART_RATELIMIT_TEST_PG_BIN (set by scripts/test-servers.sh); without it the
// object is empty (false) and does nothing.
#pragma once

#include "support/free_port.hpp"
#include "support/test_env.hpp"

#include <catch2/catch.hpp>

#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

namespace srl_test {

class private_postgres {
public:
    /// Runs initdb (user srl, trust authentication); the server is not started yet.
    /// It will listen on `port`, or on a free port when 0.
    explicit private_postgres(int port = 0) {
        const auto bin = env("SMART_RATELIMIT_TEST_PG_BIN");
        if (!bin) return;
        bin_ = *bin;
        std::string tmpl = (std::filesystem::temp_directory_path() / "srl-pg-XXXXXX").string();
        REQUIRE(::mkdtemp(tmpl.data()) != nullptr);
        dir_ = tmpl;
        if (::geteuid() == 0) {
            const passwd* pw = ::getpwnam("postgres");
            REQUIRE(pw != nullptr);
            uid_ = pw->pw_uid;
            gid_ = pw->pw_gid;
            as_postgres_ = true;
            REQUIRE(::chown(dir_.c_str(), uid_, gid_) == 0);
        }
        const int rc = run({bin_ + "/initdb", "-D", dir_ + "/data", "-U", "srl", "--auth=trust",
                            "-E", "UTF8", "--locale=C.UTF-8"},
                           as_postgres_, dir_ + "/initdb.log");
        if (rc != 0) FAIL("initdb failed with status " << rc << "; see " << dir_ << "/initdb.log");
        port_ = port != 0 ? port : free_port();
    }
    ~private_postgres() {
        if (dir_.empty()) return;
        stop();
        std::error_code ec;
        std::filesystem::remove_all(dir_, ec);
    }
    private_postgres(const private_postgres&) = delete;
    private_postgres& operator=(const private_postgres&) = delete;

    /// False when SMART_RATELIMIT_TEST_PG_BIN is not set (nothing was created).
    explicit operator bool() const noexcept { return !dir_.empty(); }
    int port() const noexcept { return port_; }
    /// The postmaster's PID, or -1 when not running.
    pid_t pid() const noexcept { return pid_; }
    bool running() const noexcept { return pid_ > 0; }
    /// A URL for `database` as user srl; connecting gives up after 2 s (a frozen server).
    std::string url(const std::string& database = "postgres") const {
        return "postgresql://srl@127.0.0.1:" + std::to_string(port_) + "/" + database +
               "?connect_timeout=2";
    }

    /// Starts the server (again: same port, same data) and waits until it accepts
    /// connections (up to a minute on a busy machine). The first start moves to
    /// another free port when the server exits at once: a test beside this one took
    /// the port first.
    void start() {
        REQUIRE(*this);
        REQUIRE(pid_ <= 0);
        for (int attempt = 0; attempt < 5; ++attempt) {
            if (try_start()) {
                started_ = true;
                return;
            }
            if (started_) break;
            port_ = free_port();
        }
        FAIL("postgres exited during start-up; see " << dir_ << "/pg.log");
    }

    /// Creates a database (the server must be running).
    void create_database(const std::string& name) {
        REQUIRE(run({bin_ + "/createdb", "-h", "127.0.0.1", "-p", std::to_string(port_), "-U",
                     "srl", name},
                    false, dir_ + "/createdb.log") == 0);
    }

    /// Fast clean shutdown (SIGINT), waited for; SIGKILL if it takes over 30 s.
    void stop() {
        if (pid_ <= 0) return;
        thaw();
        ::kill(pid_, SIGINT);
        if (!reap(std::chrono::seconds(30))) {
            kill();
            return;
        }
        pid_ = -1;
    }

    /// Kills the server like a crash: SIGKILL to the postmaster and to each of its
    /// children (a frozen server too), then waits until every one of them is gone, so
    /// that start() can run again on the same port and data (crash recovery).
    void kill() {
        if (pid_ <= 0) return;
        const auto kids = children();
        ::kill(pid_, SIGKILL);
        for (const pid_t c : kids) ::kill(c, SIGKILL);
        int status = 0;
        ::waitpid(pid_, &status, 0);
        pid_ = -1;
        frozen_.clear();
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
        for (const pid_t c : kids)
            while (alive(c) && std::chrono::steady_clock::now() < deadline)
                std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }

    /// kill() then start(): a crash and a restart on the same port.
    void restart() {
        kill();
        start();
    }

    /// Freezes the server: SIGSTOP to the postmaster (so it forks no one), then to
    /// each of its children (backends run in their own sessions). Connections stay
    /// open and nothing answers; new connections wait in the listen backlog.
    void freeze() {
        REQUIRE(pid_ > 0);
        REQUIRE(::kill(pid_, SIGSTOP) == 0);
        frozen_ = children();
        for (const pid_t c : frozen_) ::kill(c, SIGSTOP);
        postmaster_frozen_ = true;
    }
    /// Resumes what freeze() stopped (nothing when not frozen).
    void thaw() {
        for (const pid_t c : frozen_) ::kill(c, SIGCONT);
        frozen_.clear();
        if (postmaster_frozen_ && pid_ > 0) ::kill(pid_, SIGCONT);
        postmaster_frozen_ = false;
    }
    bool frozen() const noexcept { return postmaster_frozen_; }

private:
    /// Starts postgres on port_; true once it accepts connections, false when it
    /// exited first.
    bool try_start() {
        pid_ = spawn({bin_ + "/postgres", "-D", dir_ + "/data", "-p", std::to_string(port_), "-c",
                      "listen_addresses=127.0.0.1", "-c", "unix_socket_directories=" + dir_, "-c",
                      "fsync=off"},
                     as_postgres_, dir_ + "/pg.log");
        REQUIRE(pid_ > 0);
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
        while (std::chrono::steady_clock::now() < deadline) {
            if (ready()) return true;
            int status = 0;
            if (::waitpid(pid_, &status, WNOHANG) == pid_) {
                pid_ = -1;
                return false;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
        }
        kill();
        FAIL("postgres did not start within 60 s; see " << dir_ << "/pg.log");
        return false;
    }

    /// Ready when it answers on the socket in our own directory: only our server can
    /// (on the TCP port, another test's server might), and ours listens there only
    /// once it has bound its TCP port too.
    bool ready() const {
        return run({bin_ + "/pg_isready", "-q", "-h", dir_, "-p", std::to_string(port_)}, false,
                   "/dev/null") == 0;
    }

    bool reap(std::chrono::seconds limit) {
        const auto deadline = std::chrono::steady_clock::now() + limit;
        int status = 0;
        while (std::chrono::steady_clock::now() < deadline) {
            if (::waitpid(pid_, &status, WNOHANG) == pid_) return true;
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
        return false;
    }

    /// Starts argv (as the postgres user when `as_postgres`), output appended to `log`.
    pid_t spawn(const std::vector<std::string>& argv, bool as_postgres,
                const std::string& log) const {
        const pid_t pid = ::fork();
        if (pid != 0) return pid;
        const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) {
            ::dup2(fd, 1);
            ::dup2(fd, 2);
        }
        if (as_postgres &&
            (::setgroups(0, nullptr) != 0 || ::setgid(gid_) != 0 || ::setuid(uid_) != 0))
            ::_exit(126);
        std::vector<char*> args;
        for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
        args.push_back(nullptr);
        ::execv(args[0], args.data());
        ::_exit(127);
    }
    /// Runs argv to completion; its exit status, or -1.
    int run(const std::vector<std::string>& argv, bool as_postgres, const std::string& log) const {
        const pid_t pid = spawn(argv, as_postgres, log);
        if (pid < 0) return -1;
        int status = 0;
        ::waitpid(pid, &status, 0);
        return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    }

    /// The postmaster's children, from /proc ("pid (comm) state ppid ...").
    std::vector<pid_t> children() const {
        std::vector<pid_t> out;
        std::error_code ec;
        for (const auto& e : std::filesystem::directory_iterator("/proc", ec)) {
            const std::string name = e.path().filename().string();
            if (name.find_first_not_of("0123456789") != std::string::npos) continue;
            std::ifstream stat(e.path() / "stat");
            std::string line;
            if (!std::getline(stat, line)) continue;
            const auto close = line.rfind(')');
            if (close == std::string::npos) continue;
            std::istringstream rest(line.substr(close + 1));
            char state = 0;
            long ppid = 0;
            if (rest >> state >> ppid && ppid == pid_)
                out.push_back(static_cast<pid_t>(std::stol(name)));
        }
        return out;
    }
    /// True while `p` exists and is not a zombie.
    static bool alive(pid_t p) {
        std::ifstream stat("/proc/" + std::to_string(p) + "/stat");
        std::string line;
        if (!std::getline(stat, line)) return false;
        const auto close = line.rfind(')');
        return close != std::string::npos && close + 2 < line.size() && line[close + 2] != 'Z';
    }

    std::string bin_, dir_;
    bool as_postgres_ = false;
    uid_t uid_ = 0;
    gid_t gid_ = 0;
    int port_ = 0;
    pid_t pid_ = -1;
    std::vector<pid_t> frozen_;
    bool postmaster_frozen_ = false;
    bool started_ = false;  // once started, start() keeps the port (a restart)
};

/// Thaws a frozen server when the scope ends, before any storage that is stuck on it
/// is destroyed (a failed check must not leave a call waiting on a frozen server).
struct thaw_on_exit {
    private_postgres& pg;
    ~thaw_on_exit() { pg.thaw(); }
};

}  // namespace srl_test
