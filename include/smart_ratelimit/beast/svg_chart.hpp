// smart_ratelimit/beast/svg_chart.hpp
// Draws the traffic timeline as an inline SVG bar chart (allowed and blocked
// stacked per bucket) on the server, so the dashboard needs no JavaScript. Styling
// uses presentation attributes only, which a strict Content-Security-Policy allows.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include <smart_ratelimit/beast/detail/escape.hpp>
#include <smart_ratelimit/beast/traffic_timeline.hpp>

namespace smart_ratelimit::beast {

namespace dashboard_detail {

/// "YYYY-MM-DD HH:MM" (UTC) of an event time; "YYYY-MM-DD" when `date_only`.
inline std::string format_utc(event_time t, bool date_only = false) {
    using namespace std::chrono;
    const auto day = floor<days>(t);
    const year_month_day ymd{day};
    const hh_mm_ss hms{floor<minutes>(t - day)};
    char buf[40];
    if (date_only)
        std::snprintf(buf, sizeof buf, "%04d-%02u-%02u", static_cast<int>(ymd.year()),
                      static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()));
    else
        std::snprintf(buf, sizeof buf, "%04d-%02u-%02u %02d:%02d", static_cast<int>(ymd.year()),
                      static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()),
                      static_cast<int>(hms.hours().count()), static_cast<int>(hms.minutes().count()));
    return buf;
}

inline void append_int(std::string& out, std::int64_t v) { out += std::to_string(v); }

inline void append_fixed(std::string& out, double v) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.2f", v);
    out += buf;
}

}  // namespace dashboard_detail

/// Size and colours of the chart.
struct svg_chart_options {
    int width = 900;
    int height = 240;
    const char* allowed_colour = "#4e79a7";
    const char* blocked_colour = "#e15759";
};

