// smart_ratelimit/redis/redis_storage.hpp
// basic_redis_storage<A>: a storage_backend that runs each decision as one Lua
// script in Redis (EVALSHA, re-loaded transparently on NOSCRIPT), on the server's
// clock, over a bounded connection pool. Keys are `<prefix>{<key>}:<alg>`, so the
// hash tag puts every key of one decision in one cluster slot. Batches of decisions
// go out in one pipeline (acquire_many). With `redis-cluster://` seeds it runs on a
// Redis Cluster (redis/cluster.hpp): each decision on the node owning its key's
// slot, MOVED and ASK followed.
#pragma once

#include <smart_ratelimit/algorithms/any_algorithm.hpp>
#include <smart_ratelimit/concepts.hpp>
#include <smart_ratelimit/decision.hpp>
#include <smart_ratelimit/detail/text.hpp>
#include <smart_ratelimit/detail/utf8.hpp>
#include <smart_ratelimit/error.hpp>
#include <smart_ratelimit/redis/cluster.hpp>
#include <smart_ratelimit/redis/connection_pool.hpp>
#include <smart_ratelimit/redis/redis_url.hpp>
#include <smart_ratelimit/redis/scripts.hpp>
#include <smart_ratelimit/storage/failure_policy.hpp>
#include <smart_ratelimit/storage/storage_op.hpp>

#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

namespace smart_ratelimit::redis {

/// What a Redis storage does when Redis fails on the request path
/// (storage/failure_policy.hpp): degrade or raise.
using smart_ratelimit::on_error;

/// Settings of a Redis storage.
struct redis_storage_options {
    /// The server and its connections; on a cluster, each node's connections (the
    /// host and port come from the cluster's slot map, the credentials from here).
    pool_options pool;
    /// The seed nodes of a Redis Cluster; empty for a single server.
    std::vector<redis_url> cluster;
    /// Redirections one call may follow on a cluster.
    int max_redirections = 16;
    /// Put in front of every key; must not contain '{' or '}'.
    std::string prefix = "srl:";
    on_error errors = on_error::degrade;
};

/// Parses `url` (`redis://...`, or `redis-cluster://host:port,...` for a cluster)
/// into storage options with the given timeouts (max_connections: per node).
inline redis_storage_options redis_options_from_url(
    std::string_view url,
    std::chrono::milliseconds connect_timeout = std::chrono::milliseconds(1000),
    std::chrono::milliseconds command_timeout = std::chrono::milliseconds(500),
    std::size_t max_connections = 8) {
    redis_storage_options o;
    if (is_redis_cluster_url(url)) {
        o.cluster = parse_redis_cluster_url(url);
        o.pool.conn.url = o.cluster.front();
    } else {
        o.pool.conn.url = parse_redis_url(url);
    }
    o.pool.conn.connect_timeout = connect_timeout;
    o.pool.conn.command_timeout = command_timeout;
    o.pool.max_connections = max_connections;
    return o;
}

namespace detail {

// A script's microseconds as nanoseconds, saturating: a reply is outside data.
inline std::chrono::nanoseconds script_us(long long us) noexcept {
    constexpr long long max_us = std::chrono::nanoseconds::max().count() / 1000;
    if (us <= 0) return std::chrono::nanoseconds(0);
    if (us >= max_us) return never;
    return std::chrono::microseconds(us);
}

/// The outcome a rate-limit script's reply encodes: an array of six integers
/// (allowed, retryable, count, remaining, reset_after_us, retry_after_us; a negative
/// retry_after means never). Anything else, a Redis error included, throws
/// storage_error naming `url`, with the server's words as one capped printable line.
/// Values out of range are clamped, never overflowed.
inline outcome script_outcome(const redisReply& r, std::string_view url) {
    const auto fail = [&](std::string_view what) -> outcome {
        throw storage_error("Redis " + std::string(url) + ": " + std::string(what));
    };
    if (r.type == REDIS_REPLY_ERROR)
        return fail("script error: " +
                    smart_ratelimit::detail::capped(smart_ratelimit::detail::printable_line(
                                                        std::string_view(r.str, r.str ? r.len : 0)),
                                                    300));
    if (r.type != REDIS_REPLY_ARRAY || r.elements != 6) return fail("unexpected script reply");
    long long v[6];
    for (std::size_t i = 0; i < 6; ++i) {
        if (r.element[i] == nullptr || r.element[i]->type != REDIS_REPLY_INTEGER)
            return fail("unexpected script reply element");
        v[i] = r.element[i]->integer;
    }
    outcome o;
    o.allowed = v[0] != 0;
    o.retryable = v[1] != 0;
    o.count = static_cast<std::uint64_t>(v[2] < 0 ? 0 : v[2]);
    o.remaining = static_cast<std::uint64_t>(v[3] < 0 ? 0 : v[3]);
    o.reset_after = script_us(v[4]);
    o.retry_after = v[5] < 0 ? never : script_us(v[5]);
    return o;
}

}  // namespace detail

/// Which operation a script call performs (storage/storage_op.hpp).
using op = smart_ratelimit::storage_op;

/// Counters of a Redis storage.
struct redis_storage_stats {
    std::uint64_t decisions = 0;         ///< script calls answered by Redis
    std::uint64_t errors = 0;            ///< calls that failed (connection, timeout, error reply)
    std::uint64_t script_loads = 0;      ///< SCRIPT LOADs (first use and after NOSCRIPT)
    std::uint64_t noscript_retries = 0;  ///< calls repeated after a NOSCRIPT reply
    std::uint64_t connects = 0;          ///< connections opened (reconnects included)
};

/// The Redis storage over algorithm A (any_algorithm or one built-in algorithm).
/// Copies share one pool and one set of counters.
/// Thread safety: every operation may be called concurrently from any thread.
template <class A = any_algorithm>
class basic_redis_storage {
public:
    using algorithm_type = A;

