// smart_ratelimit/analytics/json.hpp
// Boost.JSON for the analytics results (SPEC 7): the shapes and key orders of the
// reference, timestamps RFC 3339 UTC with milliseconds and `Z`, and a serializer
// that prints doubles as plain decimals (`0.6`, not Boost's `6E-1`) and escapes
// `<`, `>`, `&` so the output is safe inside HTML. Needs Boost.JSON (beast target).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <boost/json.hpp>

#include <smart_ratelimit/analytics/detail/format.hpp>
#include <smart_ratelimit/analytics/results.hpp>

namespace smart_ratelimit {

// boost::json::value_from support: `boost::json::value_from(summary)` etc.
// Key order = member order. Timestamps are strings (format_rfc3339, 3 digits).

inline void tag_invoke(boost::json::value_from_tag, boost::json::value& jv,
                       const traffic_summary& s) {
    jv = {{"days", s.days},
          {"total", s.total},
          {"allowed", s.allowed},
          {"blocked", s.blocked},
          {"block_rate", s.block_rate}};
}

inline void tag_invoke(boost::json::value_from_tag, boost::json::value& jv, const offender& o) {
    jv = {{"key", o.key}, {"blocked_count", o.blocked_count}};
}

inline void tag_invoke(boost::json::value_from_tag, boost::json::value& jv, const rule_hits& r) {
    jv = {{"rule_name", r.rule_name}, {"hits", r.hits}, {"blocked", r.blocked}};
}

inline void tag_invoke(boost::json::value_from_tag, boost::json::value& jv, const path_count& p) {
    jv = {{"path", p.path}, {"blocked_count", p.blocked_count}};
}

inline void tag_invoke(boost::json::value_from_tag, boost::json::value& jv,
                       const recent_event& e) {
    jv = {{"timestamp", format_rfc3339(e.timestamp)},
          {"path", e.path},
          {"method", e.method},
          {"allowed", e.allowed},
          {"count", e.count},
          {"limit", e.limit},
          {"rule_name", e.rule_name}};
}

inline void tag_invoke(boost::json::value_from_tag, boost::json::value& jv,
                       const offender_detail& d) {
    boost::json::object o;
    o["key"] = d.key;
    o["days"] = d.days;
    o["total"] = d.total;
    o["allowed"] = d.allowed;
    o["blocked"] = d.blocked;
    o["block_rate"] = d.block_rate;
    o["first_seen"] = d.first_seen ? boost::json::value(format_rfc3339(*d.first_seen))
                                   : boost::json::value(nullptr);
    o["last_seen"] = d.last_seen ? boost::json::value(format_rfc3339(*d.last_seen))
                                 : boost::json::value(nullptr);
    o["by_path"] = boost::json::value_from(d.by_path);
    o["recent_events"] = boost::json::value_from(d.recent_events);
    jv = std::move(o);
}

namespace analytics_detail {

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
            // U+2028 / U+2029 break JavaScript string literals: escape them.
            if (ok && c == 0xE2 && c1 == 0x80) {
                const auto c2 = static_cast<unsigned char>(s[i + 2]);
                if (c2 == 0xA8 || c2 == 0xA9) {
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

inline void append_json(std::string& out, const boost::json::value& v) {
    switch (v.kind()) {
    case boost::json::kind::null: out += "null"; break;
    case boost::json::kind::bool_: out += v.get_bool() ? "true" : "false"; break;
    case boost::json::kind::int64: out += std::to_string(v.get_int64()); break;
    case boost::json::kind::uint64: out += std::to_string(v.get_uint64()); break;
    case boost::json::kind::double_: out += format_plain_decimal(v.get_double()); break;
    case boost::json::kind::string:
        append_json_string(out, std::string_view(v.get_string().data(), v.get_string().size()));
        break;
    case boost::json::kind::array: {
        out.push_back('[');
        bool first = true;
        for (const auto& e : v.get_array()) {
            if (!first) out.push_back(',');
            first = false;
            append_json(out, e);
        }
        out.push_back(']');
        break;
    }
    case boost::json::kind::object: {
        out.push_back('{');
        bool first = true;
        for (const auto& kv : v.get_object()) {
            if (!first) out.push_back(',');
            first = false;
            append_json_string(out, std::string_view(kv.key().data(), kv.key().size()));
            out.push_back(':');
            append_json(out, kv.value());
        }
        out.push_back('}');
        break;
    }
    }
}

}  // namespace analytics_detail

/// Serializes any Boost.JSON value compactly, like boost::json::serialize except:
/// doubles in plain decimal notation (shortest round trip: `0.6`, `0.0`);
/// `<`, `>`, `&`, DEL, U+2028 and U+2029 escaped as `\uXXXX` (safe inside HTML
/// `<script>` and JavaScript); invalid UTF-8 bytes replaced by `\ufffd`.
/// Thread safety: pure function.
inline std::string serialize_json(const boost::json::value& v) {
    std::string out;
    analytics_detail::append_json(out, v);
    return out;
}

/// Any analytics result (or vector of results) as a Boost.JSON value.
template <class T>
boost::json::value to_json(const T& result) {
    return boost::json::value_from(result);
}

/// Any analytics result (or vector of results) as JSON text (serialize_json).
template <class T>
std::string to_json_string(const T& result) {
    return serialize_json(boost::json::value_from(result));
}

}  // namespace smart_ratelimit
