// smart_ratelimit/redis/cluster.hpp
// Redis Cluster over the blocking connections of connection.hpp: the key slot
// (CRC16 with hash tags), `redis-cluster://` URLs, the slot map read with CLUSTER
// SLOTS, and a pool per node that runs a command on the node owning its slot,
// following MOVED (the map is read again) and ASK (ASKING, then the command, on the
// node named) redirections. hiredis 0.14 has no cluster support of its own.
#pragma once

#include <algorithm>
#include <array>
#include <atomic>
#include <charconv>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <smart_ratelimit/error.hpp>
#include <smart_ratelimit/redis/connection_pool.hpp>
#include <smart_ratelimit/redis/redis_url.hpp>

namespace smart_ratelimit::redis {

/// The number of hash slots of a Redis Cluster.
inline constexpr std::size_t cluster_slots = 16384;

namespace detail {

// CRC16-CCITT (XMODEM: polynomial 0x1021, initial value 0), the cluster's key hash.
inline constexpr std::array<std::uint16_t, 256> crc16_table = [] {
    std::array<std::uint16_t, 256> t{};
    for (unsigned i = 0; i < 256; ++i) {
        unsigned crc = i << 8;
        for (int b = 0; b < 8; ++b) crc = (crc & 0x8000) != 0 ? (crc << 1) ^ 0x1021 : crc << 1;
        t[i] = static_cast<std::uint16_t>(crc);
    }
    return t;
}();

constexpr std::uint16_t crc16(std::string_view s) noexcept {
    std::uint16_t crc = 0;
    for (const char c : s)
        crc = static_cast<std::uint16_t>(
            (crc << 8) ^ crc16_table[((crc >> 8) ^ static_cast<unsigned char>(c)) & 0xFF]);
    return crc;
}

}  // namespace detail

/// The cluster slot of `key`: CRC16 of its hash tag (the bytes between the first
/// `{` and the next `}`, when there are any) or of the whole key, modulo 16384.
constexpr std::uint16_t hash_slot(std::string_view key) noexcept {
    if (const auto open = key.find('{'); open != std::string_view::npos) {
        const auto close = key.find('}', open + 1);
        if (close != std::string_view::npos && close > open + 1)
            key = key.substr(open + 1, close - open - 1);
    }
    return static_cast<std::uint16_t>(detail::crc16(key) % cluster_slots);
}

/// A redirection in an error reply: `MOVED <slot> <host>:<port>` (the slot lives
/// there now) or `ASK <slot> <host>:<port>` (this once, during a migration).
struct redirection {
    bool ask = false;
    std::uint16_t slot = 0;
    std::string host;
    int port = 0;
};

/// The redirection an error reply names, if it is one.
inline std::optional<redirection> parse_redirection(std::string_view error) {
    redirection r;
    if (error.substr(0, 6) == "MOVED ")
        error.remove_prefix(6);
    else if (error.substr(0, 4) == "ASK ") {
        r.ask = true;
        error.remove_prefix(4);
    } else
        return std::nullopt;
    const auto space = error.find(' ');
    if (space == std::string_view::npos) return std::nullopt;
    unsigned slot = 0;
    const std::string_view slot_text = error.substr(0, space);
    const auto [p, ec] =
        std::from_chars(slot_text.data(), slot_text.data() + slot_text.size(), slot);
    if (ec != std::errc{} || p != slot_text.data() + slot_text.size() || slot >= cluster_slots)
        return std::nullopt;
    r.slot = static_cast<std::uint16_t>(slot);
    const std::string_view where = error.substr(space + 1);
    const auto colon = where.rfind(':');
    if (colon == std::string_view::npos || colon == 0) return std::nullopt;
    if (!detail::parse_small_int(where.substr(colon + 1), 65535, r.port) || r.port == 0)
        return std::nullopt;
    r.host = std::string(where.substr(0, colon));
    return r;
}

/// True when `text` starts with the redis-cluster:// scheme.
inline bool is_redis_cluster_url(std::string_view text) noexcept {
    return text.substr(0, 16) == "redis-cluster://";
}

/// Parses `redis-cluster://[[user]:password@]host:port[,host:port...]`: the seed
/// nodes (any of them is enough to find the others), each with the credentials.
/// Throws config_error naming the URL (password masked) and the bad part.
inline std::vector<redis_url> parse_redis_cluster_url(std::string_view text) {
    if (!is_redis_cluster_url(text))
        throw config_error("invalid Redis Cluster URL: the scheme must be redis-cluster:// (" +
                           std::string(text.substr(0, 16)) + "...)");
    std::string_view rest = text.substr(16);
    std::string credentials;
    if (const auto at = rest.rfind('@'); at != std::string_view::npos) {
        credentials = std::string(rest.substr(0, at + 1));
        rest = rest.substr(at + 1);
    }
    if (!rest.empty() && rest.back() == '/') rest.remove_suffix(1);
    std::vector<redis_url> seeds;
    while (true) {
        const auto comma = rest.find(',');
        const std::string_view node = rest.substr(0, comma);
        if (node.find('/') != std::string_view::npos)
            throw config_error("invalid Redis Cluster URL: a cluster has no database number (" +
                               std::string(node) + ")");
        // Each node parses as a redis:// URL (which masks the password in errors).
        seeds.push_back(parse_redis_url("redis://" + credentials + std::string(node)));
        if (comma == std::string_view::npos) break;
        rest = rest.substr(comma + 1);
    }
    return seeds;
}

/// Settings of a cluster: the connection settings (their `url` gives the
/// credentials; the host and port are each node's), connections per node, and how
/// many redirections one command may follow.
struct cluster_options {
    pool_options node;
    int max_redirections = 16;
};

/// The pool of a Redis Cluster: one connection_pool per node, the slot map, and
/// run(), which sends a command to the node that owns its slot.
/// Thread safety: every member may be called from any thread.
class cluster_pool {
public:
    /// Knows the seeds; connects and reads the slot map on the first run() (so a
    /// cluster that is down at start fails calls, not construction). Throws
    /// config_error on bad options.
    cluster_pool(cluster_options o, const std::vector<redis_url>& seeds) : opts_(std::move(o)) {
        if (seeds.empty()) throw config_error("a Redis Cluster needs at least one seed node");
        if (opts_.max_redirections < 1)
            throw config_error("a Redis Cluster client must follow at least one redirection");
        owner_.fill(-1);
        for (const auto& s : seeds) node_index(s.host, s.port);
    }

