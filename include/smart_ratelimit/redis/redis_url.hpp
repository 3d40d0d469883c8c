// smart_ratelimit/redis/redis_url.hpp
// Redis URLs: `redis://[[user]:password@]host[:port][/db]` parsed into host, port,
// credentials and database number. Standard headers only; a malformed URL is a
// config_error that quotes it (with the password masked).
#pragma once

#include <smart_ratelimit/error.hpp>

#include <charconv>
#include <string>
#include <string_view>

namespace smart_ratelimit::redis {

/// A parsed Redis URL. `user` is empty for the legacy `:password@` form.
struct redis_url {
    std::string host = "127.0.0.1";
    int port = 6379;
    std::string user;
    std::string password;
    int db = 0;

    /// The URL with the password replaced by "***" (for messages and logs).
    std::string redacted() const {
        std::string out = "redis://";
        if (!user.empty() || !password.empty()) {
            out += user;
            if (!password.empty()) out += ":***";
            out += '@';
        }
        out += host + ":" + std::to_string(port);
        if (db != 0) out += "/" + std::to_string(db);
        return out;
    }
};

namespace detail {
inline bool parse_small_int(std::string_view s, int max, int& out) {
    if (s.empty()) return false;
    const auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
    return ec == std::errc{} && p == s.data() + s.size() && out >= 0 && out <= max;
}
}  // namespace detail

/// True when `text` starts with the redis:// scheme.
inline bool is_redis_url(std::string_view text) noexcept { return text.substr(0, 8) == "redis://"; }

/// Parses `redis://[[user]:password@]host[:port][/db]`. Throws config_error naming
/// the URL (password masked) and the bad part.
inline redis_url parse_redis_url(std::string_view text) {
    redis_url u;
    auto fail = [&](const char* why) {
        std::string shown(text);
        if (const auto at = shown.rfind('@'); at != std::string::npos && shown.size() > 8) {
            const auto colon = shown.find(':', 8);
            if (colon != std::string::npos && colon < at)
                shown.replace(colon + 1, at - colon - 1, "***");
        }
        throw config_error("invalid Redis URL \"" + shown + "\": " + why +
                           " (expected redis://[:password@]host[:port][/db])");
    };
    if (!is_redis_url(text)) fail("the scheme must be redis://");
    std::string_view rest = text.substr(8);
    if (const auto at = rest.rfind('@'); at != std::string_view::npos) {
        const std::string_view cred = rest.substr(0, at);
        rest = rest.substr(at + 1);
        const auto colon = cred.find(':');
        if (colon == std::string_view::npos) {
            u.user = std::string(cred);
        } else {
            u.user = std::string(cred.substr(0, colon));
            u.password = std::string(cred.substr(colon + 1));
        }
    }
    std::string_view hostport = rest;
    if (const auto slash = rest.find('/'); slash != std::string_view::npos) {
        hostport = rest.substr(0, slash);
        const std::string_view db = rest.substr(slash + 1);
        if (!db.empty() && !detail::parse_small_int(db, 1'000'000, u.db))
            fail("the database must be a number");
    }
    if (hostport.find_first_of("?#") != std::string_view::npos)
        fail("query strings are not supported");
    std::string_view host = hostport;
    if (!hostport.empty() && hostport.front() == '[') {
        const auto close = hostport.find(']');
        if (close == std::string_view::npos) fail("unterminated IPv6 address");
        host = hostport.substr(1, close - 1);
        const std::string_view after = hostport.substr(close + 1);
        if (!after.empty()) {
            if (after.front() != ':' || !detail::parse_small_int(after.substr(1), 65535, u.port) ||
                u.port == 0)
                fail("the port must be a number from 1 to 65535");
        }
    } else if (const auto colon = hostport.rfind(':'); colon != std::string_view::npos) {
        host = hostport.substr(0, colon);
        if (!detail::parse_small_int(hostport.substr(colon + 1), 65535, u.port) || u.port == 0)
            fail("the port must be a number from 1 to 65535");
    }
    if (host.empty()) fail("the host is missing");
    u.host = std::string(host);
    return u;
}

}  // namespace smart_ratelimit::redis
