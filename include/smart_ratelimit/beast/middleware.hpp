// smart_ratelimit/beast/middleware.hpp
// The Boost.Beast middleware: routes (path prefix + methods) bound to limiters,
// checked on every request; a 429 with Retry-After (text or problem+json) when the
// client is over a limit; RateLimit-Policy/RateLimit and X-RateLimit-* on every
// limited response; a 503 (fail_closed) or a pass without quota fields (fail_open)
// when the store could not decide; one event per decision when logging is on.
// Synchronous (handle), callback and coroutine (async_check, async_handle) servers;
// the asynchronous operations complete with an error_code first, as Asio's do.
// Member bodies are in beast/impl/middleware.hpp.
#pragma once

#include <smart_ratelimit/beast/async_check.hpp>
#include <smart_ratelimit/beast/denied_response.hpp>
#include <smart_ratelimit/beast/error.hpp>
#include <smart_ratelimit/beast/headers.hpp>
#include <smart_ratelimit/beast/keys.hpp>
#include <smart_ratelimit/beast/limit_result.hpp>
#include <smart_ratelimit/beast/middleware_options.hpp>
#include <smart_ratelimit/beast/request_handler.hpp>
#include <smart_ratelimit/beast/route.hpp>
#include <smart_ratelimit/decision.hpp>
#include <smart_ratelimit/error.hpp>
#include <smart_ratelimit/event.hpp>
#include <smart_ratelimit/keys/cidr.hpp>
#include <smart_ratelimit/keys/ip.hpp>
#include <smart_ratelimit/limiter.hpp>
#include <smart_ratelimit/rule.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/message_generator.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/verb.hpp>
#include <boost/system/error_code.hpp>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace smart_ratelimit::beast {

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
/// A decision the store could not make is degraded, never a denial: the limiter's
/// limiter_options::on_store_failure answers it with a 503 and Retry-After
/// (fail_closed) or lets the request through (fail_open), both without quota
/// fields. A client over a limit gets the 429 even when another rule is degraded.
///
/// With options().log_events, every decision goes to the limiter's sink as an event
/// with its outcome, the path (no query), method, socket peer (not the
/// X-Forwarded-For client) and user id; a limiter called directly by handler code
/// writes nothing. Every decision also reaches the limiter's observer.
/// Thread safety: add routes and set the work executor before serving; after that,
/// every member may be called concurrently. The limiters must outlive the middleware.
template <class Limiter, class Identify = no_identity>
class middleware {
public:
    using limiter_type = Limiter;

    explicit middleware(middleware_options options = {}, Identify identify = Identify{});

    middleware(const middleware&) = delete;
    middleware& operator=(const middleware&) = delete;

    /// Applies `lim` to the requests `r` matches. Throws config_error for a prefix
    /// that does not start with '/', a cost of 0 or a cost above a rule's limit.
    middleware& add(Limiter& lim, route r = {});

    /// Runs checks on `ex` (e.g. an asio::thread_pool's executor) in async_check and
    /// async_handle, for limiters whose storage blocks (SQL, Redis).
    void set_work_executor(boost::asio::any_io_executor ex) { work_ = std::move(ex); }

    const middleware_options& options() const noexcept { return options_; }

    middleware_stats stats() const noexcept;

    /// Checks a request from `peer` (the socket peer) synchronously.
    limit_result check(const http::request_header<>& req, const ip_address& peer);

    /// Checks a prepared view (its client and user id already set).
    limit_result check(const request_view& view);

    /// Synchronous servers: checks `req`, then either returns the 429/503 or calls
    /// `handler` (a request_handler: `handler(req)` or `handler(req, result)`) and
    /// returns its answer; a response gets the rate-limit fields, a
    /// message_generator carries those the handler applied. Handler exceptions
    /// propagate.
    template <class Body, handles<Body> Handler>
    http::message_generator handle(http::request<Body>& req, const ip_address& peer,
                                   Handler&& handler);

    /// Asynchronous check, completing with `void(boost::system::error_code, limit_result)`.
    /// Every decision, a degraded store's included, is a result with no error. The
    /// error is set only when the check could not run: error::work_rejected (the work
    /// executor threw when given it) or error::check_failed (it threw: out of
    /// memory); the result is then degraded_closed, a 503. The check runs on the work
    /// executor when one is set and a route matches (else inline, before this
    /// returns) and the completion on the handler's associated executor, never inside
    /// this call (bind callbacks with asio::bind_executor). With use_awaitable an
    /// error throws system_error; use as_tuple to receive it. `req` must stay valid and
    /// unmodified until completion. Not cancellable.
    template <class CompletionToken>
    auto async_check(const http::request_header<>& req, const ip_address& peer,
                     CompletionToken&& token);

    /// async_check followed by the handler (as in handle), for callback and coroutine
    /// servers: completes with `void(boost::system::error_code, http::message_generator)`.
    /// The message is always one to write: the 429/503, the handler's answer, the
    /// 503 when the check could not run (error as in async_check), or a bare 500
    /// (Connection: close) with error::handler_failed when the handler threw. The
    /// exception itself is not carried (an error_code cannot hold it): a handler
    /// that needs it catches it. `req` must stay valid until completion.
    template <class Body, handles<Body> Handler, class CompletionToken>
    auto async_handle(http::request<Body>& req, const ip_address& peer, Handler handler,
                      CompletionToken&& token);

private:
    struct bound_route {
        route r;
        Limiter* limiter;
        std::string policy;  // RateLimit-Policy of the limiter's rules alone (fixed)
    };

    // One rule decision of a request that matched several routes.
    struct pending {
        Limiter* limiter;
        std::size_t rule;
        std::chrono::nanoseconds now;
        std::uint64_t cost;
        decision d;
        bool acquired = false;
    };

    void fail(limit_result& out, const Limiter* lim) noexcept;
    bool any_route_matches(const http::request_header<>& req) const noexcept;

    template <class Handler, class Fn, class Complete>
    static void run_inline(Handler handler, Fn fn, Complete complete);

    void push_status(limit_result& out, const Limiter& lim, std::size_t rule_index,
                     const decision& d) const;
    static void conclude(limit_result& out, std::span<const decision* const> ds);
    void count(const limit_result& out) noexcept;
    std::string fallback_key(const request_view& view) const;
    request_info info_of(const request_view& view, std::string_view peer_text,
                         std::string_view fallback) const;

    void check_one(const request_view& view, bound_route& br, limit_result& out);
    void check_many(const request_view& view, std::string_view path, http::verb verb,
                    limit_result& out);
    static void refund(std::vector<pending>& ps, std::size_t upto) noexcept;
    void record(const request_view& view, const std::vector<pending>& ps, event_time ts);

    middleware_options options_;
    [[no_unique_address]] Identify identify_;
    std::vector<bound_route> routes_;
    std::optional<boost::asio::any_io_executor> work_;
    std::atomic<std::uint64_t> checked_{0}, allowed_{0}, blocked_{0}, degraded_open_{0},
        degraded_closed_{0}, sink_failures_{0}, identify_failures_{0};
};

}  // namespace smart_ratelimit::beast

#include <smart_ratelimit/beast/impl/middleware.hpp>