    /// Runs `f(connection&)` (which sends one command and returns its reply) on the
    /// node owning `slot`; on MOVED reads the slot map again and retries, on ASK
    /// sends ASKING and the command to the node named, on TRYAGAIN (several keys of a
    /// slot in the middle of a migration) waits 2, 4, 8... ms (at most 50) and retries. Other
    /// replies (errors included) are returned. Throws storage_error when a node fails or the
    /// redirections do not end.
    template <class F>
    reply_ptr run(std::uint16_t slot, F&& f) {
        int ask_node = -1;
        for (int hop = 0; hop <= opts_.max_redirections; ++hop) {
            const int n = ask_node >= 0 ? ask_node : owner_of(slot);
            auto lease = pool_of(n).acquire();
            if (ask_node >= 0) {
                command_args asking;
                asking << "ASKING";
                const reply_ptr ok = lease->run(asking);
                if (ok->type == REDIS_REPLY_ERROR)
                    throw storage_error("Redis " + lease->url() +
                                        ": ASKING refused: " + std::string(ok->str, ok->len));
            }
            reply_ptr r = f(*lease);
            if (r->type != REDIS_REPLY_ERROR) return r;
            const std::string_view error(r->str, r->len);
            if (error.substr(0, 8) == "TRYAGAIN") {
                // A call on several keys of a slot whose keys are half moved: the
                // migration finishes within milliseconds.
                redirections_.fetch_add(1, std::memory_order_relaxed);
                std::this_thread::sleep_for(std::chrono::milliseconds(std::min(2 << hop, 50)));
                continue;
            }
            const auto to = parse_redirection(error);
            if (!to) return r;
            redirections_.fetch_add(1, std::memory_order_relaxed);
            if (to->ask) {
                ask_node = node_index(to->host, to->port);
            } else {
                ask_node = -1;
                learn(to->slot, node_index(to->host, to->port));
                // While a slot changes hands the nodes may disagree for a moment and
                // send each other's MOVED: the second time, wait as for TRYAGAIN.
                if (hop > 0)
                    std::this_thread::sleep_for(std::chrono::milliseconds(std::min(2 << hop, 50)));
                refresh_quietly();  // a MOVED usually means more slots moved
            }
        }
        throw storage_error("Redis Cluster: slot " + std::to_string(slot) +
                            " still redirected after " + std::to_string(opts_.max_redirections) +
                            " redirections");
    }

    /// Reads the slot map (CLUSTER SLOTS) from the first node that answers. Throws
    /// storage_error when none does.
    void refresh() {
        std::string why;
        for (std::size_t i = 0; i < node_count(); ++i) {
            try {
                auto lease = pool_of(static_cast<int>(i)).acquire();
                command_args slots;
                slots << "CLUSTER"
                      << "SLOTS";
                const reply_ptr r = lease->run(slots);
                apply_slots(*r, lease->url());
                refreshes_.fetch_add(1, std::memory_order_relaxed);
                return;
            } catch (const storage_error& e) {
                why = e.what();
            }
        }
        throw storage_error("Redis Cluster: no node answered CLUSTER SLOTS: " + why);
    }

    /// Calls `f(connection_pool&)` for every node known so far.
    template <class F>
    void for_each_node(F&& f) {
        for (std::size_t i = 0; i < node_count(); ++i) f(pool_of(static_cast<int>(i)));
    }

