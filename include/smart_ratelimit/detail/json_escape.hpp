// smart_ratelimit/detail/json_escape.hpp
// The one JSON string escaper: every JSON text the library and its tools write
// (analytics results, health reports, alert payloads, event exports, CLI lines)
// goes through it, so an attacker-controlled key is safe in HTML and JavaScript
// too. Standard headers only.
#pragma once

#include <string>
#include <string_view>

#include <smart_ratelimit/detail/utf8.hpp>

namespace smart_ratelimit::detail {

/// Appends `s` as a JSON string literal, quotes included: `"` and `\` escaped;
/// `\n \r \t \b \f` in their short form; other control characters, DEL, `<`, `>`
/// and `&` as `\u00XX`; U+2028 and U+2029 as `\u2028` and `\u2029` (the text is
/// then safe inside an HTML `<script>` and in JavaScript source); each byte that is
/// not valid UTF-8 as `\ufffd`. The output is always valid UTF-8 and valid JSON.
/// Thread safety: pure function.
inline void append_json_string(std::string& out, std::string_view s) {
    static constexpr char hex[] = "0123456789abcdef";
    out.push_back('"');
    for (std::size_t i = 0; i < s.size();) {
        const auto c = static_cast<unsigned char>(s[i]);
        if (c < 0x80) {
            switch (c) {
                case '"':
                    out += "\\\"";
                    break;
                case '\\':
                    out += "\\\\";
                    break;
                case '\n':
                    out += "\\n";
                    break;
                case '\r':
                    out += "\\r";
                    break;
                case '\t':
                    out += "\\t";
                    break;
                case '\b':
                    out += "\\b";
                    break;
                case '\f':
                    out += "\\f";
                    break;
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
        const std::size_t n = utf8_sequence(s, i);
        if (n == 0) {
            out += "\\ufffd";
            ++i;
        } else if (n == 3 && c == 0xE2 && s[i + 1] == '\x80' &&
                   (s[i + 2] == '\xA8' || s[i + 2] == '\xA9')) {
            out += s[i + 2] == '\xA8' ? "\\u2028" : "\\u2029";  // line/paragraph separators
            i += 3;
        } else {
            out.append(s.data() + i, n);
            i += n;
        }
    }
    out.push_back('"');
}

/// `s` as a JSON string literal (see append_json_string).
inline std::string json_string(std::string_view s) {
    std::string out;
    out.reserve(s.size() + 2);
    append_json_string(out, s);
    return out;
}

}  // namespace smart_ratelimit::detail
