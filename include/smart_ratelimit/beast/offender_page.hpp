// smart_ratelimit/beast/offender_page.hpp
// The HTML drill-down of one key (`dashboard/offender.html?key=&days=`):
// `offender_context`, the default page (totals including degraded, first and last
// seen, blocked paths, recent events with their outcome, a link to the JSON form),
// and the page answering a request without a key. Every data string is escaped.
#pragma once

#include <string>
#include <string_view>

#include <smart_ratelimit/analytics/results.hpp>
#include <smart_ratelimit/beast/dashboard_page.hpp>
#include <smart_ratelimit/beast/detail/escape.hpp>

namespace smart_ratelimit::beast {

/// The data and links of one offender page. `detail.key` and every string in it are
/// raw (attacker-controlled): escape them, e.g. with `html()`. A Renderer that is
/// also callable with this context replaces default_offender_page.
struct offender_context {
    std::string_view prefix;       // the mount prefix, e.g. "/ratelimit/"
    int days = 7;                  // the window, already clamped to 1..365
    event_time now{};              // when the data was read
    offender_detail detail;        // the drill-down (at most 50 recent events)
    std::string_view style_nonce;  // CSP nonce for an inline <style> element

    static std::string html(std::string_view s) { return detail::html_escape(s); }

    /// The dashboard for this window.
    std::string dashboard_url() const {
        return std::string(prefix) + "dashboard/?days=" + std::to_string(days);
    }
    /// The JSON drill-down of this key and window.
    std::string json_url() const {
        std::string u(prefix);
        u += "dashboard/offender/?key=";
        detail::append_query_component(u, detail.key);
        u += "&days=";
        u += std::to_string(days);
        return u;
    }
    /// This page for another window.
    std::string window_url(int d) const {
        std::string u(prefix);
        u += "dashboard/offender.html?key=";
        detail::append_query_component(u, detail.key);
        u += "&days=";
        u += std::to_string(d);
        return u;
    }
};

/// The built-in offender page: a window selector, the totals (total, allowed, blocked,
/// degraded, block rate, first and last seen), the blocked paths and the recent
/// events newest first, each with its outcome. No script, no style attributes.
struct default_offender_page {
    std::string operator()(const offender_context& c) const {
        using detail::append_html_escaped;
        const offender_detail& d = c.detail;
        std::string s;
        s.reserve(8192 + d.recent_events.size() * 256);
        detail::append_page_head(s, "Offender: " + d.key, c.style_nonce);
        s += "<body><header><h1>Offender <code id=\"offender-key\">";
        append_html_escaped(s, d.key);
        s += "</code></h1><nav aria-label=\"Window\"><a id=\"back-link\" href=\"";
        append_html_escaped(s, c.dashboard_url());
        s += "\">Back to the dashboard</a> | Window: ";
        for (const int w : {1, 7, 30, 90}) {
            s += "<a href=\"";
            append_html_escaped(s, c.window_url(w));
            s += '"';
            if (w == c.days) s += " aria-current=\"page\"";
            s += ">";
            s += std::to_string(w);
            s += w == 1 ? " day</a>" : " days</a>";
        }
        s += " | <a id=\"json-link\" href=\"";
        append_html_escaped(s, c.json_url());
        s += "\">JSON</a></nav></header><main>";

        s += "<table class=\"summary\" id=\"offender-totals\"><caption>Last ";
        s += std::to_string(c.days);
        s += c.days == 1 ? " day" : " days";
        s += "</caption><tbody>";
        auto row = [&](std::string_view name, const std::string& value) {
            s += "<tr><th>";
            s += name;
            s += "</th><td class=\"n\">";
            append_html_escaped(s, value);
            s += "</td></tr>";
        };
        row("Total", std::to_string(d.total));
        row("Allowed", std::to_string(d.allowed));
        row("Blocked", std::to_string(d.blocked));
        row("Degraded", std::to_string(d.degraded));
        row("Block rate", detail::percent(d.block_rate));
        row("First seen", d.first_seen ? detail::format_utc(*d.first_seen) + " UTC" : "never");
        row("Last seen", d.last_seen ? detail::format_utc(*d.last_seen) + " UTC" : "never");
        s += "</tbody></table>";

        s += "<section><h2>Blocked by path</h2><table id=\"by-path\"><thead><tr><th>Path</th>"
             "<th class=\"n\">Blocked</th></tr></thead><tbody>";
        if (d.by_path.empty())
            s += "<tr><td colspan=\"2\" class=\"empty\">No blocked requests in this "
                 "window.</td></tr>";
        for (const auto& p : d.by_path) {
            s += "<tr><td><code>";
            append_html_escaped(s, p.path);
            s += "</code></td><td class=\"n\">";
            s += std::to_string(p.blocked_count);
            s += "</td></tr>";
        }
        s += "</tbody></table></section>";

        s += "<section><h2>Recent events</h2><table id=\"recent-events\"><thead><tr><th>Time "
             "(UTC)</th>"
             "<th>Outcome</th><th>Method</th><th>Path</th><th>Rule</th><th class=\"n\">Count</th>"
             "<th class=\"n\">Limit</th></tr></thead><tbody>";
        if (d.recent_events.empty())
            s += "<tr><td colspan=\"7\" class=\"empty\">No events in this window.</td></tr>";
        for (const auto& e : d.recent_events) {
            const std::string_view outcome = to_string(e.outcome);
            s += "<tr><td>";
            s += detail::format_utc(e.timestamp);
            s += "</td><td class=\"outcome-";
            s += outcome;  // a fixed identifier
            s += "\">";
            s += outcome;
            s += "</td><td>";
            append_html_escaped(s, e.method);
            s += "</td><td><code>";
            append_html_escaped(s, e.path);
            s += "</code></td><td><code>";
            append_html_escaped(s, e.rule_name);
            s += "</code></td><td class=\"n\">";
            s += std::to_string(e.count);
            s += "</td><td class=\"n\">";
            s += std::to_string(e.limit);
            s += "</td></tr>";
        }
        s += "</tbody></table></section></main><footer>Generated ";
        s += detail::format_utc(c.now);
        s += " UTC.</footer></body></html>\n";
        return s;
    }
};

/// The 400 page of an offender request without `?key=`.
inline std::string render_missing_key_page(std::string_view dashboard_url, std::string_view nonce) {
    std::string s;
    detail::append_page_head(s, "Bad request: rate limiting dashboard", nonce);
    s += "<body><h1>Bad request</h1><p>The offender page needs a <code>?key=</code> "
         "parameter.</p><p><a href=\"";
    detail::append_html_escaped(s, dashboard_url);
    s += "\">Back to the dashboard</a></p></body></html>\n";
    return s;
}

}  // namespace smart_ratelimit::beast