    std::size_t node_count() const {
        std::shared_lock lock(mutex_);
        return nodes_.size();
    }
    /// Redirections followed and slot map reads so far.
    std::uint64_t redirections() const noexcept {
        return redirections_.load(std::memory_order_relaxed);
    }
    std::uint64_t refreshes() const noexcept { return refreshes_.load(std::memory_order_relaxed); }
    /// Connections opened so far on every node (reconnects included).
    std::uint64_t connects() const {
        std::shared_lock lock(mutex_);
        std::uint64_t n = 0;
        for (const auto& node : nodes_) n += node->pool.connects();
        return n;
    }
    const cluster_options& options() const noexcept { return opts_; }

private:
    struct node {
        std::string host;
        int port;
        connection_pool pool;
    };

    int owner_of(std::uint16_t slot) {
        {
            std::shared_lock lock(mutex_);
            if (owner_[slot] >= 0) return owner_[slot];
        }
        refresh();
        std::shared_lock lock(mutex_);
        if (owner_[slot] < 0)
            throw storage_error("Redis Cluster: no node serves slot " + std::to_string(slot));
        return owner_[slot];
    }

    connection_pool& pool_of(int n) {
        std::shared_lock lock(mutex_);
        return nodes_[static_cast<std::size_t>(n)]->pool;  // nodes are never removed
    }

    int node_index(const std::string& host, int port) {
        {
            std::shared_lock lock(mutex_);
            for (std::size_t i = 0; i < nodes_.size(); ++i)
                if (nodes_[i]->port == port && nodes_[i]->host == host) return static_cast<int>(i);
        }
        std::unique_lock lock(mutex_);
        for (std::size_t i = 0; i < nodes_.size(); ++i)
            if (nodes_[i]->port == port && nodes_[i]->host == host) return static_cast<int>(i);
        pool_options p = opts_.node;
        p.conn.url.host = host;
        p.conn.url.port = port;
        p.conn.url.db = 0;
        // node holds a mutex (the pool's): built in place.
        nodes_.push_back(
            std::unique_ptr<node>(new node{host, port, connection_pool(std::move(p))}));
        return static_cast<int>(nodes_.size() - 1);
    }

    void learn(std::uint16_t slot, int n) {
        std::unique_lock lock(mutex_);
        owner_[slot] = n;
    }

    void refresh_quietly() noexcept {
        try {
            refresh();
        } catch (...) {  // the MOVED already taught the one slot that matters now
        }
    }

    // CLUSTER SLOTS: [[start, end, [host, port, id...], replicas...], ...].
    void apply_slots(const redisReply& r, const std::string& from) {
        auto bad = [&](const char* why) {
            return storage_error("Redis " + from + ": unexpected CLUSTER SLOTS reply: " + why);
        };
        if (r.type == REDIS_REPLY_ERROR)
            throw storage_error("Redis " + from + ": CLUSTER SLOTS: " + std::string(r.str, r.len));
        if (r.type != REDIS_REPLY_ARRAY) throw bad("not an array");
        struct range {
            long long start, end;
            int node;
        };
        std::vector<range> ranges;
        for (std::size_t i = 0; i < r.elements; ++i) {
            const redisReply& e = *r.element[i];
            if (e.type != REDIS_REPLY_ARRAY || e.elements < 3) throw bad("a range is not an array");
            const redisReply& master = *e.element[2];
            if (e.element[0]->type != REDIS_REPLY_INTEGER ||
                e.element[1]->type != REDIS_REPLY_INTEGER || master.type != REDIS_REPLY_ARRAY ||
                master.elements < 2 || master.element[0]->type != REDIS_REPLY_STRING ||
                master.element[1]->type != REDIS_REPLY_INTEGER)
                throw bad("a range has the wrong shape");
            const long long start = e.element[0]->integer, end = e.element[1]->integer;
            const long long port = master.element[1]->integer;
            if (start < 0 || end < start || end >= static_cast<long long>(cluster_slots) ||
                port <= 0 || port > 65535)
                throw bad("a range is out of bounds");
            std::string host(master.element[0]->str, master.element[0]->len);
            if (host.empty()) host = "127.0.0.1";  // a node that does not know its address
            ranges.push_back({start, end, node_index(host, static_cast<int>(port))});
        }
        std::unique_lock lock(mutex_);
        owner_.fill(-1);
        for (const auto& g : ranges)
            for (long long s = g.start; s <= g.end; ++s)
                owner_[static_cast<std::size_t>(s)] = g.node;
    }

    cluster_options opts_;
    mutable std::shared_mutex mutex_;
    std::vector<std::unique_ptr<node>> nodes_;
    std::array<int, cluster_slots> owner_{};
    std::atomic<std::uint64_t> redirections_{0};
    std::atomic<std::uint64_t> refreshes_{0};
};

}  // namespace smart_ratelimit::redis
