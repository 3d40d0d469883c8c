// tests/support/redis_server.hpp
// A private redis-server for one test: started on a free 127.0.0.1 port in a
// temporary directory, stopped by its own PID. It can be killed, frozen (SIGSTOP),
// thawed (SIGCONT) and restarted on the same port, for the failure scenarios.
#pragma once

#include "support/free_port.hpp"

#include <hiredis/hiredis.h>

#include <csignal>
#include <cstdlib>
#include <spawn.h>
#include <stdexcept>
#include <string>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>
#include <vector>

extern char** environ;

namespace srl_test {

class redis_server {
public:
    redis_server() : port_(free_port()) {
        char tmpl[] = "/tmp/srl-redis.XXXXXX";
        if (::mkdtemp(tmpl) == nullptr) throw std::runtime_error("mkdtemp failed");
        dir_ = tmpl;
        start();
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

    /// Starts the server (again, on the same port) and waits until it answers PING.
    void start() {
        const std::string port = std::to_string(port_);
        std::vector<std::string> args{
            "redis-server", "--bind",    "127.0.0.1",         "--port",      port,
            "--save",       "",          "--appendonly",      "no",          "--dir",
            dir_,           "--logfile", dir_ + "/redis.log", "--daemonize", "no"};
        std::vector<char*> argv;
        for (auto& a : args) argv.push_back(a.data());
        argv.push_back(nullptr);
        if (::posix_spawnp(&pid_, "redis-server", nullptr, nullptr, argv.data(), environ) != 0)
            throw std::runtime_error("cannot start redis-server");
        for (int i = 0; i < 200; ++i) {
            if (ping()) return;
            std::this_thread::sleep_for(std::chrono::milliseconds(25));
        }
        throw std::runtime_error("redis-server did not answer on port " + port);
    }

    /// SIGKILL and reap.
    void kill() {
        if (pid_ <= 0) return;
        if (frozen_) ::kill(pid_, SIGCONT);
        ::kill(pid_, SIGKILL);
        int st = 0;
        ::waitpid(pid_, &st, 0);
        pid_ = -1;
        frozen_ = false;
    }
    void freeze() {
        ::kill(pid_, SIGSTOP);
        frozen_ = true;
    }
    void thaw() {
        ::kill(pid_, SIGCONT);
        frozen_ = false;
    }

    /// A direct connection for inspecting the server (SCAN, TTL, SCRIPT FLUSH).
    redisContext* connect() const {
        timeval tv{1, 0};
        redisContext* c = redisConnectWithTimeout("127.0.0.1", port_, tv);
        if (c == nullptr || c->err != 0) {
            if (c != nullptr) redisFree(c);
            return nullptr;
        }
        redisSetTimeout(c, tv);
        return c;
    }

    /// Runs a command on a fresh connection; returns the reply's integer or -1000 on error.
    bool ping() const {
        redisContext* c = connect();
        if (c == nullptr) return false;
        auto* r = static_cast<redisReply*>(redisCommand(c, "PING"));
        const bool ok = r != nullptr && r->type == REDIS_REPLY_STATUS;
        if (r != nullptr) freeReplyObject(r);
        redisFree(c);
        return ok;
    }

private:
    int port_;
    std::string dir_;
    pid_t pid_ = -1;
    bool frozen_ = false;
};

}  // namespace srl_test