    /// One decision of a batch (acquire_many). `key` and `algorithm` must outlive the call.
    struct request {
        std::string_view key;
        const A* algorithm = nullptr;
        std::uint64_t cost = 1;
        redis::op operation = op::acquire;
    };

    explicit basic_redis_storage(redis_storage_options o)
        : impl_(std::make_shared<impl>(std::move(o))) {
        const auto& p = impl_->opts.prefix;
        if (p.find_first_of("{}") != std::string::npos)
            throw config_error("Redis key prefix \"" + p + "\" must not contain '{' or '}'");
    }

    /// Connects to `url` with default timeouts.
    explicit basic_redis_storage(std::string_view url)
        : basic_redis_storage(redis_options_from_url(url)) {}

    outcome acquire(std::string_view key, const A& a, std::chrono::nanoseconds,
                    std::uint64_t cost) {
        return guarded(key, a, cost, op::acquire);
    }
    outcome peek(std::string_view key, const A& a, std::chrono::nanoseconds, std::uint64_t cost) {
        return guarded(key, a, cost, op::peek);
    }
    void release(std::string_view key, const A& a, std::chrono::nanoseconds, std::uint64_t cost) {
        guarded(key, a, cost, op::release);
    }

    /// Sends every request in one pipeline on one connection and writes the outcomes
    /// to `out` (same size). Failures follow the storage's on_error setting for the
    /// whole batch (raise: storage_error).
    void acquire_many(std::span<const request> reqs, std::span<outcome> out) {
        try {
            run_batch(reqs, out);
        } catch (const storage_error&) {
            impl_->errors.fetch_add(reqs.size(), std::memory_order_relaxed);
            if (impl_->opts.errors == on_error::raise) throw;
            for (std::size_t i = 0; i < reqs.size(); ++i) out[i] = degraded_outcome();
        }
    }

    /// The Redis key holding `key`'s state under algorithm `a`; the sliding log also
    /// has this key followed by ":n" (its totals) and ":c" (its index).
    std::string redis_key(std::string_view key, const A& a) const {
        return make_key(key, script_of(a));
    }

    /// Loads every script now (SCRIPT LOAD; on every node of a cluster); throws
    /// storage_error when Redis is unreachable.
    void load_scripts() {
        auto load_all = [&](connection_pool& p) {
            auto c = p.acquire();
            for (int i = 0; i < script_count; ++i) load(*c, static_cast<script_id>(i));
        };
        if (cluster_pool* cl = cluster_of())
            cl->for_each_node(load_all);
        else
            load_all(impl_->pool);
    }

