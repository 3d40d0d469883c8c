// smart_ratelimit/keys/ip.hpp
// IP addresses as rate-limit keys, with the standard library only: strict IPv4 and
// IPv6 parsing, RFC 5952 canonical text (`::ffff:a.b.c.d` becomes `a.b.c.d`),
// prefix masking for IPv6 grouping, and `ip_key`, which renders `ip:<addr>` with an
// IPv6 address grouped by its network (/64 by default).
#pragma once

#include <smart_ratelimit/detail/text.hpp>
#include <smart_ratelimit/error.hpp>

#include <algorithm>
#include <array>
#include <compare>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace smart_ratelimit {

/// An IPv4 or IPv6 address as a small value type.
///
/// IPv4-mapped IPv6 addresses (`::ffff:0:0/96`) are stored as IPv4, so
/// `::ffff:192.0.2.1` and `192.0.2.1` compare equal and print the same.
/// Thread safety: a value type; distinct objects are independent.
class ip_address {
public:
    enum class family : std::uint8_t { v4, v6 };
    using bytes_type = std::array<std::uint8_t, 16>;

    /// The IPv4 address 0.0.0.0.
    constexpr ip_address() noexcept = default;

    /// An IPv4 address from its four octets in network order.
    static constexpr ip_address v4(std::array<std::uint8_t, 4> octets) noexcept {
        ip_address a;
        a.family_ = family::v4;
        for (std::size_t i = 0; i < 4; ++i) a.bytes_[i] = octets[i];
        return a;
    }

    /// An IPv6 address from its sixteen bytes; an IPv4-mapped one becomes IPv4.
    static constexpr ip_address v6(const bytes_type& bytes) noexcept {
        ip_address a;
        bool mapped = true;
        for (std::size_t i = 0; i < 10; ++i) mapped = mapped && bytes[i] == 0;
        mapped = mapped && bytes[10] == 0xff && bytes[11] == 0xff;
        if (mapped) return v4({bytes[12], bytes[13], bytes[14], bytes[15]});
        a.family_ = family::v6;
        a.bytes_ = bytes;
        return a;
    }

    /// Parses dotted-quad IPv4 (`192.0.2.1`: four decimal octets, no leading zeros,
    /// no shorthand) or RFC 4291 IPv6 text (`2001:db8::1`, `::ffff:192.0.2.1`),
    /// nothing else: no brackets, ports, zone ids or surrounding whitespace.
    /// Returns nullopt for anything that is not exactly an address.
    static constexpr std::optional<ip_address> parse(std::string_view text) noexcept;

    /// As parse(), but throws config_error quoting the text when it is not an address.
    static ip_address from_string(std::string_view text) {
        if (auto a = parse(text)) return *a;
        throw config_error("invalid IP address: \"" + std::string(text) + "\"");
    }

    constexpr family address_family() const noexcept { return family_; }
    constexpr bool is_v4() const noexcept { return family_ == family::v4; }
    constexpr bool is_v6() const noexcept { return family_ == family::v6; }
    /// Number of significant bits: 32 or 128.
    constexpr unsigned bit_width() const noexcept { return is_v4() ? 32u : 128u; }

    /// The address bytes in network order; only the first 4 are used for IPv4.
    constexpr const bytes_type& bytes() const noexcept { return bytes_; }

    /// The address with every bit after the first `prefix_len` cleared
    /// (`prefix_len` is clamped to bit_width()).
    constexpr ip_address masked(unsigned prefix_len) const noexcept {
        ip_address a = *this;
        const unsigned width = bit_width();
        if (prefix_len >= width) return a;
        const std::size_t nbytes = width / 8;
        for (std::size_t i = 0; i < nbytes; ++i) {
            const unsigned start = static_cast<unsigned>(i) * 8;
            if (start >= prefix_len) {
                a.bytes_[i] = 0;
            } else if (prefix_len - start < 8) {
                const unsigned keep = prefix_len - start;
                a.bytes_[i] &= static_cast<std::uint8_t>(0xFFu << (8 - keep));
            }
        }
        return a;
    }

    /// Canonical text: dotted quad for IPv4; RFC 5952 for IPv6 (lower case, no
    /// leading zeros, the longest run of two or more zero groups as `::`, the first
    /// such run on a tie).
    std::string to_string() const;

