// smart_ratelimit/analytics/json_text.hpp
// JSON text for the analytics results with standard headers only (for the core,
// the command-line program and alert bodies): the shapes and key orders,
// block_rate as a plain decimal, RFC 3339 UTC timestamps with milliseconds and Z,
// strings escaped safely for HTML and JavaScript. analytics/json.hpp adds Boost.JSON.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <smart_ratelimit/analytics/format.hpp>
#include <smart_ratelimit/analytics/results.hpp>
#include <smart_ratelimit/detail/json_escape.hpp>

namespace smart_ratelimit {

/// Appends `s` as a JSON string literal, escaped as every JSON the library writes:
/// `"` `\` and controls, `<` `>` `&` DEL U+2028 U+2029 as `\uXXXX` (safe in HTML and
/// JavaScript), invalid UTF-8 bytes as `\ufffd`.
inline void append_json_string(std::string& out, std::string_view s) {
    detail::append_json_string(out, s);
}

namespace detail::analytics {

struct json_object_writer {
    std::string& out;
    bool first = true;

    explicit json_object_writer(std::string& o) : out(o) { out.push_back('{'); }
    void key(std::string_view k) {
        if (!first) out.push_back(',');
        first = false;
        detail::append_json_string(out, k);
        out.push_back(':');
    }
    void field(std::string_view k, std::string_view v) {
        key(k);
        detail::append_json_string(out, v);
    }
    void field(std::string_view k, std::int64_t v) {
        key(k);
        out += std::to_string(v);
    }
    void field(std::string_view k, bool v) {
        key(k);
        out += v ? "true" : "false";
    }
    void field(std::string_view k, double v) {
        key(k);
        out += format_plain_decimal(v);
    }
    void time(std::string_view k, const std::optional<event_time>& t) {
        key(k);
        if (t)
            detail::append_json_string(out, format_rfc3339(*t));
        else
            out += "null";
    }
    void close() { out.push_back('}'); }
};

}  // namespace detail::analytics

inline void append_json(std::string& out, const traffic_summary& s) {
    detail::analytics::json_object_writer w(out);
    w.field("days", std::int64_t{s.days});
    w.field("total", s.total);
    w.field("allowed", s.allowed);
    w.field("blocked", s.blocked);
    w.field("block_rate", s.block_rate);
    w.field("degraded", s.degraded);
    w.close();
}

inline void append_json(std::string& out, const offender& o) {
    detail::analytics::json_object_writer w(out);
    w.field("key", o.key);
    w.field("blocked_count", o.blocked_count);
    w.close();
}

inline void append_json(std::string& out, const rule_hits& r) {
    detail::analytics::json_object_writer w(out);
    w.field("rule_name", r.rule_name);
    w.field("hits", r.hits);
    w.field("blocked", r.blocked);
    w.close();
}

inline void append_json(std::string& out, const path_count& p) {
    detail::analytics::json_object_writer w(out);
    w.field("path", p.path);
    w.field("blocked_count", p.blocked_count);
    w.close();
}

inline void append_json(std::string& out, const recent_event& e) {
    detail::analytics::json_object_writer w(out);
    w.time("timestamp", e.timestamp);
    w.field("path", e.path);
    w.field("method", e.method);
    w.field("allowed", e.allowed);
    w.field("count", e.count);
    w.field("limit", e.limit);
    w.field("rule_name", e.rule_name);
    w.field("outcome", to_string(e.outcome));
    w.close();
}

template <class T>
void append_json(std::string& out, const std::vector<T>& items) {
    out.push_back('[');
    for (std::size_t i = 0; i < items.size(); ++i) {
        if (i != 0) out.push_back(',');
        append_json(out, items[i]);
    }
    out.push_back(']');
}

inline void append_json(std::string& out, const offender_detail& d) {
    detail::analytics::json_object_writer w(out);
    w.field("key", d.key);
    w.field("days", std::int64_t{d.days});
    w.field("total", d.total);
    w.field("allowed", d.allowed);
    w.field("blocked", d.blocked);
    w.field("block_rate", d.block_rate);
    w.field("degraded", d.degraded);
    w.time("first_seen", d.first_seen);
    w.time("last_seen", d.last_seen);
    w.key("by_path");
    append_json(out, d.by_path);
    w.key("recent_events");
    append_json(out, d.recent_events);
    w.close();
}

/// Any analytics result, or a vector of them, as compact JSON text (the documented shapes).
/// Thread safety: pure function.
template <class T>
std::string to_json_string(const T& result) {
    std::string out;
    append_json(out, result);
    return out;
}

}  // namespace smart_ratelimit
