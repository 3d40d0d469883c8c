// smart_ratelimit/beast/svg_chart.hpp
// Draws the traffic timeline as an inline SVG bar chart (allowed, degraded and
// blocked stacked per bucket) on the server, so the dashboard needs no JavaScript
// (the optional live refresh redraws the bars from the geometry in `data-*`
// attributes). Presentation attributes only, which a strict CSP allows.
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

namespace detail {

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
                      static_cast<int>(hms.hours().count()),
                      static_cast<int>(hms.minutes().count()));
    return buf;
}

inline void append_int(std::string& out, std::int64_t v) { out += std::to_string(v); }

inline void append_fixed(std::string& out, double v) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.2f", v);
    out += buf;
}

}  // namespace detail

/// Size and colours of the chart.
struct svg_chart_options {
    int width = 900;
    int height = 240;
    const char* allowed_colour = "#4e79a7";
    const char* blocked_colour = "#e15759";
    const char* degraded_colour = "#f28e2b";
};

namespace detail {

inline void append_legend_entry(std::string& s, int x, const char* colour, const char* label) {
    s += "<rect x=\"";
    append_int(s, x);
    s += "\" y=\"6\" width=\"12\" height=\"12\" fill=\"";
    s += colour;
    s += "\"/><text x=\"";
    append_int(s, x + 18);
    s += "\" y=\"16\" font-size=\"12\" font-family=\"sans-serif\">";
    s += label;
    s += "</text>";
}

inline void append_bar_rect(std::string& s, const char* cls, double x, double y, double w, double h,
                            const char* colour) {
    s += "<rect class=\"";
    s += cls;
    s += "\" x=\"";
    append_fixed(s, x);
    s += "\" y=\"";
    append_fixed(s, y);
    s += "\" width=\"";
    append_fixed(s, w);
    s += "\" height=\"";
    append_fixed(s, h);
    s += "\" fill=\"";
    s += colour;
    s += "\"/>";
}

}  // namespace detail

