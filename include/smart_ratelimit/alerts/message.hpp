// smart_ratelimit/alerts/message.hpp
// The texts an alert sends: the e-mail subject and body and the webhook's
// JSON payload. Keys are attacker-controlled, so every text here is safe by
// construction: one offender is one line (control characters escaped, invalid
// UTF-8 replaced by U+FFFD) and JSON strings are fully escaped. Standard headers only.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include <smart_ratelimit/analytics/results.hpp>

namespace smart_ratelimit {

namespace detail {

/// Length of the valid UTF-8 sequence at the start of `s` (1-4), or 0 when invalid.
inline std::size_t utf8_sequence_length(std::string_view s) noexcept {
    const auto b0 = static_cast<unsigned char>(s[0]);
    std::size_t n = 0;
    std::uint32_t min = 0;
    if (b0 < 0x80) return 1;
    if ((b0 & 0xE0) == 0xC0) { n = 2; min = 0x80; }
    else if ((b0 & 0xF0) == 0xE0) { n = 3; min = 0x800; }
    else if ((b0 & 0xF8) == 0xF0) { n = 4; min = 0x10000; }
    else return 0;
    if (s.size() < n) return 0;
    std::uint32_t cp = b0 & (0x7F >> n);
    for (std::size_t i = 1; i < n; ++i) {
        const auto b = static_cast<unsigned char>(s[i]);
        if ((b & 0xC0) != 0x80) return 0;
        cp = (cp << 6) | (b & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
    return n;
}

inline constexpr std::string_view replacement_character = "\xEF\xBF\xBD";

/// `s` as one printable line of valid UTF-8: CR, LF, TAB and other control
/// characters become `\r`, `\n`, `\t`, `\xNN`; invalid UTF-8 bytes become U+FFFD.
inline std::string printable_line(std::string_view s) {
    static constexpr char hex[] = "0123456789abcdef";
    std::string out;
    out.reserve(s.size());
    while (!s.empty()) {
        const auto c = static_cast<unsigned char>(s[0]);
        if (c < 0x20 || c == 0x7F) {
            if (c == '\r') out += "\\r";
            else if (c == '\n') out += "\\n";
            else if (c == '\t') out += "\\t";
            else {
                out += "\\x";
                out += hex[c >> 4];
                out += hex[c & 0xF];
            }
            s.remove_prefix(1);
            continue;
        }
        const std::size_t n = utf8_sequence_length(s);
        if (n == 0) {
            out += replacement_character;
            s.remove_prefix(1);
        } else {
            out.append(s.substr(0, n));
            s.remove_prefix(n);
        }
    }
    return out;
}

/// Appends `s` as a JSON string literal (quotes included); invalid UTF-8 becomes U+FFFD.
inline void append_json_string(std::string& out, std::string_view s) {
    static constexpr char hex[] = "0123456789abcdef";
    out += '"';
    while (!s.empty()) {
        const auto c = static_cast<unsigned char>(s[0]);
        if (c == '"' || c == '\\') {
            out += '\\';
            out += static_cast<char>(c);
        } else if (c < 0x20 || c == 0x7F) {
            switch (c) {
            case '\n': out += "\\n"; break;
            case '\r': out += "\\r"; break;
            case '\t': out += "\\t"; break;
            case '\b': out += "\\b"; break;
            case '\f': out += "\\f"; break;
            default:
                out += "\\u00";
                out += hex[c >> 4];
                out += hex[c & 0xF];
            }
        } else if (c >= 0x80) {
            const std::size_t n = utf8_sequence_length(s);
            if (n == 0) {
                out += replacement_character;
                s.remove_prefix(1);
            } else {
                out.append(s.substr(0, n));
                s.remove_prefix(n);
            }
            continue;
        } else {
            out += static_cast<char>(c);
        }
        s.remove_prefix(1);
    }
    out += '"';
}

}  // namespace detail

/// `[smart-ratelimit] <N> offender(s) alert`
inline std::string alert_subject(std::size_t offender_count) {
    return "[smart-ratelimit] " + std::to_string(offender_count) + " offender(s) alert";
}

/// The e-mail body, lines ending in "\n" (the mailer sends CRLF):
/// `<N> rate-limit offender(s) exceeded <T> blocked requests in the last <D> day(s):`,
/// a blank line, then `<key>: <blocked_count> blocked` per offender.
inline std::string alert_body(std::span<const offender> offenders, std::int64_t threshold, int days) {
    std::string body = std::to_string(offenders.size()) + " rate-limit offender(s) exceeded " +
                       std::to_string(threshold) + " blocked requests in the last " +
                       std::to_string(days) + " day(s):\n\n";
    for (const auto& o : offenders)
        body += detail::printable_line(o.key) + ": " + std::to_string(o.blocked_count) + " blocked\n";
    return body;
}

/// The webhook body, byte for byte:
/// `{"threshold": T, "days": D, "offenders": [{"key": "...", "blocked_count": N}, ...]}`
inline std::string alert_webhook_payload(std::span<const offender> offenders, std::int64_t threshold,
                                         int days) {
    std::string out = "{\"threshold\": " + std::to_string(threshold) +
                      ", \"days\": " + std::to_string(days) + ", \"offenders\": [";
    bool first = true;
    for (const auto& o : offenders) {
        if (!first) out += ", ";
        first = false;
        out += "{\"key\": ";
        detail::append_json_string(out, o.key);
        out += ", \"blocked_count\": " + std::to_string(o.blocked_count) + "}";
    }
    out += "]}";
    return out;
}

}  // namespace smart_ratelimit
