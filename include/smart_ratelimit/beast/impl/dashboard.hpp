// smart_ratelimit/beast/impl/dashboard.hpp
// The member bodies of beast::dashboard (included at the bottom of
// beast/dashboard.hpp): routing, authorization, the security headers, and each
// endpoint's response.
#pragma once

#include <smart_ratelimit/analytics/csv.hpp>
#include <smart_ratelimit/analytics/json_text.hpp>
#include <smart_ratelimit/beast/detail/live_script.hpp>
#include <smart_ratelimit/beast/traffic_timeline.hpp>
#include <smart_ratelimit/error.hpp>

#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace smart_ratelimit::beast {

namespace detail {

/// True when `c` may appear in a mount prefix or the metrics path.
constexpr bool is_path_char(char c) noexcept {
    const auto u = static_cast<unsigned char>(c);
    return u > 0x20 && u < 0x7f && c != '"' && c != '<' && c != '>' && c != '?' && c != '#' &&
           c != '\\';
}

}  // namespace detail

template <dashboard_data_source Source, dashboard_authorizer Authorizer,
          dashboard_renderer Renderer>
dashboard<Source, Authorizer, Renderer>::dashboard(Source source, Authorizer authorizer,
                                                   dashboard_options options, Renderer renderer)
    : source_(std::move(source)),
      authorizer_(std::move(authorizer)),
      renderer_(std::move(renderer)),
      options_(std::move(options)) {
    const auto& p = options_.prefix;
    if (p.empty() || p.front() != '/' || p.back() != '/')
        throw config_error("dashboard: prefix must start and end with '/', got '" + p + "'");
    for (const char c : p)
        if (!detail::is_path_char(c))
            throw config_error("dashboard: prefix holds a character not allowed in a path: '" + p +
                               "'");
    const auto& m = options_.metrics_path;
    if (!m.empty()) {
        if (m.front() != '/')
            throw config_error("dashboard: metrics_path must be empty or start with '/', got '" +
                               m + "'");
        for (const char c : m)
            if (!detail::is_path_char(c))
                throw config_error(
                    "dashboard: metrics_path holds a character not allowed in a path: '" + m + "'");
    }
    if (options_.live_refresh && options_.live_refresh_interval < std::chrono::milliseconds{100})
        throw config_error("dashboard: live_refresh_interval must be at least 100 ms, got " +
                           std::to_string(options_.live_refresh_interval.count()) + " ms");
}

template <dashboard_data_source Source, dashboard_authorizer Authorizer,
          dashboard_renderer Renderer>
auto dashboard<Source, Authorizer, Renderer>::handle(const request_type& req) const
    -> response_type {
    try {
        const route r = route_of(req.target());
        if (r == route::none) return text(req, http::status::not_found, "Not Found");
        if constexpr (token_sign_in_authorizer<Authorizer>) {
            if (r == route::sign_in) return sign_in(req);
            if (r == route::sign_out) return sign_out(req);
        } else {
            if (r == route::sign_in || r == route::sign_out)
                return text(req, http::status::not_found, "Not Found");
        }
        if (r == route::health) return health(req);
        if (!authorizer_.is_staff(req.base())) return forbidden(req);
        if (req.method() != http::verb::get) {
            auto res = text(req, http::status::method_not_allowed, "Method Not Allowed");
            res.set(http::field::allow, "GET");
            return res;
        }
        return dispatch_route(req, r);
    } catch (...) {
        // The authorizer, the data source or a callable failed: no detail leaves.
        return unavailable(req);
    }
}

template <dashboard_data_source Source, dashboard_authorizer Authorizer,
          dashboard_renderer Renderer>
template <class Executor, class CompletionToken>
auto dashboard<Source, Authorizer, Renderer>::async_handle(const Executor& work, request_type req,
                                                           CompletionToken&& token) const {
    return boost::asio::async_initiate<CompletionToken,
                                       void(boost::system::error_code, response_type)>(
        [this, work](auto handler, request_type req) {
            // No answer (nullopt) when even the 503 could not be built, or `work`
            // refused the job: then a bare 503.
            auto fn = [this, req = std::move(req)]() noexcept -> std::optional<response_type> {
                try {
                    return handle(req);  // catches by itself; this is for what escapes it
                } catch (...) {
                    try {
                        return unavailable(req);
                    } catch (...) {
                        return std::nullopt;
                    }
                }
            };
            detail::start_blocking(
                std::move(handler), std::move(fn), work,
                [](auto handler, detail::blocking_status status, std::optional<response_type> res) {
                    boost::system::error_code ec;
                    if (status.rejected) ec = error::work_rejected;
                    if (!res) res.emplace().result(http::status::service_unavailable);
                    std::move(handler)(ec, std::move(*res));
                });
        },
        token, std::move(req));
}

