// smart_ratelimit/analytics/csv.hpp
// The offenders CSV: header `key,blocked_count`, CRLF line ends,
// RFC 4180 quoting, and cells that a spreadsheet would read as a formula
// (starting with = + - @ TAB CR) prefixed with a single quote.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include <smart_ratelimit/analytics/functions.hpp>
#include <smart_ratelimit/analytics/results.hpp>

namespace smart_ratelimit {

/// Appends one CSV cell to `out`: formula-defused (leading `'` before = + - @ TAB CR),
/// then quoted when it holds a comma, a quote, CR or LF (quotes doubled).
inline void append_csv_cell(std::string& out, std::string_view cell) {
    const bool formula =
        !cell.empty() && (cell.front() == '=' || cell.front() == '+' || cell.front() == '-' ||
                          cell.front() == '@' || cell.front() == '\t' || cell.front() == '\r');
    const bool quote = cell.find_first_of(",\"\r\n") != std::string_view::npos;
    if (quote) out.push_back('"');
    if (formula) out.push_back('\'');
    for (const char c : cell) {
        if (c == '"') out.push_back('"');
        out.push_back(c);
    }
    if (quote) out.push_back('"');
}

/// Renders offenders as the CSV document (header included, every line ends in CRLF).
inline std::string format_offenders_csv(const std::vector<offender>& offenders) {
    std::string out = "key,blocked_count\r\n";
    out.reserve(out.size() + offenders.size() * 32);
    for (const auto& o : offenders) {
        append_csv_cell(out, o.key);
        out.push_back(',');
        out += std::to_string(o.blocked_count);
        out += "\r\n";
    }
    return out;
}

/// The top offenders of the window (as get_top_offenders) rendered as CSV.
template <event_range R>
std::string offenders_csv(R&& events, int days = 7, int limit = 1000,
                          event_time now = event_clock_now()) {
    return format_offenders_csv(get_top_offenders(static_cast<R&&>(events), days, limit, now));
}

}  // namespace smart_ratelimit
