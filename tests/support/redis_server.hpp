// tests/support/redis_server.hpp
// A private redis-server for one test: started on a free 127.0.0.1 port in a
// temporary directory (its log there too), stopped by its own PID. It can be
// killed, frozen (SIGSTOP), thawed (SIGCONT) and restarted on the same port, for the
// failure scenarios.
#pragma once

#include "support/free_port.hpp"
#include "support/redis_process.hpp"

#include <hiredis/hiredis.h>
#include <signal.h>

#include <chrono>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <vector>

namespace srl_test {

class redis_server {
public:
    /// Starts on a free port (other ports if a test beside this one takes it first).
    redis_server() {
        char tmpl[] = "/tmp/srl-redis.XXXXXX";
        if (::mkdtemp(tmpl) == nullptr) throw std::runtime_error("mkdtemp failed");
        dir_ = tmpl;
        for (int attempt = 0; attempt < 5 && pid_ <= 0; ++attempt) {
            port_ = free_port();
            pid_ = start_redis_child(args(), port_, log());
        }
        if (pid_ <= 0)
            throw std::runtime_error("redis-server exited at start on 5 free ports; its output:" +
                                     tail_of(log()));
    }
    redis_server(const redis_server&) = delete;
    redis_server& operator=(const redis_server&) = delete;
    ~redis_server() {
        kill();
        std::system(("rm -rf '" + dir_ + "'").c_str());
    }

    int port() const noexcept { return port_; }
    pid_t pid() const noexcept { return pid_; }
    std::string url() const { return "redis://127.0.0.1:" + std::to_string(port_); }

    /// Starts the server again on the same port (after kill()) and waits until it
    /// answers as this process.
    void start() {
        pid_ = start_redis_child(args(), port_, log());
        if (pid_ <= 0)
            throw std::runtime_error("redis-server could not start again on port " +
                                     std::to_string(port_) + "; its output:" + tail_of(log()));
    }

    /// SIGKILL (thawed first) and reap.
    void kill() { kill_and_reap(pid_); }
    void freeze() { ::kill(pid_, SIGSTOP); }
    void thaw() { ::kill(pid_, SIGCONT); }

    /// A direct connection for inspecting the server (SCAN, TTL, SCRIPT FLUSH).
    redisContext* connect() const { return redis_connect(port_, std::chrono::milliseconds(1000)); }

private:
    std::vector<std::string> args() const {
        return {
            "redis-server", "--bind", "127.0.0.1", "--port", std::to_string(port_), "--save", "",
            "--appendonly", "no",     "--dir",     dir_,     "--daemonize",         "no"};
    }
    std::string log() const { return dir_ + "/redis.log"; }

    int port_ = 0;
    std::string dir_;
    pid_t pid_ = -1;
};

}  // namespace srl_test
