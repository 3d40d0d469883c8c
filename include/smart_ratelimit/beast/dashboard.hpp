// smart_ratelimit/beast/dashboard.hpp
// The staff dashboard as a Beast request handler: the HTML page, the offenders CSV,
// the drill-down of one key (HTML and JSON), the timeline as JSON with an optional
// live-refresh script, a throttled token sign-in form with server-side sessions, a
// health endpoint and a Prometheus `/metrics` endpoint. A template over the data
// source, the authorizer (default: deny everyone), the page renderer and the clock;
// `async_handle` runs the blocking work on a worker executor and completes on the
// caller's executor. Bodies in impl/dashboard.hpp.
#pragma once

#include <boost/asio/async_result.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/verb.hpp>
#include <boost/system/error_code.hpp>

#include <smart_ratelimit/beast/async_check.hpp>
#include <smart_ratelimit/beast/authorizer.hpp>
#include <smart_ratelimit/beast/dashboard_options.hpp>
#include <smart_ratelimit/beast/dashboard_page.hpp>
#include <smart_ratelimit/beast/dashboard_source.hpp>
#include <smart_ratelimit/beast/detail/dashboard_http.hpp>
#include <smart_ratelimit/beast/error.hpp>
#include <smart_ratelimit/beast/keys.hpp>
#include <smart_ratelimit/beast/offender_page.hpp>
#include <smart_ratelimit/beast/staff_sessions.hpp>
#include <smart_ratelimit/clock.hpp>
#include <smart_ratelimit/keys/fixed_key.hpp>
#include <smart_ratelimit/limiter.hpp>
#include <smart_ratelimit/storage/in_memory_storage.hpp>

#include <chrono>
#include <concepts>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace smart_ratelimit::beast {

namespace http = boost::beast::http;

/// dashboard_renderer: turns the page data into an HTML document.
///
/// | expression   | type          | meaning                                          |
/// |--------------|---------------|--------------------------------------------------|
/// | `r(c)`       | `std::string` | `c` a `const dashboard_context&`; the whole page |
/// | `r(o)`       | `std::string` | optional: `o` a `const offender_context&`; the offender page (else default_offender_page) |
///
/// The page is served with a CSP that forbids inline script and allows inline style
/// only in a `<style nonce="...">` element carrying `c.style_nonce`; with live refresh
/// on, one `<script src>` carrying `c.script_nonce` may load the dashboard's live.js.
template <class R>
concept dashboard_renderer = requires(const R& r, const dashboard_context& c) {
    { r(c) } -> std::convertible_to<std::string>;
};

/// The staff dashboard.
///
/// Endpoints under `options.prefix` (GET only; staff only unless noted):
///
/// | path                          | answer                                                   |
/// |-------------------------------|----------------------------------------------------------|
/// | `dashboard/?days=`            | the HTML page                                            |
/// | `dashboard/offenders.csv?days=` | the top offenders as a CSV attachment                  |
/// | `dashboard/offender/?key=&days=` | the drill-down of one key as JSON (400 without a key) |
/// | `dashboard/offender.html?key=&days=` | the same as an HTML page (400 page without a key) |
/// | `dashboard/timeline.json?days=` | the chart's buckets (hourly up to 2 days, else daily) |
/// | `dashboard/live.js`           | the live refresh script (only with `live_refresh`)       |
/// | `health`                      | anyone: 200 healthy / 503 not; staff also get every check |
/// | `signin`                      | anyone, with a token_sign_in_authorizer: GET the form, POST it |
/// | `signout`                     | POST only, with the session's CSRF token                 |
///
/// and `options.metrics_path` (absolute, default `/metrics`; staff only, e.g. with
/// `Authorization: Bearer`): the `options.metrics` text, 404 when there is none.
/// Anonymous and non-staff requests get one identical `403 Forbidden`. An authorizer,
/// data source or callable that throws gives `503 Service Unavailable` without
/// details. Every response carries the security headers (`Content-Security-Policy`
/// without inline script, `X-Content-Type-Options: nosniff`, `Cache-Control:
/// no-store`, `Referrer-Policy: no-referrer`, `X-Frame-Options: DENY`).
///
/// Sign-in (only when the authorizer is a token_sign_in_authorizer): a staff token
/// typed into the form opens a server-side session (staff_sessions); the cookie
/// `options.session_cookie` holds the random session id, never the token (HttpOnly,
/// SameSite=Strict, Path=prefix, Max-Age=cookie_max_age, Secure with secure_cookie).
/// Sign-out revokes the session, so a copied cookie is worthless afterwards. CSRF:
/// the form is a double submit, its hidden `csrf` field equal to an HttpOnly,
/// SameSite=Strict cookie `<session_cookie>_csrf` set with the form (no server state
/// before sign-in); sign-out posts the session's own CSRF token (in
/// dashboard_context::csrf_token). A missing or wrong CSRF token is a 403 that opens
/// or ends nothing. Attempts are limited per client address (`sign_in_rate`, 5 a
/// minute by default, by a sliding-window limiter of this library; the address
/// resolved through `trusted_proxies` and grouped like ip_key); a correct token gives
/// its attempt back, and a client over the rate gets `429` with `Retry-After` even
/// for a correct token. Pass the socket peer (`handle(req, peer)`): without it every
/// attempt counts against one shared budget.
///
/// Health is deliberately reachable without credentials, so that orchestrators can
/// probe it: anonymous callers get only `{"status":"ok"}` or `{"status":"unhealthy"}`
/// (and the status code); staff get the whole `health_report::to_json()`.
///
/// Thread safety: `handle` and `async_handle` may be called concurrently; the
/// configuration is immutable after construction, and the sessions and the sign-in
/// throttle are synchronized internally.
template <dashboard_data_source Source, dashboard_authorizer Authorizer = deny_all,
          dashboard_renderer Renderer = default_dashboard_page,
          smart_ratelimit::clock Clock = steady_clock>
