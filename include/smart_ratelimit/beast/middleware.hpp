// smart_ratelimit/beast/middleware.hpp
// The Boost.Beast middleware: routes (path prefix + methods) bound to limiters,
// checked on every request; a 429 with Retry-After and the SPEC body (or problem+json)
// when denied; RateLimit-Policy/RateLimit and X-RateLimit-* on every limited response;
// one event per decision when logging is on; fail open or closed when storage throws.
// Synchronous (handle), callback and coroutine (async_check, async_handle) servers.
#pragma once

#include <smart_ratelimit/beast/async_check.hpp>
#include <smart_ratelimit/beast/denied_response.hpp>
#include <smart_ratelimit/beast/headers.hpp>
#include <smart_ratelimit/beast/keys.hpp>
#include <smart_ratelimit/decision.hpp>
#include <smart_ratelimit/error.hpp>
#include <smart_ratelimit/event.hpp>
#include <smart_ratelimit/keys/cidr.hpp>
#include <smart_ratelimit/keys/ip.hpp>
#include <smart_ratelimit/limiter.hpp>
#include <smart_ratelimit/rule.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/post.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/message_generator.hpp>
#include <boost/beast/http/rfc7230.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/verb.hpp>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <optional>
#include <array>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

namespace smart_ratelimit::beast {

namespace http = boost::beast::http;

/// What the middleware does when a limiter's storage throws (SPEC section 4).
enum class fail_policy {
    fail_closed,  ///< reject with 503 and Retry-After: 1 (the default, as the reference)
    fail_open,    ///< let the request through, without rate-limit headers
};

/// Middleware settings. The settings object maps onto it: log_events is
/// RATELIMIT_LOG_EVENTS, fail_open RATELIMIT_FAIL_OPEN, trusted_proxies
/// RATELIMIT_TRUSTED_PROXIES (cidr_list::from_strings).
struct middleware_options {
    /// Write one event per decision to each limiter's sink (off by default).
    bool log_events = false;
    fail_policy on_storage_failure = fail_policy::fail_closed;
    /// Proxies whose X-Forwarded-For is believed; empty = the socket peer is the client.
    cidr_list trusted_proxies;
    /// Grouping of the IP key used when a limiter's key extractor yields "".
    ip_grouping fallback_grouping;
    header_options headers;
    /// Answer 429s with application/problem+json when the client's Accept prefers JSON.
    bool problem_json = true;
};

/// Which requests a limiter applies to. A request matches when its method is in
/// `methods` (empty: every method) and its path (no query) equals `path_prefix` or
/// continues it at a segment boundary: "/api" matches "/api" and "/api/items", not
/// "/apix"; a prefix ending in '/' matches everything under it ("/" matches all).
/// The path is compared as sent, byte for byte; route the application the same way.
struct route {
    std::string path_prefix = "/";
    std::vector<http::verb> methods{};
    /// Units one request consumes; at most every rule's limit.
    std::uint64_t cost = 1;

    bool matches(std::string_view path, http::verb method) const noexcept {
        if (!methods.empty()) {
            bool found = false;
            for (const auto m : methods) found = found || m == method;
            if (!found) return false;
        }
        if (path.substr(0, path_prefix.size()) != path_prefix) return false;
        return path.size() == path_prefix.size() || path_prefix.back() == '/' ||
               path[path_prefix.size()] == '/';
    }
};

/// The middleware's counters.
struct middleware_stats {
    std::uint64_t checked = 0;        ///< requests that matched at least one route
    std::uint64_t allowed = 0;
    std::uint64_t blocked = 0;
    std::uint64_t failed_open = 0;    ///< storage failures let through
    std::uint64_t failed_closed = 0;  ///< storage failures rejected with 503
    std::uint64_t sink_failures = 0;  ///< events a sink refused (multi-route requests)
    std::uint64_t identify_failures = 0;  ///< identify threw; the request was treated as anonymous
};

/// The outcome of checking one request.
enum class limit_status {
    unlimited,      ///< no route matched: the response is not touched
    allowed,
    blocked,        ///< 429
    failed_open,    ///< storage failed; let through
    failed_closed,  ///< storage failed; 503
};

namespace detail {

/// The rule states of one result: inline for up to verdict::max_rules (one route's
/// limiter), on the heap beyond (several routes). A result is built per request.
class rule_status_list {
public:
    rule_status_list() = default;
    rule_status_list(const rule_status_list& o) { *this = o; }
    rule_status_list& operator=(const rule_status_list& o) {
        if (this != &o) {
            clear();
            for (const auto& r : o.view()) push_back(r);
        }
        return *this;
    }

