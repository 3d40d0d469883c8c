// tests/support/redis_process.hpp
// Starting one redis-server child for a test and knowing it is ours. A port from
// free_port() was free a moment ago, not now: a test running beside this one may
// take it first, and then our redis-server exits ("Address already in use") while a
// client connecting to the port reaches the other test's server. So a start is
// confirmed only when the server on the port reports our child's PID (INFO server,
// process_id); a child that exits instead tells the caller to try other ports.
// The child's stdout and stderr go to a file, never to the test's own: a child that
// outlived its test must not hold the pipe ctest reads (ctest waits for it to close).
#pragma once

#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>

#include <chrono>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

extern char** environ;

namespace srl_test {

/// A connection to 127.0.0.1:port with `timeout` on connect and on each reply, or
/// nullptr.
inline redisContext* redis_connect(int port, std::chrono::milliseconds timeout) {
    const timeval tv{static_cast<time_t>(timeout.count() / 1000),
                     static_cast<suseconds_t>(timeout.count() % 1000 * 1000)};
    redisContext* c = redisConnectWithTimeout("127.0.0.1", port, tv);
    if (c == nullptr || c->err != 0) {
        if (c != nullptr) redisFree(c);
        return nullptr;
    }
    redisSetTimeout(c, tv);
    return c;
}

/// The process_id the server on `port` reports, or -1 (nothing answers, or not yet).
inline pid_t redis_process_id(int port) {
    redisContext* c = redis_connect(port, std::chrono::milliseconds(1000));
    if (c == nullptr) return -1;
    auto* r = static_cast<redisReply*>(redisCommand(c, "INFO server"));
    pid_t pid = -1;
    if (r != nullptr && r->type == REDIS_REPLY_STRING) {
        const std::string info(r->str, r->len);
        const std::string field = "process_id:";
        if (const auto at = info.find(field); at != std::string::npos)
            pid = static_cast<pid_t>(std::stol(info.substr(at + field.size())));
    }
    if (r != nullptr) freeReplyObject(r);
    redisFree(c);
    return pid;
}

/// The last `lines` lines of a file, for an error message.
inline std::string tail_of(const std::string& path, std::size_t lines = 5) {
    std::ifstream in(path);
    std::vector<std::string> all;
    for (std::string line; std::getline(in, line);) all.push_back(line);
    std::ostringstream out;
    for (std::size_t i = all.size() > lines ? all.size() - lines : 0; i < all.size(); ++i)
        out << "\n  " << all[i];
    return out.str();
}

/// SIGCONT (it may be frozen), SIGKILL and reap; `pid` becomes -1.
inline void kill_and_reap(pid_t& pid) {
    if (pid <= 0) return;
    ::kill(pid, SIGCONT);
    ::kill(pid, SIGKILL);
    int status = 0;
    ::waitpid(pid, &status, 0);
    pid = -1;
}

/// Starts `args` (args[0] looked up in PATH) with stdin from /dev/null and stdout and
/// stderr appended to `output`; waits until the redis-server on `port` is this child.
/// Returns the child's PID, or -1 when the child exited first (the port, or its
/// cluster bus port, was taken: try others). Throws when it neither answers nor
/// exits within 10 s (and kills it).
inline pid_t start_redis_child(std::vector<std::string> args, int port, const std::string& output) {
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    ::posix_spawn_file_actions_init(&actions);
    ::posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
    ::posix_spawn_file_actions_addopen(&actions, 1, output.c_str(), O_WRONLY | O_CREAT | O_APPEND,
                                       0600);
    ::posix_spawn_file_actions_adddup2(&actions, 1, 2);
    pid_t pid = -1;
    const int rc = ::posix_spawnp(&pid, argv[0], &actions, nullptr, argv.data(), environ);
    ::posix_spawn_file_actions_destroy(&actions);
    if (rc != 0) throw std::runtime_error("cannot start " + args[0]);
    const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (std::chrono::steady_clock::now() < give_up) {
        int status = 0;
        if (::waitpid(pid, &status, WNOHANG) == pid) return -1;
        if (redis_process_id(port) == pid) return pid;
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    kill_and_reap(pid);
    throw std::runtime_error(args[0] + " did not answer on port " + std::to_string(port) +
                             " within 10 s; its output:" + tail_of(output));
}

}  // namespace srl_test
