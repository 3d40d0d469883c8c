// smart_ratelimit/beast/dashboard.hpp
// The staff dashboard as a Beast request handler: the HTML page, the offenders CSV,
// the drill-down of one key (HTML and JSON), the timeline as JSON with an optional
// live-refresh script, a token sign-in form, a health endpoint and a Prometheus
// `/metrics` endpoint. A template over the data source, the authorizer (default:
// deny everyone) and the page renderer; `async_handle` runs the blocking work on a
// worker executor and completes on the caller's executor. Bodies in impl/dashboard.hpp.
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
#include <smart_ratelimit/beast/offender_page.hpp>

#include <concepts>
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
/// | `signin`, `signout`           | the token form (only with a token_sign_in_authorizer)   |
///
/// and `options.metrics_path` (absolute, default `/metrics`; staff only, e.g. with
/// `Authorization: Bearer`): the `options.metrics` text, 404 when there is none.
/// Anonymous and non-staff requests get one identical `403 Forbidden`. An authorizer,
/// data source or callable that throws gives `503 Service Unavailable` without
/// details. Every response carries the security headers (`Content-Security-Policy`
/// without inline script, `X-Content-Type-Options: nosniff`, `Cache-Control:
/// no-store`, `Referrer-Policy: no-referrer`, `X-Frame-Options: DENY`).
///
/// Health is deliberately reachable without credentials, so that orchestrators can
/// probe it: anonymous callers get only `{"status":"ok"}` or `{"status":"unhealthy"}`
/// (and the status code); staff get the whole `health_report::to_json()`.
///
/// Thread safety: `handle` and `async_handle` may be called concurrently; the
/// dashboard itself is immutable after construction.
template <dashboard_data_source Source, dashboard_authorizer Authorizer = deny_all,
          dashboard_renderer Renderer = default_dashboard_page>
class dashboard {
public:
    using response_type = http::response<http::string_body>;
    using request_type = http::request<http::string_body>;

    /// Throws config_error when the prefix does not start and end with '/', the
    /// metrics path is neither empty nor an absolute path, or live refresh is on
    /// with an interval under 100 ms.
    explicit dashboard(Source source, Authorizer authorizer = {}, dashboard_options options = {},
                       Renderer renderer = {});

    const Source& data_source() const noexcept { return source_; }
    const Authorizer& authorizer() const noexcept { return authorizer_; }
    const Renderer& renderer() const noexcept { return renderer_; }
    const dashboard_options& options() const noexcept { return options_; }

    /// True when `target` (a request target, query allowed) is one of the dashboard's paths.
    bool matches(std::string_view target) const noexcept { return route_of(target) != route::none; }

    /// Answers a request for one of the dashboard's paths (see `matches`), making the
    /// data source's calls on the calling thread. Does not throw for request data or
    /// a failing authorizer, data source or callable: those yield 503.
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

    route route_of(std::string_view target) const noexcept;
    std::string url(std::string_view rest) const { return options_.prefix + std::string(rest); }

    static void secure(response_type& res, std::string_view style_nonce,
                       std::string_view script_nonce);
    static response_type make(const request_type& req, http::status status, std::string_view type,
                              std::string body, std::string_view style_nonce = {},
                              std::string_view script_nonce = {});
    static response_type text(const request_type& req, http::status status, std::string_view body);
    static response_type forbidden(const request_type& req);
    static response_type unavailable(const request_type& req);

    response_type dispatch_route(const request_type& req, route r) const;
    response_type page(const request_type& req, int days, event_time now) const;
    response_type csv(const request_type& req, int days, event_time now) const;
    response_type drill_down(const request_type& req, std::string_view query, int days,
                             event_time now) const;
    response_type offender_html(const request_type& req, std::string_view query, int days,
                                event_time now) const;
    response_type timeline_json(const request_type& req, int days, event_time now) const;
    response_type health(const request_type& req) const;
    response_type sign_in(const request_type& req) const;
    response_type sign_out(const request_type& req) const;

    [[no_unique_address]] Source source_;
    [[no_unique_address]] Authorizer authorizer_;
    [[no_unique_address]] Renderer renderer_;
    dashboard_options options_;
};

}  // namespace smart_ratelimit::beast

#include <smart_ratelimit/beast/impl/dashboard.hpp>
