// smart_ratelimit/soci/detail/sanitize.hpp
// Makes text storable on every engine. An event before it is written: NUL bytes are
// removed, invalid UTF-8 is replaced by U+FFFD (one per bad byte), and every text
// field is truncated to its cap (event_caps) without splitting a UTF-8 sequence; an
// event whose outcome disagrees with its `allowed` flag is not storable at all (the
// writer counts it invalid). A state key: escaped one to one (append_storable_key).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include <smart_ratelimit/detail/utf8.hpp>
#include <smart_ratelimit/event.hpp>
#include <smart_ratelimit/soci/detail/sql_time.hpp>

namespace smart_ratelimit::soci::detail {

using smart_ratelimit::detail::utf8_sequence;

/// True when `s` is already storable as is: within `cap`, valid UTF-8, no NUL.
inline bool clean_text(std::string_view s, std::size_t cap) noexcept {
    if (s.size() > cap) return false;
    for (std::size_t i = 0; i < s.size();) {
        const unsigned char c = static_cast<unsigned char>(s[i]);
        if (c == 0) return false;
        if (c < 0x80u) {
            ++i;
            continue;
        }
        const std::size_t n = utf8_sequence(s, i);
        if (n == 0) return false;
        i += n;
    }
    return true;
}

/// The storable form of `s`: NULs removed, invalid bytes replaced by U+FFFD,
/// truncated to `cap` bytes on a character boundary.
inline std::string sanitize_text(std::string_view s, std::size_t cap) {
    std::string out;
    out.reserve(s.size() < cap ? s.size() : cap);
    for (std::size_t i = 0; i < s.size();) {
        const unsigned char c = static_cast<unsigned char>(s[i]);
        if (c == 0) {
            ++i;
            continue;
        }
        const std::size_t n = utf8_sequence(s, i);
        if (n == 0) {
            out += "\xEF\xBF\xBD";
            ++i;
        } else {
            out.append(s.substr(i, n));
            i += n;
        }
        if (out.size() > cap + 4) break;  // enough to truncate from
    }
    return smart_ratelimit::detail::capped(out, cap);
}

/// Appends `key` to `out` as bytes every engine accepts in a TEXT column, one to one:
/// valid UTF-8 other than '%' and NUL as it is, each other byte (a NUL, '%', a byte
/// outside a valid UTF-8 sequence) as `%XX`. Distinct keys stay distinct (a key the
/// client controls, `\xff` or `%FF`, never takes over another's quota), and what is
/// stored reads as the key did.
inline void append_storable_key(std::string& out, std::string_view key) {
    static constexpr char hex[] = "0123456789ABCDEF";
    for (std::size_t i = 0; i < key.size();) {
        const unsigned char c = static_cast<unsigned char>(key[i]);
        const std::size_t n = c != 0 && c != '%' ? utf8_sequence(key, i) : 0;
        if (n > 0) {
            out.append(key.substr(i, n));
            i += n;
        } else {
            out += '%';
            out += hex[c >> 4];
            out += hex[c & 15];
            ++i;
        }
    }
}

/// True when `e.allowed` is what its outcome says (allowed == allowed_column(outcome)):
/// the event log keeps both, and every blocked count reads `allowed`.
constexpr bool consistent_outcome(const event& e) noexcept {
    return e.allowed == allowed_column(e.outcome);
}

/// True when every text field of `e` is already storable.
inline bool clean_event(const event& e) noexcept {
    return clean_text(e.key, event_caps::key) && clean_text(e.rule_name, event_caps::rule_name) &&
           clean_text(e.path, event_caps::path) && clean_text(e.method, event_caps::method) &&
           (!e.ip_address || clean_text(*e.ip_address, event_caps::ip_address)) &&
           (!e.user_id || clean_text(*e.user_id, event_caps::user_id));
}

/// A sanitized copy of `e` (see the file comment).
inline event sanitized_event(const event& e) {
    event out;
    out.timestamp = e.timestamp;
    out.key = sanitize_text(e.key, event_caps::key);
    out.rule_name = sanitize_text(e.rule_name, event_caps::rule_name);
    out.path = sanitize_text(e.path, event_caps::path);
    out.method = sanitize_text(e.method, event_caps::method);
    out.allowed = e.allowed;
    out.outcome = e.outcome;
    out.count = e.count;
    out.limit = e.limit;
    if (e.ip_address) out.ip_address = sanitize_text(*e.ip_address, event_caps::ip_address);
    if (e.user_id) out.user_id = sanitize_text(*e.user_id, event_caps::user_id);
    return out;
}

}  // namespace smart_ratelimit::soci::detail