/// The timeline as a standalone `<svg>` element: one stacked bar per bucket
/// (allowed below, blocked on top), a y axis scaled to the largest bucket, the first
/// and last bucket dates under the x axis, a legend, and a `<title>` per bar giving
/// its exact counts. Deterministic output for equal input.
inline std::string render_traffic_svg(const std::vector<traffic_bucket>& buckets,
                                      const svg_chart_options& opt = {}) {
    const int left = 56, right = 12, top = 28, bottom = 36;
    const int plot_w = std::max(1, opt.width - left - right);
    const int plot_h = std::max(1, opt.height - top - bottom);
    std::int64_t peak = 0, total_allowed = 0, total_blocked = 0;
    for (const auto& b : buckets) {
        peak = std::max(peak, b.allowed + b.blocked);
        total_allowed += b.allowed;
        total_blocked += b.blocked;
    }
    const std::int64_t scale = peak == 0 ? 1 : peak;

    std::string s;
    s.reserve(256 + buckets.size() * 300);
    s += "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"chart\" role=\"img\" width=\"";
    dashboard_detail::append_int(s, opt.width);
    s += "\" height=\"";
    dashboard_detail::append_int(s, opt.height);
    s += "\" viewBox=\"0 0 ";
    dashboard_detail::append_int(s, opt.width);
    s += ' ';
    dashboard_detail::append_int(s, opt.height);
    s += "\" aria-label=\"Allowed and blocked requests over time\">";
    s += "<title>Allowed ";
    dashboard_detail::append_int(s, total_allowed);
    s += ", blocked ";
    dashboard_detail::append_int(s, total_blocked);
    s += "</title>";

    // Legend.
    s += "<rect x=\"";
    dashboard_detail::append_int(s, left);
    s += "\" y=\"6\" width=\"12\" height=\"12\" fill=\"";
    s += opt.allowed_colour;
    s += "\"/><text x=\"";
    dashboard_detail::append_int(s, left + 18);
    s += "\" y=\"16\" font-size=\"12\" font-family=\"sans-serif\">allowed</text>";
    s += "<rect x=\"";
    dashboard_detail::append_int(s, left + 90);
    s += "\" y=\"6\" width=\"12\" height=\"12\" fill=\"";
    s += opt.blocked_colour;
    s += "\"/><text x=\"";
    dashboard_detail::append_int(s, left + 108);
    s += "\" y=\"16\" font-size=\"12\" font-family=\"sans-serif\">blocked</text>";

    // Axes and the y scale.
    s += "<g stroke=\"#999\" stroke-width=\"1\"><line x1=\"";
    dashboard_detail::append_int(s, left);
    s += "\" y1=\"";
    dashboard_detail::append_int(s, top);
    s += "\" x2=\"";
    dashboard_detail::append_int(s, left);
    s += "\" y2=\"";
    dashboard_detail::append_int(s, top + plot_h);
    s += "\"/><line x1=\"";
    dashboard_detail::append_int(s, left);
    s += "\" y1=\"";
    dashboard_detail::append_int(s, top + plot_h);
    s += "\" x2=\"";
    dashboard_detail::append_int(s, left + plot_w);
    s += "\" y2=\"";
    dashboard_detail::append_int(s, top + plot_h);
    s += "\"/></g>";
    s += "<g font-size=\"11\" font-family=\"sans-serif\" fill=\"#333\">";
    s += "<text x=\"";
    dashboard_detail::append_int(s, left - 6);
    s += "\" y=\"";
    dashboard_detail::append_int(s, top + 4);
    s += "\" text-anchor=\"end\">";
    dashboard_detail::append_int(s, peak);
    s += "</text><text x=\"";
    dashboard_detail::append_int(s, left - 6);
    s += "\" y=\"";
    dashboard_detail::append_int(s, top + plot_h);
    s += "\" text-anchor=\"end\">0</text>";
    if (!buckets.empty()) {
        s += "<text x=\"";
        dashboard_detail::append_int(s, left);
        s += "\" y=\"";
        dashboard_detail::append_int(s, top + plot_h + 16);
        s += "\">";
        s += dashboard_detail::format_utc(buckets.front().start);
        s += " UTC</text><text x=\"";
        dashboard_detail::append_int(s, left + plot_w);
        s += "\" y=\"";
        dashboard_detail::append_int(s, top + plot_h + 16);
        s += "\" text-anchor=\"end\">";
        const std::size_t n = buckets.size();
        const auto width = n > 1 ? buckets[n - 1].start - buckets[n - 2].start : std::chrono::microseconds{0};
        s += dashboard_detail::format_utc(buckets.back().start + width);
        s += " UTC</text>";
    }
    s += "</g>";

    // Bars.
    if (!buckets.empty()) {
        const double slot = static_cast<double>(plot_w) / static_cast<double>(buckets.size());
        const double bar = std::max(1.0, slot * 0.8);
        s += "<g class=\"bars\">";
        for (std::size_t i = 0; i < buckets.size(); ++i) {
            const auto& b = buckets[i];
            if (b.allowed + b.blocked == 0) continue;
            const double x = left + slot * static_cast<double>(i) + (slot - bar) / 2;
            const double ha = static_cast<double>(plot_h) * static_cast<double>(b.allowed) / static_cast<double>(scale);
            const double hb = static_cast<double>(plot_h) * static_cast<double>(b.blocked) / static_cast<double>(scale);
            const double base = top + plot_h;
            s += "<g><title>";
            s += dashboard_detail::format_utc(b.start);
            s += " UTC: ";
            dashboard_detail::append_int(s, b.allowed);
            s += " allowed, ";
            dashboard_detail::append_int(s, b.blocked);
            s += " blocked</title>";
            if (b.allowed > 0) {
                s += "<rect class=\"allowed\" x=\"";
                dashboard_detail::append_fixed(s, x);
                s += "\" y=\"";
                dashboard_detail::append_fixed(s, base - ha);
                s += "\" width=\"";
                dashboard_detail::append_fixed(s, bar);
                s += "\" height=\"";
                dashboard_detail::append_fixed(s, ha);
                s += "\" fill=\"";
                s += opt.allowed_colour;
                s += "\"/>";
            }
            if (b.blocked > 0) {
                s += "<rect class=\"blocked\" x=\"";
                dashboard_detail::append_fixed(s, x);
                s += "\" y=\"";
                dashboard_detail::append_fixed(s, base - ha - hb);
                s += "\" width=\"";
                dashboard_detail::append_fixed(s, bar);
                s += "\" height=\"";
                dashboard_detail::append_fixed(s, hb);
                s += "\" fill=\"";
                s += opt.blocked_colour;
                s += "\"/>";
            }
            s += "</g>";
        }
        s += "</g>";
    }
    s += "</svg>";
    return s;
}

}  // namespace smart_ratelimit::beast
