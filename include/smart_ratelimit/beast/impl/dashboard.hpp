// smart_ratelimit/beast/impl/dashboard.hpp
// The member bodies of beast::dashboard (included at the bottom of
// beast/dashboard.hpp): routing, authorization, the security headers, the sign-in
// (sessions, CSRF, throttle) and each endpoint's response.
#pragma once

#include <smart_ratelimit/analytics/csv.hpp>
#include <smart_ratelimit/analytics/json_text.hpp>
#include <smart_ratelimit/beast/detail/live_script.hpp>
#include <smart_ratelimit/beast/traffic_timeline.hpp>
#include <smart_ratelimit/error.hpp>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace smart_ratelimit::beast {

namespace detail {

/// Lifetime of the sign-in form's CSRF cookie: an hour to fill the form in.
inline constexpr long long csrf_cookie_max_age = 3600;

/// Client addresses the sign-in throttle remembers; beyond it, those that have
/// been quiet longest are forgotten first (in_memory_storage's eviction).
inline constexpr std::size_t sign_in_clients_tracked = 65536;

/// True when `c` may appear in a mount prefix or the metrics path.
constexpr bool is_path_char(char c) noexcept {
    const auto u = static_cast<unsigned char>(c);
    return u > 0x20 && u < 0x7f && c != '"' && c != '<' && c != '>' && c != '?' && c != '#' &&
           c != '\\';
}

}  // namespace detail

template <dashboard_data_source Source, dashboard_authorizer Authorizer,
          dashboard_renderer Renderer, smart_ratelimit::clock Clock>
dashboard<Source, Authorizer, Renderer, Clock>::dashboard(Source source, Authorizer authorizer,
                                                          dashboard_options options,
                                                          Renderer renderer, Clock clock)
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
    if constexpr (token_sign_in_authorizer<Authorizer>) {
        const auto& c = options_.session_cookie;
        if (c.empty() || !detail::is_cookie_safe_token(c) || c.find('=') != std::string::npos)
            throw config_error("dashboard: invalid session_cookie name '" + c + "'");
        try {
            (void)parse_rate(options_.sign_in_rate);
        } catch (const config_error& e) {
            throw config_error(std::string("dashboard: sign_in_rate: ") + e.what());
        }
        sign_in_ = std::make_unique<sign_in_state>(options_, clock);
    }
}

template <dashboard_data_source Source, dashboard_authorizer Authorizer,
          dashboard_renderer Renderer, smart_ratelimit::clock Clock>
dashboard<Source, Authorizer, Renderer, Clock>::sign_in_state::sign_in_state(
    const dashboard_options& o, const Clock& clock)
    : sessions(staff_session_options{o.max_sessions, o.cookie_max_age, o.session_idle_timeout},
               clock),
      throttle(
          fixed_key("unknown"),
          std::vector<rule_config>{{"staff_sign_in", o.sign_in_rate, "sliding_window"}},
          limiter_options{},
          in_memory_storage<sliding_window>(in_memory_options{detail::sign_in_clients_tracked}),
          null_sink{}, clock) {}

template <dashboard_data_source Source, dashboard_authorizer Authorizer,
          dashboard_renderer Renderer, smart_ratelimit::clock Clock>
auto dashboard<Source, Authorizer, Renderer, Clock>::handle(const request_type& req,
                                                            const ip_address& peer) const
    -> response_type {
    return answer(req, &peer);
}

template <dashboard_data_source Source, dashboard_authorizer Authorizer,
          dashboard_renderer Renderer, smart_ratelimit::clock Clock>
auto dashboard<Source, Authorizer, Renderer, Clock>::handle(const request_type& req) const
    -> response_type {
    return answer(req, nullptr);
}

template <dashboard_data_source Source, dashboard_authorizer Authorizer,
          dashboard_renderer Renderer, smart_ratelimit::clock Clock>
