// smart_ratelimit/beast/dashboard_options.hpp
// The settings of the staff dashboard (`dashboard_options`: mount prefix, the
// sign-in's sessions, cookies and throttle, live refresh, the health and metrics
// callables) and the `?days=` rule shared by every windowed endpoint (`parse_days`).
// Standard headers and core headers only.
#pragma once

#include <smart_ratelimit/health.hpp>
#include <smart_ratelimit/keys/cidr.hpp>

#include <charconv>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>

namespace smart_ratelimit::beast {

/// Settings of a dashboard. The callables are called from the dashboard's worker
/// threads, possibly concurrently, and must be safe to do so; an exception from one
/// becomes a 503 with a generic body.
struct dashboard_options {
    /// Where the endpoints are mounted; must start and end with '/'.
    std::string prefix = "/ratelimit/";

    // The sign-in form (with a token_sign_in_authorizer such as staff_token_authorizer).

    /// The session cookie's name; the form's CSRF cookie is `<session_cookie>_csrf`.
    std::string session_cookie = "srl_staff";
    /// Adds `Secure` to the cookies: set it when the dashboard is reached over HTTPS.
    bool secure_cookie = false;
    /// Lifetime of a session, however busy, and its cookie's Max-Age.
    std::chrono::seconds cookie_max_age{std::chrono::hours{8}};
    /// A session unused this long ends; zero (the default): sessions end only at
    /// cookie_max_age or sign-out.
    std::chrono::seconds session_idle_timeout{0};
    /// Most sessions alive at once; signing in beyond it ends the least recently used.
    std::size_t max_sessions = 1000;
    /// Sign-in attempts per client address (a rate, see parse_rate: "5/m", "20/h"),
    /// counted over a sliding window; a correct token gives its attempt back. Beyond
    /// it every attempt, a correct token included, gets 429 with Retry-After.
    std::string sign_in_rate = "5/m";
    /// Proxies whose X-Forwarded-For names the client of a sign-in attempt (as in
    /// middleware_options); empty: the socket peer is the client.
    cidr_list trusted_proxies;
    /// Largest sign-in or sign-out form body accepted.
    std::size_t max_form_bytes = 4096;

    /// The page redraws its chart from `dashboard/timeline.json` every
    /// `live_refresh_interval`, with `dashboard/live.js` (served by the dashboard,
    /// allowed by `script-src 'self'`). Off: the page has no script at all.
    bool live_refresh = false;
    /// At least 100 ms; 30 s by default.
    std::chrono::milliseconds live_refresh_interval{std::chrono::seconds{30}};

    /// The report of `<prefix>health`. Empty: the endpoint answers
    /// `{"status":"ok","checks":[]}` (the process is up and serving: a liveness probe).
    std::function<health_report()> health;

    /// The Prometheus text exposition served at `metrics_path` to staff (a bearer
    /// token in the scrape config). Empty: no metrics endpoint (404).
    std::function<std::string()> metrics;
    /// An absolute path, not under the prefix; empty disables the endpoint.
    std::string metrics_path = "/metrics";
};

/// The `?days=` rule: absent or not an integer gives 7 (`"7.5"`, `"abc"`, `""`),
/// then clamped to 1..365 (`"0"` and `"-5"` give 1, `"400"` and huge values 365).
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

}  // namespace smart_ratelimit::beast
