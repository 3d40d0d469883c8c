// smart_ratelimit/redis/connection_pool.hpp
// A bounded pool of Redis connections. Connections are opened lazily, handed out
// one caller at a time through an RAII lease, and dropped when an error broke them
// (the next lease reconnects). A caller waits at most the pool's wait timeout.
#pragma once

#include <smart_ratelimit/error.hpp>
#include <smart_ratelimit/redis/connection.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <string>
#include <cstddef>
#include <memory>
#include <mutex>
#include <optional>
#include <utility>
#include <vector>

namespace smart_ratelimit::redis {

/// Pool settings: the connection settings, the most connections open at once, and
/// how long a caller waits for a free one (default: the command timeout).
struct pool_options {
    connection_options conn;
    std::size_t max_connections = 8;
    std::optional<std::chrono::milliseconds> wait_timeout;
};

/// The pool. Thread safety: lease() may be called from any thread.
class connection_pool {
public:
    explicit connection_pool(pool_options o) : opts_(std::move(o)) {
        if (opts_.max_connections == 0)
            throw config_error("a Redis pool needs at least one connection");
    }

    /// A connection lent to one caller; returned to the pool (or dropped when
    /// broken) on destruction.
    class lease {
    public:
        lease(connection_pool* p, std::unique_ptr<connection> c) noexcept
            : pool_(p), conn_(std::move(c)) {}
        lease(lease&& o) noexcept : pool_(o.pool_), conn_(std::move(o.conn_)) { o.pool_ = nullptr; }
        lease& operator=(lease&&) = delete;
        ~lease() {
            if (pool_ != nullptr) pool_->give_back(std::move(conn_));
        }
        connection& operator*() const noexcept { return *conn_; }
        connection* operator->() const noexcept { return conn_.get(); }

    private:
        connection_pool* pool_;
        std::unique_ptr<connection> conn_;
    };

    /// Borrows a connection, opening one when none is idle and the bound allows it;
    /// otherwise waits up to the wait timeout. Throws storage_error when it cannot
    /// connect or no connection came free in time.
    lease acquire() {
        std::unique_lock<std::mutex> lock(mutex_);
        const auto wait = opts_.wait_timeout.value_or(opts_.conn.command_timeout);
        if (!cv_.wait_for(lock, wait,
                          [&] { return !idle_.empty() || open_ < opts_.max_connections; }))
            throw storage_error("Redis " + opts_.conn.url.redacted() +
                                ": no free connection within " + std::to_string(wait.count()) +
                                " ms");
        if (!idle_.empty()) {
            auto c = std::move(idle_.back());
            idle_.pop_back();
            return lease(this, std::move(c));
        }
        ++open_;
        lock.unlock();
        try {
            auto c = std::make_unique<connection>(opts_.conn);
            connects_.fetch_add(1, std::memory_order_relaxed);
            return lease(this, std::move(c));
        } catch (...) {
            lock.lock();
            --open_;
            cv_.notify_one();
            throw;
        }
    }

    const pool_options& options() const noexcept { return opts_; }
    /// Connections opened so far (reconnects included).
    std::uint64_t connects() const noexcept { return connects_.load(std::memory_order_relaxed); }
    /// Connections currently open (idle or lent).
    std::size_t open_connections() const {
        std::lock_guard<std::mutex> lock(mutex_);
        return open_;
    }

private:
    void give_back(std::unique_ptr<connection> c) noexcept {
        std::lock_guard<std::mutex> lock(mutex_);
        if (c && !c->broken()) {
            idle_.push_back(std::move(c));
        } else {
            --open_;
        }
        cv_.notify_one();
    }

    pool_options opts_;
    mutable std::mutex mutex_;
    std::condition_variable cv_;
    std::vector<std::unique_ptr<connection>> idle_;
    std::size_t open_ = 0;
    std::atomic<std::uint64_t> connects_{0};
};

}  // namespace smart_ratelimit::redis