auto dashboard<Source, Authorizer, Renderer, Clock>::answer(const request_type& req,
                                                            const ip_address* peer) const
    -> response_type {
    try {
        const route r = route_of(req.target());
        if (r == route::none) return text(req, http::status::not_found, "Not Found");
        if (r == route::sign_in || r == route::sign_out) {
            if constexpr (token_sign_in_authorizer<Authorizer>)
                return r == route::sign_in ? sign_in(req, peer) : sign_out(req);
            else
                return text(req, http::status::not_found, "Not Found");
        }
        if (r == route::health) return health(req);
        const caller who = caller_of(req);
        if (!who.staff) return forbidden(req);
        if (req.method() != http::verb::get) return method_not_allowed(req, "GET");
        return dispatch_route(req, r, who);
    } catch (...) {
        // The authorizer, the data source or a callable failed: no detail leaves.
        return unavailable(req);
    }
}

template <dashboard_data_source Source, dashboard_authorizer Authorizer,
          dashboard_renderer Renderer, smart_ratelimit::clock Clock>
auto dashboard<Source, Authorizer, Renderer, Clock>::caller_of(const request_type& req) const
    -> caller {
    if constexpr (token_sign_in_authorizer<Authorizer>) {
        std::optional<std::string> csrf;
        detail::for_each_cookie(req, options_.session_cookie, [&](std::string_view id) {
            if (!csrf) csrf = sign_in_->sessions.find(id);
        });
        if (csrf) return {true, std::move(*csrf)};
    }
    return {static_cast<bool>(authorizer_.is_staff(req.base())), {}};
}

template <dashboard_data_source Source, dashboard_authorizer Authorizer,
          dashboard_renderer Renderer, smart_ratelimit::clock Clock>
template <class Executor, class CompletionToken>
auto dashboard<Source, Authorizer, Renderer, Clock>::async_handle(const Executor& work,
                                                                  request_type req,
                                                                  const ip_address& peer,
                                                                  CompletionToken&& token) const {
    return async_answer(work, std::move(req), peer, std::forward<CompletionToken>(token));
}

template <dashboard_data_source Source, dashboard_authorizer Authorizer,
          dashboard_renderer Renderer, smart_ratelimit::clock Clock>
template <class Executor, class CompletionToken>
auto dashboard<Source, Authorizer, Renderer, Clock>::async_handle(const Executor& work,
                                                                  request_type req,
                                                                  CompletionToken&& token) const {
    return async_answer(work, std::move(req), std::nullopt, std::forward<CompletionToken>(token));
}

template <dashboard_data_source Source, dashboard_authorizer Authorizer,
          dashboard_renderer Renderer, smart_ratelimit::clock Clock>