/// The timeline as a standalone `<svg>` element: one stacked bar per bucket
/// (allowed at the bottom, degraded above it, blocked on top), a y axis scaled to the
/// largest bucket, the first and last bucket dates under the x axis, a legend naming
/// the three series, and a `<title>` per bar giving its exact counts (the accessible
/// text). The bars group carries its plot area and colours as `data-*` attributes
/// for the live refresh. Deterministic output for equal input.
inline std::string render_traffic_svg(const std::vector<traffic_bucket>& buckets,
                                      const svg_chart_options& opt = {}) {
    using detail::append_int;
    const int left = 56, right = 12, top = 28, bottom = 36;
    const int plot_w = std::max(1, opt.width - left - right);
    const int plot_h = std::max(1, opt.height - top - bottom);
    std::int64_t peak = 0, total_allowed = 0, total_blocked = 0, total_degraded = 0;
    for (const auto& b : buckets) {
        peak = std::max(peak, b.total());
        total_allowed += b.allowed;
        total_blocked += b.blocked;
        total_degraded += b.degraded;
    }
    const std::int64_t scale = peak == 0 ? 1 : peak;

    std::string s;
    s.reserve(512 + buckets.size() * 400);
    s += "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"chart\" role=\"img\" width=\"";
    append_int(s, opt.width);
    s += "\" height=\"";
    append_int(s, opt.height);
    s += "\" viewBox=\"0 0 ";
    append_int(s, opt.width);
    s += ' ';
    append_int(s, opt.height);
    s += "\" aria-label=\"Allowed, degraded and blocked requests over time\">";
    s += "<title class=\"totals\">Allowed ";
    append_int(s, total_allowed);
    s += ", degraded ";
    append_int(s, total_degraded);
    s += ", blocked ";
    append_int(s, total_blocked);
    s += "</title>";

    s += "<g class=\"legend\">";
    detail::append_legend_entry(s, left, opt.allowed_colour, "allowed");
    detail::append_legend_entry(s, left + 90, opt.degraded_colour, "degraded");
    detail::append_legend_entry(s, left + 190, opt.blocked_colour, "blocked");
    s += "</g>";

    // Axes and the y scale.
    s += "<g stroke=\"#999\" stroke-width=\"1\"><line x1=\"";
    append_int(s, left);
    s += "\" y1=\"";
    append_int(s, top);
    s += "\" x2=\"";
    append_int(s, left);
    s += "\" y2=\"";
    append_int(s, top + plot_h);
    s += "\"/><line x1=\"";
    append_int(s, left);
    s += "\" y1=\"";
    append_int(s, top + plot_h);
    s += "\" x2=\"";
    append_int(s, left + plot_w);
    s += "\" y2=\"";
    append_int(s, top + plot_h);
    s += "\"/></g>";
    s += "<g font-size=\"11\" font-family=\"sans-serif\" fill=\"#333\">";
    s += "<text class=\"peak\" x=\"";
    append_int(s, left - 6);
    s += "\" y=\"";
    append_int(s, top + 4);
    s += "\" text-anchor=\"end\">";
    append_int(s, peak);
    s += "</text><text x=\"";
    append_int(s, left - 6);
    s += "\" y=\"";
    append_int(s, top + plot_h);
    s += "\" text-anchor=\"end\">0</text>";
    if (!buckets.empty()) {
        s += "<text class=\"first\" x=\"";
        append_int(s, left);
        s += "\" y=\"";
        append_int(s, top + plot_h + 16);
        s += "\">";
        s += detail::format_utc(buckets.front().start);
        s += " UTC</text><text class=\"last\" x=\"";
        append_int(s, left + plot_w);
        s += "\" y=\"";
        append_int(s, top + plot_h + 16);
        s += "\" text-anchor=\"end\">";
        const std::size_t n = buckets.size();
        const auto width =
            n > 1 ? buckets[n - 1].start - buckets[n - 2].start : std::chrono::microseconds{0};
        s += detail::format_utc(buckets.back().start + width);
        s += " UTC</text>";
    }
    s += "</g>";

    // Bars.
    s += "<g class=\"bars\" data-left=\"";
    append_int(s, left);
    s += "\" data-top=\"";
    append_int(s, top);
    s += "\" data-width=\"";
    append_int(s, plot_w);
    s += "\" data-height=\"";
    append_int(s, plot_h);
    s += "\" data-allowed-colour=\"";
    s += opt.allowed_colour;
    s += "\" data-degraded-colour=\"";
    s += opt.degraded_colour;
    s += "\" data-blocked-colour=\"";
    s += opt.blocked_colour;
    s += "\">";
    if (!buckets.empty()) {
        const double slot = static_cast<double>(plot_w) / static_cast<double>(buckets.size());
        const double bar = std::max(1.0, slot * 0.8);
        const double base = top + plot_h;
        auto height_of = [&](std::int64_t v) {
            return static_cast<double>(plot_h) * static_cast<double>(v) /
                   static_cast<double>(scale);
        };
        for (std::size_t i = 0; i < buckets.size(); ++i) {
            const auto& b = buckets[i];
            if (b.total() == 0) continue;
            const double x = left + slot * static_cast<double>(i) + (slot - bar) / 2;
            const double ha = height_of(b.allowed), hd = height_of(b.degraded),
                         hb = height_of(b.blocked);
            s += "<g><title>";
            s += detail::format_utc(b.start);
            s += " UTC: ";
            append_int(s, b.allowed);
            s += " allowed, ";
            append_int(s, b.degraded);
            s += " degraded, ";
            append_int(s, b.blocked);
            s += " blocked</title>";
            if (b.allowed > 0)
                detail::append_bar_rect(s, "allowed", x, base - ha, bar, ha, opt.allowed_colour);
            if (b.degraded > 0)
                detail::append_bar_rect(s, "degraded", x, base - ha - hd, bar, hd,
                                        opt.degraded_colour);
            if (b.blocked > 0)
                detail::append_bar_rect(s, "blocked", x, base - ha - hd - hb, bar, hb,
                                        opt.blocked_colour);
            s += "</g>";
        }
    }
    s += "</g></svg>";
    return s;
}

}  // namespace smart_ratelimit::beast