    void push_back(const rule_status& r) {
        if (heap_.empty() && size_ < inline_.size()) {
            inline_[size_++] = r;
            return;
        }
        if (heap_.empty()) heap_.assign(inline_.begin(), inline_.begin() + static_cast<std::ptrdiff_t>(size_));
        heap_.push_back(r);
        ++size_;
    }
    void clear() noexcept {
        size_ = 0;
        heap_.clear();
    }
    bool empty() const noexcept { return size_ == 0; }
    std::size_t size() const noexcept { return size_; }
    const rule_status& operator[](std::size_t i) const noexcept { return view()[i]; }
    std::span<const rule_status> view() const noexcept {
        return heap_.empty() ? std::span<const rule_status>(inline_.data(), size_)
                             : std::span<const rule_status>(heap_);
    }

private:
    std::array<rule_status, verdict::max_rules> inline_{};
    std::size_t size_ = 0;
    std::vector<rule_status> heap_;
};

}  // namespace detail

/// One request's result: the status, each matched rule's state, and how to dress
/// the response. Views the limiters' rule names and the middleware's options, so it
/// must not outlive the middleware.
/// Thread safety: a plain value.
class limit_result {
public:
    limit_result() = default;

    limit_status status() const noexcept { return status_; }
    /// True when the handler should run (unlimited, allowed or failed open).
    bool allowed() const noexcept {
        return status_ == limit_status::unlimited || status_ == limit_status::allowed ||
               status_ == limit_status::failed_open;
    }
    std::span<const rule_status> rules() const noexcept { return rules_.view(); }
    /// The longest wait among the blocking rules (0 when allowed).
    std::chrono::nanoseconds retry_after() const noexcept { return retry_after_; }
    /// The rule the legacy X-RateLimit-* fields report. Precondition: !rules().empty().
    const rule_status& binding() const noexcept { return rules_[binding_]; }

    /// Adds the rate-limit fields (as configured) to a response of a limited request.
    template <class Fields>
    void apply(http::header<false, Fields>& res) const {
        if (headers_ == nullptr || rules_.empty()) return;
        set_rate_limit_headers(res, rules_.view(), binding(), wall_now_, *headers_, policy_);
    }

    /// Calls `fn(name, value)` for each field apply() would set, for a server that
    /// writes its responses itself (for_each_rate_limit_field; the views are valid
    /// during the call only).
    template <class Fn>
    void for_each_field(Fn&& fn) const {
        if (headers_ == nullptr || rules_.empty()) return;
        for_each_rate_limit_field(rules_.view(), binding(), wall_now_, *headers_, policy_, fn);
    }

    /// Appends the fields apply() would set as header lines (`Name: value` and
    /// CRLF each) to `out`, e.g. a std::string (append_rate_limit_fields).
    template <class Out>
    void append_fields(Out& out) const {
        if (headers_ == nullptr || rules_.empty()) return;
        append_rate_limit_fields(out, rules_.view(), binding(), wall_now_, *headers_, policy_);
    }

    /// The middleware's own response for a request that must not proceed: the 429
    /// (text or problem+json, with all rate-limit fields) or the fail-closed 503.
    /// Precondition: !allowed().
    http::response<http::string_body> make_response(const http::request_header<>& req) const {
        if (status_ == limit_status::failed_closed)
            return make_unavailable_response(req.version(), keep_alive(req));
        bool json = false;
        if (problem_json_) {
            const auto accept = req[http::field::accept];
            json = prefers_json(std::string_view(accept.data(), accept.size()));
        }
        auto res = make_denied_response(req.version(), keep_alive(req), json, retry_after_);
        apply(res);
        return res;
    }

    /// Whether the connection persists after a response to `req` (RFC 9112 9.3).
    static bool keep_alive(const http::request_header<>& req) {
        http::token_list conn{req[http::field::connection]};
        return req.version() >= 11 ? !conn.exists("close") : conn.exists("keep-alive");
    }

private:
    template <class, class>
    friend class middleware;