class dashboard {
public:
    using response_type = http::response<http::string_body>;
    using request_type = http::request<http::string_body>;
    using clock_type = Clock;
    using sessions_type = staff_sessions<Clock>;

    /// Throws config_error when the prefix does not start and end with '/', the
    /// metrics path is neither empty nor an absolute path, or live refresh is on
    /// with an interval under 100 ms; with a token_sign_in_authorizer also for an
    /// invalid session_cookie, sign_in_rate, cookie_max_age, session_idle_timeout or
    /// max_sessions.
    explicit dashboard(Source source, Authorizer authorizer = {}, dashboard_options options = {},
                       Renderer renderer = {}, Clock clock = {});

    const Source& data_source() const noexcept { return source_; }
    const Authorizer& authorizer() const noexcept { return authorizer_; }
    const Renderer& renderer() const noexcept { return renderer_; }
    const dashboard_options& options() const noexcept { return options_; }

    /// The sign-in sessions, e.g. to `revoke_all()` after replacing a staff token.
    /// Thread safety: staff_sessions is synchronized internally.
    sessions_type& sessions() const noexcept requires token_sign_in_authorizer<Authorizer> {
        return sign_in_->sessions;
    }

    /// True when `target` (a request target, query allowed) is one of the dashboard's paths.
    bool matches(std::string_view target) const noexcept { return route_of(target) != route::none; }

    /// Answers a request for one of the dashboard's paths (see `matches`), making the
    /// data source's calls on the calling thread. `peer` is the socket peer, which
    /// names the client of a sign-in attempt; without it all attempts share one
    /// budget. Does not throw for request data or a failing authorizer, data source
    /// or callable: those yield 503.
    response_type handle(const request_type& req, const ip_address& peer) const;
    response_type handle(const request_type& req) const;

    /// `handle` on `work` (an executor, e.g. a thread pool's), completing with the
    /// response on the completion handler's associated executor, never inside this
    /// call. Signature `void(boost::system::error_code, response_type)`; any Asio
    /// completion token (callback, use_awaitable, use_future, deferred). Every
    /// answer, a 503 for a failing data source included, comes with no error; the
    /// error is error::work_rejected when `work` threw instead of taking the job
    /// (the response is then a bare 503). No exception escapes onto `work`'s
    /// threads. The dashboard must outlive the operation.
    template <class Executor, class CompletionToken>
    auto async_handle(const Executor& work, request_type req, const ip_address& peer,
                      CompletionToken&& token) const;
    template <class Executor, class CompletionToken>
    auto async_handle(const Executor& work, request_type req, CompletionToken&& token) const;

private:
    enum class route {
        none,
        page,
        csv,
        offender,
        offender_page,
        timeline,
        live_js,
        health,
        metrics,
        sign_in,
        sign_out
    };

    /// Who sent a request: staff or not, and the CSRF token of its sign-in session
    /// (empty for a bearer token or the application's own authorizer).
    struct caller {
        bool staff = false;
        std::string csrf_token;
    };

    /// The sign-in's shared state: the sessions and the per-client attempt limiter.
    using throttle_type = limiter<fixed_key, in_memory_storage<sliding_window>, null_sink, Clock>;
    struct sign_in_state {
        sign_in_state(const dashboard_options& o, const Clock& clock);
        sessions_type sessions;
        throttle_type throttle;
    };

    route route_of(std::string_view target) const noexcept;
    std::string url(std::string_view rest) const { return options_.prefix + std::string(rest); }
    std::string csrf_cookie_name() const { return options_.session_cookie + "_csrf"; }
    std::string cookie(std::string_view name, std::string_view value, std::string_view path,
                       long long max_age) const;

    static void secure(response_type& res, std::string_view style_nonce,
                       std::string_view script_nonce);
    static response_type make(const request_type& req, http::status status, std::string_view type,
                              std::string body, std::string_view style_nonce = {},
                              std::string_view script_nonce = {});
    static response_type text(const request_type& req, http::status status, std::string_view body);
    static response_type forbidden(const request_type& req);
    static response_type unavailable(const request_type& req);
    static response_type method_not_allowed(const request_type& req, std::string_view allow);

    template <class Executor, class CompletionToken>
    auto async_answer(const Executor& work, request_type req, std::optional<ip_address> peer,
                      CompletionToken&& token) const;
    response_type answer(const request_type& req, const ip_address* peer) const;
    caller caller_of(const request_type& req) const;
    response_type dispatch_route(const request_type& req, route r, const caller& who) const;
    response_type page(const request_type& req, int days, event_time now, const caller& who) const;
    response_type csv(const request_type& req, int days, event_time now) const;
    response_type drill_down(const request_type& req, std::string_view query, int days,
                             event_time now) const;
    response_type offender_html(const request_type& req, std::string_view query, int days,
                                event_time now) const;
    response_type timeline_json(const request_type& req, int days, event_time now) const;
    response_type health(const request_type& req) const;
    response_type sign_in_form(const request_type& req) const;
    response_type sign_in(const request_type& req, const ip_address* peer) const;
    response_type sign_out(const request_type& req) const;

    [[no_unique_address]] Source source_;
    [[no_unique_address]] Authorizer authorizer_;
    [[no_unique_address]] Renderer renderer_;
    dashboard_options options_;
    std::unique_ptr<sign_in_state> sign_in_;  // with a token_sign_in_authorizer only
};

}  // namespace smart_ratelimit::beast

#include <smart_ratelimit/beast/impl/dashboard.hpp>