    redis_storage_stats stats() const noexcept {
        redis_storage_stats s;
        s.decisions = impl_->decisions.load(std::memory_order_relaxed);
        s.errors = impl_->errors.load(std::memory_order_relaxed);
        s.script_loads = impl_->loads.load(std::memory_order_relaxed);
        s.noscript_retries = impl_->noscript.load(std::memory_order_relaxed);
        s.connects = impl_->cluster ? impl_->cluster->connects() : impl_->pool.connects();
        return s;
    }
    const redis_storage_options& options() const noexcept { return impl_->opts; }
    /// The single server's pool (unused on a cluster).
    connection_pool& pool() noexcept { return impl_->pool; }
    /// The cluster's pools and slot map; null for a single server.
    cluster_pool* cluster_of() noexcept { return impl_->cluster.get(); }

    /// The script that runs algorithm `a`.
    static script_id script_of(const A& a) noexcept {
        if constexpr (std::is_same_v<A, any_algorithm>) {
            return std::visit([](const auto& x) { return id_of(x); }, a.get());
        } else {
            return id_of(a);
        }
    }

private:
    struct impl {
        explicit impl(redis_storage_options o) : opts(std::move(o)), pool(opts.pool) {
            // A cluster reads its slot map when the first call needs it (a cluster
            // that is down at start degrades calls, like a single server).
            if (!opts.cluster.empty())
                cluster = std::make_unique<cluster_pool>(
                    cluster_options{opts.pool, opts.max_redirections}, opts.cluster);
        }
        redis_storage_options opts;
        connection_pool pool;
        std::unique_ptr<cluster_pool> cluster;
        std::mutex sha_mutex;
        std::array<std::string, script_count> shas;
        std::atomic<std::uint64_t> decisions{0}, errors{0}, loads{0}, noscript{0};
    };

    static script_id id_of(const fixed_window&) noexcept { return script_id::fixed_window; }
    static script_id id_of(const sliding_window&) noexcept { return script_id::sliding_window; }
    static script_id id_of(const sliding_window_approx&) noexcept {
        return script_id::sliding_window_approx;
    }
    static script_id id_of(const token_bucket&) noexcept { return script_id::token_bucket; }
    static script_id id_of(const leaky_bucket&) noexcept { return script_id::leaky_bucket; }

    // The first key of a decision, or with `extra` (":n", ":c") one of the sliding log's others.
    std::string make_key(std::string_view key, script_id id, std::string_view extra = {}) const {
        std::string k;
        k.reserve(impl_->opts.prefix.size() + key.size() + 8);
        k += impl_->opts.prefix;
        k += '{';
        k += key;
        k += '}';
        k += script_suffix(id);
        k += extra;
        return k;
    }

    std::string sha(connection& c, script_id id) {
        {
            std::lock_guard<std::mutex> lock(impl_->sha_mutex);
            const auto& s = impl_->shas[static_cast<std::size_t>(id)];
            if (!s.empty()) return s;
        }
        return load(c, id);
    }

    std::string load(connection& c, script_id id) {
        command_args args;
        args << "SCRIPT"
             << "LOAD" << script_source(id);
        const reply_ptr r = c.run(args);
        if (r->type != REDIS_REPLY_STRING)
            throw storage_error(
                "Redis " + c.url() + ": SCRIPT LOAD failed: " +
                (r->type == REDIS_REPLY_ERROR ? std::string(r->str, r->len) : "unexpected reply"));
        impl_->loads.fetch_add(1, std::memory_order_relaxed);
        std::string s(r->str, r->len);
        std::lock_guard<std::mutex> lock(impl_->sha_mutex);
        impl_->shas[static_cast<std::size_t>(id)] = s;
        return s;
    }

    command_args evalsha(const std::string& sha1, std::string_view key, const A& a,
                         std::uint64_t cost, op o) const {
        const script_id id = script_of(a);
        command_args args;
        const bool log = id == script_id::sliding_window;
        args << "EVALSHA" << sha1 << (log ? "3" : "1") << make_key(key, id);
        if (log) args << make_key(key, id, ":n") << make_key(key, id, ":c");
        const auto period_us = static_cast<unsigned long long>(
            std::chrono::duration_cast<std::chrono::microseconds>(a.period()).count());
        args << static_cast<unsigned long long>(o) << static_cast<unsigned long long>(a.limit())
             << (period_us == 0 ? 1ull : period_us) << static_cast<unsigned long long>(cost);
        return args;
    }