    /// The longest canonical text (an IPv6 address of eight four-digit groups).
    static constexpr std::size_t max_text_size = 39;
    /// Writes to_string()'s text to `out` (room for max_text_size chars) and returns
    /// its length. Allocates nothing: request keys are built from it per request.
    std::size_t write(char* out) const noexcept;

    friend constexpr bool operator==(const ip_address&, const ip_address&) noexcept = default;
    friend constexpr auto operator<=>(const ip_address&, const ip_address&) noexcept = default;

private:
    family family_ = family::v4;
    bytes_type bytes_{};
};

namespace detail {

/// Strict dotted quad into out[0..3]; false on anything else.
constexpr bool parse_ipv4(std::string_view s, std::uint8_t* out) noexcept {
    std::size_t part = 0;
    std::size_t i = 0;
    while (true) {
        if (part == 4) return false;
        std::size_t digits = 0;
        unsigned value = 0;
        const std::size_t start = i;
        while (i < s.size() && s[i] >= '0' && s[i] <= '9') {
            value = value * 10 + static_cast<unsigned>(s[i] - '0');
            ++digits;
            ++i;
            if (digits > 3) return false;
        }
        if (digits == 0 || value > 255) return false;
        if (digits > 1 && s[start] == '0') return false;  // no octal-looking octets
        out[part++] = static_cast<std::uint8_t>(value);
        if (i == s.size()) break;
        if (s[i] != '.') return false;
        ++i;
    }
    return part == 4;
}

/// RFC 4291 section 2.2 text into out[0..15]; false on anything else.
constexpr bool parse_ipv6(std::string_view s, std::uint8_t* out) noexcept {
    if (s.size() < 2 || s.size() > 45) return false;
    std::array<std::uint16_t, 8> groups{};
    std::size_t count = 0;  // groups written
    int gap = -1;           // index in groups where "::" sits
    std::size_t i = 0;
    if (s[0] == ':') {
        if (s[1] != ':') return false;
        gap = 0;
        i = 2;
        if (i == s.size()) {
            for (std::size_t k = 0; k < 16; ++k) out[k] = 0;
            return true;
        }
    }
    while (i < s.size()) {
        // An embedded IPv4 tail: only where two groups remain and it ends the text.
        const std::size_t rest_colon = s.find(':', i);
        const std::size_t rest_dot = s.find('.', i);
        if (rest_dot != std::string_view::npos &&
            (rest_colon == std::string_view::npos || rest_dot < rest_colon)) {
            if (rest_colon != std::string_view::npos) return false;
            if (count > 6) return false;
            std::uint8_t v4[4]{};
            if (!parse_ipv4(s.substr(i), v4)) return false;
            groups[count++] = static_cast<std::uint16_t>((v4[0] << 8) | v4[1]);
            groups[count++] = static_cast<std::uint16_t>((v4[2] << 8) | v4[3]);
            i = s.size();
            break;
        }
        std::size_t digits = 0;
        unsigned value = 0;
        while (i < s.size() && hex_value(s[i]) >= 0) {
            value = value * 16 + static_cast<unsigned>(hex_value(s[i]));
            ++digits;
            ++i;
            if (digits > 4) return false;
        }
        if (digits == 0) return false;
        if (count == 8) return false;
        groups[count++] = static_cast<std::uint16_t>(value);
        if (i == s.size()) break;
        if (s[i] != ':') return false;
        ++i;
        if (i < s.size() && s[i] == ':') {
            if (gap >= 0) return false;  // a second "::"
            gap = static_cast<int>(count);
            ++i;
            if (i == s.size()) break;
        } else if (i == s.size()) {
            return false;  // a trailing single ':'
        }
    }
    if (gap < 0) {
        if (count != 8) return false;
    } else {
        if (count > 7) return false;  // "::" must stand for at least one group
        const std::size_t tail = count - static_cast<std::size_t>(gap);
        const std::size_t zeros = 8 - count;
        for (std::size_t k = 0; k < tail; ++k) groups[7 - k] = groups[count - 1 - k];
        for (std::size_t k = 0; k < zeros; ++k) groups[static_cast<std::size_t>(gap) + k] = 0;
    }
    for (std::size_t k = 0; k < 8; ++k) {
        out[2 * k] = static_cast<std::uint8_t>(groups[k] >> 8);
        out[2 * k + 1] = static_cast<std::uint8_t>(groups[k] & 0xFF);
    }
    return true;
}

}  // namespace detail

