// tests/support/redis_cluster.hpp
// A private Redis Cluster for one test: three masters (redis-server
// --cluster-enabled yes) on free 127.0.0.1 ports, their cluster bus on free ports
// too, joined with `redis-cli --cluster create`. A test can run a command on any
// node, read node ids and move one slot from its owner to another node (the steps
// `redis-cli --cluster reshard` takes: IMPORTING, MIGRATING, MIGRATE, SETSLOT NODE),
// optionally stopping halfway (the slot migrating: clients get ASK). Every process is
// stopped by its own PID, also when the cluster fails to form.
#pragma once

#include "support/free_port.hpp"
#include "support/redis_process.hpp"

#include <hiredis/hiredis.h>
#include <stdlib.h>
#include <sys/wait.h>

#include <chrono>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace srl_test {

class redis_cluster {
public:
    explicit redis_cluster(int masters = 3) {
        char tmpl[] = "/tmp/srl-cluster.XXXXXX";
        if (::mkdtemp(tmpl) == nullptr) throw std::runtime_error("mkdtemp failed");
        dir_ = tmpl;
        try {
            for (int i = 0; i < masters; ++i) nodes_.push_back(start_node());
            std::vector<std::string> create{"redis-cli", "--cluster", "create"};
            for (const auto& n : nodes_) create.push_back("127.0.0.1:" + std::to_string(n.port));
            create.push_back("--cluster-yes");
            const std::string log = dir_ + "/create.log";
            if (run(create, log) != 0)
                throw std::runtime_error("redis-cli --cluster create failed:" + tail_of(log));
            wait_until_ok();
        } catch (...) {
            stop_all();
            std::system(("rm -rf '" + dir_ + "'").c_str());
            throw;
        }
    }
    redis_cluster(const redis_cluster&) = delete;
    redis_cluster& operator=(const redis_cluster&) = delete;
    ~redis_cluster() {
        stop_all();
        std::system(("rm -rf '" + dir_ + "'").c_str());
    }

    std::size_t size() const noexcept { return nodes_.size(); }
    int port(std::size_t i) const { return nodes_.at(i).port; }
    /// `redis-cluster://127.0.0.1:p0,127.0.0.1:p1,...` (every node a seed).
    std::string url() const {
        std::string u = "redis-cluster://";
        for (std::size_t i = 0; i < nodes_.size(); ++i)
            u += (i == 0 ? "" : ",") + std::string("127.0.0.1:") + std::to_string(nodes_[i].port);
        return u;
    }

    /// Runs a command on node `i`; the reply's text (a status, bulk string or error,
    /// errors prefixed "ERR: "), or the integer as text.
    std::string command(std::size_t i, const std::vector<std::string>& args) const {
        redisContext* c = connect(nodes_.at(i).port);
        if (c == nullptr)
            throw std::runtime_error("cannot connect to cluster node " + std::to_string(i));
        std::vector<const char*> argv;
        std::vector<std::size_t> lens;
        for (const auto& a : args) {
            argv.push_back(a.data());
            lens.push_back(a.size());
        }
        auto* r = static_cast<redisReply*>(
            redisCommandArgv(c, static_cast<int>(args.size()), argv.data(), lens.data()));
        std::string out;
        if (r == nullptr)
            out = "ERR: no reply";
        else if (r->type == REDIS_REPLY_ERROR)
            out = "ERR: " + std::string(r->str, r->len);
        else if (r->type == REDIS_REPLY_INTEGER)
            out = std::to_string(r->integer);
        else if (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS)
            out = std::string(r->str, r->len);
        else if (r->type == REDIS_REPLY_ARRAY)
            for (std::size_t k = 0; k < r->elements; ++k)
                out += (k == 0 ? "" : "\n") + std::string(r->element[k]->str, r->element[k]->len);
        if (r != nullptr) freeReplyObject(r);
        redisFree(c);
        return out;
    }

    std::string id(std::size_t i) const { return command(i, {"CLUSTER", "MYID"}); }

    /// The node that owns `slot` now.
    std::size_t owner(int slot) const {
        for (std::size_t i = 0; i < nodes_.size(); ++i) {
            const std::string nodes = command(i, {"CLUSTER", "NODES"});
            // The line with "myself" lists this node's slots.
            for (std::size_t at = 0; at < nodes.size();) {
                const auto end = nodes.find('\n', at);
                const std::string line = nodes.substr(at, end - at);
                at = end == std::string::npos ? nodes.size() : end + 1;
                if (line.find("myself") == std::string::npos) continue;
                if (owns(line, slot)) return i;
            }
        }
        throw std::runtime_error("no node owns slot " + std::to_string(slot));
    }

