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

#include <smart_ratelimit/analytics/detail/format.hpp>
#include <smart_ratelimit/analytics/results.hpp>

namespace smart_ratelimit {

/// Appends `s` as a JSON string literal: `"` `\` and control characters escaped,
/// also `<`, `>`, `&`, DEL, U+2028 and U+2029 (as `\uXXXX`, so the text is safe
/// inside HTML `<script>` and JavaScript); invalid UTF-8 bytes become `\ufffd`.
inline void append_json_string(std::string& out, std::string_view s) {
    static constexpr char hex[] = "0123456789abcdef";
    out.push_back('"');
    std::size_t i = 0;
    while (i < s.size()) {
        const auto c = static_cast<unsigned char>(s[i]);
        if (c < 0x80) {
            switch (c) {
            case '"': out += "\\\""; break;
            case '\\': out += "\\\\"; break;
            case '\n': out += "\\n"; break;
            case '\r': out += "\\r"; break;
            case '\t': out += "\\t"; break;
            case '\b': out += "\\b"; break;
            case '\f': out += "\\f"; break;
            default:
                if (c < 0x20 || c == '<' || c == '>' || c == '&' || c == 0x7f) {
                    out += "\\u00";
                    out.push_back(hex[c >> 4]);
                    out.push_back(hex[c & 15]);
                } else {
                    out.push_back(static_cast<char>(c));
                }
            }
            ++i;
            continue;
        }
        // UTF-8: copy a well-formed sequence, replace anything else by U+FFFD.
        std::size_t len = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC2 ? 2 : 0;
        if (c > 0xF4) len = 0;
        bool ok = len != 0 && i + len <= s.size();
        for (std::size_t k = 1; ok && k < len; ++k)
            ok = (static_cast<unsigned char>(s[i + k]) & 0xC0u) == 0x80u;
        if (ok && len == 3) {
            const auto c1 = static_cast<unsigned char>(s[i + 1]);
            if ((c == 0xE0 && c1 < 0xA0) || (c == 0xED && c1 >= 0xA0)) ok = false;
            if (ok && c == 0xE2 && c1 == 0x80) {
                const auto c2 = static_cast<unsigned char>(s[i + 2]);
                if (c2 == 0xA8 || c2 == 0xA9) {  // line/paragraph separators
                    out += c2 == 0xA8 ? "\\u2028" : "\\u2029";
                    i += 3;
                    continue;
                }
            }
        }
        if (ok && len == 4) {
            const auto c1 = static_cast<unsigned char>(s[i + 1]);
            if ((c == 0xF0 && c1 < 0x90) || (c == 0xF4 && c1 >= 0x90)) ok = false;
        }
        if (ok) {
            out.append(s.data() + i, len);
            i += len;
        } else {
            out += "\\ufffd";
            ++i;
        }
    }
    out.push_back('"');
}

namespace analytics_detail {

struct json_object_writer {
    std::string& out;
    bool first = true;

    explicit json_object_writer(std::string& o) : out(o) { out.push_back('{'); }
    void key(std::string_view k) {
        if (!first) out.push_back(',');
        first = false;
        append_json_string(out, k);
        out.push_back(':');
    }
    void field(std::string_view k, std::string_view v) {
        key(k);
        append_json_string(out, v);
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
        if (t) append_json_string(out, format_rfc3339(*t));
        else out += "null";
    }
    void close() { out.push_back('}'); }
};

}  // namespace analytics_detail

inline void append_json(std::string& out, const traffic_summary& s) {
    analytics_detail::json_object_writer w(out);
    w.field("days", std::int64_t{s.days});
    w.field("total", s.total);
    w.field("allowed", s.allowed);
    w.field("blocked", s.blocked);
    w.field("block_rate", s.block_rate);
    w.field("degraded", s.degraded);
    w.close();
}

inline void append_json(std::string& out, const offender& o) {
    analytics_detail::json_object_writer w(out);
    w.field("key", o.key);
    w.field("blocked_count", o.blocked_count);
    w.close();
}

inline void append_json(std::string& out, const rule_hits& r) {
    analytics_detail::json_object_writer w(out);
    w.field("rule_name", r.rule_name);
    w.field("hits", r.hits);
    w.field("blocked", r.blocked);
    w.close();
}

inline void append_json(std::string& out, const path_count& p) {
    analytics_detail::json_object_writer w(out);
    w.field("path", p.path);
    w.field("blocked_count", p.blocked_count);
    w.close();
}

inline void append_json(std::string& out, const recent_event& e) {
    analytics_detail::json_object_writer w(out);
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
    analytics_detail::json_object_writer w(out);
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
