// examples/demo_server.cpp
// The demo: a Beast server whose API is protected by the limiter (POST /api/login
// at 5/m per IP under the rule `login`, GET /api/items at 100/m per user or IP),
// every decision logged to SQL through the async sink and the SOCI event store,
// the staff dashboard under /ratelimit/ (its chart refreshing itself), a health
// probe at /ratelimit/health and Prometheus metrics at /metrics (staff: a bearer
// token). Prints its URLs, and the staff token when it made one up. `--help` lists
// the flags; the settings files and variables are read as everywhere else. Safe to
// copy: every connection has read, idle and write deadlines, header and body limits
// answered with 431/413, the open connections a cap, and accept backs off when
// descriptors run out. With --store redis:// or SQL the limiters share their counts
// with every process naming the same store, checked off the I/O threads.
#include <smart_ratelimit/beast/dashboard.hpp>
#include <smart_ratelimit/beast/middleware.hpp>
#include <smart_ratelimit/beast/server_limits.hpp>
#include <smart_ratelimit/beast/soci_dashboard_source.hpp>
#include <smart_ratelimit/clock.hpp>
#include <smart_ratelimit/health_checks.hpp>
#include <smart_ratelimit/limiter.hpp>
#include <smart_ratelimit/metrics.hpp>
#include <smart_ratelimit/redis/redis_storage.hpp>
#include <smart_ratelimit/settings.hpp>
#include <smart_ratelimit/sinks/async_sink.hpp>
#include <smart_ratelimit/soci/analytics.hpp>
#include <smart_ratelimit/soci/event_store.hpp>
#include <smart_ratelimit/soci/health.hpp>
#include <smart_ratelimit/soci/state_storage.hpp>
#include <smart_ratelimit/storage/in_memory_storage.hpp>
#include <smart_ratelimit/storage/resilient_storage.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/read_size.hpp>
#include <boost/beast/http.hpp>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <optional>
#include <random>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <variant>
#include <vector>

namespace srl = smart_ratelimit;
namespace sb = smart_ratelimit::beast;
namespace asio = boost::asio;
namespace http = boost::beast::http;
using tcp = asio::ip::tcp;

namespace {

using store_sink = srl::async_sink<srl::soci::event_store>;

/// Forwards events to the async sink (or nowhere, when logging is off).
struct sink_ref {
    store_sink* sink = nullptr;
    void record(const srl::event& e) noexcept {
        if (sink != nullptr) sink->record(e);
    }
    void record(srl::event&& e) noexcept {
        if (sink != nullptr) sink->record(std::move(e));
    }
};

// A remote store behind a circuit breaker with a bounded wait (resilient_storage):
// while the store is down or frozen a decision waits at most --store-timeout, and once
// five in a row have failed none waits at all until a probe succeeds. The limiters'
// failure policy (RATELIMIT_FAIL_OPEN) decides whether such a request passes.
using guarded_redis = srl::resilient_storage<srl::redis::redis_storage>;
using guarded_sql = srl::resilient_storage<srl::soci::sql_state_storage>;

/// Where the limiters keep their counts (--store): this process's memory, decided on
/// the I/O thread, or Redis or SQL, shared by every process naming the same store and
/// decided on the work pool (each decision is a round trip). Copies of a Redis or
/// SQL storage share its connections and its breaker.
class demo_store {
public:
    using algorithm_type = srl::any_algorithm;

    demo_store() = default;  // memory
    explicit demo_store(guarded_redis s) : s_(std::move(s)) {}
    explicit demo_store(guarded_sql s) : s_(std::move(s)) {}