constexpr std::optional<ip_address> ip_address::parse(std::string_view text) noexcept {
    if (text.empty()) return std::nullopt;
    if (text.find(':') == std::string_view::npos) {
        std::uint8_t o[4]{};
        if (!detail::parse_ipv4(text, o)) return std::nullopt;
        return v4({o[0], o[1], o[2], o[3]});
    }
    bytes_type b{};
    if (!detail::parse_ipv6(text, b.data())) return std::nullopt;
    return v6(b);
}

inline std::size_t ip_address::write(char* out) const noexcept {
    char* p = out;
    if (is_v4()) {
        for (std::size_t i = 0; i < 4; ++i) {
            if (i) *p++ = '.';
            const unsigned v = bytes_[i];
            if (v >= 100) *p++ = static_cast<char>('0' + v / 100);
            if (v >= 10) *p++ = static_cast<char>('0' + v / 10 % 10);
            *p++ = static_cast<char>('0' + v % 10);
        }
        return static_cast<std::size_t>(p - out);
    }
    std::array<unsigned, 8> g{};
    for (std::size_t k = 0; k < 8; ++k) g[k] = (unsigned{bytes_[2 * k]} << 8) | bytes_[2 * k + 1];
    // The longest run of zero groups (length >= 2), first one on a tie.
    std::size_t best_at = 8, best_len = 0;
    for (std::size_t k = 0; k < 8;) {
        if (g[k] != 0) {
            ++k;
            continue;
        }
        std::size_t j = k;
        while (j < 8 && g[j] == 0) ++j;
        if (j - k > best_len) {
            best_len = j - k;
            best_at = k;
        }
        k = j;
    }
    if (best_len < 2) best_at = 8;
    constexpr char hex[] = "0123456789abcdef";
    for (std::size_t k = 0; k < 8; ++k) {
        if (k == best_at) {
            *p++ = ':';
            *p++ = ':';
            k += best_len - 1;
            continue;
        }
        if (k != 0 && k != best_at + best_len) *p++ = ':';
        const unsigned v = g[k];
        bool started = false;
        for (int shift = 12; shift >= 0; shift -= 4) {
            const unsigned nib = (v >> shift) & 0xF;
            if (nib != 0 || started || shift == 0) {
                *p++ = hex[nib];
                started = true;
            }
        }
    }
    return static_cast<std::size_t>(p - out);
}

inline std::string ip_address::to_string() const {
    char text[max_text_size];
    return std::string(text, write(text));
}

/// Canonical text of an address given as text, or nullopt when it is not one.
inline std::optional<std::string> canonical_ip(std::string_view text) {
    if (auto a = ip_address::parse(text)) return a->to_string();
    return std::nullopt;
}

/// How addresses are grouped into keys: the number of leading bits kept.
/// IPv6 clients usually own a whole /64, so by default they share one key per /64.
struct ip_grouping {
    unsigned ipv4_prefix = 32;
    unsigned ipv6_prefix = 64;

    /// Throws config_error when a prefix is out of range (IPv4 1..32, IPv6 1..128).
    void validate() const {
        if (ipv4_prefix < 1 || ipv4_prefix > 32)
            throw config_error("invalid IPv4 grouping prefix: /" + std::to_string(ipv4_prefix) +
                               " (expected 1..32)");
        if (ipv6_prefix < 1 || ipv6_prefix > 128)
            throw config_error("invalid IPv6 grouping prefix: /" + std::to_string(ipv6_prefix) +
                               " (expected 1..128)");
    }
};

/// The rate-limit key of an address: `ip:<addr>` for an ungrouped address, else
/// `ip:<network>/<prefix>` (`ip:2001:db8:1:2::/64` for any address in that /64).
inline std::string ip_key(const ip_address& a, const ip_grouping& grouping = {}) {
    const unsigned prefix = a.is_v4() ? grouping.ipv4_prefix : grouping.ipv6_prefix;
    char key[3 + ip_address::max_text_size + 4] = {'i', 'p', ':'};
    std::size_t n = 3;
    if (prefix >= a.bit_width()) {
        n += a.write(key + n);
    } else {
        n += a.masked(prefix).write(key + n);
        key[n++] = '/';
        if (prefix >= 100) key[n++] = static_cast<char>('0' + prefix / 100);
        if (prefix >= 10) key[n++] = static_cast<char>('0' + prefix / 10 % 10);
        key[n++] = static_cast<char>('0' + prefix % 10);
    }
    return std::string(key, n);
}

}  // namespace smart_ratelimit