template <class Executor, class CompletionToken>
auto dashboard<Source, Authorizer, Renderer, Clock>::async_answer(const Executor& work,
                                                                  request_type req,
                                                                  std::optional<ip_address> peer,
                                                                  CompletionToken&& token) const {
    return boost::asio::async_initiate<CompletionToken,
                                       void(boost::system::error_code, response_type)>(
        [this, work, peer](auto handler, request_type req) {
            // No answer (nullopt) when even the 503 could not be built, or `work`
            // refused the job: then a bare 503.
            auto fn = [this, peer,
                       req = std::move(req)]() noexcept -> std::optional<response_type> {
                // answer() catches by itself; this is for what escapes it.
                try {
                    return answer(req, peer ? &*peer : nullptr);
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
          dashboard_renderer Renderer, smart_ratelimit::clock Clock>
auto dashboard<Source, Authorizer, Renderer, Clock>::route_of(
    std::string_view target) const noexcept -> route {
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
          dashboard_renderer Renderer, smart_ratelimit::clock Clock>
void dashboard<Source, Authorizer, Renderer, Clock>::secure(response_type& res,
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
          dashboard_renderer Renderer, smart_ratelimit::clock Clock>
auto dashboard<Source, Authorizer, Renderer, Clock>::make(const request_type& req,
                                                          http::status status,
                                                          std::string_view type, std::string body,
                                                          std::string_view style_nonce,
                                                          std::string_view script_nonce)
    -> response_type {
    response_type res{status, req.version()};
    res.set(http::field::content_type, type);
    secure(res, style_nonce, script_nonce);
    res.keep_alive(req.keep_alive());
    res.body() = std::move(body);
    res.prepare_payload();
    return res;
}

template <dashboard_data_source Source, dashboard_authorizer Authorizer,
          dashboard_renderer Renderer, smart_ratelimit::clock Clock>
auto dashboard<Source, Authorizer, Renderer, Clock>::text(const request_type& req,
                                                          http::status status,
                                                          std::string_view body) -> response_type {
    return make(req, status, "text/plain; charset=utf-8", std::string(body));
}

/// The one answer for anonymous and non-staff requests alike.
template <dashboard_data_source Source, dashboard_authorizer Authorizer,
          dashboard_renderer Renderer, smart_ratelimit::clock Clock>
auto dashboard<Source, Authorizer, Renderer, Clock>::forbidden(const request_type& req)
    -> response_type {
    return text(req, http::status::forbidden, "Forbidden");
}

template <dashboard_data_source Source, dashboard_authorizer Authorizer,
          dashboard_renderer Renderer, smart_ratelimit::clock Clock>
auto dashboard<Source, Authorizer, Renderer, Clock>::unavailable(const request_type& req)
    -> response_type {
    return text(req, http::status::service_unavailable, "Service Unavailable");
}

template <dashboard_data_source Source, dashboard_authorizer Authorizer,
          dashboard_renderer Renderer, smart_ratelimit::clock Clock>
auto dashboard<Source, Authorizer, Renderer, Clock>::method_not_allowed(const request_type& req,
                                                                        std::string_view allow)
    -> response_type {
    auto res = text(req, http::status::method_not_allowed, "Method Not Allowed");
    res.set(http::field::allow, allow);
    return res;
}

/// A Set-Cookie value: HttpOnly and SameSite=Strict always, Secure when configured.
template <dashboard_data_source Source, dashboard_authorizer Authorizer,
          dashboard_renderer Renderer, smart_ratelimit::clock Clock>
std::string dashboard<Source, Authorizer, Renderer, Clock>::cookie(std::string_view name,
                                                                   std::string_view value,
                                                                   std::string_view path,
                                                                   long long max_age) const {
    std::string c(name);
    c += '=';
    c += value;
    c += "; Path=";
    c += path;
    c += "; Max-Age=";
    c += std::to_string(max_age);
    c += "; HttpOnly; SameSite=Strict";
    if (options_.secure_cookie) c += "; Secure";
    return c;
}

template <dashboard_data_source Source, dashboard_authorizer Authorizer,
          dashboard_renderer Renderer, smart_ratelimit::clock Clock>
auto dashboard<Source, Authorizer, Renderer, Clock>::dispatch_route(const request_type& req,
                                                                    route r,
                                                                    const caller& who) const
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
            return page(req, days, now, who);
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
          dashboard_renderer Renderer, smart_ratelimit::clock Clock>
auto dashboard<Source, Authorizer, Renderer, Clock>::page(const request_type& req, int days,
                                                          event_time now, const caller& who) const
    -> response_type {
    const std::string nonce = detail::make_nonce();
    const std::string script_nonce = options_.live_refresh ? detail::make_nonce() : std::string{};
    // The sign-out form only for a session: a bearer token has nothing to sign out of.
    const std::string sign_out_url = who.csrf_token.empty() ? std::string{} : url("signout");
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
    c.csrf_token = who.csrf_token;
    c.script_nonce = script_nonce;
    c.live_refresh_ms =
        options_.live_refresh ? static_cast<long long>(options_.live_refresh_interval.count()) : 0;
    return make(req, http::status::ok, "text/html; charset=utf-8", std::string(renderer_(c)), nonce,
                script_nonce);
}

template <dashboard_data_source Source, dashboard_authorizer Authorizer,
          dashboard_renderer Renderer, smart_ratelimit::clock Clock>
auto dashboard<Source, Authorizer, Renderer, Clock>::csv(const request_type& req, int days,
                                                         event_time now) const -> response_type {
    auto res = make(req, http::status::ok, "text/csv; charset=utf-8",
                    format_offenders_csv(source_.top_offenders(days, 1000, now)));
    res.set(http::field::content_disposition,
            "attachment; filename=\"offenders-" + std::to_string(days) + "d.csv\"");
    return res;
}

template <dashboard_data_source Source, dashboard_authorizer Authorizer,
          dashboard_renderer Renderer, smart_ratelimit::clock Clock>
auto dashboard<Source, Authorizer, Renderer, Clock>::drill_down(const request_type& req,
                                                                std::string_view query, int days,
                                                                event_time now) const
    -> response_type {
    const auto key = detail::form_param(query, "key");
    if (!key || key->empty())
        return make(req, http::status::bad_request, "application/json",
                    "{\"error\": \"missing ?key= parameter\"}");
    const offender_detail d = source_.drill_down(*key, days, 50, now);
    return make(req, http::status::ok, "application/json", to_json_string(d));
}

template <dashboard_data_source Source, dashboard_authorizer Authorizer,
          dashboard_renderer Renderer, smart_ratelimit::clock Clock>
auto dashboard<Source, Authorizer, Renderer, Clock>::offender_html(const request_type& req,
                                                                   std::string_view query, int days,
                                                                   event_time now) const
    -> response_type {
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
          dashboard_renderer Renderer, smart_ratelimit::clock Clock>
auto dashboard<Source, Authorizer, Renderer, Clock>::timeline_json(const request_type& req,
                                                                   int days, event_time now) const
    -> response_type {
    const auto width = default_timeline_width(days);
    return make(req, http::status::ok, "application/json",
                format_timeline_json(days, width, source_.timeline(days, width, now)));
}

template <dashboard_data_source Source, dashboard_authorizer Authorizer,
          dashboard_renderer Renderer, smart_ratelimit::clock Clock>
auto dashboard<Source, Authorizer, Renderer, Clock>::health(const request_type& req) const
    -> response_type {
    if (req.method() != http::verb::get) return method_not_allowed(req, "GET");
    // A failing authorizer must not fail the probe: the caller is then anonymous.
    bool staff = false;
    try {
        staff = caller_of(req).staff;
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

/// GET signin: the form, with the double-submit CSRF token in a hidden field and in a
/// cookie scoped to the form's path (a well-formed one the browser has is reused, so
/// that two open forms both work).
template <dashboard_data_source Source, dashboard_authorizer Authorizer,
          dashboard_renderer Renderer, smart_ratelimit::clock Clock>
auto dashboard<Source, Authorizer, Renderer, Clock>::sign_in_form(const request_type& req) const
    -> response_type {
    const std::string name = csrf_cookie_name();
    std::string csrf;
    detail::for_each_cookie(req, name, [&](std::string_view v) {
        if (csrf.empty() && detail::is_lower_hex(v, sessions_type::csrf_token_size)) csrf.assign(v);
    });
    if (csrf.empty()) csrf = detail::random_hex(sessions_type::csrf_token_size / 2);
    const std::string nonce = detail::make_nonce();
    auto res = make(req, http::status::ok, "text/html; charset=utf-8",
                    render_sign_in_page(url("signin"), nonce, csrf), nonce);
    res.set(http::field::set_cookie,
            cookie(name, csrf, url("signin"), detail::csrf_cookie_max_age));
    return res;
}

template <dashboard_data_source Source, dashboard_authorizer Authorizer,
          dashboard_renderer Renderer, smart_ratelimit::clock Clock>
auto dashboard<Source, Authorizer, Renderer, Clock>::sign_in(const request_type& req,
                                                             const ip_address* peer) const
    -> response_type {
    if (req.method() == http::verb::get) return sign_in_form(req);
    if (req.method() != http::verb::post) return method_not_allowed(req, "GET, POST");
    if (req.body().size() > options_.max_form_bytes) return forbidden(req);

    // CSRF first: a request that a foreign page made the browser send never counts.
    const auto csrf = detail::form_param(req.body(), "csrf");
    if (!csrf || !detail::is_lower_hex(*csrf, sessions_type::csrf_token_size))
        return forbidden(req);
    bool same = false;
    detail::for_each_cookie(req, csrf_cookie_name(), [&](std::string_view v) {
        same |= detail::constant_time_equals(v, *csrf);
    });
    if (!same) return forbidden(req);

    // Then the throttle: the attempt is counted before the token is looked at, so
    // concurrent guesses cannot overtake the count; a correct token gives it back.
    throttle_type& throttle = sign_in_->throttle;
    const std::string client = peer != nullptr ? smart_ratelimit::ip_key(request_view::resolve(
                                                     req.base(), *peer, options_.trusted_proxies))
                                               : std::string("unknown");
    const verdict v = throttle.check_key(client);
    if (!v.allowed()) {
        auto res = text(req, http::status::too_many_requests, "Too Many Requests");
        const auto wait = std::chrono::ceil<std::chrono::seconds>(
            std::min(v.retry_after(), throttle.rules().front().algorithm.period()));
        res.set(http::field::retry_after, std::to_string(std::max<long long>(1, wait.count())));
        return res;
    }
    const auto token = detail::form_param(req.body(), "token");
    if (!token || !authorizer_.accepts_token(*token)) return forbidden(req);
    throttle.storage().release(v[0].key.view(), throttle.rules().front().algorithm,
                               throttle.clock().now(), 1);

    const staff_session s = sign_in_->sessions.create();
    response_type res =
        make(req, http::status::see_other, "text/plain; charset=utf-8", "See Other");
    res.set(http::field::location, url("dashboard/"));
    res.insert(http::field::set_cookie,
               cookie(options_.session_cookie, s.id, options_.prefix,
                      static_cast<long long>(options_.cookie_max_age.count())));
    res.insert(http::field::set_cookie, cookie(csrf_cookie_name(), "", url("signin"), 0));
    return res;
}

/// POST signout: revokes the session named by the cookie when the form carries its
/// CSRF token (403 otherwise, the session untouched); without a live session there
/// is nothing to revoke, and the cookie is cleared all the same.
template <dashboard_data_source Source, dashboard_authorizer Authorizer,
          dashboard_renderer Renderer, smart_ratelimit::clock Clock>
auto dashboard<Source, Authorizer, Renderer, Clock>::sign_out(const request_type& req) const
    -> response_type {
    if (req.method() != http::verb::post) return method_not_allowed(req, "POST");
    if (req.body().size() > options_.max_form_bytes) return forbidden(req);
    sessions_type& sessions = sign_in_->sessions;
    std::string id;
    std::optional<std::string> session_csrf;
    detail::for_each_cookie(req, options_.session_cookie, [&](std::string_view v) {
        if (session_csrf) return;
        session_csrf = sessions.find(v);
        if (session_csrf) id.assign(v);
    });
    if (session_csrf) {
        const auto csrf = detail::form_param(req.body(), "csrf");
        if (!csrf || csrf->empty() || !detail::constant_time_equals(*csrf, *session_csrf))
            return forbidden(req);
        sessions.revoke(id);
    }
    response_type res =
        make(req, http::status::see_other, "text/plain; charset=utf-8", "See Other");
    res.set(http::field::location, url("signin"));
    res.set(http::field::set_cookie, cookie(options_.session_cookie, "", options_.prefix, 0));
    return res;
}

}  // namespace smart_ratelimit::beast
