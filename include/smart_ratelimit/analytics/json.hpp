// smart_ratelimit/analytics/json.hpp
// Boost.JSON for the analytics results: `boost::json::value_from(result)`
// with the original library's shapes and key orders, and serialize_json(), which prints
// doubles as plain decimals (`0.6`, not Boost 1.81's `6E-1`) and escapes like
// analytics/json_text.hpp. Needs Boost.JSON (the beast target); not in the core.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>
#include <boost/json/value_from.hpp>

#include <smart_ratelimit/analytics/format.hpp>
#include <smart_ratelimit/analytics/json_text.hpp>
#include <smart_ratelimit/analytics/results.hpp>

namespace smart_ratelimit {

// boost::json::value_from support: `boost::json::value_from(summary)` etc.
// Key order = member order. Timestamps are strings (format_rfc3339, 3 digits).

inline void tag_invoke(boost::json::value_from_tag, boost::json::value& jv,
                       const traffic_summary& s) {
    jv = {{"days", s.days},       {"total", s.total},           {"allowed", s.allowed},
          {"blocked", s.blocked}, {"block_rate", s.block_rate}, {"degraded", s.degraded}};
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

inline void tag_invoke(boost::json::value_from_tag, boost::json::value& jv, const recent_event& e) {
    jv = {{"timestamp", format_rfc3339(e.timestamp)},
          {"path", e.path},
          {"method", e.method},
          {"allowed", e.allowed},
          {"count", e.count},
          {"limit", e.limit},
          {"rule_name", e.rule_name},
          {"outcome", to_string(e.outcome)}};
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
    o["degraded"] = d.degraded;
    o["first_seen"] = d.first_seen ? boost::json::value(format_rfc3339(*d.first_seen))
                                   : boost::json::value(nullptr);
    o["last_seen"] = d.last_seen ? boost::json::value(format_rfc3339(*d.last_seen))
                                 : boost::json::value(nullptr);
    o["by_path"] = boost::json::value_from(d.by_path);
    o["recent_events"] = boost::json::value_from(d.recent_events);
    jv = std::move(o);
}

namespace detail::analytics {

inline void append_value(std::string& out, const boost::json::value& v) {
    switch (v.kind()) {
        case boost::json::kind::null:
            out += "null";
            break;
        case boost::json::kind::bool_:
            out += v.get_bool() ? "true" : "false";
            break;
        case boost::json::kind::int64:
            out += std::to_string(v.get_int64());
            break;
        case boost::json::kind::uint64:
            out += std::to_string(v.get_uint64());
            break;
        case boost::json::kind::double_:
            out += format_plain_decimal(v.get_double());
            break;
        case boost::json::kind::string:
            detail::append_json_string(
                out, std::string_view(v.get_string().data(), v.get_string().size()));
            break;
        case boost::json::kind::array: {
            out.push_back('[');
            bool first = true;
            for (const auto& e : v.get_array()) {
                if (!first) out.push_back(',');
                first = false;
                append_value(out, e);
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
                detail::append_json_string(out, std::string_view(kv.key().data(), kv.key().size()));
                out.push_back(':');
                append_value(out, kv.value());
            }
            out.push_back('}');
            break;
        }
    }
}

}  // namespace detail::analytics

/// Serializes any Boost.JSON value compactly, like boost::json::serialize except:
/// doubles in plain decimal notation (shortest round trip: `0.6`, `0.0`);
/// `<`, `>`, `&`, DEL, U+2028 and U+2029 escaped as `\uXXXX` (safe inside HTML
/// `<script>` and JavaScript); invalid UTF-8 bytes replaced by `\ufffd`.
/// Thread safety: pure function.
inline std::string serialize_json(const boost::json::value& v) {
    std::string out;
    detail::analytics::append_value(out, v);
    return out;
}

/// An analytics result (or a vector of them) as a Boost.JSON value.
inline boost::json::value to_json(const traffic_summary& r) { return boost::json::value_from(r); }
inline boost::json::value to_json(const offender_detail& r) { return boost::json::value_from(r); }
inline boost::json::value to_json(const std::vector<offender>& r) {
    return boost::json::value_from(r);
}
inline boost::json::value to_json(const std::vector<rule_hits>& r) {
    return boost::json::value_from(r);
}

// to_json_string(result), the same text without Boost, is in analytics/json_text.hpp.

}  // namespace smart_ratelimit