    limit_status status_ = limit_status::unlimited;
    detail::rule_status_list rules_;
    std::size_t binding_ = 0;
    std::chrono::nanoseconds retry_after_{0};
    event_time wall_now_{};
    const header_options* headers_ = nullptr;
    std::string_view policy_;  // the route's preformatted RateLimit-Policy ("" = format it)
    bool problem_json_ = true;
};

/// Returns no user id: the default identify policy.
struct no_identity {
    std::optional<std::string> operator()(const http::request_header<>&) const noexcept {
        return std::nullopt;
    }
};

/// Rate limits the requests of a Beast server.
///
/// Limiter is a smart_ratelimit::limiter whose key extractor accepts a request_view
/// (request_key, ip_key, user_key, header_key, first_key...). Each route binds one
/// limiter; all routes share the Limiter type (use request_key to vary the key per
/// route). A request is checked against every route it matches: one matched route
/// is the limiter's own multi-rule decision; several are decided together, every
/// rule of every matched limiter evaluated and quota consumed only if all pass.
/// An extractor that yields "" falls back to the client's IP key, never "unlimited".
/// `Identify(const http::request_header<>&)` returns the authenticated user's id
/// (an optional string) for user keys and events.
///
/// With options().log_events, every decision goes to the limiter's sink as an event
/// with the path (no query), method, socket peer (not the X-Forwarded-For client)
/// and user id; a limiter called directly by handler code writes nothing.
/// Thread safety: add routes and set the work executor before serving; after that,
/// every member may be called concurrently. The limiters must outlive the middleware.
template <class Limiter, class Identify = no_identity>
class middleware {
public:
    using limiter_type = Limiter;

    explicit middleware(middleware_options options = {}, Identify identify = Identify{})
        : options_(std::move(options)), identify_(std::move(identify)) {
        options_.fallback_grouping.validate();
    }

    middleware(const middleware&) = delete;
    middleware& operator=(const middleware&) = delete;

    /// Applies `lim` to the requests `r` matches. Throws config_error for a prefix
    /// that does not start with '/', a cost of 0 or a cost above a rule's limit.
    middleware& add(Limiter& lim, route r = {}) {
        if (r.path_prefix.empty() || r.path_prefix.front() != '/')
            throw config_error("route path prefix must start with '/': \"" + r.path_prefix + "\"");
        if (r.cost == 0) throw config_error("route cost must be at least 1 (\"" + r.path_prefix + "\")");
        for (const auto& rule : lim.rules())
            if (r.cost > rule.algorithm.limit())
                throw config_error("route \"" + r.path_prefix + "\": cost " + std::to_string(r.cost) +
                                   " exceeds the limit of rule \"" + rule.name + "\"");
        // A request that matches this route alone reports these rules' fixed policy.
        std::vector<rule_status> rules;
        for (const auto& rule : lim.rules())
            rules.push_back(rule_status{std::string_view(rule.name), rule.algorithm.limit(), 0,
                                        rule.algorithm.period(), {}});
        std::string policy = format_ratelimit_policy(rules, options_.headers.default_policy_name);
        routes_.push_back(bound_route{std::move(r), &lim, std::move(policy)});
        return *this;
    }

    /// Runs checks on `ex` (e.g. an asio::thread_pool's executor) in async_check and
    /// async_handle, for limiters whose storage blocks (SQL, Redis).
    void set_work_executor(boost::asio::any_io_executor ex) { work_ = std::move(ex); }

    const middleware_options& options() const noexcept { return options_; }

    middleware_stats stats() const noexcept {
        middleware_stats s;
        s.checked = checked_.load(std::memory_order_relaxed);
        s.allowed = allowed_.load(std::memory_order_relaxed);
        s.blocked = blocked_.load(std::memory_order_relaxed);
        s.failed_open = failed_open_.load(std::memory_order_relaxed);
        s.failed_closed = failed_closed_.load(std::memory_order_relaxed);
        s.sink_failures = sink_failures_.load(std::memory_order_relaxed);
        s.identify_failures = identify_failures_.load(std::memory_order_relaxed);
        return s;
    }

    /// Checks a request from `peer` (the socket peer) synchronously.
    limit_result check(const http::request_header<>& req, const ip_address& peer) {
        if (!any_route_matches(req)) {
            // Not limited: skip identify and the X-Forwarded-For walk.
            limit_result out;
            out.headers_ = &options_.headers;
            return out;
        }
        std::optional<std::string> user;
        try {
            user = identify_(req);
        } catch (...) {
            // An identify policy that throws makes the request anonymous (keyed by IP).
            identify_failures_.fetch_add(1, std::memory_order_relaxed);
        }
        request_view view(req, peer, options_.trusted_proxies);
        if (user) view.set_user_id(std::string_view(*user));
        return check(view);
    }

