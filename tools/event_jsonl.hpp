// tools/event_jsonl.hpp
// Events as JSON lines: one object per line with the ten fields (timestamp, key,
// rule_name, path, method, allowed, count, limit, ip_address, user_id) and then
// `outcome` ("allowed", "blocked", "shadow_blocked" or "degraded"),
// `timestamp` in RFC 3339 UTC with microseconds and `Z`, `ip_address` and
// `user_id` null when unknown, a `user_id` that is a canonical integer written as a
// JSON number. Used by `export` and `import`; the reader also takes what the
// reference library's exports contain (offsets, numeric user ids).
#pragma once

#include <charconv>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <smart_ratelimit/analytics/format.hpp>
#include <smart_ratelimit/detail/json_escape.hpp>
#include <smart_ratelimit/detail/json_reader.hpp>
#include <smart_ratelimit/error.hpp>
#include <smart_ratelimit/event.hpp>
#include <smart_ratelimit/soci/detail/sanitize.hpp>
#include <smart_ratelimit/soci/detail/sql_time.hpp>

namespace srl_tool {

namespace srl = smart_ratelimit;

/// A malformed line or field; the message says which field and why.
class jsonl_error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

/// Appends `t` as `YYYY-MM-DDTHH:MM:SS.ffffffZ` (clamped to the years 1..9999 the
/// event log stores).
inline void append_rfc3339(std::string& out, srl::event_time t) {
    out += srl::format_rfc3339(srl::soci::detail::clamp_time(t), 6);
}

/// The library's RFC 3339 parser (analytics/format.hpp): any number of fraction
/// digits, truncated to microseconds; a leap second read as :59.
using srl::parse_rfc3339;

using srl::detail::append_json_string;

/// True when `s` is an integer exactly as std::to_string writes an int64: optional
/// '-', no leading zeros, no '+', not "-0", in range. Such a user_id is exported as
/// a JSON number, so an id imported as 42 comes back as 42.
inline bool canonical_int64(std::string_view s) {
    std::int64_t v = 0;
    const auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    return !s.empty() && ec == std::errc{} && p == s.data() + s.size() && std::to_string(v) == s;
}

/// Appends one JSON line (with its '\n') for `e`, fields in the order of the file
/// comment; user_id as a number when canonical_int64, else a string.
inline void append_event_json(std::string& out, const srl::event& e) {
    out += "{\"timestamp\":\"";
    append_rfc3339(out, e.timestamp);
    out += "\",\"key\":";
    append_json_string(out, e.key);
    out += ",\"rule_name\":";
    append_json_string(out, e.rule_name);
    out += ",\"path\":";
    append_json_string(out, e.path);
    out += ",\"method\":";
    append_json_string(out, e.method);
    out += e.allowed ? ",\"allowed\":true" : ",\"allowed\":false";
    out += ",\"count\":" + std::to_string(e.count);
    out += ",\"limit\":" + std::to_string(e.limit);
    out += ",\"ip_address\":";
    if (e.ip_address)
        append_json_string(out, *e.ip_address);
    else
        out += "null";
    out += ",\"user_id\":";
    if (!e.user_id)
        out += "null";
    else if (canonical_int64(*e.user_id))
        out += *e.user_id;
    else
        append_json_string(out, *e.user_id);
    out += ",\"outcome\":\"";
    out += srl::to_string(e.outcome);
    out += "\"}\n";
}

namespace detail {
inline std::int64_t json_int(const srl::detail::json_value& v, std::string_view field) {
    const auto* n = v.as_number();
    std::int64_t out = 0;
    if (n != nullptr) {
        const auto* first = n->text.data();
        const auto* last = first + n->text.size();
        const auto [p, ec] = std::from_chars(first, last, out);
        if (ec == std::errc{} && p == last) return out;
    }
    throw jsonl_error("\"" + std::string(field) + "\" must be an integer");
}
inline std::string json_text(const srl::detail::json_value& v, std::string_view field) {
    if (const auto* s = v.as_string()) return *s;
    throw jsonl_error("\"" + std::string(field) + "\" must be a string");
}
}  // namespace detail

/// Parses one JSON line into an event. Required: timestamp, key, allowed, count,
/// limit; path and method default to "", rule_name to the one the key encodes,
/// ip_address and user_id to null (user_id may also be a number, as Django primary
/// keys are). `outcome` is optional: absent, it is outcome_of_allowed(allowed);
/// present, it must name an outcome that agrees with `allowed` (allowed_column), else
/// the line is an error. An "id" member is ignored; any other unknown member is an error.
/// Text fields are capped as make_event caps them. Throws jsonl_error.
inline srl::event parse_event_json(std::string_view line) {
    srl::detail::json_value doc;
    try {
        doc = srl::detail::json_reader::parse(line, "JSON");
    } catch (const srl::config_error& e) {
        throw jsonl_error(e.what());
    }
    const auto* obj = doc.as_object();
    if (obj == nullptr) throw jsonl_error("not a JSON object");
    std::optional<srl::event_time> ts;
    std::optional<std::string> key, rule_name, path, method, ip, user;
    std::optional<bool> allowed;
    std::optional<std::int64_t> count, limit;
    std::optional<srl::outcome_kind> outcome;
    for (const auto& [name, v] : *obj) {
        if (name == "timestamp") {
            const std::string text = detail::json_text(v, name);
            ts = parse_rfc3339(text);
            if (!ts)
                throw jsonl_error("\"timestamp\" is not an RFC 3339 date-time: \"" + text + "\"");
        } else if (name == "key") {
            key = detail::json_text(v, name);
        } else if (name == "rule_name") {
            rule_name = detail::json_text(v, name);
        } else if (name == "path") {
            path = detail::json_text(v, name);
        } else if (name == "method") {
            method = detail::json_text(v, name);
        } else if (name == "allowed") {
            const bool* b = v.as_bool();
            if (b == nullptr) throw jsonl_error("\"allowed\" must be true or false");
            allowed = *b;
        } else if (name == "count") {
            count = detail::json_int(v, name);
        } else if (name == "limit") {
            limit = detail::json_int(v, name);
        } else if (name == "ip_address") {
            if (!v.is_null()) ip = detail::json_text(v, name);
        } else if (name == "user_id") {
            if (v.as_number() != nullptr)
                user = std::to_string(detail::json_int(v, name));
            else if (!v.is_null())
                user = detail::json_text(v, name);
        } else if (name == "outcome") {
            const std::string text = detail::json_text(v, name);
            outcome = srl::parse_outcome_kind(text);
            if (!outcome)
                throw jsonl_error(
                    "\"outcome\" must be \"allowed\", \"blocked\", \"shadow_blocked\" or "
                    "\"degraded\", got \"" +
                    text + "\"");
        } else if (name != "id") {
            throw jsonl_error("unknown field \"" + name + "\"");
        }
    }
    if (!ts) throw jsonl_error("missing \"timestamp\"");
    if (!key) throw jsonl_error("missing \"key\"");
    if (!allowed) throw jsonl_error("missing \"allowed\"");
    if (!count) throw jsonl_error("missing \"count\"");
    if (!limit) throw jsonl_error("missing \"limit\"");
    if (outcome && srl::allowed_column(*outcome) != *allowed)
        throw jsonl_error("\"outcome\" \"" + std::string(srl::to_string(*outcome)) +
                          "\" disagrees with \"allowed\": " + (*allowed ? "true" : "false"));
    srl::event e = srl::make_event(*ts, *key, path.value_or(""), method.value_or(""),
                                   outcome.value_or(srl::outcome_of_allowed(*allowed)), *count,
                                   *limit, ip ? std::optional<std::string_view>(*ip) : std::nullopt,
                                   user ? std::optional<std::string_view>(*user) : std::nullopt);
    if (rule_name) e.rule_name = srl::detail::capped(*rule_name, srl::event_caps::rule_name);
    return e;
}

}  // namespace srl_tool
