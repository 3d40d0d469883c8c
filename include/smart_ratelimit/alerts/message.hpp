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
#include <smart_ratelimit/detail/json_escape.hpp>
#include <smart_ratelimit/detail/text.hpp>

namespace smart_ratelimit {

/// `[smart-ratelimit] <N> offender(s) alert`
inline std::string alert_subject(std::size_t offender_count) {
    return "[smart-ratelimit] " + std::to_string(offender_count) + " offender(s) alert";
}

/// The e-mail body, lines ending in "\n" (the mailer sends CRLF):
/// `<N> rate-limit offender(s) exceeded <T> blocked requests in the last <D> day(s):`,
/// a blank line, then `<key>: <blocked_count> blocked` per offender.
inline std::string alert_body(std::span<const offender> offenders, std::int64_t threshold,
                              int days) {
    std::string body = std::to_string(offenders.size()) + " rate-limit offender(s) exceeded " +
                       std::to_string(threshold) + " blocked requests in the last " +
                       std::to_string(days) + " day(s):\n\n";
    for (const auto& o : offenders)
        body +=
            detail::printable_line(o.key) + ": " + std::to_string(o.blocked_count) + " blocked\n";
    return body;
}

/// The webhook body, byte for byte:
/// `{"threshold": T, "days": D, "offenders": [{"key": "...", "blocked_count": N}, ...]}`
inline std::string alert_webhook_payload(std::span<const offender> offenders,
                                         std::int64_t threshold, int days) {
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
