// smart_ratelimit/beast/dashboard_page.hpp
// The dashboard's HTML: `dashboard_context` (everything a page template may show,
// with link helpers that query-encode for you), the default page renderer, and the
// sign-in form (with its CSRF field). A user replaces the page by passing any callable
// `std::string(const dashboard_context&)` as the dashboard's Renderer. The offender
// drill-down page is in beast/offender_page.hpp.
#pragma once

#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

#include <smart_ratelimit/analytics/results.hpp>
#include <smart_ratelimit/beast/detail/escape.hpp>
#include <smart_ratelimit/beast/svg_chart.hpp>
#include <smart_ratelimit/beast/traffic_timeline.hpp>

namespace smart_ratelimit::beast {

/// The data and links of one dashboard page. Strings in the analytics results are
/// raw (attacker-controlled keys and rule names): a template must escape them,
/// e.g. with `html()`; the `*_url` helpers return URLs already query-encoded but not
/// yet HTML-escaped (pass them through `html()` too when writing an attribute).
struct dashboard_context {
    std::string_view prefix;               // the mount prefix, e.g. "/ratelimit/"
    int days = 7;                          // the window, already clamped to 1..365
    event_time now{};                      // when the data was read
    traffic_summary today;                 // days = 1
    traffic_summary window;                // days = `days`
    std::vector<offender> top_offenders;   // at most 20
    std::vector<rule_hits> rules;          // at most 20
    std::vector<traffic_bucket> timeline;  // oldest first
    std::string_view style_nonce;          // CSP nonce for an inline <style> element
    std::string_view sign_out_url;         // empty unless the request came with a sign-in session
    std::string_view csrf_token;  // the session's CSRF token: a sign-out form posts it as `csrf`
    std::string_view
        script_nonce;  // CSP nonce for the live refresh <script src>; empty: live refresh off
    long long live_refresh_ms = 0;  // the refresh interval; 0: live refresh off

    bool live_refresh() const noexcept { return live_refresh_ms > 0 && !script_nonce.empty(); }

    /// `s` escaped for HTML text or a quoted attribute value.
    static std::string html(std::string_view s) { return detail::html_escape(s); }

