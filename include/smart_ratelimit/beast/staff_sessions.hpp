// smart_ratelimit/beast/staff_sessions.hpp
// Server-side sessions of the dashboard's sign-in form. `staff_sessions` hands out
// random session ids (the cookie) with a CSRF token each, finds and revokes them,
// and keeps a bounded table with an absolute and an optional idle expiry on the
// clock policy's time. Standard headers and the clock policies only.
#pragma once

#include <smart_ratelimit/beast/detail/constant_time.hpp>
#include <smart_ratelimit/beast/detail/os_random.hpp>
#include <smart_ratelimit/clock.hpp>
#include <smart_ratelimit/concepts.hpp>
#include <smart_ratelimit/error.hpp>

#include <chrono>
#include <cstddef>
#include <iterator>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>

namespace smart_ratelimit::beast {

/// Limits of a staff_sessions table.
struct staff_session_options {
    /// Most sessions alive at once (at least 1); creating one more ends the least
    /// recently used.
    std::size_t max_sessions = 1000;
    /// A session ends this long after it was created, however busy (above zero).
    std::chrono::seconds max_age{std::chrono::hours{8}};
    /// A session unused this long ends; zero: no idle expiry.
    std::chrono::seconds idle_timeout{0};
};

/// A new session: what the browser keeps (`id`, as an HttpOnly cookie) and the token
/// that forms posted within the session must carry (`csrf_token`). Both are secrets.
struct staff_session {
    std::string id;
    std::string csrf_token;
};

/// The signed-in staff browsers.
///
/// A session id is 48 lowercase hex digits from the operating system's CSPRNG
/// (getrandom(2) on Linux): a 64-bit selector that finds the entry, then a 128-bit
/// secret compared in constant time, so the time a lookup takes says nothing about
/// the secret. The token a browser signed in with is never stored. Each session has
/// its own 128-bit CSRF token. Expired sessions are dropped when found and whenever
/// one is created; the table never holds more than `max_sessions`.
/// Thread safety: every member may be called concurrently (one mutex, held for a
/// lookup or a scan of at most max_sessions entries).
template <clock Clock = steady_clock>
class staff_sessions {
public:
    /// Hex digits in a session id and in a CSRF token.
    static constexpr std::size_t id_size = 48;
    static constexpr std::size_t csrf_token_size = 32;

    /// Throws config_error for max_sessions 0, a max_age that is not positive or a
    /// negative idle_timeout.
    explicit staff_sessions(staff_session_options options = {}, Clock clock = Clock{})
        : options_(options), clock_(std::move(clock)) {
        if (options_.max_sessions == 0)
            throw config_error("staff sessions: max_sessions must be at least 1");
        if (options_.max_age <= std::chrono::seconds{0})
            throw config_error(
                "staff sessions: the session lifetime (cookie_max_age) must be "
                "positive, got " +
                std::to_string(options_.max_age.count()) + " s");
        if (options_.idle_timeout < std::chrono::seconds{0})
            throw config_error("staff sessions: the idle timeout must not be negative, got " +
                               std::to_string(options_.idle_timeout.count()) + " s");
    }

    staff_sessions(const staff_sessions&) = delete;
    staff_sessions& operator=(const staff_sessions&) = delete;

    /// Opens a session (after the caller has checked the staff token). Ends the least
    /// recently used session when the table is full. Throws std::system_error when
    /// the system has no randomness to give.
    staff_session create() {
        for (;;) {
            std::string selector = detail::random_hex(selector_bytes);
            std::string secret = detail::random_hex(secret_bytes);
            std::string csrf = detail::random_hex(csrf_token_size / 2);
            const auto now = clock_.now();
            std::lock_guard lock(mutex_);
            if (by_selector_.count(selector) != 0) continue;  // 2^-64 per live session
            drop_expired(now);
            if (by_selector_.size() >= options_.max_sessions) drop_least_recently_used();
            staff_session s{selector + secret, csrf};
            by_selector_.emplace(std::move(selector),
                                 entry{std::move(secret), std::move(csrf), now, now});
            return s;
        }
    }

    /// The CSRF token of live session `id`, which counts as a use of it; nullopt
    /// when `id` is malformed, unknown, revoked or expired.
    std::optional<std::string> find(std::string_view id) {
        if (!detail::is_lower_hex(id, id_size)) return std::nullopt;
        const std::string selector(id.substr(0, 2 * selector_bytes));
        const std::string_view secret = id.substr(2 * selector_bytes);
        const auto now = clock_.now();
        std::lock_guard lock(mutex_);
        const auto it = by_selector_.find(selector);
        if (it == by_selector_.end()) return std::nullopt;
        if (!detail::constant_time_equals(secret, it->second.secret)) return std::nullopt;
        if (expired(it->second, now)) {
            by_selector_.erase(it);
            return std::nullopt;
        }
        it->second.last_used = now;
        return it->second.csrf_token;
    }

    /// Ends session `id`: its cookie is refused from now on. False when there was no
    /// such session.
    bool revoke(std::string_view id) {
        if (!detail::is_lower_hex(id, id_size)) return false;
        const std::string selector(id.substr(0, 2 * selector_bytes));
        std::lock_guard lock(mutex_);
        const auto it = by_selector_.find(selector);
        if (it == by_selector_.end() ||
            !detail::constant_time_equals(id.substr(2 * selector_bytes), it->second.secret))
            return false;
        by_selector_.erase(it);
        return true;
    }

    /// Ends every session, e.g. after a staff token was replaced.
    void revoke_all() noexcept {
        std::lock_guard lock(mutex_);
        by_selector_.clear();
    }

    /// The number of live (unexpired) sessions.
    std::size_t size() const {
        const auto now = clock_.now();
        std::lock_guard lock(mutex_);
        std::size_t n = 0;
        for (const auto& kv : by_selector_) n += expired(kv.second, now) ? 0 : 1;
        return n;
    }

    const staff_session_options& options() const noexcept { return options_; }
    const Clock& clock() const noexcept { return clock_; }

private:
    static constexpr std::size_t selector_bytes = 8;
    static constexpr std::size_t secret_bytes = (id_size / 2) - selector_bytes;

    struct entry {
        std::string secret;
        std::string csrf_token;
        std::chrono::nanoseconds created;
        std::chrono::nanoseconds last_used;
    };

    bool expired(const entry& e, std::chrono::nanoseconds now) const noexcept {
        if (now - e.created >= options_.max_age) return true;
        return options_.idle_timeout > std::chrono::seconds{0} &&
               now - e.last_used >= options_.idle_timeout;
    }

    void drop_expired(std::chrono::nanoseconds now) {
        for (auto it = by_selector_.begin(); it != by_selector_.end();)
            it = expired(it->second, now) ? by_selector_.erase(it) : std::next(it);
    }

    void drop_least_recently_used() {
        auto oldest = by_selector_.begin();
        for (auto it = by_selector_.begin(); it != by_selector_.end(); ++it)
            if (it->second.last_used < oldest->second.last_used) oldest = it;
        if (oldest != by_selector_.end()) by_selector_.erase(oldest);
    }

    staff_session_options options_;
    [[no_unique_address]] Clock clock_;
    mutable std::mutex mutex_;
    std::unordered_map<std::string, entry> by_selector_;
};

}  // namespace smart_ratelimit::beast
