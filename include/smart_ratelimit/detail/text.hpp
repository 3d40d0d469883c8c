// smart_ratelimit/detail/text.hpp
// Small text helpers shared by the settings, the HTTP header parsers and the error
// and alert messages: trimming optional whitespace, ASCII case folding, hex digits
// and percent-decoding, and quoting untrusted text as one printable line of valid
// UTF-8. Standard headers only.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include <smart_ratelimit/detail/utf8.hpp>

namespace smart_ratelimit::detail {

/// `s` without leading and trailing spaces and horizontal tabs (HTTP's OWS, and
/// what a settings value may be padded with); other whitespace is kept.
constexpr std::string_view trim(std::string_view s) noexcept {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
}

/// The value of hex digit `c`, or -1.
constexpr int hex_value(char c) noexcept {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/// Decodes each `%XX` of `s` to its byte, once; a malformed escape is kept as it is.
/// With `plus_is_space` (form and query components), '+' is a space.
inline std::string percent_decode(std::string_view s, bool plus_is_space) {
    std::string out;
    out.reserve(s.size());
    for (std::size_t i = 0; i < s.size(); ++i) {
        const char c = s[i];
        const int hi = c == '%' && i + 2 < s.size() ? hex_value(s[i + 1]) : -1;
        const int lo = hi >= 0 ? hex_value(s[i + 2]) : -1;
        if (lo >= 0) {
            out += static_cast<char>(hi * 16 + lo);
            i += 2;
        } else {
            out += plus_is_space && c == '+' ? ' ' : c;
        }
    }
    return out;
}

/// `c` in lower case when it is an ASCII letter, else unchanged (no locale).
constexpr char ascii_lower(char c) noexcept {
    return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

/// True when `a` and `b` are equal ignoring ASCII case (HTTP tokens, media types,
/// auth schemes).
constexpr bool iequals(std::string_view a, std::string_view b) noexcept {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i)
        if (ascii_lower(a[i]) != ascii_lower(b[i])) return false;
    return true;
}

/// Appends `s` as one printable line of valid UTF-8: CR, LF and TAB become `\r`,
/// `\n`, `\t`; other control characters and DEL become `\xNN`; each byte that is
/// not valid UTF-8 becomes U+FFFD. For error messages and e-mail lines that quote
/// user input. Thread safety: pure function.
inline void append_printable(std::string& out, std::string_view s) {
    static constexpr char hex[] = "0123456789abcdef";
    for (std::size_t i = 0; i < s.size();) {
        const auto c = static_cast<unsigned char>(s[i]);
        if (c < 0x20 || c == 0x7F) {
            if (c == '\r')
                out += "\\r";
            else if (c == '\n')
                out += "\\n";
            else if (c == '\t')
                out += "\\t";
            else {
                out += "\\x";
                out += hex[c >> 4];
                out += hex[c & 0xF];
            }
            ++i;
            continue;
        }
        const std::size_t n = utf8_sequence(s, i);
        if (n == 0) {
            out += replacement_character;
            ++i;
        } else {
            out.append(s.data() + i, n);
            i += n;
        }
    }
}

/// `s` as one printable line (see append_printable).
inline std::string printable_line(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    append_printable(out, s);
    return out;
}

}  // namespace smart_ratelimit::detail
