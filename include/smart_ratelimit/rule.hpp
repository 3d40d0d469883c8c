// smart_ratelimit/rule.hpp
// Rules: a name, a rate and an algorithm. rule_config is the textual form read from
// configuration ("login", "5/m", "token_bucket"); basic_rule<A> is the checked form a
// limiter keeps. Also the storage key format "rule:<name>:<inner>" and the
// shortening of over-long keys.
#pragma once

#include <smart_ratelimit/algorithms/any_algorithm.hpp>
#include <smart_ratelimit/concepts.hpp>
#include <smart_ratelimit/decision.hpp>
#include <smart_ratelimit/detail/hash.hpp>
#include <smart_ratelimit/detail/utf8.hpp>
#include <smart_ratelimit/error.hpp>
#include <smart_ratelimit/event.hpp>
#include <smart_ratelimit/rate.hpp>

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <string>
#include <string_view>
#include <type_traits>

namespace smart_ratelimit {

/// A rule as written in configuration. `name` may be empty for a limiter's single
/// unnamed rule (its keys then carry no prefix); otherwise it is `[A-Za-z0-9_-]+`, at
/// most 100 characters. `algorithm` is one of any_algorithm::names (or "gcra").
/// `shadow`: decide and log, never block.
struct rule_config {
    std::string name;
    std::string rate;
    std::string algorithm = "fixed_window";
    bool shadow = false;
};

/// A checked rule over algorithm A.
template <algorithm A>
struct basic_rule {
    std::string name;
    A algorithm;
    bool shadow = false;
};

/// Throws config_error unless `name` is empty or `[A-Za-z0-9_-]+` of at most 100 chars.
inline void check_rule_name(std::string_view name) {
    bool ok = name.size() <= event_caps::rule_name;
    for (const char c : name)
        ok = ok && ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                    c == '_' || c == '-');
    if (!ok) {
        std::string msg = "invalid rule name \"";
        detail::append_printable(msg, name);
        msg += "\": expected 1 to 100 characters from [A-Za-z0-9_-]";
        throw config_error(msg);
    }
}

/// Builds algorithm A for `rate` from its configured name: any_algorithm picks by
/// name; a specific algorithm accepts its own name (or "") and rejects others.
template <algorithm A>
A make_algorithm(std::string_view name, rate r) {
    if constexpr (std::is_same_v<A, any_algorithm>) {
        return any_algorithm(name, r);
    } else {
        static_assert(
            std::is_constructible_v<A, rate> && requires { A::algorithm_name; },
            "to build from a rule_config, an algorithm needs a constructor from "
            "rate and a static algorithm_name; otherwise pass basic_rule objects");
        if (!name.empty() && name != A::algorithm_name) {
            std::string msg = "algorithm \"";
            detail::append_printable(msg, name);
            msg += "\" does not match this limiter's algorithm \"";
            msg.append(A::algorithm_name);
            msg += "\"";
            throw config_error(msg);
        }
        return A(r);
    }
}

/// Checks a rule_config and builds the rule; config_error names the bad field.
template <algorithm A>
basic_rule<A> make_rule(const rule_config& c) {
    check_rule_name(c.name);
    return basic_rule<A>{c.name, make_algorithm<A>(c.algorithm, parse_rate(c.rate)), c.shadow};
}

/// Writes the storage key of `inner` under rule `rule_name` into `out`:
/// "rule:<name>:<inner>", or `inner` itself for the unnamed rule. When the result
/// would exceed max_key_size bytes, the inner key is cut (at a UTF-8 boundary) and
/// ended with "#" and a 32-hex-digit digest of the whole inner key, so long keys stay
/// distinct and are never skipped. Returns out.view().
inline std::string_view format_key(key_buffer& out, std::string_view rule_name,
                                   std::string_view inner) noexcept {
    char* buf = out.buffer();
    std::size_t n = 0;
    if (!rule_name.empty()) {
        const std::size_t name_size = std::min(rule_name.size(), event_caps::rule_name);
        std::memcpy(buf, "rule:", 5);
        std::memcpy(buf + 5, rule_name.data(), name_size);
        n = 5 + name_size;
        buf[n++] = ':';
    }
    const std::size_t room = max_key_size - n;
    if (inner.size() <= room) {
        detail::copy_bytes(buf + n, inner.data(), inner.size());
        n += inner.size();
    } else {
        constexpr std::size_t tail = 33;  // '#' + 32 hex digits
        const std::size_t keep = detail::utf8_boundary(inner, room - tail);
        std::memcpy(buf + n, inner.data(), keep);
        n += keep;
        buf[n++] = '#';
        detail::digest_hex(inner, buf + n);
        n += 32;
    }
    out.resize(n);
    return out.view();
}

/// The storage key as a std::string (see format_key).
inline std::string rule_key(std::string_view rule_name, std::string_view inner) {
    key_buffer b;
    return std::string(format_key(b, rule_name, inner));
}

}  // namespace smart_ratelimit