    /// The dashboard for another window.
    std::string window_url(int d) const {
        return std::string(prefix) + "dashboard/?days=" + std::to_string(d);
    }
    /// The CSV export of this window.
    std::string csv_url() const {
        return std::string(prefix) + "dashboard/offenders.csv?days=" + std::to_string(days);
    }
    /// The timeline of this window as JSON (what the live refresh reads).
    std::string timeline_url() const {
        return std::string(prefix) + "dashboard/timeline.json?days=" + std::to_string(days);
    }
    /// The live refresh script.
    std::string live_script_url() const { return std::string(prefix) + "dashboard/live.js"; }
    /// The HTML drill-down page of one key in this window.
    std::string offender_page_url(std::string_view key) const {
        std::string u(prefix);
        u += "dashboard/offender.html?key=";
        detail::append_query_component(u, key);
        u += "&days=";
        u += std::to_string(days);
        return u;
    }
    /// The JSON drill-down of one key in this window.
    std::string offender_url(std::string_view key) const {
        std::string u(prefix);
        u += "dashboard/offender/?key=";
        detail::append_query_component(u, key);
        u += "&days=";
        u += std::to_string(days);
        return u;
    }
    /// The chart as an inline SVG element (no script, presentation attributes only).
    std::string chart_svg() const { return render_traffic_svg(timeline); }
};

namespace detail {

inline std::string percent(double rate) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.1f%%", rate * 100.0);
    return buf;
}

inline constexpr std::string_view dashboard_css =
    "body{font-family:system-ui,sans-serif;margin:1.5rem;color:#222;background:#fafafa}"
    "h1{font-size:1.4rem;margin:0 0 .5rem}h2{font-size:1.1rem;margin:1.5rem 0 .5rem}"
    "nav a{margin-right:.6rem}nav a[aria-current]{font-weight:bold;text-decoration:none;color:#222}"
    "table{border-collapse:collapse;background:#fff;margin-bottom:1rem}"
    "th,td{border:1px solid #ddd;padding:.3rem .6rem;text-align:left}"
    "td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}"
    "caption{text-align:left;font-weight:bold;padding:.3rem 0}"
    ".summaries{display:flex;gap:2rem;flex-wrap:wrap}"
    "code{word-break:break-all}.empty{color:#777;font-style:italic}"
    "svg.chart{background:#fff;border:1px solid #ddd;max-width:100%;height:auto}"
    "footer{margin-top:2rem;color:#666;font-size:.85rem}footer form{display:inline}"
    ".status{color:#555;font-size:.85rem}.outcome-blocked,.outcome-shadow_blocked{color:#b3261e}"
    ".outcome-degraded{color:#a15c00}";

inline void append_summary_table(std::string& s, std::string_view id, std::string_view caption,
                                 const traffic_summary& t) {
    s += "<table class=\"summary\" id=\"";
    s += id;
    s += "\"><caption>";
    append_html_escaped(s, caption);
    s += "</caption><tbody>";
    s += "<tr><th>Total</th><td class=\"n\">" + std::to_string(t.total) + "</td></tr>";
    s += "<tr><th>Allowed</th><td class=\"n\">" + std::to_string(t.allowed) + "</td></tr>";
    s += "<tr><th>Blocked</th><td class=\"n\">" + std::to_string(t.blocked) + "</td></tr>";
    s += "<tr><th>Degraded</th><td class=\"n\">" + std::to_string(t.degraded) + "</td></tr>";
    s += "<tr><th>Block rate</th><td class=\"n\">" + percent(t.block_rate) + "</td></tr>";
    s += "</tbody></table>";
}

inline void append_page_head(std::string& s, std::string_view title, std::string_view nonce) {
    s += "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
         "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
         "<meta name=\"referrer\" content=\"no-referrer\"><link rel=\"icon\" "
         "href=\"data:,\"><title>";
    append_html_escaped(s, title);
    s += "</title><style nonce=\"";
    append_html_escaped(s, nonce);
    s += "\">";
    s += dashboard_css;
    s += "</style></head>";
}

}  // namespace detail