template <dashboard_data_source Source, dashboard_authorizer Authorizer,
          dashboard_renderer Renderer>
auto dashboard<Source, Authorizer, Renderer>::route_of(std::string_view target) const noexcept
    -> route {
    std::string_view path = detail::path_of_target(target);
    if (options_.metrics && !options_.metrics_path.empty() && path == options_.metrics_path)
        return route::metrics;
    const std::string_view prefix = options_.prefix;
    if (path.substr(0, prefix.size()) != prefix) return route::none;
    path.remove_prefix(prefix.size());
    if (path == "dashboard/") return route::page;
    if (path == "dashboard/offenders.csv") return route::csv;
    if (path == "dashboard/offender/") return route::offender;
    if (path == "dashboard/offender.html") return route::offender_page;
    if (path == "dashboard/timeline.json") return route::timeline;
    if (path == "dashboard/live.js") return options_.live_refresh ? route::live_js : route::none;
    if (path == "health") return route::health;
    if (path == "signin") return route::sign_in;
    if (path == "signout") return route::sign_out;
    return route::none;
}

template <dashboard_data_source Source, dashboard_authorizer Authorizer,
          dashboard_renderer Renderer>
void dashboard<Source, Authorizer, Renderer>::secure(response_type& res,
                                                     std::string_view style_nonce,
                                                     std::string_view script_nonce) {
    std::string csp = "default-src 'none'; ";
    if (!style_nonce.empty()) {
        csp += "style-src 'nonce-";
        csp += style_nonce;
        csp += "'; ";
    }
    if (!script_nonce
             .empty()) {  // the live refresh: one external script, fetching same-origin JSON
        csp += "script-src 'nonce-";
        csp += script_nonce;
        csp += "'; connect-src 'self'; ";
    }
    csp += "img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";
    res.set("Content-Security-Policy", csp);
    res.set("X-Content-Type-Options", "nosniff");
    res.set(http::field::cache_control, "no-store");
    res.set("Referrer-Policy", "no-referrer");
    res.set("X-Frame-Options", "DENY");
    res.set("Cross-Origin-Resource-Policy", "same-origin");
}

template <dashboard_data_source Source, dashboard_authorizer Authorizer,
          dashboard_renderer Renderer>
auto dashboard<Source, Authorizer, Renderer>::make(const request_type& req, http::status status,
                                                   std::string_view type, std::string body,
                                                   std::string_view style_nonce,
                                                   std::string_view script_nonce) -> response_type {
    response_type res{status, req.version()};
    res.set(http::field::content_type, type);
    secure(res, style_nonce, script_nonce);
    res.keep_alive(req.keep_alive());
    res.body() = std::move(body);
    res.prepare_payload();
    return res;
}

template <dashboard_data_source Source, dashboard_authorizer Authorizer,
          dashboard_renderer Renderer>
auto dashboard<Source, Authorizer, Renderer>::text(const request_type& req, http::status status,
                                                   std::string_view body) -> response_type {
    return make(req, status, "text/plain; charset=utf-8", std::string(body));
}

/// The one answer for anonymous and non-staff requests alike.
template <dashboard_data_source Source, dashboard_authorizer Authorizer,
          dashboard_renderer Renderer>
auto dashboard<Source, Authorizer, Renderer>::forbidden(const request_type& req) -> response_type {
    return text(req, http::status::forbidden, "Forbidden");
}

template <dashboard_data_source Source, dashboard_authorizer Authorizer,
          dashboard_renderer Renderer>
auto dashboard<Source, Authorizer, Renderer>::unavailable(const request_type& req)
    -> response_type {
    return text(req, http::status::service_unavailable, "Service Unavailable");
}

template <dashboard_data_source Source, dashboard_authorizer Authorizer,
          dashboard_renderer Renderer>