    /// Moves `slot` (and its keys) from its owner to node `to`. With `halfway`, stops
    /// after marking it MIGRATING/IMPORTING and moving only `first_keys` keys: the
    /// source then answers ASK for keys it no longer has. finish_move() completes it.
    void move_slot(int slot, std::size_t to, bool halfway = false, std::size_t first_keys = 0) {
        from_ = owner(slot);
        to_ = to;
        slot_ = slot;
        const std::string s = std::to_string(slot);
        expect_ok(command(to, {"CLUSTER", "SETSLOT", s, "IMPORTING", id(from_)}));
        expect_ok(command(from_, {"CLUSTER", "SETSLOT", s, "MIGRATING", id(to)}));
        migrate_keys(halfway ? first_keys : std::size_t(-1));
        if (!halfway) finish_move();
    }
    void finish_move() {
        migrate_keys(std::size_t(-1));
        // As redis-cli does: the new owner first, then the old, then the others.
        const std::string s = std::to_string(slot_), target = id(to_);
        expect_ok(command(to_, {"CLUSTER", "SETSLOT", s, "NODE", target}));
        expect_ok(command(from_, {"CLUSTER", "SETSLOT", s, "NODE", target}));
        for (std::size_t i = 0; i < nodes_.size(); ++i)
            if (i != to_ && i != from_)
                expect_ok(command(i, {"CLUSTER", "SETSLOT", s, "NODE", target}));
    }

private:
    struct node {
        int port = 0;
        int bus = 0;
        pid_t pid = -1;
    };

    static bool owns(const std::string& line, int slot) {
        // Fields from the 9th on are slots: "a-b" or "n" (or "[...]" while migrating).
        std::size_t field = 0, at = 0;
        while (at <= line.size()) {
            const auto end = line.find(' ', at);
            const std::string f = line.substr(at, end - at);
            at = end == std::string::npos ? line.size() + 1 : end + 1;
            if (++field < 9 || f.empty() || f.front() == '[') continue;
            const auto dash = f.find('-');
            const int a = std::stoi(f.substr(0, dash));
            const int b = dash == std::string::npos ? a : std::stoi(f.substr(dash + 1));
            if (slot >= a && slot <= b) return true;
        }
        return false;
    }

    void migrate_keys(std::size_t limit) {
        const std::string s = std::to_string(slot_);
        std::size_t moved = 0;
        while (moved < limit) {
            const std::string keys = command(from_, {"CLUSTER", "GETKEYSINSLOT", s, "100"});
            if (keys.empty()) return;
            std::vector<std::string> mig{
                "MIGRATE", "127.0.0.1", std::to_string(nodes_[to_].port), "", "0", "5000", "KEYS"};
            for (std::size_t at = 0; at < keys.size() && moved < limit;) {
                const auto end = keys.find('\n', at);
                mig.push_back(keys.substr(at, end - at));
                ++moved;
                at = end == std::string::npos ? keys.size() : end + 1;
            }
            const std::string r = command(from_, mig);
            if (r != "OK" && r != "NOKEY") throw std::runtime_error("MIGRATE failed: " + r);
        }
    }

    static void expect_ok(const std::string& r) {
        if (r != "OK") throw std::runtime_error("cluster command failed: " + r);
    }

    static redisContext* connect(int port) {
        return redis_connect(port, std::chrono::milliseconds(2000));
    }

    /// A master on fresh ports (other ports if a test beside this one takes one
    /// first), confirmed to be our child; its log in the cluster's directory.
    node start_node() {
        for (int attempt = 0; attempt < 5; ++attempt) {
            node n;
            n.port = unused_port();
            n.bus = unused_port();
            const std::string p = std::to_string(n.port);
            n.pid = start_redis_child({"redis-server",
                                       "--bind",
                                       "127.0.0.1",
                                       "--port",
                                       p,
                                       "--cluster-enabled",
                                       "yes",
                                       "--cluster-port",
                                       std::to_string(n.bus),
                                       "--cluster-config-file",
                                       dir_ + "/nodes-" + p + ".conf",
                                       "--cluster-node-timeout",
                                       "2000",
                                       "--save",
                                       "",
                                       "--appendonly",
                                       "no",
                                       "--dir",
                                       dir_,
                                       "--daemonize",
                                       "no"},
                                      n.port, dir_ + "/redis-" + p + ".log");
            if (n.pid > 0) return n;
        }
        throw std::runtime_error("redis-server (cluster) exited at start on 5 pairs of free ports");
    }

    /// A free port that no node of this cluster uses (as client or bus port).
    int unused_port() const {
        for (;;) {
            const int p = free_port();
            bool used = false;
            for (const auto& n : nodes_) used = used || n.port == p || n.bus == p;
            if (!used) return p;
        }
    }

    void stop_all() {
        for (auto& n : nodes_) kill_and_reap(n.pid);
    }

    void wait_until_ok() const {
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
        while (std::chrono::steady_clock::now() < deadline) {
            bool ok = true;
            for (std::size_t i = 0; i < nodes_.size() && ok; ++i)
                ok = command(i, {"CLUSTER", "INFO"}).find("cluster_state:ok") != std::string::npos;
            if (ok) return;
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
        }
        throw std::runtime_error("the cluster did not reach cluster_state:ok in 30 s");
    }

    /// Runs argv to completion, output to `log`; its exit status.
    static int run(const std::vector<std::string>& args, const std::string& log) {
        std::string cmd;
        for (const auto& a : args) cmd += "'" + a + "' ";
        cmd += ">'" + log + "' 2>&1 </dev/null";
        const int st = std::system(cmd.c_str());
        return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    }

    std::string dir_;
    std::vector<node> nodes_;
    std::size_t from_ = 0, to_ = 0;
    int slot_ = 0;
};

}  // namespace srl_test
