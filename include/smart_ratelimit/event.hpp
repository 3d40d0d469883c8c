// smart_ratelimit/event.hpp
// The rate-limit event: one record per decision the middleware makes.
// Provides `outcome_kind` (allowed, blocked, shadow_blocked, degraded), `event`, the
// field caps, `rule_name_of(key)` and `make_event`, which applies the caps and derives
// rule_name so every sink stores the same shape.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <smart_ratelimit/detail/utf8.hpp>

namespace smart_ratelimit {

/// Event timestamps: UTC, microsecond resolution.
using event_time = std::chrono::sys_time<std::chrono::microseconds>;

/// Field caps from the reference schema; make_event truncates to them.
namespace event_caps {
inline constexpr std::size_t key = 255;
inline constexpr std::size_t rule_name = 100;
inline constexpr std::size_t path = 500;
inline constexpr std::size_t method = 10;
inline constexpr std::size_t ip_address = 45;
inline constexpr std::size_t user_id = 255;
}  // namespace event_caps

/// The four outcomes of a decision.
/// - `allowed`: within the limit.
/// - `blocked`: over the limit; the request was refused (429).
/// - `shadow_blocked`: over the limit of a shadow rule; the request proceeded.
/// - `degraded`: the store could not decide (error, timeout, open breaker). Never a
///   denial and never counted as blocked: the limiter's failure_policy let the request
///   through (fail_open) or refused it as unavailable (fail_closed, 503).
enum class outcome_kind : unsigned char { allowed, blocked, shadow_blocked, degraded };

/// "allowed", "blocked", "shadow_blocked" or "degraded" (the event log's spelling).
constexpr std::string_view to_string(outcome_kind k) noexcept {
    switch (k) {
        case outcome_kind::allowed:
            return "allowed";
        case outcome_kind::blocked:
            return "blocked";
        case outcome_kind::shadow_blocked:
            return "shadow_blocked";
        case outcome_kind::degraded:
            return "degraded";
    }
    return "allowed";
}

/// The outcome spelled `s` (exactly as to_string writes it), or nullopt.
constexpr std::optional<outcome_kind> parse_outcome_kind(std::string_view s) noexcept {
    for (const auto k : {outcome_kind::allowed, outcome_kind::blocked, outcome_kind::shadow_blocked,
                         outcome_kind::degraded})
        if (to_string(k) == s) return k;
    return std::nullopt;
}

/// The `allowed` column of an outcome: false exactly when the client was over a
/// limit (shadow rules included). A degraded decision is not a denial: true.
constexpr bool allowed_column(outcome_kind k) noexcept {
    return k == outcome_kind::allowed || k == outcome_kind::degraded;
}

/// The outcome of a row that predates the outcome column: what `allowed` says.
constexpr outcome_kind outcome_of_allowed(bool allowed) noexcept {
    return allowed ? outcome_kind::allowed : outcome_kind::blocked;
}

/// One rate-limit decision, as stored in `ratelimit_event`.
/// A plain value type. `allowed` is false for over-limit requests, shadow mode
/// included; `outcome` tells the four outcomes apart, and always agrees with
/// `allowed` (allowed == allowed_column(outcome)). Analytics count `blocked` from
/// `allowed == false`, so degraded events (allowed == true) are never blocked.
struct event {
    event_time timestamp{};
    std::string key;
    std::string rule_name;
    std::string path;
    std::string method;
    bool allowed = true;
    std::int64_t count = 0;
    std::int64_t limit = 0;
    std::optional<std::string> ip_address;
    std::optional<std::string> user_id;
    outcome_kind outcome = outcome_kind::allowed;

    /// True for a degraded event (the store could not decide).
    bool degraded() const noexcept { return outcome == outcome_kind::degraded; }

    friend bool operator==(const event&, const event&) = default;
};

/// The rule name encoded in a `rule:<name>:<inner>` key, or "" for other keys.
/// A name is `[A-Za-z0-9_-]+`; a malformed prefix yields "".
constexpr std::string_view rule_name_of(std::string_view key) noexcept {
    constexpr std::string_view prefix = "rule:";
    if (key.substr(0, prefix.size()) != prefix) return {};
    const std::string_view rest = key.substr(prefix.size());
    const auto colon = rest.find(':');
    if (colon == std::string_view::npos || colon == 0) return {};
    const std::string_view name = rest.substr(0, colon);
    for (const char c : name) {
        const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                        (c >= '0' && c <= '9') || c == '_' || c == '-';
        if (!ok) return {};
    }
    return name;
}

/// Builds an event with caps applied and rule_name derived from the key; `allowed`
/// is derived from `outcome`. `path` should already be stripped of its query string.
inline event make_event(event_time timestamp, std::string_view key, std::string_view path,
                        std::string_view method, outcome_kind outcome, std::int64_t count,
                        std::int64_t limit, std::optional<std::string_view> ip_address = {},
                        std::optional<std::string_view> user_id = {}) {
    event e;
    e.outcome = outcome;
    e.timestamp = timestamp;
    e.key = detail::capped(key, event_caps::key);
    e.rule_name = detail::capped(rule_name_of(key), event_caps::rule_name);
    e.path = detail::capped(path, event_caps::path);
    e.method = detail::capped(method, event_caps::method);
    e.allowed = allowed_column(outcome);
    e.count = count;
    e.limit = limit;
    if (ip_address) e.ip_address = detail::capped(*ip_address, event_caps::ip_address);
    if (user_id) e.user_id = detail::capped(*user_id, event_caps::user_id);
    return e;
}

/// As above for a decided (never degraded) event: outcome allowed or blocked.
inline event make_event(event_time timestamp, std::string_view key, std::string_view path,
                        std::string_view method, bool allowed, std::int64_t count,
                        std::int64_t limit, std::optional<std::string_view> ip_address = {},
                        std::optional<std::string_view> user_id = {}) {
    return make_event(timestamp, key, path, method, outcome_of_allowed(allowed), count, limit,
                      ip_address, user_id);
}

}  // namespace smart_ratelimit