    /// Checks a prepared view (its client and user id already set).
    limit_result check(const request_view& view) {
        limit_result out;
        out.headers_ = &options_.headers;
        out.problem_json_ = options_.problem_json;
        const auto verb = view.request().method();
        const std::string_view path = view.path();
        std::size_t first = routes_.size(), matched = 0;
        for (std::size_t i = 0; i < routes_.size(); ++i)
            if (routes_[i].r.matches(path, verb)) {
                if (matched++ == 0) first = i;
            }
        if (matched == 0) return out;
        checked_.fetch_add(1, std::memory_order_relaxed);
        try {
            if (matched == 1)
                check_one(view, routes_[first], out);
            else
                check_many(view, path, verb, out);
        } catch (...) {
            fail(out);
            return out;
        }
        (out.status_ == limit_status::blocked ? blocked_ : allowed_)
            .fetch_add(1, std::memory_order_relaxed);
        return out;
    }

    /// Synchronous servers: checks `req`, then either returns the 429/503 or calls
    /// `handler(req)` (which returns an http::response) and adds the rate-limit
    /// fields to its response. Exceptions from the handler propagate.
    template <class Body, class Handler>
    http::message_generator handle(http::request<Body>& req, const ip_address& peer,
                                   Handler&& handler) {
        const limit_result r = check(req, peer);
        return finish(r, req, handler);
    }

    /// Asynchronous check, completing with `void(limit_result)`. The check runs on
    /// the work executor when one is set and a route matches (else inline, before
    /// this returns) and the
    /// handler on its associated executor (bind callbacks with asio::bind_executor).
    /// `req` must stay valid and unmodified until the completion handler runs.
    template <class CompletionToken>
    auto async_check(const http::request_header<>& req, const ip_address& peer,
                     CompletionToken&& token) {
        return boost::asio::async_initiate<CompletionToken, void(limit_result)>(
            [this, &req, peer](auto handler) {
                auto ex = boost::asio::get_associated_executor(handler);
                auto done = boost::asio::bind_executor(
                    ex, [this, h = std::move(handler)](std::exception_ptr error, limit_result r) mutable {
                        if (error) fail(r);  // only bad_alloc gets here: check() catches the rest
                        std::move(h)(std::move(r));
                    });
                auto fn = [this, &req, peer] { return check(req, peer); };
                if (work_ && any_route_matches(req))
                    detail::start_blocking(std::move(done), std::move(fn), *work_);
                else
                    run_inline(std::move(done), std::move(fn));
            },
            token);
    }

    /// async_check followed by the handler, for callback and coroutine servers:
    /// completes with `void(std::exception_ptr, http::message_generator)`, the 429/503
    /// or `handler(req)`'s response with the rate-limit fields. A handler exception
    /// is passed as the exception_ptr (with a bare 500 response); co_await rethrows it.
    /// `req` must stay valid until completion.
    template <class Body, class Handler, class CompletionToken>
    auto async_handle(http::request<Body>& req, const ip_address& peer, Handler handler,
                      CompletionToken&& token) {
        return boost::asio::async_initiate<CompletionToken,
                                           void(std::exception_ptr, http::message_generator)>(
            [this, &req, peer](auto completion, Handler handler) {
                auto ex = boost::asio::get_associated_executor(completion);
                this->async_check(
                    req, peer,
                    boost::asio::bind_executor(
                        ex, [this, &req, handler = std::move(handler),
                             completion = std::move(completion)](limit_result r) mutable {
                            std::exception_ptr error;
                            std::optional<http::message_generator> msg;
                            try {
                                msg.emplace(finish(r, req, handler));
                            } catch (...) {
                                error = std::current_exception();
                                http::response<http::string_body> res{
                                    http::status::internal_server_error, req.version()};
                                res.keep_alive(false);
                                res.prepare_payload();
                                msg.emplace(std::move(res));
                            }
                            std::move(completion)(error, std::move(*msg));
                        }));
            },
            token, std::move(handler));
    }

private:
    // Applies the fail policy to `out` and counts it.
    void fail(limit_result& out) noexcept {
        out.rules_.clear();
        out.retry_after_ = std::chrono::nanoseconds{0};
        out.headers_ = &options_.headers;
        if (options_.on_storage_failure == fail_policy::fail_open) {
            out.status_ = limit_status::failed_open;
            failed_open_.fetch_add(1, std::memory_order_relaxed);
        } else {
            out.status_ = limit_status::failed_closed;
            failed_closed_.fetch_add(1, std::memory_order_relaxed);
        }
    }

