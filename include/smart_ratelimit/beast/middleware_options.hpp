// smart_ratelimit/beast/middleware_options.hpp
// The middleware's settings (middleware_options, and middleware_options_from, which
// reads them from the settings object), its counters (middleware_stats) and the
// default identify policy (no_identity).
#pragma once

#include <smart_ratelimit/beast/headers.hpp>
#include <smart_ratelimit/keys/cidr.hpp>
#include <smart_ratelimit/keys/ip.hpp>
#include <smart_ratelimit/settings.hpp>

#include <boost/beast/http/message.hpp>

#include <cstdint>
#include <optional>
#include <string>

namespace smart_ratelimit::beast {

namespace http = boost::beast::http;

/// Middleware settings. middleware_options_from(settings) fills the ones the
/// settings object carries: log_events (RATELIMIT_LOG_EVENTS) and trusted_proxies
/// (RATELIMIT_TRUSTED_PROXIES). What a degraded decision does (RATELIMIT_FAIL_OPEN)
/// is each limiter's own limiter_options::on_store_failure (limiter_options_from).
struct middleware_options {
    /// Write one event per decision to each limiter's sink (off by default).
    bool log_events = false;
    /// Proxies whose X-Forwarded-For is believed; empty = the socket peer is the client.
    cidr_list trusted_proxies;
    /// Grouping of the IP key used when a limiter's key extractor yields "".
    ip_grouping fallback_grouping;
    header_options headers;
    /// Answer 429s with application/problem+json when the client's Accept prefers JSON.
    bool problem_json = true;
};

/// `base` with what the settings decide for the middleware: log_events and
/// trusted_proxies. Throws config_error for a trusted proxy that is not a CIDR.
inline middleware_options middleware_options_from(const settings& s, middleware_options base = {}) {
    base.log_events = s.log_events;
    base.trusted_proxies = cidr_list::from_strings(s.trusted_proxies);
    return base;
}

/// The middleware's counters. checked = allowed + blocked + degraded_open +
/// degraded_closed once every check has returned.
struct middleware_stats {
    std::uint64_t checked = 0;  ///< requests that matched at least one route
    std::uint64_t allowed = 0;
    std::uint64_t blocked = 0;            ///< answered 429
    std::uint64_t degraded_open = 0;      ///< the store could not decide; let through
    std::uint64_t degraded_closed = 0;    ///< the store could not decide; answered 503
    std::uint64_t sink_failures = 0;      ///< events a sink refused (multi-route requests)
    std::uint64_t identify_failures = 0;  ///< identify threw; the request was treated as anonymous
};

/// Returns no user id: the default identify policy.
struct no_identity {
    std::optional<std::string> operator()(const http::request_header<>&) const noexcept {
        return std::nullopt;
    }
};

}  // namespace smart_ratelimit::beast
