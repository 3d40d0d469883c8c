// smart_ratelimit/alerts/alert_log.hpp
// The alert cool-down's memory: when each key was last alerted, so a cron job
// every five minutes does not page the same key every run. `no_alert_log`
// remembers nothing, `memory_alert_log` keeps it in a map; the SQL one is
// soci/alert_log.hpp. Standard headers only.
#pragma once

#include <concepts>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include <smart_ratelimit/event.hpp>

namespace smart_ratelimit {

/// alert_log: remembers when keys were alerted.
///
/// | expression            | type                        | meaning                                   |
/// |-----------------------|-----------------------------|-------------------------------------------|
/// | `l.last_alerted(key)` | `std::optional<event_time>` | when `key` was last alerted, if ever      |
/// | `l.record(key, at)`   | (ignored)                   | remembers that `key` was alerted at `at`  |
///
/// Either may throw (a database error); the dispatcher catches and reports it.
template <class L>
concept alert_log = requires(L& l, std::string_view key, event_time at) {
    { l.last_alerted(key) } -> std::same_as<std::optional<event_time>>;
    l.record(key, at);
};

/// Remembers nothing: every run alerts every offender.
struct no_alert_log {
    std::optional<event_time> last_alerted(std::string_view) const { return std::nullopt; }
    void record(std::string_view, event_time) const {}
};

/// Remembers in memory, for one process (tests, long-running servers).
/// Thread safety: all members may be called concurrently.
class memory_alert_log {
public:
    std::optional<event_time> last_alerted(std::string_view key) const {
        std::lock_guard lock(mutex_);
        const auto it = last_.find(key);
        if (it == last_.end()) return std::nullopt;
        return it->second;
    }

    void record(std::string_view key, event_time at) {
        std::lock_guard lock(mutex_);
        const auto it = last_.find(key);
        if (it == last_.end())
            last_.emplace(std::string(key), at);
        else if (it->second < at)
            it->second = at;
    }

private:
    mutable std::mutex mutex_;
    std::map<std::string, event_time, std::less<>> last_;
};

static_assert(alert_log<no_alert_log>);
static_assert(alert_log<memory_alert_log>);

}  // namespace smart_ratelimit
