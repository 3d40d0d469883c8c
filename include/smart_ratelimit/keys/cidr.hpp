// smart_ratelimit/keys/cidr.hpp
// CIDR blocks and the trusted-proxy list, with the standard library only:
// `cidr` ("10.0.0.0/8", "2001:db8::/32"), `cidr_list` parsed from a comma-separated
// setting (RATELIMIT_TRUSTED_PROXIES), and `resolve_client_ip`, which walks the
// X-Forwarded-For chain right to left from a trusted peer.
#pragma once

#include <smart_ratelimit/detail/text.hpp>
#include <smart_ratelimit/error.hpp>
#include <smart_ratelimit/keys/ip.hpp>

#include <charconv>
#include <cstddef>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace smart_ratelimit {

/// A network: an address whose bits after `prefix_length()` are zero.
///
/// Written `<addr>/<len>` or a bare address (a single host, /32 or /128).
/// An IPv4-mapped IPv6 block of /96 or longer (`::ffff:10.0.0.0/104`) is the
/// matching IPv4 block (`10.0.0.0/8`), as mapped addresses are IPv4 here.
/// Thread safety: a value type.
class cidr {
public:
    /// Parses strictly; nullopt for a malformed address, a length that is not
    /// decimal digits or exceeds the family's width, or host bits set after it.
    static std::optional<cidr> parse(std::string_view text) noexcept {
        cidr c;
        if (parse_into(text, c) != nullptr) return std::nullopt;
        return c;
    }

    /// As parse(), but throws config_error quoting the text and saying why.
    static cidr from_string(std::string_view text) {
        cidr c;
        if (const char* why = parse_into(text, c))
            throw config_error("invalid CIDR \"" + std::string(text) + "\": " + why);
        return c;
    }

    const ip_address& network() const noexcept { return network_; }
    unsigned prefix_length() const noexcept { return prefix_; }

    /// True when `a` is inside this block (an IPv4 block never holds an IPv6 address).
    bool contains(const ip_address& a) const noexcept {
        return a.address_family() == network_.address_family() && a.masked(prefix_) == network_;
    }

    /// `<network>/<len>` in canonical form.
    std::string to_string() const { return network_.to_string() + '/' + std::to_string(prefix_); }

    friend bool operator==(const cidr&, const cidr&) noexcept = default;

private:
    // nullptr on success, else why the text is not a block.
    static const char* parse_into(std::string_view text, cidr& out) noexcept {
        const auto slash = text.find('/');
        const std::string_view addr_text = text.substr(0, slash);
        const bool written_v6 = addr_text.find(':') != std::string_view::npos;
        const auto addr = ip_address::parse(addr_text);
        if (!addr) return "not an IP address";
        const unsigned written_width = written_v6 ? 128u : 32u;
        unsigned len = written_width;
        if (slash != std::string_view::npos) {
            const std::string_view len_text = text.substr(slash + 1);
            if (len_text.empty() || len_text.size() > 3 ||
                (len_text.size() > 1 && len_text[0] == '0'))
                return "bad prefix length";
            for (const char c : len_text)
                if (c < '0' || c > '9') return "bad prefix length";
            std::from_chars(len_text.data(), len_text.data() + len_text.size(), len);
            if (len > written_width) return "bad prefix length";
        }
        if (written_v6 && addr->is_v4()) {
            // IPv4-mapped: only blocks inside ::ffff:0:0/96 have an IPv4 meaning.
            if (len < 96) return "an IPv4-mapped block needs a prefix length of at least 96";
            len -= 96;
        }
        if (addr->masked(len) != *addr) return "host bits are set after the prefix length";
        out.network_ = *addr;
        out.prefix_ = len;
        return nullptr;
    }

    ip_address network_;
    unsigned prefix_ = 32;
};

/// A list of CIDR blocks, such as the trusted proxies.
/// Thread safety: const member functions may be called concurrently.
class cidr_list {
public:
    cidr_list() = default;
    cidr_list(std::initializer_list<cidr> blocks) : blocks_(blocks) {}

    /// Parses a comma-separated list (spaces around items allowed; an empty string
    /// is an empty list). Throws config_error naming the first bad item.
    static cidr_list parse(std::string_view text) {
        cidr_list out;
        if (text.find_first_not_of(" \t") == std::string_view::npos) return out;
        std::size_t pos = 0;
        while (pos <= text.size()) {
            const std::size_t comma = text.find(',', pos);
            std::string_view item =
                text.substr(pos, comma == std::string_view::npos ? text.npos : comma - pos);
            item = smart_ratelimit::detail::trim(item);
            if (item.empty())
                throw config_error("invalid CIDR list \"" + std::string(text) + "\": empty item");
            out.blocks_.push_back(cidr::from_string(item));
            if (comma == std::string_view::npos) break;
            pos = comma + 1;
        }
        return out;
    }

