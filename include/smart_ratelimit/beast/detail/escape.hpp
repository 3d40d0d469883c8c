// smart_ratelimit/beast/detail/escape.hpp
// Context-specific escaping for the dashboard: HTML text and attribute values, and
// URL query components (JSON bodies use detail/json_escape.hpp, which keeps `<`,
// `>` and `&` out of them). Every attacker-controlled string (keys, paths, rule
// names, user ids) goes through one of these before it reaches a response.
#pragma once

#include <string>
#include <string_view>

namespace smart_ratelimit::beast::detail {

/// Appends `s` escaped for HTML text and for double- or single-quoted attribute values
/// (`& < > " '`). Control characters other than TAB/LF/CR become U+FFFD so a stored
/// key can never smuggle markup-relevant bytes.
inline void append_html_escaped(std::string& out, std::string_view s) {
    for (const char c : s) {
        switch (c) {
            case '&':
                out += "&amp;";
                break;
            case '<':
                out += "&lt;";
                break;
            case '>':
                out += "&gt;";
                break;
            case '"':
                out += "&quot;";
                break;
            case '\'':
                out += "&#39;";
                break;
            case '`':
                out += "&#96;";
                break;
            default: {
                const auto u = static_cast<unsigned char>(c);
                if ((u < 0x20 && c != '\t' && c != '\n' && c != '\r') || u == 0x7f)
                    out += "\xEF\xBF\xBD";
                else
                    out += c;
            }
        }
    }
}

/// `s` escaped for HTML text or a quoted attribute value.
inline std::string html_escape(std::string_view s) {
    std::string out;
    out.reserve(s.size() + 16);
    append_html_escaped(out, s);
    return out;
}

/// Appends `s` percent-encoded as one URL query component: every byte except the
/// RFC 3986 unreserved set (`A-Z a-z 0-9 - . _ ~`) becomes `%XX`, so `&`, `=`, `+`,
/// `#` and quotes can never change the shape of the link.
inline void append_query_component(std::string& out, std::string_view s) {
    constexpr char hex[] = "0123456789ABCDEF";
    for (const char c : s) {
        const auto u = static_cast<unsigned char>(c);
        const bool unreserved = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                                (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
                                c == '~';
        if (unreserved) {
            out += c;
        } else {
            out += '%';
            out += hex[u >> 4];
            out += hex[u & 0x0F];
        }
    }
}

/// `s` percent-encoded as one URL query component.
inline std::string query_component(std::string_view s) {
    std::string out;
    out.reserve(s.size() * 3);
    append_query_component(out, s);
    return out;
}

}  // namespace smart_ratelimit::beast::detail
