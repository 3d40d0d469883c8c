// smart_ratelimit/beast/dashboard.hpp
// The staff dashboard of SPEC 8 as a Beast request handler: `dashboard/` (HTML),
// `dashboard/offenders.csv` and `dashboard/offender/?key=` under a prefix, plus a
// token sign-in form. A template over the data source, the authorizer (default:
// deny everyone) and the page renderer; `async_handle` runs the data source's
// blocking work on a worker executor and completes on the caller's executor.
#pragma once

#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/verb.hpp>
#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include <smart_ratelimit/analytics/csv.hpp>
#include <smart_ratelimit/analytics/json.hpp>
#include <smart_ratelimit/beast/authorizer.hpp>
#include <smart_ratelimit/beast/dashboard_page.hpp>
#include <smart_ratelimit/beast/dashboard_source.hpp>
#include <smart_ratelimit/beast/detail/escape.hpp>
#include <smart_ratelimit/error.hpp>

#include <array>
#include <charconv>
#include <chrono>
#include <concepts>
#include <cstdint>
#include <limits>
#include <optional>
#include <random>
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
///
/// The page is served with a CSP that forbids scripts and allows inline style only
/// in a `<style nonce="...">` element carrying `c.style_nonce`.
template <class R>
concept dashboard_renderer = requires(const R& r, const dashboard_context& c) {
    { r(c) } -> std::convertible_to<std::string>;
};

/// Settings of a dashboard.
struct dashboard_options {
    /// Where the endpoints are mounted; must start and end with '/'.
    std::string prefix = "/ratelimit/";
    /// Adds `Secure` to the sign-in cookie: set it when the dashboard is reached over HTTPS.
    bool secure_cookie = false;
    /// Lifetime of the sign-in cookie.
    std::chrono::seconds cookie_max_age{std::chrono::hours{8}};
    /// Largest sign-in form body accepted.
    std::size_t max_form_bytes = 4096;
};

namespace dashboard_detail {

inline int hex_value(char c) noexcept {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/// Decodes one `application/x-www-form-urlencoded` component: `+` is a space,
/// `%XX` a byte; a malformed escape is kept as it is.
inline std::string form_decode(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    for (std::size_t i = 0; i < s.size(); ++i) {
        const char c = s[i];
        if (c == '+') {
            out += ' ';
        } else if (c == '%' && i + 2 < s.size() && hex_value(s[i + 1]) >= 0 && hex_value(s[i + 2]) >= 0) {
            out += static_cast<char>(hex_value(s[i + 1]) * 16 + hex_value(s[i + 2]));
            i += 2;
        } else {
            out += c;
        }
    }
    return out;
}

/// The first value of parameter `name` in a query string or form body, decoded.
inline std::optional<std::string> form_param(std::string_view query, std::string_view name) {
    while (!query.empty()) {
        const auto amp = query.find('&');
        const std::string_view pair = query.substr(0, amp);
        query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
        const auto eq = pair.find('=');
        const std::string_view k = pair.substr(0, eq);
        if (form_decode(k) != name) continue;
        return eq == std::string_view::npos ? std::string{} : form_decode(pair.substr(eq + 1));
    }
    return std::nullopt;
}

/// A base64url nonce from 16 bytes of the operating system's randomness.
inline std::string make_nonce() {
    static constexpr char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    thread_local std::random_device rd;
    std::string out;
    out.reserve(24);
    for (int i = 0; i < 4; ++i) {
        std::uint32_t v = rd();
        for (int j = 0; j < 5; ++j) {
            out += alphabet[v & 63u];
            v >>= 6;
        }
    }
    return out;
}

}  // namespace dashboard_detail

/// The `?days=` rule of SPEC 8: absent or not an integer gives 7 (`"7.5"`, `"abc"`,
/// `""`), then clamped to 1..365 (`"0"` and `"-5"` give 1, `"400"` and huge values 365).
inline int parse_days(std::optional<std::string_view> raw) noexcept {
    constexpr int fallback = 7, lo = 1, hi = 365;
    if (!raw || raw->empty()) return fallback;
    std::string_view s = *raw;
    bool negative = false;
    if (s.front() == '+' || s.front() == '-') {
        negative = s.front() == '-';
        s.remove_prefix(1);
    }
    if (s.empty()) return fallback;
    for (const char c : s)
        if (c < '0' || c > '9') return fallback;
    std::int64_t v = 0;
    const auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec == std::errc::result_out_of_range) return negative ? lo : hi;
    if (ec != std::errc{} || p != s.data() + s.size()) return fallback;
    if (negative) v = -v;
    return static_cast<int>(v < lo ? lo : (v > hi ? hi : v));
}

