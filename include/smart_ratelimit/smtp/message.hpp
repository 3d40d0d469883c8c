// smart_ratelimit/smtp/message.hpp
// Builds the RFC 5322 text of an alert e-mail: Date, From, To, Subject,
// Message-ID and MIME headers (UTF-8 text/plain, 8bit), then the body with CRLF
// line ends. Header values cannot inject headers: CR, LF and other control
// characters become spaces. Dot-stuffing is the transport's job (libcurl does it).
#pragma once

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>

#include <smart_ratelimit/alerts/channels.hpp>
#include <smart_ratelimit/event.hpp>

namespace smart_ratelimit::smtp {

/// `value` safe for one header line: control characters (CR and LF included) become spaces.
inline std::string header_value(std::string_view value) {
    std::string out(value);
    for (char& c : out) {
        const auto u = static_cast<unsigned char>(c);
        if (u < 0x20 || u == 0x7F) c = ' ';
    }
    return out;
}

/// RFC 5322 date-time in UTC, e.g. `Sun, 29 Nov 2026 01:22:22 +0000`.
inline std::string rfc5322_date(std::chrono::sys_seconds t) {
    using namespace std::chrono;
    static constexpr const char* wdays[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static constexpr const char* months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                             "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    const auto day = floor<days>(t);
    const year_month_day ymd{day};
    const weekday wd{day};
    const hh_mm_ss hms{t - day};
    char buf[64];
    std::snprintf(buf, sizeof buf, "%s, %02u %s %04d %02d:%02d:%02d +0000", wdays[wd.c_encoding()],
                  static_cast<unsigned>(ymd.day()), months[static_cast<unsigned>(ymd.month()) - 1],
                  static_cast<int>(ymd.year()), static_cast<int>(hms.hours().count()),
                  static_cast<int>(hms.minutes().count()), static_cast<int>(hms.seconds().count()));
    return buf;
}

/// `text` with every line ending (LF, CRLF or a lone CR) turned into CRLF.
inline std::string crlf_lines(std::string_view text) {
    std::string out;
    out.reserve(text.size() + text.size() / 16);
    for (std::size_t i = 0; i < text.size(); ++i) {
        const char c = text[i];
        if (c == '\r') {
            out += "\r\n";
            if (i + 1 < text.size() && text[i + 1] == '\n') ++i;
        } else if (c == '\n') {
            out += "\r\n";
        } else {
            out += c;
        }
    }
    return out;
}

/// The domain part of an address, for the Message-ID ("localhost" when absent).
inline std::string_view address_domain(std::string_view address) {
    const auto at = address.rfind('@');
    if (at == std::string_view::npos || at + 1 == address.size()) return "localhost";
    return address.substr(at + 1);
}

/// The complete message: headers, a blank line, the body (CRLF line ends,
/// ending in CRLF). `unique` makes the Message-ID unique (e.g. a counter or random).
inline std::string build_message(const mail& m, std::chrono::sys_seconds date,
                                 std::uint64_t unique) {
    std::string to;
    for (std::size_t i = 0; i < m.to.size(); ++i) {
        if (i) to += ",\r\n ";  // folded: one address per line
        to += header_value(m.to[i]);
    }
    const std::string from = header_value(m.from);
    std::string out;
    out += "Date: " + rfc5322_date(date) + "\r\n";
    out += "From: " + from + "\r\n";
    out += "To: " + to + "\r\n";
    out += "Subject: " + header_value(m.subject) + "\r\n";
    out += "Message-ID: <" + std::to_string(date.time_since_epoch().count()) + "." +
           std::to_string(unique) + ".smart-ratelimit@" + header_value(address_domain(from)) +
           ">\r\n";
    out += "MIME-Version: 1.0\r\n";
    out += "Content-Type: text/plain; charset=utf-8\r\n";
    out += "Content-Transfer-Encoding: 8bit\r\n";
    out += "\r\n";
    out += crlf_lines(m.body);
    if (out.size() < 2 || out.compare(out.size() - 2, 2, "\r\n") != 0) out += "\r\n";
    return out;
}

}  // namespace smart_ratelimit::smtp