auto dashboard<Source, Authorizer, Renderer>::dispatch_route(const request_type& req, route r) const
    -> response_type {
    if (r == route::live_js)
        return make(req, http::status::ok, "text/javascript",
                    std::string(detail::live_refresh_script));
    if (r == route::metrics)
        return make(req, http::status::ok, "text/plain; version=0.0.4; charset=utf-8",
                    options_.metrics());
    const auto query = detail::query_of_target(req.target());
    const auto days_raw = detail::form_param(query, "days");
    const int days =
        parse_days(days_raw ? std::optional<std::string_view>(*days_raw) : std::nullopt);
    const event_time now = event_clock_now();
    switch (r) {
        case route::page:
            return page(req, days, now);
        case route::csv:
            return csv(req, days, now);
        case route::offender:
            return drill_down(req, query, days, now);
        case route::offender_page:
            return offender_html(req, query, days, now);
        case route::timeline:
            return timeline_json(req, days, now);
        default:
            return text(req, http::status::not_found, "Not Found");
    }
}

template <dashboard_data_source Source, dashboard_authorizer Authorizer,
          dashboard_renderer Renderer>
auto dashboard<Source, Authorizer, Renderer>::page(const request_type& req, int days,
                                                   event_time now) const -> response_type {
    const std::string nonce = detail::make_nonce();
    const std::string script_nonce = options_.live_refresh ? detail::make_nonce() : std::string{};
    const std::string sign_out_url =
        token_sign_in_authorizer<Authorizer> ? url("signout") : std::string{};
    dashboard_context c;
    c.prefix = options_.prefix;
    c.days = days;
    c.now = now;
    c.today = source_.summary(1, now);
    c.window = source_.summary(days, now);
    c.top_offenders = source_.top_offenders(days, 20, now);
    c.rules = source_.rule_hit_counts(days, 20, now);
    c.timeline = source_.timeline(days, default_timeline_width(days), now);
    c.style_nonce = nonce;
    c.sign_out_url = sign_out_url;
    c.script_nonce = script_nonce;
    c.live_refresh_ms =
        options_.live_refresh ? static_cast<long long>(options_.live_refresh_interval.count()) : 0;
    return make(req, http::status::ok, "text/html; charset=utf-8", std::string(renderer_(c)), nonce,
                script_nonce);
}

template <dashboard_data_source Source, dashboard_authorizer Authorizer,
          dashboard_renderer Renderer>
auto dashboard<Source, Authorizer, Renderer>::csv(const request_type& req, int days,
                                                  event_time now) const -> response_type {
    auto res = make(req, http::status::ok, "text/csv; charset=utf-8",
                    format_offenders_csv(source_.top_offenders(days, 1000, now)));
    res.set(http::field::content_disposition,
            "attachment; filename=\"offenders-" + std::to_string(days) + "d.csv\"");
    return res;
}

template <dashboard_data_source Source, dashboard_authorizer Authorizer,
          dashboard_renderer Renderer>
auto dashboard<Source, Authorizer, Renderer>::drill_down(const request_type& req,
                                                         std::string_view query, int days,
                                                         event_time now) const -> response_type {
    const auto key = detail::form_param(query, "key");
    if (!key || key->empty())
        return make(req, http::status::bad_request, "application/json",
                    "{\"error\": \"missing ?key= parameter\"}");
    const offender_detail d = source_.drill_down(*key, days, 50, now);
    return make(req, http::status::ok, "application/json", to_json_string(d));
}

template <dashboard_data_source Source, dashboard_authorizer Authorizer,
          dashboard_renderer Renderer>
auto dashboard<Source, Authorizer, Renderer>::offender_html(const request_type& req,
                                                            std::string_view query, int days,
                                                            event_time now) const -> response_type {
    const std::string nonce = detail::make_nonce();
    const auto key = detail::form_param(query, "key");
    if (!key || key->empty())
        return make(req, http::status::bad_request, "text/html; charset=utf-8",
                    render_missing_key_page(url("dashboard/?days=" + std::to_string(days)), nonce),
                    nonce);
    offender_context c;
    c.prefix = options_.prefix;
    c.days = days;
    c.now = now;
    c.detail = source_.drill_down(*key, days, 50, now);
    c.style_nonce = nonce;
    std::string body;
    if constexpr (requires {
                      { renderer_(c) } -> std::convertible_to<std::string>;
                  })
        body = renderer_(c);
    else
        body = default_offender_page{}(c);
    return make(req, http::status::ok, "text/html; charset=utf-8", std::move(body), nonce);
}