/// The staff dashboard.
///
/// Endpoints (all under `options.prefix`, GET only, staff only):
/// `dashboard/`, `dashboard/offenders.csv`, `dashboard/offender/?key=`; and when the
/// authorizer supports tokens, `signin` (GET: the form; POST: sets the cookie) and
/// `signout` (POST). Anonymous and non-staff requests get one identical `403 Forbidden`.
/// Every response carries the security headers (`Content-Security-Policy` without
/// script, `X-Content-Type-Options: nosniff`, `Cache-Control: no-store`,
/// `Referrer-Policy: no-referrer`, `X-Frame-Options: DENY`).
///
/// Thread safety: `handle` and `async_handle` may be called concurrently; the
/// dashboard itself is immutable after construction.
template <dashboard_data_source Source, dashboard_authorizer Authorizer = deny_all,
          dashboard_renderer Renderer = default_dashboard_page>
class dashboard {
public:
    using response_type = http::response<http::string_body>;
    using request_type = http::request<http::string_body>;

    /// Throws config_error when the prefix does not start and end with '/'.
    explicit dashboard(Source source, Authorizer authorizer = {}, dashboard_options options = {},
                       Renderer renderer = {})
        : source_(std::move(source)),
          authorizer_(std::move(authorizer)),
          renderer_(std::move(renderer)),
          options_(std::move(options)) {
        const auto& p = options_.prefix;
        if (p.empty() || p.front() != '/' || p.back() != '/')
            throw config_error("dashboard: prefix must start and end with '/', got '" + p + "'");
        for (const char c : p)
            if (static_cast<unsigned char>(c) <= 0x20 || c == '"' || c == '<' || c == '>' || c == '?' ||
                c == '#' || c == '\\' || static_cast<unsigned char>(c) >= 0x7f)
                throw config_error("dashboard: prefix holds a character not allowed in a path: '" + p + "'");
    }

    const Source& data_source() const noexcept { return source_; }
    const Authorizer& authorizer() const noexcept { return authorizer_; }
    const Renderer& renderer() const noexcept { return renderer_; }
    const dashboard_options& options() const noexcept { return options_; }

    /// True when `target` (a request target, query allowed) is one of the dashboard's paths.
    bool matches(std::string_view target) const noexcept { return route_of(target) != route::none; }

    /// Answers a request for one of the dashboard's paths (see `matches`), making the
    /// data source's calls on the calling thread. Never throws for request data;
    /// a failing data source yields 503.
    response_type handle(const request_type& req) const {
        const route r = route_of(req.target());
        const auto query = query_of(req.target());
        if (r == route::none) return text(req, http::status::not_found, "Not Found");
        if constexpr (token_sign_in_authorizer<Authorizer>) {
            if (r == route::sign_in) return sign_in(req);
            if (r == route::sign_out) return sign_out(req);
        } else {
            if (r == route::sign_in || r == route::sign_out)
                return text(req, http::status::not_found, "Not Found");
        }
        if (!authorizer_.is_staff(req.base())) return forbidden(req);
        if (req.method() != http::verb::get) {
            auto res = text(req, http::status::method_not_allowed, "Method Not Allowed");
            res.set(http::field::allow, "GET");
            return res;
        }
        const auto days_raw = dashboard_detail::form_param(query, "days");
        const int days = parse_days(days_raw ? std::optional<std::string_view>(*days_raw) : std::nullopt);
        const event_time now = event_clock_now();
        try {
            switch (r) {
                case route::page: return page(req, days, now);
                case route::csv: return csv(req, days, now);
                case route::offender: return drill_down(req, query, days, now);
                default: break;
            }
        } catch (...) {
            return text(req, http::status::service_unavailable, "Service Unavailable");
        }
        return text(req, http::status::not_found, "Not Found");
    }

    /// `handle` on `work` (an executor, e.g. a thread pool's), completing with the
    /// response on the completion handler's associated executor. Signature
    /// `void(response_type)`; any Asio completion token (callback, use_awaitable,
    /// use_future, deferred). The dashboard must outlive the operation.
    template <class Executor, class CompletionToken>
    auto async_handle(const Executor& work, request_type req, CompletionToken&& token) const {
        return boost::asio::async_initiate<CompletionToken, void(response_type)>(
            [this, work](auto handler, request_type req) {
                auto io_ex = boost::asio::get_associated_executor(handler);
                auto guard = boost::asio::make_work_guard(io_ex);
                boost::asio::post(work, [this, req = std::move(req), handler = std::move(handler),
                                         guard = std::move(guard)]() mutable {
                    response_type res = handle(req);
                    auto ex = guard.get_executor();
                    boost::asio::dispatch(ex, [handler = std::move(handler), res = std::move(res)]() mutable {
                        std::move(handler)(std::move(res));
                    });
                    guard.reset();
                });
            },
            token, std::move(req));
    }

private:
    enum class route { none, page, csv, offender, sign_in, sign_out };

    static std::string_view path_of(std::string_view target) noexcept {
        return target.substr(0, target.find('?'));
    }
    static std::string_view query_of(std::string_view target) noexcept {
        const auto q = target.find('?');
        return q == std::string_view::npos ? std::string_view{} : target.substr(q + 1);
    }

