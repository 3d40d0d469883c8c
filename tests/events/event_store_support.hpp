// tests/events/event_store_support.hpp
// Helpers for the event store and CLI tests: temporary directories, one fresh
// PostgreSQL database per test on the shared server, and a private PostgreSQL
// server (initdb + postgres on a free loopback port) that a test may kill and
// restart. Every process is stopped by its own PID.
#pragma once

#include "support/temp_dir.hpp"
#include "support/test_env.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <smart_ratelimit/soci.hpp>

namespace srl_test {

namespace srl = smart_ratelimit;
namespace fs = std::filesystem;

inline std::string random_suffix() {
    static std::mt19937_64 rng{std::random_device{}()};
    return std::to_string(rng() % 1'000'000'000ULL);
}


/// A fresh, empty PostgreSQL database on the shared test server, dropped on
/// destruction. `url()` is empty when no server is configured.
class pg_database {
public:
    explicit pg_database(const std::string& tag) {
        const auto base = postgres_url();
        if (!base) return;
        base_ = *base;
        name_ = "srl_" + tag + "_" + std::to_string(::getpid()) + "_" + random_suffix();
        auto admin = srl::soci::open_session(srl::soci::parse_database_url(base_));
        *admin << "CREATE DATABASE " + name_;
        url_ = base_.substr(0, base_.rfind('/') + 1) + name_;
    }
    ~pg_database() {
        if (url_.empty()) return;
        try {
            auto admin = srl::soci::open_session(srl::soci::parse_database_url(base_));
            *admin << "DROP DATABASE IF EXISTS " + name_ + " WITH (FORCE)";
        } catch (...) {
        }
    }
    pg_database(const pg_database&) = delete;
    pg_database& operator=(const pg_database&) = delete;
    const std::string& url() const { return url_; }
    explicit operator bool() const { return !url_.empty(); }

private:
    std::string base_, name_, url_;
};

/// A TCP port on 127.0.0.1 that was free a moment ago.
inline int free_port() {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = 0;
    ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
    socklen_t len = sizeof a;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    const int port = ntohs(a.sin_port);
    ::close(fd);
    return port;
}

/// Runs argv, waits, returns the exit status (-1 when it could not run).
inline int run_process(const std::vector<std::string>& argv) {
    const pid_t pid = ::fork();
    if (pid == 0) {
        std::vector<char*> args;
        for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
        args.push_back(nullptr);
        const int devnull = ::open("/dev/null", O_WRONLY);
        if (devnull >= 0) {
            ::dup2(devnull, 1);
            ::dup2(devnull, 2);
        }
        ::execv(args[0], args.data());
        ::_exit(127);
    }
    int status = 0;
    ::waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/// A private PostgreSQL server in a temporary directory, on a free loopback port.
/// Needs SMART_RATELIMIT_TEST_PG_BIN (set by scripts/test-servers.sh).
class private_postgres {
public:
    private_postgres() {
        const auto bin = env("SMART_RATELIMIT_TEST_PG_BIN");
        if (!bin) return;
        bin_ = *bin;
        dir_ = fs::temp_directory_path() / ("srl-pg-" + std::to_string(::getpid()) + "-" + random_suffix());
        fs::create_directories(dir_);
        as_root_ = ::geteuid() == 0;
        if (as_root_) run_process({"/bin/chown", "postgres:", dir_.string()});
        const int rc = run_process(wrap({bin_ + "/initdb", "-D", (dir_ / "data").string(), "-U", "srl",
                                         "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8"}));
        if (rc != 0) FAIL("initdb failed with status " << rc);
        port_ = free_port();
        ok_ = true;
    }
    ~private_postgres() {
        stop();
        std::error_code ec;
        fs::remove_all(dir_, ec);
    }
    private_postgres(const private_postgres&) = delete;
    private_postgres& operator=(const private_postgres&) = delete;

    explicit operator bool() const { return ok_; }
    std::string url() const { return "postgresql://srl@127.0.0.1:" + std::to_string(port_) + "/postgres"; }

    /// Starts the server and waits until it accepts connections.
    void start() {
        REQUIRE(ok_);
        REQUIRE(pid_ <= 0);
        auto argv = wrap({bin_ + "/postgres", "-D", (dir_ / "data").string(), "-p", std::to_string(port_),
                          "-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories=" + dir_.string(),
                          "-c", "fsync=off"});  // a killed server keeps every commit it acknowledged
        pid_ = ::fork();
        if (pid_ == 0) {
            std::vector<char*> args;
            for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
            args.push_back(nullptr);
            const int log = ::open((dir_ / "pg.log").c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
            if (log >= 0) {
                ::dup2(log, 1);
                ::dup2(log, 2);
            }
            ::execv(args[0], args.data());
            ::_exit(127);
        }
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
        while (std::chrono::steady_clock::now() < deadline) {
            if (run_process({bin_ + "/pg_isready", "-q", "-h", "127.0.0.1", "-p", std::to_string(port_)}) == 0)
                return;
            int status = 0;
            if (::waitpid(pid_, &status, WNOHANG) == pid_) {
                pid_ = -1;
                FAIL("postgres exited during start-up");
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
        }
        FAIL("postgres did not start within 60 s");
    }

    /// Kills the server (SIGKILL: a crash, no clean shutdown) and reaps it.
    void kill() { signal_and_wait(SIGKILL); }
    /// Fast clean shutdown.
    void stop() { signal_and_wait(SIGINT); }

private:
    std::vector<std::string> wrap(std::vector<std::string> argv) const {
        if (!as_root_) return argv;
        std::vector<std::string> out{"/usr/bin/setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups"};
        out.insert(out.end(), argv.begin(), argv.end());
        return out;
    }
    void signal_and_wait(int sig) {
        if (pid_ <= 0) return;
        ::kill(pid_, sig);
        int status = 0;
        ::waitpid(pid_, &status, 0);
        pid_ = -1;
        if (sig == SIGKILL) {
            // Children of a killed postmaster exit on their own once it is gone;
            // the port is free again when nothing accepts on it.
            const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
            while (std::chrono::steady_clock::now() < deadline &&
                   run_process({bin_ + "/pg_isready", "-q", "-h", "127.0.0.1", "-p", std::to_string(port_)}) == 0)
                std::this_thread::sleep_for(std::chrono::milliseconds(50));
        }
    }

    std::string bin_;
    fs::path dir_;
    bool as_root_ = false;
    bool ok_ = false;
    int port_ = 0;
    pid_t pid_ = -1;
};

/// A deterministic event: microsecond timestamps, optional fields set.
inline srl::event sample_event(std::int64_t seq, const std::string& key = "ip:203.0.113.5", bool allowed = true) {
    return srl::make_event(srl::event_time{std::chrono::microseconds{1'764'000'000'000'000 + seq * 1'000'003}},
                           key, "/api/login", "POST", allowed, seq, 100, "203.0.113.5",
                           seq % 2 == 0 ? std::optional<std::string_view>{"42"} : std::nullopt);
}

/// Writes `old` sample events 40 days old and `recent` ones a day old (the retention
/// tests' history: a 30-day cleanup deletes exactly the old ones).
inline void write_aged_events(srl::soci::event_store& store, int old, int recent) {
    const auto now = std::chrono::time_point_cast<std::chrono::microseconds>(std::chrono::system_clock::now());
    std::vector<srl::event> in;
    for (int i = 0; i < old; ++i) {
        auto e = sample_event(i);
        e.timestamp = now - std::chrono::hours{24 * 40} - std::chrono::microseconds{i};
        in.push_back(e);
    }
    for (int i = 0; i < recent; ++i) {
        auto e = sample_event(100 + i);
        e.timestamp = now - std::chrono::hours{24};
        in.push_back(e);
    }
    if (store.write_batch(in).written != in.size()) throw std::runtime_error("write_aged_events: write failed");
}

}  // namespace srl_test

namespace Catch {
template <>
struct StringMaker<smart_ratelimit::event> {
    static std::string convert(const smart_ratelimit::event& e) {
        std::string s = "{ts=" + std::to_string(e.timestamp.time_since_epoch().count()) + " key=" + e.key +
                        " rule=" + e.rule_name + " path=" + e.path + " method=" + e.method +
                        " allowed=" + (e.allowed ? "1" : "0") + " count=" + std::to_string(e.count) +
                        " limit=" + std::to_string(e.limit) + " ip=" + (e.ip_address ? *e.ip_address : "null") +
                        " user=" + (e.user_id ? *e.user_id : "null") + "}";
        return s;
    }
};
}  // namespace Catch