    bool any_route_matches(const http::request_header<>& req) const noexcept {
        const auto t = req.target();
        const std::string_view path = path_of(std::string_view(t.data(), t.size()));
        const auto verb = req.method();
        for (const auto& br : routes_)
            if (br.r.matches(path, verb)) return true;
        return false;
    }

    struct bound_route {
        route r;
        Limiter* limiter;
        std::string policy;  // RateLimit-Policy of the limiter's rules alone (fixed)
    };

    template <class Body, class Handler>
    http::message_generator finish(const limit_result& r, http::request<Body>& req, Handler& handler) {
        if (!r.allowed()) return http::message_generator(r.make_response(req));
        auto res = std::invoke(handler, req);
        r.apply(res);
        return http::message_generator(std::move(res));
    }

    // No work executor: check now, complete through the handler's executor
    // (never from inside the initiating function).
    template <class Done, class Fn>
    static void run_inline(Done done, Fn fn) {
        std::exception_ptr error;
        limit_result r;
        try {
            r = fn();
        } catch (...) {
            error = std::current_exception();
        }
        auto ex = boost::asio::get_associated_executor(done);
        boost::asio::post(ex, [done = std::move(done), error, r = std::move(r)]() mutable {
            std::move(done)(error, std::move(r));
        });
    }

    void push_status(limit_result& out, const Limiter& lim, std::size_t rule_index,
                     const decision& d) const {
        const auto& rule = lim.rules()[rule_index];
        out.rules_.push_back(rule_status{std::string_view(rule.name), d.limit, d.remaining,
                                         rule.algorithm.period(), d.reset_after});
    }

    // Picks the binding rule and the wait, given each rule's blocked() flag.
    static void conclude(limit_result& out, const char* blocked, std::size_t n,
                         const std::chrono::nanoseconds* waits) {
        bool any = false;
        std::size_t best = 0;
        for (std::size_t i = 0; i < n; ++i) {
            if (blocked[i]) {
                if (!any || waits[i] > out.retry_after_) {
                    best = i;
                    out.retry_after_ = waits[i];
                }
                any = true;
            } else if (!any && out.rules_[i].remaining < out.rules_[best].remaining) {
                best = i;
            }
        }
        if (any && out.retry_after_ == never) {
            // Cannot pass at all (cost above capacity): report the window.
            out.retry_after_ = out.rules_[best].window;
        }
        out.binding_ = best;
        out.status_ = any ? limit_status::blocked : limit_status::allowed;
    }

    std::string fallback_key(const request_view& view) const {
        return smart_ratelimit::ip_key(view.client(), options_.fallback_grouping);
    }

    request_info info_of(const request_view& view, std::string_view peer_text,
                         std::string_view fallback) const {
        request_info info;
        info.path = view.path();
        info.method = view.method();
        info.ip_address = peer_text;
        info.user_id = view.user_id();
        info.fallback_key = fallback;
        return info;
    }

    // One matched route: the limiter's own multi-rule decision.
    void check_one(const request_view& view, bound_route& br, limit_result& out) {
        Limiter& lim = *br.limiter;
        auto&& key = lim.key_extractor()(view);
        std::string_view k(key);
        std::string fallback;  // the client's IP key, built only when the extractor yields ""
        if (k.empty()) {
            fallback = fallback_key(view);
            k = fallback;
        }
        verdict v;
        if (options_.log_events) {
            char peer_text[ip_address::max_text_size];
            const std::string_view peer(peer_text, view.peer().write(peer_text));
            v = lim.check_key_and_record(k, info_of(view, peer, {}), br.r.cost);
        } else {
            v = lim.check_key(k, br.r.cost);
        }
        out.wall_now_ = wall_now_coarse(lim.clock());
        out.policy_ = br.policy;
        const auto ds = v.decisions();
        char blocked[verdict::max_rules];
        std::chrono::nanoseconds waits[verdict::max_rules];
        for (std::size_t i = 0; i < ds.size(); ++i) {
            push_status(out, lim, i, ds[i]);
            blocked[i] = ds[i].blocked();
            waits[i] = ds[i].retry_after;
        }
        conclude(out, blocked, ds.size(), waits);
    }

    struct pending {
        Limiter* limiter;
        std::size_t rule;
        std::chrono::nanoseconds now;
        std::uint64_t cost;
        decision d;
        bool acquired = false;
    };