    route route_of(std::string_view target) const noexcept {
        std::string_view path = path_of(target);
        const std::string_view prefix = options_.prefix;
        if (path.substr(0, prefix.size()) != prefix) return route::none;
        path.remove_prefix(prefix.size());
        if (path == "dashboard/") return route::page;
        if (path == "dashboard/offenders.csv") return route::csv;
        if (path == "dashboard/offender/") return route::offender;
        if (path == "signin") return route::sign_in;
        if (path == "signout") return route::sign_out;
        return route::none;
    }

    std::string url(std::string_view rest) const { return options_.prefix + std::string(rest); }

    /// Security headers on every response; `style_nonce` allows one inline <style>.
    static void secure(response_type& res, std::string_view style_nonce = {}) {
        std::string csp = "default-src 'none'; ";
        if (!style_nonce.empty()) {
            csp += "style-src 'nonce-";
            csp += style_nonce;
            csp += "'; ";
        }
        csp += "img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";
        res.set("Content-Security-Policy", csp);
        res.set("X-Content-Type-Options", "nosniff");
        res.set(http::field::cache_control, "no-store");
        res.set("Referrer-Policy", "no-referrer");
        res.set("X-Frame-Options", "DENY");
        res.set("Cross-Origin-Resource-Policy", "same-origin");
    }

    static response_type make(const request_type& req, http::status status, std::string_view type,
                              std::string body, std::string_view nonce = {}) {
        response_type res{status, req.version()};
        res.set(http::field::content_type, type);
        secure(res, nonce);
        res.keep_alive(req.keep_alive());
        res.body() = std::move(body);
        res.prepare_payload();
        return res;
    }

    static response_type text(const request_type& req, http::status status, std::string_view body) {
        return make(req, status, "text/plain; charset=utf-8", std::string(body));
    }

    /// The one answer for anonymous and non-staff requests alike.
    static response_type forbidden(const request_type& req) {
        return text(req, http::status::forbidden, "Forbidden");
    }

    response_type page(const request_type& req, int days, event_time now) const {
        const std::string nonce = dashboard_detail::make_nonce();
        const std::string sign_out_url = token_sign_in_authorizer<Authorizer> ? url("signout") : std::string{};
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
        return make(req, http::status::ok, "text/html; charset=utf-8", std::string(renderer_(c)), nonce);
    }

    response_type csv(const request_type& req, int days, event_time now) const {
        auto res = make(req, http::status::ok, "text/csv; charset=utf-8",
                        format_offenders_csv(source_.top_offenders(days, 1000, now)));
        res.set(http::field::content_disposition,
                "attachment; filename=\"offenders-" + std::to_string(days) + "d.csv\"");
        return res;
    }

    response_type drill_down(const request_type& req, std::string_view query, int days,
                             event_time now) const {
        const auto key = dashboard_detail::form_param(query, "key");
        if (!key || key->empty())
            return make(req, http::status::bad_request, "application/json",
                        "{\"error\": \"missing ?key= parameter\"}");
        const offender_detail d = source_.drill_down(*key, days, 50, now);
        return make(req, http::status::ok, "application/json", to_json_string(d));
    }

    response_type sign_in(const request_type& req) const {
        if (req.method() == http::verb::get) {
            const std::string nonce = dashboard_detail::make_nonce();
            return make(req, http::status::ok, "text/html; charset=utf-8",
                        render_sign_in_page(url("signin"), nonce), nonce);
        }
        if (req.method() != http::verb::post) {
            auto res = text(req, http::status::method_not_allowed, "Method Not Allowed");
            res.set(http::field::allow, "GET, POST");
            return res;
        }
        if (req.body().size() > options_.max_form_bytes) return forbidden(req);
        const auto token = dashboard_detail::form_param(req.body(), "token");
        if (!token || !authorizer_.accepts_token(*token)) return forbidden(req);
        response_type res = make(req, http::status::see_other, "text/plain; charset=utf-8", "See Other");
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

    response_type sign_out(const request_type& req) const {
        if (req.method() != http::verb::post) {
            auto res = text(req, http::status::method_not_allowed, "Method Not Allowed");
            res.set(http::field::allow, "POST");
            return res;
        }
        response_type res = make(req, http::status::see_other, "text/plain; charset=utf-8", "See Other");
        res.set(http::field::location, url("signin"));
        std::string cookie(authorizer_.cookie_name());
        cookie += "=; Path=";
        cookie += options_.prefix;
        cookie += "; Max-Age=0; HttpOnly; SameSite=Strict";
        if (options_.secure_cookie) cookie += "; Secure";
        res.set(http::field::set_cookie, cookie);
        return res;
    }

    [[no_unique_address]] Source source_;
    [[no_unique_address]] Authorizer authorizer_;
    [[no_unique_address]] Renderer renderer_;
    dashboard_options options_;
};

}  // namespace smart_ratelimit::beast