    srl::outcome acquire(std::string_view key, const algorithm_type& a,
                         std::chrono::nanoseconds now, std::uint64_t cost) {
        return std::visit([&](auto& s) { return s.acquire(key, a, now, cost); }, s_);
    }
    srl::outcome peek(std::string_view key, const algorithm_type& a, std::chrono::nanoseconds now,
                      std::uint64_t cost) {
        return std::visit([&](auto& s) { return s.peek(key, a, now, cost); }, s_);
    }
    void release(std::string_view key, const algorithm_type& a, std::chrono::nanoseconds now,
                 std::uint64_t cost) {
        std::visit([&](auto& s) { s.release(key, a, now, cost); }, s_);
    }

private:
    std::variant<srl::in_memory_storage<>, guarded_redis, guarded_sql> s_;
};

enum class store_kind { memory, redis, sql };

/// What --store names, or nullopt for none of the three.
std::optional<store_kind> store_kind_of(std::string_view url) {
    if (url == "memory") return store_kind::memory;
    if (srl::redis::is_redis_url(url) || srl::redis::is_redis_cluster_url(url))
        return store_kind::redis;
    if (url.starts_with("postgresql://") || url.starts_with("postgres://") ||
        url.starts_with("sqlite://"))
        return store_kind::sql;
    return std::nullopt;
}

// Per-minute limits need no nanosecond clock: the coarse one (a scheduler tick,
// a few ms) is read in a tenth of the time. Every limiter counts its decisions in
// one shared decision_metrics (a handle), which /metrics exports.
using demo_limiter = srl::limiter<sb::request_key, demo_store, sink_ref, srl::coarse_steady_clock,
                                  srl::metrics::decision_metrics>;

/// A registry entry removed when this goes out of scope: declared after what the
/// collector reads, so it is removed before that is destroyed.
class scoped_collector {
public:
    scoped_collector(srl::metrics::registry& r, srl::metrics::registry::collector_id id)
        : r_(r), id_(id) {}
    scoped_collector(const scoped_collector&) = delete;
    scoped_collector& operator=(const scoped_collector&) = delete;
    ~scoped_collector() { r_.remove(id_); }

private:
    srl::metrics::registry& r_;
    srl::metrics::registry::collector_id id_;
};

/// `smart_ratelimit_http_requests_total{result}`: the middleware's own counts of the
/// requests it checked (one per request, however many rules decided it).
void collect_middleware(const sb::middleware_stats& st, srl::metrics::exposition& out) {
    constexpr std::string_view name = "smart_ratelimit_http_requests_total";
    out.declare(name, srl::metrics::metric_type::counter,
                "Requests the middleware checked, by what it did: allowed, blocked (429), "
                "degraded_open (let through), degraded_closed (503).");
    out.sample(name, {{"result", "allowed"}}, st.allowed);
    out.sample(name, {{"result", "blocked"}}, st.blocked);
    out.sample(name, {{"result", "degraded_open"}}, st.degraded_open);
    out.sample(name, {{"result", "degraded_closed"}}, st.degraded_closed);
}

/// Demo identity: a request naming a user in `X-Demo-User` counts as that user.
/// (A real application returns the id of its authenticated session here.)
struct demo_identity {
    std::optional<std::string> operator()(const http::request_header<>& h) const {
        const auto v = h["X-Demo-User"];
        if (v.empty() || v.size() > 64) return std::nullopt;
        return std::string(v);
    }
};

using demo_middleware = sb::middleware<demo_limiter, demo_identity>;
using demo_dashboard = sb::dashboard<sb::soci_event_store_source, sb::staff_token_authorizer>;

enum class mode { full, limit, none };

struct options {
    std::string address = "127.0.0.1";
    unsigned short port = 8080;
    std::optional<std::string> database;
    std::optional<std::string> staff_token;
    std::optional<std::string> settings_file;
    std::vector<std::array<std::string, 3>> setting_flags;  // key, value, flag
    std::string login_rate = "5/m";
    std::string items_rate = "100/m";
    mode run_mode = mode::full;
    int threads = 1;
    bool migrate = false;
    long live_refresh_ms = 30000;  // 0: off
    std::string store = "memory";
    store_kind store_type = store_kind::memory;
    std::chrono::milliseconds store_timeout{250};
    sb::server_limits limits;  // timeouts, header and body limits, connection cap
};

[[noreturn]] void usage(int code) {
    std::fputs(
        "usage: demo_server [options]\n"
        "  --port N              TCP port (0: pick a free one; the actual port is printed). "
        "Default 8080\n"
        "  --address ADDR        address to bind. Default 127.0.0.1\n"
        "  --database URL        event database (RATELIMIT_DATABASE_URL), e.g. "
        "sqlite:///events.db\n"
        "  --staff-token TOKEN   dashboard staff token (default: a random one, printed)\n"
        "  --settings FILE       settings file (else RATELIMIT_SETTINGS); the environment wins "
        "over it\n"
        "  --log-events on|off   RATELIMIT_LOG_EVENTS (the demo's default: on)\n"
        "  --fail-open on|off    RATELIMIT_FAIL_OPEN\n"
        "  --trusted-proxies L   RATELIMIT_TRUSTED_PROXIES, comma-separated CIDRs\n"
        "  --default-limit RATE  RATELIMIT_DEFAULT_LIMIT: a per-IP rule `default` on every /api/ "
        "path\n"
        "  --login-rate RATE     rate of POST /api/login per IP (a sliding window). Default 5/m\n"
        "  --items-rate RATE     rate of GET /api/items per user or IP (a sliding window). "
        "Default 100/m\n"
        "  --mode full|limit|none  benchmark modes: limiter and logging / limiter only / no "
        "limiter\n"
        "  --threads N           I/O threads, each its own event loop. Default 1\n"
        "  --store URL           the limiters' counts: memory (default), redis://host:port[/db],\n"
        "                        postgresql://... or sqlite:///file (shared by every server using "
        "it,\n"
        "                        decided on a thread pool; --migrate creates the SQL tables)\n"
        "  --store-timeout S     the longest a decision waits for a remote store (then the "
        "failure\n"
        "                        policy answers; five failures in a row stop the waiting). "
        "Default 0.25\n"
        "  --read-timeout S      seconds for a whole request from its first byte (else 408). "
        "Default 10\n"
        "  --idle-timeout S      seconds a kept-alive connection may wait for a request. Default "
        "30\n"
        "  --write-timeout S     seconds to write one answer. Default 10\n"
        "  --max-connections N   open connections at most (then accepting waits). Default 10000,\n"
        "                        or the descriptor limit (ulimit -n) less 64 when lower\n"
        "  --live-refresh-ms N   the dashboard chart refreshes itself every N ms (0: off, else >= "
        "100). Default 30000\n"
        "  --migrate             create or update the event tables before serving (as "
        "`smart-ratelimit migrate`)\n"
        "A header over 8 KiB is answered 431, a body over 64 KiB 413, a malformed request 400.\n",
        code == 0 ? stdout : stderr);
    std::exit(code);
}

/// A timeout flag's value: seconds, fractions allowed, 0.01 to 86400.
std::chrono::milliseconds seconds_flag(std::string_view flag, const std::string& v) {
    char* end = nullptr;
    const double s = std::strtod(v.c_str(), &end);
    if (v.empty() || *end != '\0' || !(s >= 0.01 && s <= 86'400)) {
        std::fprintf(stderr, "demo_server: %.*s: expected seconds (0.01..86400), got '%s'\n",
                     static_cast<int>(flag.size()), flag.data(), v.c_str());
        std::exit(64);
    }
    return std::chrono::milliseconds(static_cast<long long>(s * 1000 + 0.5));
}

options parse_args(int argc, char** argv) {
    options o;
    auto value = [&](int& i) -> std::string {
        if (i + 1 >= argc) {
            std::fprintf(stderr, "demo_server: %s needs a value\n", argv[i]);
            usage(64);
        }
        return argv[++i];
    };
    for (int i = 1; i < argc; ++i) {
        const std::string_view a = argv[i];
        if (a == "--help" || a == "-h")
            usage(0);
        else if (a == "--port") {
            const std::string v = value(i);
            char* end = nullptr;
            const long p = std::strtol(v.c_str(), &end, 10);
            if (v.empty() || *end != '\0' || p < 0 || p > 65535) {
                std::fprintf(stderr, "demo_server: --port: not a port number: '%s'\n", v.c_str());
                std::exit(64);
            }
            o.port = static_cast<unsigned short>(p);
        } else if (a == "--address")
            o.address = value(i);
        else if (a == "--database")
            o.database = value(i);
        else if (a == "--staff-token")
            o.staff_token = value(i);
        else if (a == "--settings")
            o.settings_file = value(i);
        else if (a == "--log-events")
            o.setting_flags.push_back({"RATELIMIT_LOG_EVENTS", value(i), "--log-events"});
        else if (a == "--fail-open")
            o.setting_flags.push_back({"RATELIMIT_FAIL_OPEN", value(i), "--fail-open"});
        else if (a == "--trusted-proxies")
            o.setting_flags.push_back({"RATELIMIT_TRUSTED_PROXIES", value(i), "--trusted-proxies"});
        else if (a == "--default-limit")
            o.setting_flags.push_back({"RATELIMIT_DEFAULT_LIMIT", value(i), "--default-limit"});
        else if (a == "--login-rate")
            o.login_rate = value(i);
        else if (a == "--items-rate")
            o.items_rate = value(i);
        else if (a == "--mode") {
            const std::string v = value(i);
            if (v == "full")
                o.run_mode = mode::full;
            else if (v == "limit")
                o.run_mode = mode::limit;
            else if (v == "none")
                o.run_mode = mode::none;
            else {
                std::fprintf(stderr,
                             "demo_server: --mode: expected full, limit or none, got '%s'\n",
                             v.c_str());
                std::exit(64);
            }
        } else if (a == "--threads") {
            const std::string v = value(i);
            o.threads = std::atoi(v.c_str());
            if (o.threads < 1 || o.threads > 64) {
                std::fprintf(stderr, "demo_server: --threads: expected 1..64, got '%s'\n",
                             v.c_str());
                std::exit(64);
            }
        } else if (a == "--live-refresh-ms") {
            const std::string v = value(i);
            char* end = nullptr;
            const long ms = std::strtol(v.c_str(), &end, 10);
            if (v.empty() || *end != '\0' || ms < 0 || ms > 86'400'000 || (ms > 0 && ms < 100)) {
                std::fprintf(
                    stderr,
                    "demo_server: --live-refresh-ms: expected 0 or 100..86400000, got '%s'\n",
                    v.c_str());
                std::exit(64);
            }
            o.live_refresh_ms = ms;
        } else if (a == "--store") {
            o.store = value(i);
            const auto kind = store_kind_of(o.store);
            if (!kind) {
                std::fprintf(stderr,
                             "demo_server: --store: expected memory, redis://..., "
                             "postgresql://... or sqlite://..., got '%s'\n",
                             srl::soci::detail::redact_url(o.store).c_str());
                std::exit(64);
            }
            o.store_type = *kind;
        } else if (a == "--store-timeout")
            o.store_timeout = seconds_flag(a, value(i));
        else if (a == "--read-timeout")
            o.limits.read_timeout = seconds_flag(a, value(i));
        else if (a == "--idle-timeout")
            o.limits.idle_timeout = seconds_flag(a, value(i));
        else if (a == "--write-timeout")
            o.limits.write_timeout = seconds_flag(a, value(i));
        else if (a == "--max-connections") {
            const std::string v = value(i);
            char* end = nullptr;
            const long n = std::strtol(v.c_str(), &end, 10);
            if (v.empty() || *end != '\0' || n < 1 || n > 1'000'000) {
                std::fprintf(stderr,
                             "demo_server: --max-connections: expected 1..1000000, got '%s'\n",
                             v.c_str());
                std::exit(64);
            }
            o.limits.max_connections = static_cast<std::size_t>(n);
        } else if (a == "--migrate")
            o.migrate = true;
        else {
            std::fprintf(stderr, "demo_server: unknown option '%s'\n", argv[i]);
            usage(64);
        }
    }
    return o;
}

std::string random_token() {
    std::random_device rd;
    static constexpr char hex[] = "0123456789abcdef";
    std::string t;
    for (int i = 0; i < 32; ++i) t += hex[rd() & 15u];
    return t;
}

/// The application behind the middleware: a status and a tiny JSON body.
struct answer {
    http::status status;
    std::string_view body;  // empty: no content
};

answer app(const http::request<http::string_body>& req) {
    const auto path = sb::path_of(req.target());
    if (path == "/api/login" && req.method() == http::verb::post)
        return {http::status::ok, "{\"ok\":true}"};
    if (path == "/api/items" && req.method() == http::verb::get)
        return {http::status::ok, "{\"items\":[]}"};
    if (path == "/") return {http::status::ok, "{\"dashboard\":\"/ratelimit/dashboard/\"}"};
    if (path == "/favicon.ico") return {http::status::no_content, {}};
    return {http::status::not_found, "{\"error\":\"not found\"}"};
}

/// Appends to a std::string kept at its largest size, so each piece is a bounds
/// check and a copy (std::string::append is an out-of-line call per piece).
class wire_writer {
public:
    explicit wire_writer(std::string& out) : out_(out) {
        if (out_.size() < 1024) out_.resize(1024);
    }
    // Inlined, so that the copy of a literal piece (most of them) has a known size.
    [[gnu::always_inline]] wire_writer& operator+=(std::string_view s) {
        if (s.empty()) return *this;  // an empty view may have no data() to copy from
        if (s.size() > out_.size() - size_) grow(s.size());
        std::memcpy(out_.data() + size_, s.data(), s.size());
        size_ += s.size();
        return *this;
    }
    [[gnu::always_inline]] wire_writer& operator+=(char c) {
        if (size_ == out_.size()) grow(1);
        out_[size_++] = c;
        return *this;
    }
    std::string_view view() const noexcept { return {out_.data(), size_}; }

private:
    [[gnu::noinline]] void grow(std::size_t n) {
        out_.resize(std::max(2 * out_.size(), size_ + n));
    }

    std::string& out_;
    std::size_t size_ = 0;
};

/// "HTTP/1.1 200 OK" and CRLF.
void put_status_line(wire_writer& w, unsigned version, unsigned code, std::string_view reason) {
    w += version == 10 ? std::string_view("HTTP/1.0 ") : std::string_view("HTTP/1.1 ");
    const char digits[4] = {char('0' + code / 100 % 10), char('0' + code / 10 % 10),
                            char('0' + code % 10), ' '};
    w += std::string_view(digits, 4);
    w += reason;
    w += std::string_view("\r\n");
}

/// Writes a complete response for `a` into `out` and returns it, with the
/// rate-limit fields of `r` (when given): the way a server that serializes its own
/// small answers uses limit_result::append_fields. For answers this tiny, building
/// a Beast response (a heap node per field) and walking its buffer sequence cost
/// more CPU than the bytes themselves.
std::string_view write_answer(std::string& out, unsigned version, bool keep_alive, const answer& a,
                              const sb::limit_result* r) {
    wire_writer w(out);
    const auto reason = http::obsolete_reason(a.status);
    put_status_line(w, version, static_cast<unsigned>(a.status),
                    std::string_view(reason.data(), reason.size()));
    if (a.status != http::status::no_content) {
        w += std::string_view("Content-Type: application/json\r\nContent-Length: ");
        char length[20];
        const auto end = std::to_chars(length, length + sizeof length, a.body.size()).ptr;
        w += std::string_view(length, static_cast<std::size_t>(end - length));
        w += std::string_view("\r\n");
    }
    if (version >= 11 && !keep_alive) w += std::string_view("Connection: close\r\n");
    if (version < 11 && keep_alive) w += std::string_view("Connection: keep-alive\r\n");
    if (r != nullptr) r->append_fields(w);
    w += std::string_view("\r\n");
    w += a.body;
    return w.view();
}

/// Serializes a small, complete Beast response (Content-Length set) into `out` in
/// one piece, as one iovec, and returns it: the middleware's own 429 and 503.
std::string_view flatten(const http::response<http::string_body>& res, std::string& out) {
    wire_writer w(out);
    const auto reason = res.reason();
    put_status_line(w, res.version(), res.result_int(),
                    std::string_view(reason.data(), reason.size()));
    for (const auto& f : res) {
        const auto n = f.name_string();
        const auto v = f.value();
        w += std::string_view(n.data(), n.size());
        w += std::string_view(": ");
        w += std::string_view(v.data(), v.size());
        w += std::string_view("\r\n");
    }
    w += std::string_view("\r\n");
    w += res.body();
    return w.view();
}

// The I/O objects name the io_context's executor type, not any_io_executor: every
// operation then skips the type-erased executor's copies and queries.
using io_executor = asio::io_context::executor_type;
using socket_type = asio::basic_stream_socket<tcp, io_executor>;
using acceptor_type = asio::basic_socket_acceptor<tcp, io_executor>;
template <class T = void>
using task = asio::awaitable<T, io_executor>;
constexpr asio::use_awaitable_t<io_executor> use_task;
constexpr auto use_task_tuple = asio::as_tuple(use_task);

using deadline_type = sb::connection_deadline<socket_type>;
using pause_timer =
    asio::basic_waitable_timer<std::chrono::steady_clock,
                               asio::wait_traits<std::chrono::steady_clock>, io_executor>;

/// The open connections against the cap (--max-connections), shared by the acceptor
/// and every I/O thread. The acceptor stops at the cap; the connection that brings the
/// count below it wakes the acceptor's pause.
/// Thread safety: opened(), full() and closed() from any thread; the pause is touched
/// on the acceptor's thread only (closed() posts there).
class connection_count {
public:
    explicit connection_count(std::size_t max) : max_(max) {}
    /// The acceptor's executor, before the first connection.
    void attach(io_executor acceptor) { acceptor_.emplace(acceptor); }

    bool full() const noexcept { return open_.load(std::memory_order_relaxed) >= max_; }
    void opened() noexcept { open_.fetch_add(1, std::memory_order_relaxed); }
    void closed() {
        if (open_.fetch_sub(1, std::memory_order_relaxed) >= max_ &&
            !stopped_.load(std::memory_order_relaxed) && acceptor_)
            asio::post(*acceptor_, [this] {
                if (pausing_ != nullptr) pausing_->cancel();
            });
    }
    /// Waits on `t` (the acceptor's) for `d` or until a connection ends.
    task<> pause(pause_timer& t, std::chrono::milliseconds d) {
        pausing_ = &t;
        t.expires_after(d);
        co_await t.async_wait(use_task_tuple);
        pausing_ = nullptr;
    }
    /// No more wake-ups: the I/O threads have ended (call before destroying the
    /// io_contexts, whose connections then close).
    void stop() noexcept { stopped_ = true; }

private:
    const std::size_t max_;
    std::optional<io_executor> acceptor_;
    std::atomic<std::size_t> open_{0};
    std::atomic<bool> stopped_{false};
    pause_timer* pausing_ = nullptr;
};

/// The JSON body of an answer to a request that is refused or ends badly.
std::string_view refusal_body(http::status s) {
    switch (s) {
        case http::status::bad_request:
            return "{\"error\":\"bad request\"}";
        case http::status::request_timeout:
            return "{\"error\":\"request timeout\"}";
        case http::status::payload_too_large:
            return "{\"error\":\"body too large\"}";
        case http::status::request_header_fields_too_large:
            return "{\"error\":\"header too large\"}";
        default:
            return "{\"error\":\"refused\"}";
    }
}

struct server {
    const options& opt;
    demo_middleware* mw;         // null in mode none
    const demo_dashboard* dash;  // null in mode none
    asio::thread_pool& work;
    bool decide_on_work;  // a remote store: the middleware's async path, on `work`
    connection_count& connections;

    // Reading a request is what http::async_read does, minus its composed
    // operations' bookkeeping on every request: feed the parser what is buffered
    // (the buffer keeps a pipelined next request's bytes), read when it needs more.

    /// Feeds `p` from `buffer`: true when the request is complete or `ec` is set,
    /// false when the parser needs more bytes.
    static bool feed(boost::beast::flat_buffer& buffer, http::request_parser<http::string_body>& p,
                     boost::system::error_code& ec) {
        while (buffer.size() != 0) {
            const std::size_t used = p.put(buffer.data(), ec);
            buffer.consume(used);
            if (ec == http::error::need_more) ec = {};
            if (ec || p.is_done()) return true;
            if (used == 0) break;  // an incomplete header: read more
        }
        return false;
    }

    /// The error that ends reading `p` after a failed read: end_of_stream for a
    /// peer that closed between requests, else the parser's verdict on a cut-off
    /// message, else the read's error.
    static boost::system::error_code read_failed(http::request_parser<http::string_body>& p,
                                                 boost::system::error_code read_error) {
        if (read_error != asio::error::eof) return read_error;
        if (!p.got_some()) return http::error::end_of_stream;
        boost::system::error_code ec;
        p.put_eof(ec);
        return ec ? ec : http::error::partial_message;
    }

    /// Writes what the socket's send buffer takes of `out` now, without waiting
    /// (the socket is in non-blocking mode). A small answer usually goes whole,
    /// which skips a trip through the scheduler; the caller sends any rest
    /// asynchronously.
    static std::size_t send_now(socket_type& socket, std::string_view out,
                                boost::system::error_code& ec) {
        const std::size_t sent = socket.write_some(asio::buffer(out), ec);
        if (ec == asio::error::would_block || ec == asio::error::try_again) {
            ec = {};
            return 0;
        }
        return ec ? 0 : sent;
    }

    /// Resets the connection (SO_LINGER 0): what the client did not read is dropped.
    /// Closed gracefully instead, its unsent answers would keep the kernel trying to
    /// deliver them to a client that does not read, and keep that client's writes waiting.
    static void reset(socket_type& socket) {
        boost::system::error_code ignored;
        socket.set_option(asio::socket_base::linger(true, 0), ignored);
        socket.close(ignored);
    }

    /// Sends what send_now() left of an answer, within the write timeout. False when
    /// the connection failed or timed out (then it is reset). A coroutine of its own,
    /// so that the common answer, sent whole at once, costs no coroutine frame.
    task<bool> send_rest(socket_type& socket, deadline_type& deadline, std::string_view rest) {
        deadline.expires_after(opt.limits.write_timeout);
        auto [ec, n] = co_await asio::async_write(socket, asio::buffer(rest), use_task_tuple);
        if (deadline.expired()) {
            reset(socket);
            co_return false;
        }
        co_return !ec;
    }

    /// Answers a request that will not be served with `status` (Connection: close),
    /// then, with `linger`, reads and drops what the client still sends for a moment:
    /// closing on unread bytes would reset the connection, and the client could lose
    /// the answer before reading it.
    task<> refuse(socket_type& socket, deadline_type& deadline, boost::beast::flat_buffer& buffer,
                  std::string& wire, http::status status, bool linger) {
        const auto out =
            write_answer(wire, 11, false, answer{status, refusal_body(status)}, nullptr);
        boost::system::error_code ec;
        const std::size_t sent = send_now(socket, out, ec);
        if (ec || (sent < out.size() && !co_await send_rest(socket, deadline, out.substr(sent))))
            co_return;
        socket.shutdown(tcp::socket::shutdown_send, ec);
        if (ec || !linger) co_return;
        deadline.expires_after(std::min(opt.limits.read_timeout, std::chrono::milliseconds(2000)));
        for (std::size_t dropped = 0; dropped < 1024 * 1024;) {
            buffer.clear();
            auto [rec, got] =
                co_await socket.async_read_some(buffer.prepare(65536), use_task_tuple);
            if (rec || deadline.expired()) break;
            dropped += got;
        }
    }

    task<> session(socket_type socket) {
        // Counted at the accept; the count drops when the socket is closed, below.
        struct counted {
            connection_count& c;
            ~counted() { c.closed(); }
        } const count{connections};
        const sb::server_limits& limits = opt.limits;
        // The first request must arrive within the read timeout of the accept.
        deadline_type deadline(socket);
        deadline.expires_after(limits.read_timeout);
        // At most a header (8 KiB) and a read's worth of bytes are buffered.
        boost::beast::flat_buffer buffer(128 * 1024);
        std::string wire;
        boost::system::error_code peer_error;
        const auto endpoint = socket.remote_endpoint(peer_error);
        if (peer_error) co_return;  // already gone
        const srl::ip_address peer = sb::to_ip_address(endpoint.address());
        socket.set_option(tcp::no_delay(true), peer_error);
        socket.non_blocking(true);  // for send_now()
        for (bool first = true;; first = false) {
            http::request_parser<http::string_body> p;
            p.header_limit(limits.header_limit);
            p.body_limit(limits.body_limit);
            boost::system::error_code ec;
            // Before a request's first byte the idle timeout runs, from it the read
            // timeout. A request read whole (most are) costs one clock read here.
            bool started = first, idle = false;
            while (!feed(buffer, p, ec)) {
                if (!started && (buffer.size() != 0 || p.got_some())) {
                    started = true;
                    deadline.expires_after(limits.read_timeout);
                } else if (!started && !idle) {
                    idle = true;
                    deadline.expires_after(limits.idle_timeout);
                }
                auto [rec, got] = co_await socket.async_read_some(
                    buffer.prepare(boost::beast::read_size(buffer, 65536)), use_task_tuple);
                if (deadline.expired()) {
                    ec = asio::error::timed_out;
                    break;
                }
                if (rec) {
                    ec = read_failed(p, rec);
                    break;
                }
                buffer.commit(got);
            }
            if (ec) {
                // A request over a limit, malformed or too slow is answered before the
                // connection is closed; a client that left, or was idle, is not.
                if (ec == asio::error::timed_out) {
                    if (buffer.size() != 0 || p.got_some())
                        co_await refuse(socket, deadline, buffer, wire,
                                        http::status::request_timeout, false);
                } else if (const auto status = sb::refusal_status(ec)) {
                    co_await refuse(socket, deadline, buffer, wire, *status, true);
                }
                break;
            }
            http::request<http::string_body> req = p.release();
            bool keep = req.keep_alive();
            std::string_view out;  // a small answer written here, sent below
            if (dash != nullptr && dash->matches(req.target())) {
                deadline.expires_never();  // the dashboard's queries are the server's time
                auto res = co_await dash->async_handle(work.get_executor(), std::move(req), peer,
                                                       use_task);
                keep = res.keep_alive();
                deadline.expires_after(limits.write_timeout);
                auto [wec, n] = co_await http::async_write(socket, res, use_task_tuple);
                if (deadline.expired()) reset(socket);
                if (wec || deadline.expired()) break;
            } else if (mw != nullptr) {
                // In memory, checking never blocks: decide on the I/O thread. A Redis or
                // SQL store is a round trip: decide on the work pool (the middleware's
                // async path), the connection waiting without a deadline meanwhile (the
                // store's own timeouts bound it); a check that could not run is the 503
                // in the result.
                // (check and append_fields are mw->handle minus Beast's response objects.)
                if (decide_on_work) deadline.expires_never();
                const sb::limit_result r =
                    decide_on_work
                        ? std::get<1>(co_await mw->async_check(req, peer, use_task_tuple))
                        : mw->check(req, peer);
                if (r.allowed()) {
                    out = write_answer(wire, req.version(), keep, app(req), &r);
                } else {
                    const auto res = r.make_response(req);
                    keep = res.keep_alive();
                    out = flatten(res, wire);
                }
            } else {
                out = write_answer(wire, req.version(), keep, app(req), nullptr);
            }
            if (!out.empty()) {
                boost::system::error_code wec;
                const std::size_t sent = send_now(socket, out, wec);
                if (wec) break;
                if (sent < out.size() && !co_await send_rest(socket, deadline, out.substr(sent)))
                    break;
            }
            if (!keep) break;
        }
        boost::system::error_code ignored;
        socket.shutdown(tcp::socket::shutdown_send, ignored);
        socket.close(ignored);
    }

    /// Accepts connections and deals them to the I/O threads' io_contexts in turn.
    /// At the connection cap it waits for one to end; when accepting fails for want
    /// of descriptors or memory it pauses (the pending connection stays queued, and
    /// retrying at once would fail again and again at full CPU).
    task<> listen(acceptor_type& acceptor, std::span<asio::io_context* const> io) {
        pause_timer pause(acceptor.get_executor());
        std::size_t next = 0;
        for (;;) {
            if (connections.full()) {
                co_await connections.pause(pause, std::chrono::seconds(1));
                if (!acceptor.is_open()) co_return;
                continue;
            }
            asio::io_context& ctx = *io[next];
            next = next + 1 == io.size() ? 0 : next + 1;
            auto [ec, socket] = co_await acceptor.async_accept(ctx.get_executor(), use_task_tuple);
            if (ec) {
                if (ec == asio::error::operation_aborted || !acceptor.is_open()) co_return;
                if (sb::accept_needs_backoff(ec))
                    co_await connections.pause(pause, opt.limits.accept_backoff);
                continue;
            }
            connections.opened();
            asio::co_spawn(ctx, session(std::move(socket)), asio::detached);
        }
    }
};

int run(const options& opt) {
    // Settings: the demo logs by default; file, environment, then flags override.
    srl::settings s;
    s.log_events = true;
    {
        const auto env = srl::process_environment();
        std::optional<std::string> file = opt.settings_file;
        if (!file) {
            const auto it = env.find(srl::settings_file_variable);
            if (it != env.end() && !it->second.empty()) file = it->second;
        }
        if (file) srl::apply_settings_json(s, srl::read_settings_file(*file), *file);
        srl::apply_environment(s, env);
        for (const auto& [k, v, flag] : opt.setting_flags) srl::apply_setting(s, k, v, flag);
        if (opt.database)
            srl::apply_setting(s, "RATELIMIT_DATABASE_URL", *opt.database, "--database");
    }
    const bool limiting = opt.run_mode != mode::none;
    const bool logging = opt.run_mode == mode::full && s.log_events;

    sb::middleware_options mo = sb::middleware_options_from(s);
    mo.log_events = logging;
    const srl::limiter_options lo = srl::limiter_options_from(s);
    // A shared store: one pool of connections for every limiter (copies share it);
    // no connection is opened yet. Memory: each limiter its own table.
    std::optional<srl::redis::redis_storage> redis_state;
    std::optional<srl::soci::sql_state_storage> sql_state;
    constexpr std::size_t store_connections = 8;  // also the work pool's threads
    if (opt.store_type == store_kind::redis) {
        auto ro =
            srl::redis::redis_options_from_url(opt.store, std::chrono::milliseconds(1000),
                                               std::chrono::milliseconds(500), store_connections);
        ro.errors = srl::on_error::raise;  // the breaker sees every failure
        redis_state.emplace(std::move(ro));
    } else if (opt.store_type == store_kind::sql) {
        srl::soci::sql_state_options so;
        so.max_connections = store_connections;
        so.errors = srl::on_error::raise;
        sql_state.emplace(opt.store, so);
    }
    srl::resilience_options guard;
    guard.timeout = opt.store_timeout;
    guard.wait_workers = store_connections;
    std::optional<guarded_redis> guarded_redis_state;
    std::optional<guarded_sql> guarded_sql_state;
    if (redis_state) guarded_redis_state.emplace(*redis_state, guard);
    if (sql_state) guarded_sql_state.emplace(*sql_state, guard);
    const auto state = [&]() -> demo_store {
        if (guarded_redis_state) return demo_store(*guarded_redis_state);
        if (guarded_sql_state) return demo_store(*guarded_sql_state);
        return demo_store();
    };
    const srl::metrics::decision_metrics decisions;
    // Sliding windows: a count never starts again at a window edge aligned to the clock,
    // so N requests within a minute meet the limit whenever they are sent.
    demo_limiter login(sb::request_key::ip(), {{"login", opt.login_rate, "sliding_window"}}, lo,
                       state(), sink_ref{}, {}, decisions);
    demo_limiter items(sb::request_key::user_or_ip(), {{"items", opt.items_rate, "sliding_window"}},
                       lo, state(), sink_ref{}, {}, decisions);
    std::unique_ptr<demo_limiter> fallback;
    demo_middleware mw(mo);
    mw.add(login, sb::route{"/api/login", {http::verb::post}, 1});
    mw.add(items, sb::route{"/api/items", {http::verb::get}, 1});
    if (!s.default_limit.empty()) {
        fallback = std::make_unique<demo_limiter>(
            sb::request_key::ip(), std::vector<srl::rule_config>{{"default", s.default_limit}}, lo,
            state(), sink_ref{}, srl::coarse_steady_clock{}, decisions);
        mw.add(*fallback, sb::route{"/api/", {}, 1});
    }

    const std::string token = opt.staff_token ? *opt.staff_token : random_token();
    sb::staff_token_authorizer staff{token};

    // Configuration is valid; now the database.
    srl::soci::event_store store(s.database_url);
    if (opt.migrate) {
        store.migrate();
        srl::soci::migrate_analytics(store);  // the rollups the dashboard's queries use
    }
    if (!store.schema_current()) {
        std::fprintf(stderr,
                     "demo_server: the event tables of %s are missing or old: run "
                     "`smart-ratelimit migrate --database <url>` or pass --migrate\n",
                     srl::soci::detail::redact_url(s.database_url).c_str());
        return 78;
    }
    // The limiters' store: reachable, its scripts loaded or its tables current.
    if (redis_state) redis_state->load_scripts();
    if (sql_state) {
        if (opt.migrate) {
            const srl::soci::migration_set sets[] = {srl::soci::state_migrations};
            srl::soci::migrate(*srl::soci::open_session(sql_state->url()), sql_state->url().kind,
                               sets);
        }
        if (!sql_state->schema_current()) {
            std::fprintf(stderr,
                         "demo_server: the state tables of %s are missing or old: run "
                         "`smart-ratelimit migrate --database <url>` or pass --migrate\n",
                         sql_state->url().redacted().c_str());
            return 78;
        }
    }
    std::unique_ptr<store_sink> sink;
    if (logging) {
        sink =
            std::make_unique<store_sink>(std::in_place, srl::async_sink_options{}, s.database_url);
        login.sink().sink = items.sink().sink = sink.get();
        if (fallback) fallback->sink().sink = sink.get();
    }
    // Metrics: the build, every rule's decisions (zeros before the first), the event
    // writer and the middleware. Each scoped_collector is declared after what its
    // collector reads, so it is removed first.
    srl::metrics::registry metrics;
    metrics.add(srl::metrics::build_info{});
    decisions.add_rules(login);
    decisions.add_rules(items);
    if (fallback) decisions.add_rules(*fallback);
    metrics.add(decisions);
    const scoped_collector middleware_metrics(
        metrics, metrics.add_callback([&mw](srl::metrics::exposition& out) {
            collect_middleware(mw.stats(), out);
        }));
    std::optional<scoped_collector> sink_metrics;
    if (sink) sink_metrics.emplace(metrics, metrics.add(srl::metrics::event_sink_metrics(*sink)));
    // The remote store's breaker and failures (a copy shares them).
    std::optional<scoped_collector> store_metrics;
    if (guarded_redis_state)
        store_metrics.emplace(
            metrics, metrics.add(srl::metrics::storage_metrics("redis", *guarded_redis_state)));
    if (guarded_sql_state)
        store_metrics.emplace(
            metrics, metrics.add(srl::metrics::storage_metrics("sql", *guarded_sql_state)));
    // The remote store's breaker in the health probe: unhealthy while it is not closed.
    std::function<srl::health_check()> store_check;
    if (guarded_redis_state)
        store_check = [g = *guarded_redis_state] { return srl::check_breaker("breaker:store", g); };
    if (guarded_sql_state)
        store_check = [g = *guarded_sql_state] { return srl::check_breaker("breaker:store", g); };
    // The health probe: the database reachable with its event and analytics tables
    // current, and the event writer running, unhealthy while writes fail (events
    // dropped for write errors since the previous probe).
    std::atomic<std::uint64_t> write_errors_seen{0};
    static const srl::soci::migration_set health_sets[] = {srl::soci::event_log_migrations,
                                                           srl::soci::analytics_migrations};
    sb::dashboard_options dopt;
    dopt.live_refresh = opt.live_refresh_ms > 0;
    if (dopt.live_refresh)
        dopt.live_refresh_interval = std::chrono::milliseconds(opt.live_refresh_ms);
    dopt.metrics = [&metrics] { return metrics.scrape(); };
    dopt.trusted_proxies = mo.trusted_proxies;  // sign-in attempts are throttled per client
    dopt.health = [&sink, &write_errors_seen, &store_check, logging, url = s.database_url] {
        srl::soci::database_check_options dbo;
        dbo.timeout = std::chrono::seconds(2);
        srl::health_report r = srl::soci::check_database(url, health_sets, dbo);
        if (store_check) {
            srl::health_check c = store_check();
            r.add(std::move(c.name), c.ok, std::move(c.detail));
        }
        if (!logging || !sink) return r.add("event_writer", true, "event logging is off");
        if (!sink->running()) return r.add("event_writer", false, "stopped");
        const auto st = sink->stats();
        const std::uint64_t before = write_errors_seen.exchange(st.dropped_write_error);
        const bool failing = st.dropped_write_error > before;
        std::string detail = "written " + std::to_string(st.written) + ", in flight " +
                             std::to_string(st.in_flight()) + ", dropped " +
                             std::to_string(st.dropped());
        if (failing)
            detail += ", " + std::to_string(st.dropped_write_error - before) +
                      " lost to write errors since the last probe";
        return r.add("event_writer", !failing, std::move(detail));
    };
    const demo_dashboard dash{sb::soci_event_store_source{store}, std::move(staff),
                              std::move(dopt)};

    // The dashboard's queries, and the decisions of a shared store, run on this pool.
    asio::thread_pool work(opt.store_type == store_kind::memory ? 2 : store_connections);
    const bool decide_on_work = opt.store_type != store_kind::memory;
    if (decide_on_work) mw.set_work_executor(work.get_executor());
    // Declared before the io_contexts: their connections, destroyed with them, count down.
    connection_count connections(opt.limits.max_connections);
    server srv{.opt = opt,
               .mw = limiting ? &mw : nullptr,
               .dash = limiting ? &dash : nullptr,
               .work = work,
               .decide_on_work = decide_on_work,
               .connections = connections};

    // One io_context per I/O thread, each connection on one of them, so a connection's
    // socket and deadline are only ever touched by one thread and need no strand. With
    // one thread no other thread touches the sockets (completions from the work pool
    // are posted), so the reactor can also skip its per-socket locks; with more, the
    // acceptor registers each socket with another thread's reactor, which needs them.
    std::vector<std::unique_ptr<asio::io_context>> contexts;
    for (int i = 0; i < opt.threads; ++i)
        contexts.push_back(std::make_unique<asio::io_context>(
            opt.threads == 1 ? BOOST_ASIO_CONCURRENCY_HINT_UNSAFE_IO : 1));
    std::vector<asio::io_context*> io;
    for (auto& c : contexts) io.push_back(c.get());
    asio::io_context& ioc = *contexts.front();  // the acceptor's and the signals'
    connections.attach(ioc.get_executor());
    acceptor_type acceptor(ioc.get_executor());
    const tcp::endpoint ep(asio::ip::make_address(opt.address), opt.port);
    acceptor.open(ep.protocol());
    acceptor.set_option(asio::socket_base::reuse_address(true));
    acceptor.bind(ep);
    acceptor.listen(asio::socket_base::max_listen_connections);
    const unsigned short port = acceptor.local_endpoint().port();

    asio::co_spawn(ioc, srv.listen(acceptor, io), asio::detached);

    asio::signal_set signals(ioc, SIGINT, SIGTERM);
    signals.async_wait([&](const boost::system::error_code&, int) {
        boost::system::error_code ignored;
        acceptor.close(ignored);
        for (auto* c : io) c->stop();
    });

    const std::string host = ep.address().is_v6() ? "[" + opt.address + "]" : opt.address;
    std::printf(
        "demo_server: listening on http://%s:%u/ (mode %s, event logging %s, database %s, "
        "store %s)\n",
        host.c_str(), port,
        opt.run_mode == mode::full    ? "full"
        : opt.run_mode == mode::limit ? "limit"
                                      : "none",
        logging ? "on" : "off", srl::soci::detail::redact_url(s.database_url).c_str(),
        srl::soci::detail::redact_url(opt.store).c_str());
    if (limiting) {
        std::printf("dashboard: http://%s:%u/ratelimit/dashboard/\n", host.c_str(), port);
        std::printf("sign in:   http://%s:%u/ratelimit/signin\n", host.c_str(), port);
        std::printf("health:    http://%s:%u/ratelimit/health\n", host.c_str(), port);
        std::printf("metrics:   http://%s:%u/metrics (Authorization: Bearer <staff token>)\n",
                    host.c_str(), port);
        // A token given with --staff-token is never echoed (logs keep stdout).
        if (!opt.staff_token) std::printf("staff token: %s\n", token.c_str());
    }
    std::fflush(stdout);

    std::vector<std::thread> threads;
    for (std::size_t i = 1; i < io.size(); ++i)
        threads.emplace_back([c = io[i]] {
            const auto busy = asio::make_work_guard(*c);  // until stop(): connections come later
            c->run();
        });
    ioc.run();
    for (auto& t : threads) t.join();
    work.join();
    connections.stop();  // the io_contexts' connections are destroyed with them, below

    if (sink) {
        sink->stop();  // flushes the queue
        const auto st = sink->stats();
        std::printf("demo_server: stopped; events offered %llu, written %llu, dropped %llu\n",
                    static_cast<unsigned long long>(st.offered),
                    static_cast<unsigned long long>(st.written),
                    static_cast<unsigned long long>(st.dropped()));
    } else {
        std::printf("demo_server: stopped\n");
    }
    const auto ms = mw.stats();
    std::printf("demo_server: requests checked %llu, allowed %llu, blocked %llu\n",
                static_cast<unsigned long long>(ms.checked),
                static_cast<unsigned long long>(ms.allowed),
                static_cast<unsigned long long>(ms.blocked));
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    const options opt = parse_args(argc, argv);
    try {
        return run(opt);
    } catch (const srl::config_error& e) {
        std::fprintf(stderr, "demo_server: configuration error: %s\n", e.what());
        return 78;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "demo_server: error: %s\n", e.what());
        return 69;
    }
}