    static bool is_noscript(const redisReply& r) noexcept {
        return r.type == REDIS_REPLY_ERROR && r.len >= 8 &&
               std::string_view(r.str, 8) == "NOSCRIPT";
    }

    outcome guarded(std::string_view key, const A& a, std::uint64_t cost, op o) {
        try {
            return run_one(key, a, cost, o);
        } catch (const storage_error&) {
            impl_->errors.fetch_add(1, std::memory_order_relaxed);
            if (impl_->opts.errors == on_error::raise) throw;
            return degraded_outcome();
        }
    }

    outcome run_one(std::string_view key, const A& a, std::uint64_t cost, op o) {
        const script_id id = script_of(a);
        // One script call on `c`, loading the script there when it answers NOSCRIPT.
        auto call = [&](connection& c) {
            reply_ptr r = c.run(evalsha(sha(c, id), key, a, cost, o));
            if (is_noscript(*r)) {
                impl_->noscript.fetch_add(1, std::memory_order_relaxed);
                r = c.run(evalsha(load(c, id), key, a, cost, o));
            }
            return r;
        };
        outcome out;
        if (impl_->cluster) {
            // The slot of the whole Redis key: its hash tag is the first {...} in it.
            const reply_ptr r = impl_->cluster->run(hash_slot(make_key(key, id)), call);
            out = detail::script_outcome(*r, "cluster");
        } else {
            auto c = impl_->pool.acquire();
            const reply_ptr r = call(*c);
            out = detail::script_outcome(*r, c->url());
        }
        impl_->decisions.fetch_add(1, std::memory_order_relaxed);
        return out;
    }

    void run_batch(std::span<const request> reqs, std::span<outcome> out) {
        if (reqs.empty()) return;
        if (impl_->cluster) {  // the keys live on different nodes: one call each
            for (std::size_t i = 0; i < reqs.size(); ++i)
                out[i] = run_one(reqs[i].key, *reqs[i].algorithm, reqs[i].cost, reqs[i].operation);
            return;
        }
        auto c = impl_->pool.acquire();
        std::array<std::string, script_count> shas;
        for (const auto& q : reqs) {
            auto& s = shas[static_cast<std::size_t>(script_of(*q.algorithm))];
            if (s.empty()) s = sha(*c, script_of(*q.algorithm));
        }
        for (const auto& q : reqs)
            c->append(evalsha(shas[static_cast<std::size_t>(script_of(*q.algorithm))], q.key,
                              *q.algorithm, q.cost, q.operation));
        std::vector<std::size_t> again;
        std::string first_error;  // read every reply before throwing: the connection stays in sync
        for (std::size_t i = 0; i < reqs.size(); ++i) {
            const reply_ptr r = c->get_reply();
            if (is_noscript(*r)) {
                again.push_back(i);
                continue;
            }
            try {
                out[i] = detail::script_outcome(*r, c->url());
            } catch (const storage_error& e) {
                if (first_error.empty()) first_error = e.what();
            }
        }
        if (!first_error.empty()) throw storage_error(first_error);
        if (!again.empty()) {
            impl_->noscript.fetch_add(again.size(), std::memory_order_relaxed);
            for (auto& s : shas) s.clear();
            for (const std::size_t i : again) {
                auto& s = shas[static_cast<std::size_t>(script_of(*reqs[i].algorithm))];
                if (s.empty()) s = load(*c, script_of(*reqs[i].algorithm));
            }
            for (const std::size_t i : again)
                c->append(evalsha(shas[static_cast<std::size_t>(script_of(*reqs[i].algorithm))],
                                  reqs[i].key, *reqs[i].algorithm, reqs[i].cost,
                                  reqs[i].operation));
            for (const std::size_t i : again)
                out[i] = detail::script_outcome(*c->get_reply(), c->url());
        }
        impl_->decisions.fetch_add(reqs.size(), std::memory_order_relaxed);
    }

    std::shared_ptr<impl> impl_;
};

/// The Redis storage with run-time algorithm choice.
using redis_storage = basic_redis_storage<any_algorithm>;

static_assert(storage_backend<redis_storage>);

}  // namespace smart_ratelimit::redis