    static void fill(decision& d, const Limiter& lim, std::size_t rule, const outcome& o) noexcept {
        const auto& r = lim.rules()[rule];
        d.allowed = o.allowed;
        d.shadow = r.shadow || lim.options().shadow;
        d.retryable = o.retryable;
        d.limit = r.algorithm.limit();
        d.remaining = o.remaining;
        d.count = o.count;
        d.reset_after = o.reset_after;
        d.retry_after = o.retry_after;
        d.rule = r.name;
    }

    // Several matched routes: peek every rule of every matched limiter; if none
    // blocks, acquire them all, refunding on a lost race (the limiter's own protocol
    // across limiters), so no rule spends budget for a request another rejects.
    void check_many(const request_view& view, std::string_view path, http::verb verb,
                    limit_result& out) {
        std::vector<pending> ps;
        std::string fallback;
        for (auto& br : routes_) {
            if (!br.r.matches(path, verb)) continue;
            Limiter& lim = *br.limiter;
            auto&& key = lim.key_extractor()(view);
            std::string_view inner(key);
            if (inner.empty()) {
                if (fallback.empty()) fallback = fallback_key(view);
                inner = fallback;
            }
            const auto now = lim.clock().now();
            for (std::size_t i = 0; i < lim.rules().size(); ++i) {
                pending& p = ps.emplace_back(pending{&lim, i, now, br.r.cost, decision{}, false});
                const auto& rule = lim.rules()[i];
                format_key(p.d.key, rule.name, inner);
                fill(p.d, lim, i, lim.storage().peek(p.d.key.view(), rule.algorithm, now, br.r.cost));
            }
        }
        bool blocked_any = false;
        for (const auto& p : ps) blocked_any = blocked_any || p.d.blocked();
        if (!blocked_any) {
            try {
                for (std::size_t i = 0; i < ps.size(); ++i) {
                    pending& p = ps[i];
                    if (!p.d.allowed) continue;  // a denying shadow rule consumes nothing
                    const auto& rule = p.limiter->rules()[p.rule];
                    fill(p.d, *p.limiter, p.rule,
                         p.limiter->storage().acquire(p.d.key.view(), rule.algorithm, p.now, p.cost));
                    p.acquired = p.d.allowed;
                    if (p.d.blocked()) {
                        refund(ps, i);
                        break;
                    }
                }
            } catch (...) {
                refund(ps, ps.size());
                throw;
            }
        }
        out.wall_now_ = ps.front().limiter->clock().wall_now();
        if (options_.log_events) record(view, ps, out.wall_now_);
        std::vector<char> blocked(ps.size());
        std::vector<std::chrono::nanoseconds> waits(ps.size());
        for (std::size_t i = 0; i < ps.size(); ++i) {
            push_status(out, *ps[i].limiter, ps[i].rule, ps[i].d);
            blocked[i] = ps[i].d.blocked();
            waits[i] = ps[i].d.retry_after;
        }
        conclude(out, blocked.data(), ps.size(), waits.data());
    }

    static void refund(std::vector<pending>& ps, std::size_t upto) noexcept {
        for (std::size_t j = 0; j < upto && j < ps.size(); ++j) {
            if (!ps[j].acquired) continue;
            try {
                const auto& rule = ps[j].limiter->rules()[ps[j].rule];
                ps[j].limiter->storage().release(ps[j].d.key.view(), rule.algorithm, ps[j].now, ps[j].cost);
            } catch (...) {
            }
            ps[j].acquired = false;
        }
    }

    void record(const request_view& view, const std::vector<pending>& ps, event_time ts) {
        if constexpr (requires { Limiter::sink_type::discards_events; }) {
            if constexpr (Limiter::sink_type::discards_events) return;
        }
        const std::string peer_text = view.peer().to_string();
        const auto user = view.user_id();
        for (const auto& p : ps) {
            try {
                p.limiter->sink().record(make_event(ts, p.d.key.view(), view.path(), view.method(),
                                                    p.d.allowed, static_cast<std::int64_t>(p.d.count),
                                                    static_cast<std::int64_t>(p.d.limit),
                                                    std::string_view(peer_text), user));
            } catch (...) {
                sink_failures_.fetch_add(1, std::memory_order_relaxed);
            }
        }
    }

    middleware_options options_;
    [[no_unique_address]] Identify identify_;
    std::vector<bound_route> routes_;
    std::optional<boost::asio::any_io_executor> work_;
    std::atomic<std::uint64_t> checked_{0}, allowed_{0}, blocked_{0}, failed_open_{0},
        failed_closed_{0}, sink_failures_{0}, identify_failures_{0};
};

}  // namespace smart_ratelimit::beast
