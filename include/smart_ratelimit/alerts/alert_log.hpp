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

/// What claim() found: whether this caller won the key, and the key's time before.
struct alert_claim {
    bool won = false;
    std::optional<event_time> previous;
};

/// claiming_alert_log: an alert_log that several processes may share (several
/// nodes running `smart-ratelimit alerts` from cron in the same minute). The
/// dispatcher claims each key before sending, so every key is alerted once.
///
/// | expression                 | type          | meaning                                      |
/// |----------------------------|---------------|----------------------------------------------|
/// | `l.claim(key, at, since)`  | `alert_claim` | atomically: when `key` was never alerted or last alerted before `since`, records `at` and wins |
/// | `l.release(key, at, prev)` | (ignored)     | undoes a won claim whose sending failed: back to `prev` (none: forgotten), unless someone claimed since |
template <class L>
concept claiming_alert_log = alert_log<L> &&
    requires(L& l, std::string_view key, event_time at, std::optional<event_time> prev) {
    { l.claim(key, at, at) } -> std::same_as<alert_claim>;
    l.release(key, at, prev);
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

    alert_claim claim(std::string_view key, event_time at, event_time since) {
        std::lock_guard lock(mutex_);
        const auto it = last_.find(key);
        if (it == last_.end()) {
            last_.emplace(std::string(key), at);
            return {true, std::nullopt};
        }
        if (it->second >= since) return {false, it->second};
        const event_time previous = it->second;
        it->second = at;
        return {true, previous};
    }

    void release(std::string_view key, event_time at, std::optional<event_time> previous) {
        std::lock_guard lock(mutex_);
        const auto it = last_.find(key);
        if (it == last_.end() || it->second != at) return;  // claimed again since
        if (previous)
            it->second = *previous;
        else
            last_.erase(it);
    }

private:
    mutable std::mutex mutex_;
    std::map<std::string, event_time, std::less<>> last_;
};

static_assert(alert_log<no_alert_log>);
static_assert(claiming_alert_log<memory_alert_log>);

}  // namespace smart_ratelimit