template <dashboard_data_source Source, dashboard_authorizer Authorizer,
          dashboard_renderer Renderer>
auto dashboard<Source, Authorizer, Renderer>::timeline_json(const request_type& req, int days,
                                                            event_time now) const -> response_type {
    const auto width = default_timeline_width(days);
    return make(req, http::status::ok, "application/json",
                format_timeline_json(days, width, source_.timeline(days, width, now)));
}

template <dashboard_data_source Source, dashboard_authorizer Authorizer,
          dashboard_renderer Renderer>
auto dashboard<Source, Authorizer, Renderer>::health(const request_type& req) const
    -> response_type {
    if (req.method() != http::verb::get) {
        auto res = text(req, http::status::method_not_allowed, "Method Not Allowed");
        res.set(http::field::allow, "GET");
        return res;
    }
    // A failing authorizer must not fail the probe: the caller is then anonymous.
    bool staff = false;
    try {
        staff = authorizer_.is_staff(req.base());
    } catch (...) {
        staff = false;
    }
    std::optional<health_report> report;
    if (options_.health) {
        try {
            report = options_.health();
        } catch (...) {
            report.reset();  // no detail of the failure leaves the process
        }
    } else {
        report.emplace();  // no checks configured: serving is all there is to report
    }
    const bool ok = report && report->ok();
    std::string body;
    if (!staff)
        body = ok ? R"({"status":"ok"})" : R"({"status":"unhealthy"})";
    else if (report)
        body = report->to_json();
    else
        body =
            R"({"status":"unhealthy","checks":[{"name":"health","ok":false,"detail":"the health probe failed"}]})";
    return make(req, ok ? http::status::ok : http::status::service_unavailable, "application/json",
                std::move(body));
}

template <dashboard_data_source Source, dashboard_authorizer Authorizer,
          dashboard_renderer Renderer>
auto dashboard<Source, Authorizer, Renderer>::sign_in(const request_type& req) const
    -> response_type {
    if (req.method() == http::verb::get) {
        const std::string nonce = detail::make_nonce();
        return make(req, http::status::ok, "text/html; charset=utf-8",
                    render_sign_in_page(url("signin"), nonce), nonce);
    }
    if (req.method() != http::verb::post) {
        auto res = text(req, http::status::method_not_allowed, "Method Not Allowed");
        res.set(http::field::allow, "GET, POST");
        return res;
    }
    if (req.body().size() > options_.max_form_bytes) return forbidden(req);
    const auto token = detail::form_param(req.body(), "token");
    if (!token || !authorizer_.accepts_token(*token)) return forbidden(req);
    response_type res =
        make(req, http::status::see_other, "text/plain; charset=utf-8", "See Other");
    res.set(http::field::location, url("dashboard/"));
    std::string cookie(authorizer_.cookie_name());
    cookie += '=';
    cookie += *token;  // accepted, hence cookie-safe
    cookie += "; Path=";
    cookie += options_.prefix;
    cookie += "; Max-Age=";
    cookie += std::to_string(options_.cookie_max_age.count());
    cookie += "; HttpOnly; SameSite=Strict";
    if (options_.secure_cookie) cookie += "; Secure";
    res.set(http::field::set_cookie, cookie);
    return res;
}

template <dashboard_data_source Source, dashboard_authorizer Authorizer,
          dashboard_renderer Renderer>
auto dashboard<Source, Authorizer, Renderer>::sign_out(const request_type& req) const
    -> response_type {
    if (req.method() != http::verb::post) {
        auto res = text(req, http::status::method_not_allowed, "Method Not Allowed");
        res.set(http::field::allow, "POST");
        return res;
    }
    response_type res =
        make(req, http::status::see_other, "text/plain; charset=utf-8", "See Other");
    res.set(http::field::location, url("signin"));
    std::string cookie(authorizer_.cookie_name());
    cookie += "=; Path=";
    cookie += options_.prefix;
    cookie += "; Max-Age=0; HttpOnly; SameSite=Strict";
    if (options_.secure_cookie) cookie += "; Secure";
    res.set(http::field::set_cookie, cookie);
    return res;
}

}  // namespace smart_ratelimit::beast
