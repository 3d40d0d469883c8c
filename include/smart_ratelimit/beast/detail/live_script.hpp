// smart_ratelimit/beast/detail/live_script.hpp
// The dashboard's only script, served as `dashboard/live.js` when live refresh is
// on: every `data-refresh-ms` it fetches `data-timeline-url` (same origin, with the
// staff cookie) and redraws the chart's bars, totals and labels with DOM calls and
// `textContent` only (no HTML parsing, no eval). A fixed string; no third-party code.
#pragma once

#include <string_view>

namespace smart_ratelimit::beast::detail {

inline constexpr std::string_view live_refresh_script =
    R"js(// smart_ratelimit dashboard: live refresh of the traffic chart.
(function () {
  "use strict";
  var section = document.getElementById("traffic");
  if (!section) return;
  var url = section.getAttribute("data-timeline-url");
  var every = parseInt(section.getAttribute("data-refresh-ms"), 10);
  if (!url || !(every >= 100)) return;
  var NS = "http://www.w3.org/2000/svg";
  var status = document.getElementById("live-status");
  var refreshed = 0;

  function utc(iso) { return iso.slice(0, 10) + " " + iso.slice(11, 16) + " UTC"; }
  function num(v) { return typeof v === "number" && isFinite(v) && v >= 0 ? Math.floor(v) : 0; }
  function fixed(v) { return v.toFixed(2); }
  function say(text) { if (status) status.textContent = text; }
  function setText(svg, selector, text) {
    var el = svg.querySelector(selector);
    if (el) el.textContent = text;
  }
  function rect(cls, x, y, w, h, fill) {
    var r = document.createElementNS(NS, "rect");
    r.setAttribute("class", cls);
    r.setAttribute("x", fixed(x));
    r.setAttribute("y", fixed(y));
    r.setAttribute("width", fixed(w));
    r.setAttribute("height", fixed(h));
    r.setAttribute("fill", fill);
    return r;
  }

  function draw(data) {
    var svg = section.querySelector("svg.chart");
    var g = svg && svg.querySelector("g.bars");
    if (!g || !data || !Array.isArray(data.buckets)) throw new Error("unexpected timeline");
    var left = +g.getAttribute("data-left"), top = +g.getAttribute("data-top");
    var pw = +g.getAttribute("data-width"), ph = +g.getAttribute("data-height");
    var colour = {
      allowed: g.getAttribute("data-allowed-colour"),
      degraded: g.getAttribute("data-degraded-colour"),
      blocked: g.getAttribute("data-blocked-colour")
    };
    var rows = data.buckets.map(function (b) {
      var total = num(b.total), blocked = num(b.blocked), degraded = num(b.degraded);
      return { start: String(b.start), total: total, blocked: blocked, degraded: degraded,
               allowed: Math.max(0, total - blocked - degraded) };
    });
    var peak = 0, ta = 0, td = 0, tb = 0;
    rows.forEach(function (b) { peak = Math.max(peak, b.total); ta += b.allowed; td += b.degraded; tb += b.blocked; });
    var scale = peak || 1, base = top + ph;
    var slot = pw / Math.max(1, rows.length), bar = Math.max(1, slot * 0.8);
    while (g.firstChild) g.removeChild(g.firstChild);
    rows.forEach(function (b, i) {
      if (b.total === 0) return;
      var x = left + slot * i + (slot - bar) / 2;
      var ha = ph * b.allowed / scale, hd = ph * b.degraded / scale, hb = ph * b.blocked / scale;
      var one = document.createElementNS(NS, "g");
      var title = document.createElementNS(NS, "title");
      title.textContent = utc(b.start) + ": " + b.allowed + " allowed, " + b.degraded + " degraded, " +
                          b.blocked + " blocked";
      one.appendChild(title);
      if (b.allowed > 0) one.appendChild(rect("allowed", x, base - ha, bar, ha, colour.allowed));
      if (b.degraded > 0) one.appendChild(rect("degraded", x, base - ha - hd, bar, hd, colour.degraded));
      if (b.blocked > 0) one.appendChild(rect("blocked", x, base - ha - hd - hb, bar, hb, colour.blocked));
      g.appendChild(one);
    });
    setText(svg, "text.peak", String(peak));
    setText(svg, "title.totals", "Allowed " + ta + ", degraded " + td + ", blocked " + tb);
    if (rows.length > 0) {
      var width = data.bucket === "hour" ? 3600000 : 86400000;
      var end = Date.parse(rows[rows.length - 1].start) + width;
      setText(svg, "text.first", utc(rows[0].start));
      if (isFinite(end)) setText(svg, "text.last", utc(new Date(end).toISOString()));
    }
    refreshed += 1;
    section.setAttribute("data-refreshed", String(refreshed));
    say("Chart updated " + new Date().toISOString().slice(11, 19) + " UTC.");
  }

  function tick() {
    fetch(url, { credentials: "same-origin", cache: "no-store", headers: { "Accept": "application/json" } })
      .then(function (r) {
        if (!r.ok) throw new Error("HTTP " + r.status);
        return r.json();
      })
      .then(draw)
      .catch(function () { say("Live refresh failed; retrying."); })
      .then(function () { window.setTimeout(tick, every); });
  }
  window.setTimeout(tick, every);
})();
)js";

}  // namespace smart_ratelimit::beast::detail