    /// One block per element of a range of strings (settings::trusted_proxies).
    /// Throws config_error naming the first bad item.
    template <class Strings>
    static cidr_list from_strings(const Strings& items) {
        cidr_list out;
        for (const auto& item : items) out.add(std::string_view(item));
        return out;
    }

    void add(const cidr& block) { blocks_.push_back(block); }
    void add(std::string_view text) { blocks_.push_back(cidr::from_string(text)); }

    bool empty() const noexcept { return blocks_.empty(); }
    std::size_t size() const noexcept { return blocks_.size(); }
    const std::vector<cidr>& blocks() const noexcept { return blocks_; }

    /// True when any block contains `a`.
    bool contains(const ip_address& a) const noexcept {
        for (const auto& b : blocks_)
            if (b.contains(a)) return true;
        return false;
    }

private:
    std::vector<cidr> blocks_;
};

/// One X-Forwarded-For hop as proxies write it: an address, optionally `v4:port`,
/// `[v6]` or `[v6]:port`, with optional surrounding spaces/tabs. Nullopt when
/// malformed (including `unknown` and obfuscated RFC 7239 identifiers).
inline std::optional<ip_address> parse_forwarded_hop(std::string_view hop) noexcept {
    hop = smart_ratelimit::detail::trim(hop);
    if (hop.empty()) return std::nullopt;
    auto valid_port = [](std::string_view p) {
        if (p.empty() || p.size() > 5) return false;
        for (const char c : p)
            if (c < '0' || c > '9') return false;
        return true;
    };
    if (hop.front() == '[') {
        const auto close = hop.find(']');
        if (close == std::string_view::npos) return std::nullopt;
        const std::string_view rest = hop.substr(close + 1);
        if (!rest.empty() && !(rest.front() == ':' && valid_port(rest.substr(1))))
            return std::nullopt;
        const std::string_view inner = hop.substr(1, close - 1);
        if (inner.find(':') == std::string_view::npos)
            return std::nullopt;  // brackets hold IPv6 only
        return ip_address::parse(inner);
    }
    const auto colon = hop.find(':');
    if (colon != std::string_view::npos && hop.find(':', colon + 1) == std::string_view::npos) {
        // Exactly one colon: `v4:port`.
        if (!valid_port(hop.substr(colon + 1))) return std::nullopt;
        auto a = ip_address::parse(hop.substr(0, colon));
        if (!a || hop.substr(0, colon).find('.') == std::string_view::npos) return std::nullopt;
        return a;
    }
    return ip_address::parse(hop);
}

/// The client address of a request.
///
/// `peer` is the socket peer. When it is not in `trusted` (or `trusted` is empty)
/// it is the client and X-Forwarded-For is ignored: an untrusted client cannot
/// choose its own key. Otherwise the X-Forwarded-For field lines (`xff_lines`, a
/// range of string-like values, in the order they appear in the request) are
/// joined into one list and walked right to left:
///   - an empty list element (`a,,b`, a trailing comma) is skipped, as HTTP lists allow;
///   - a trusted hop is passed over;
///   - the first untrusted, well-formed hop is the client;
///   - a malformed hop stops the walk: whatever is left of it was never vouched
///     for, so the result is the last trusted hop walked (the peer if none);
///   - when every hop is trusted, the leftmost one is the client.
/// Thread safety: a pure function.
template <class Lines>
ip_address resolve_client_ip(const ip_address& peer, const cidr_list& trusted,
                             const Lines& xff_lines) {
    if (trusted.empty() || !trusted.contains(peer)) return peer;
    // Collect the hops left to right, then walk them backwards.
    std::vector<std::string_view> hops;
    for (const auto& line : xff_lines) {
        const std::string_view text(line);
        std::size_t pos = 0;
        while (true) {
            const std::size_t comma = text.find(',', pos);
            hops.push_back(
                text.substr(pos, comma == std::string_view::npos ? text.npos : comma - pos));
            if (comma == std::string_view::npos) break;
            pos = comma + 1;
        }
    }
    ip_address last_trusted = peer;
    for (auto it = hops.rbegin(); it != hops.rend(); ++it) {
        std::string_view hop = *it;
        while (!hop.empty() && (hop.front() == ' ' || hop.front() == '\t')) hop.remove_prefix(1);
        if (hop.empty()) continue;
        const auto addr = parse_forwarded_hop(hop);
        if (!addr) return last_trusted;
        if (!trusted.contains(*addr)) return *addr;
        last_trusted = *addr;
    }
    return last_trusted;
}

}  // namespace smart_ratelimit