/// The built-in dashboard page: the window selector and CSV link, today's and the
/// window's summaries, the traffic chart, the top offenders (each linking to its
/// drill-down page) and the rule hits. Every data string is HTML-escaped; every link
/// built from data is query-encoded, then escaped. No inline script, no inline event
/// handlers, no style attributes; with live refresh on, one `<script src>` carrying
/// the CSP nonce, configured by `data-*` attributes of the chart's section.
struct default_dashboard_page {
    std::string operator()(const dashboard_context& c) const {
        using detail::append_html_escaped;
        std::string s;
        s.reserve(16384);
        detail::append_page_head(s, "Rate limiting dashboard", c.style_nonce);
        s += "<body><header><h1>Rate limiting dashboard</h1><nav aria-label=\"Window\">Window: ";
        for (const int d : {1, 7, 30, 90}) {
            s += "<a href=\"";
            append_html_escaped(s, c.window_url(d));
            s += '"';
            if (d == c.days) s += " aria-current=\"page\"";
            s += ">";
            s += std::to_string(d);
            s += d == 1 ? " day</a>" : " days</a>";
        }
        s += " | <a id=\"csv-link\" href=\"";
        append_html_escaped(s, c.csv_url());
        s += "\">Download offenders (CSV)</a></nav></header><main>";

        s += "<section class=\"summaries\">";
        detail::append_summary_table(s, "summary-today", "Today (last 24 hours)", c.today);
        detail::append_summary_table(
            s, "summary-window",
            "Last " + std::to_string(c.days) + (c.days == 1 ? " day" : " days"), c.window);
        s += "</section>";

        s += "<section id=\"traffic\"";
        if (c.live_refresh()) {
            s += " data-timeline-url=\"";
            append_html_escaped(s, c.timeline_url());
            s += "\" data-refresh-ms=\"";
            s += std::to_string(c.live_refresh_ms);
            s += '"';
        }
        s += "><h2>Traffic over time</h2>";
        s += c.chart_svg();
        if (c.live_refresh())
            s += "<p id=\"live-status\" class=\"status\" role=\"status\" aria-live=\"polite\">"
                 "The chart refreshes itself.</p>";
        s += "</section>";

        s += "<section><h2>Top offenders</h2><table id=\"offenders\"><thead><tr><th>Key</th>"
             "<th class=\"n\">Blocked</th></tr></thead><tbody>";
        if (c.top_offenders.empty())
            s += "<tr><td colspan=\"2\" class=\"empty\">No blocked requests in this "
                 "window.</td></tr>";
        for (const auto& o : c.top_offenders) {
            s += "<tr><td><a href=\"";
            append_html_escaped(s, c.offender_page_url(o.key));
            s += "\"><code>";
            append_html_escaped(s, o.key);
            s += "</code></a></td><td class=\"n\">";
            s += std::to_string(o.blocked_count);
            s += "</td></tr>";
        }
        s += "</tbody></table></section>";

        s += "<section><h2>Rule hits</h2><table id=\"rules\"><thead><tr><th>Rule</th>"
             "<th class=\"n\">Hits</th><th class=\"n\">Blocked</th></tr></thead><tbody>";
        if (c.rules.empty())
            s += "<tr><td colspan=\"3\" class=\"empty\">No rule matched in this window.</td></tr>";
        for (const auto& r : c.rules) {
            s += "<tr><td><code>";
            append_html_escaped(s, r.rule_name);
            s += "</code></td><td class=\"n\">";
            s += std::to_string(r.hits);
            s += "</td><td class=\"n\">";
            s += std::to_string(r.blocked);
            s += "</td></tr>";
        }
        s += "</tbody></table></section></main><footer>Generated ";
        s += detail::format_utc(c.now);
        s += " UTC.";
        if (!c.sign_out_url.empty()) {
            s += " <form method=\"post\" action=\"";
            append_html_escaped(s, c.sign_out_url);
            s += "\"><input type=\"hidden\" name=\"csrf\" value=\"";
            append_html_escaped(s, c.csrf_token);
            s += "\"><button type=\"submit\">Sign out</button></form>";
        }
        s += "</footer>";
        if (c.live_refresh()) {
            s += "<script src=\"";
            append_html_escaped(s, c.live_script_url());
            s += "\" nonce=\"";
            append_html_escaped(s, c.script_nonce);
            s += "\" defer></script>";
        }
        s += "</body></html>\n";
        return s;
    }
};

/// The sign-in form: one password field named `token` and the hidden `csrf` field
/// holding `csrf_token` (the value of the form's CSRF cookie), posted to `action`.
inline std::string render_sign_in_page(std::string_view action, std::string_view nonce,
                                       std::string_view csrf_token) {
    std::string s;
    detail::append_page_head(s, "Sign in: rate limiting dashboard", nonce);
    s += "<body><h1>Rate limiting dashboard</h1><form method=\"post\" action=\"";
    detail::append_html_escaped(s, action);
    s += "\"><input type=\"hidden\" name=\"csrf\" value=\"";
    detail::append_html_escaped(s, csrf_token);
    s += "\"><label for=\"token\">Staff token</label> "
         "<input type=\"password\" id=\"token\" name=\"token\" autocomplete=\"current-password\" "
         "required> "
         "<button type=\"submit\">Sign in</button></form></body></html>\n";
    return s;
}

}  // namespace smart_ratelimit::beast
