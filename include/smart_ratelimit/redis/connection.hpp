// smart_ratelimit/redis/connection.hpp
// One blocking connection to Redis over hiredis: connect with a timeout, a timeout
// on every command, AUTH and SELECT from the URL, single commands and pipelines
// (redisAppendCommandArgv then redisGetReply). Errors throw storage_error and leave
// the connection broken(); the pool then drops it and reconnects.
#pragma once

#include <smart_ratelimit/error.hpp>
#include <smart_ratelimit/redis/redis_url.hpp>

#include <hiredis/hiredis.h>

#include <chrono>
#include <cstddef>
#include <memory>
#include <new>
#include <string>
#include <string_view>
#include <sys/time.h>
#include <vector>

namespace smart_ratelimit::redis {

/// Connection settings shared by every connection of a pool.
struct connection_options {
    redis_url url;
    std::chrono::milliseconds connect_timeout{1000};
    std::chrono::milliseconds command_timeout{500};
};

/// A reply owned by the caller.
struct reply_deleter {
    void operator()(redisReply* r) const noexcept { freeReplyObject(r); }
};
using reply_ptr = std::unique_ptr<redisReply, reply_deleter>;

namespace detail {

/// The most elements a reply array may declare. The library's replies have six (a
/// script's outcome) or a handful; the bound is for a server that misbehaves.
inline constexpr int max_reply_elements = 4096;

// hiredis's own reply functions (those of a reader it creates by default).
inline const redisReplyObjectFunctions& default_reply_functions() {
    static const redisReplyObjectFunctions f = [] {
        redisReader* r = redisReaderCreate();
        if (r == nullptr) throw std::bad_alloc();
        const redisReplyObjectFunctions copy = *r->fn;
        redisReaderFree(r);
        return copy;
    }();
    return f;
}

inline void* bounded_create_array(const redisReadTask* task, int elements) {
    if (elements < 0 || elements > max_reply_elements) return nullptr;  // an OOM error
    return default_reply_functions().createArray(task, elements);
}

/// hiredis's reply functions, except that an array declaring more than
/// max_reply_elements elements is refused before anything is allocated for it:
/// hiredis 0.14 callocs a pointer per declared element, so one reply header
/// (`*600006156`) asked for 4.8 GB (found by fuzz/fuzz_redis_reply). The reader
/// then fails the reply as out of memory, which the connection reports as an error.
inline redisReplyObjectFunctions* bounded_reply_functions() {
    static redisReplyObjectFunctions f = [] {
        redisReplyObjectFunctions g = default_reply_functions();
        g.createArray = &bounded_create_array;
        return g;
    }();
    return &f;
}

}  // namespace detail

/// A command as argument strings (binary safe).
class command_args {
public:
    command_args& operator<<(std::string_view s) {
        args_.emplace_back(s);
        return *this;
    }
    command_args& operator<<(unsigned long long v) {
        return *this << std::string_view(std::to_string(v));
    }
    int size() const noexcept { return static_cast<int>(args_.size()); }
    void fill(std::vector<const char*>& argv, std::vector<std::size_t>& lens) const {
        argv.clear();
        lens.clear();
        for (const auto& a : args_) {
            argv.push_back(a.data());
            lens.push_back(a.size());
        }
    }

private:
    std::vector<std::string> args_;
};

/// One connection. Not copyable; movable.
/// Thread safety: one thread at a time (the pool hands it to one caller).
class connection {
public:
    /// Connects, authenticates and selects the database; throws storage_error with
    /// the redacted URL and hiredis's message when any step fails.
    explicit connection(const connection_options& o) : url_(o.url.redacted()) {
        ctx_ =
            redisConnectWithTimeout(o.url.host.c_str(), o.url.port, to_timeval(o.connect_timeout));
        if (ctx_ == nullptr)
            throw storage_error("Redis " + url_ + ": cannot allocate a connection");
        if (ctx_->err != 0) {
            const std::string msg = ctx_->errstr;
            redisFree(ctx_);
            ctx_ = nullptr;
            throw storage_error("Redis " + url_ + ": cannot connect: " + msg);
        }
        try {
            ctx_->reader->fn = detail::bounded_reply_functions();
            if (redisSetTimeout(ctx_, to_timeval(o.command_timeout)) != REDIS_OK)
                fail("cannot set the timeout");
            if (!o.url.password.empty()) {
                command_args auth;
                auth << "AUTH";
                if (!o.url.user.empty()) auth << o.url.user;
                auth << o.url.password;
                expect_ok(run(auth), "AUTH");
            }
            if (o.url.db != 0) {
                command_args sel;
                sel << "SELECT" << static_cast<unsigned long long>(o.url.db);
                expect_ok(run(sel), "SELECT");
            }
        } catch (...) {
            redisFree(ctx_);
            ctx_ = nullptr;
            throw;
        }
    }
    connection(connection&& o) noexcept
        : ctx_(o.ctx_), url_(std::move(o.url_)), broken_(o.broken_) {
        o.ctx_ = nullptr;
    }
    connection& operator=(connection&&) = delete;
    connection(const connection&) = delete;
    ~connection() {
        if (ctx_ != nullptr) redisFree(ctx_);
    }

    /// True after an I/O or protocol error: the connection must be discarded.
    bool broken() const noexcept { return broken_ || ctx_ == nullptr || ctx_->err != 0; }
    const std::string& url() const noexcept { return url_; }

    /// Sends one command and waits for its reply (error replies are returned, not thrown).
    reply_ptr run(const command_args& c) {
        c.fill(argv_, lens_);
        void* r = redisCommandArgv(ctx_, c.size(), argv_.data(), lens_.data());
        if (r == nullptr) fail("command failed");
        return reply_ptr(static_cast<redisReply*>(r));
    }

    /// Queues a command in the output buffer (nothing is sent until get_reply()).
    void append(const command_args& c) {
        c.fill(argv_, lens_);
        if (redisAppendCommandArgv(ctx_, c.size(), argv_.data(), lens_.data()) != REDIS_OK)
            fail("cannot queue a command");
    }

    /// Flushes queued commands and reads the next reply.
    reply_ptr get_reply() {
        void* r = nullptr;
        if (redisGetReply(ctx_, &r) != REDIS_OK || r == nullptr) fail("reading a reply failed");
        return reply_ptr(static_cast<redisReply*>(r));
    }

private:
    static timeval to_timeval(std::chrono::milliseconds d) {
        timeval tv{};
        tv.tv_sec = static_cast<time_t>(d.count() / 1000);
        tv.tv_usec = static_cast<suseconds_t>((d.count() % 1000) * 1000);
        return tv;
    }

    [[noreturn]] void fail(const char* what) {
        broken_ = true;
        std::string msg = "Redis " + url_ + ": " + what;
        if (ctx_ != nullptr && ctx_->err != 0) msg += std::string(": ") + ctx_->errstr;
        throw storage_error(msg);
    }

    void expect_ok(const reply_ptr& r, const char* cmd) {
        if (r->type == REDIS_REPLY_ERROR) {
            broken_ = true;
            throw storage_error("Redis " + url_ + ": " + cmd +
                                " failed: " + std::string(r->str, r->len));
        }
    }

    redisContext* ctx_ = nullptr;
    std::string url_;
    bool broken_ = false;
    std::vector<const char*> argv_;
    std::vector<std::size_t> lens_;
};

}  // namespace smart_ratelimit::redis
