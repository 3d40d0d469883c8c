// smart_ratelimit/beast/server_limits.hpp
// What keeps a server's connections from being held open or run out: server_limits
// (read, idle and write timeouts, header and body limits, a connection cap), the
// default cap from RLIMIT_NOFILE, the status that answers a request the parser
// refused (400, 413, 431), the accept errors that call for a pause instead of an
// immediate retry, and connection_deadline, one lazily re-armed timer per connection.
#pragma once

#include <boost/asio/basic_waitable_timer.hpp>
#include <boost/asio/error.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/status.hpp>
#include <boost/system/errc.hpp>
#include <boost/system/error_code.hpp>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>

#if __has_include(<sys/resource.h>)
#include <sys/resource.h>
#endif

namespace smart_ratelimit::beast {

namespace http = boost::beast::http;

/// The default connection cap: 10,000, or fewer when the process's descriptor limit
/// (RLIMIT_NOFILE, soft) would not leave `reserve` descriptors for everything else
/// (database and Redis connections, files, the reactor): then the limit minus
/// `reserve`, or half the limit when it is below twice `reserve`; at least 1.
inline std::size_t default_max_connections(std::size_t reserve = 64) noexcept {
    constexpr std::size_t cap = 10'000;
#if __has_include(<sys/resource.h>)
    rlimit rl{};
    if (::getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY) return cap;
    const auto n = static_cast<std::size_t>(std::min<rlim_t>(rl.rlim_cur, cap + reserve));
    return n >= 2 * reserve ? std::min(cap, n - reserve) : std::max<std::size_t>(1, n / 2);
#else
    (void)reserve;
    return cap;
#endif
}

/// How long a client may take and what it may hold. The defaults suit a public API
/// whose requests are small.
struct server_limits {
    /// A whole request (header and body) must arrive within this, counted from its
    /// first byte; the first request of a connection from the accept.
    std::chrono::milliseconds read_timeout{10'000};
    /// A kept-alive connection may wait this long for the next request's first byte.
    std::chrono::milliseconds idle_timeout{30'000};
    /// Writing one response may take this long (a client that does not read).
    std::chrono::milliseconds write_timeout{10'000};
    /// The request line and fields (Beast's parser: header_limit); over it, 431.
    std::uint32_t header_limit = 8 * 1024;
    /// The body (Beast's parser: body_limit); over it, 413.
    std::uint64_t body_limit = 64 * 1024;
    /// Open connections at most; at the cap the server stops accepting until one ends.
    std::size_t max_connections = default_max_connections();
    /// The pause after an accept that failed for want of descriptors or memory.
    std::chrono::milliseconds accept_backoff{100};
};

/// The status that answers a request Beast's parser refused with `ec`: 431 for a
/// header over its limit, 413 for a body over its limit, 400 for any other malformed
/// request. nullopt when there is no one to answer: a client that closed before or
/// during a request (end_of_stream, partial_message) or an error from the socket.
inline std::optional<http::status> refusal_status(const boost::system::error_code& ec) noexcept {
    if (ec == http::error::header_limit) return http::status::request_header_fields_too_large;
    if (ec == http::error::body_limit) return http::status::payload_too_large;
    if (ec == http::error::end_of_stream || ec == http::error::partial_message ||
        ec == http::error::need_more)
        return std::nullopt;
    if (ec.category() == make_error_code(http::error::bad_target).category())
        return http::status::bad_request;
    return std::nullopt;
}

/// True when an accept failed for a reason that does not go away by itself: no
/// descriptor left (EMFILE, ENFILE), no buffer space or memory, or anything
/// unexpected. The pending connection stays queued, so accepting again at once fails
/// again, and a loop that retries spins at full CPU: wait (accept_backoff, or until
/// one of the server's connections ends) first. False for the errors that concern
/// the one connection that failed (it was aborted or reset while queued, a firewall
/// refused it, its network went away): accept the next one at once.
inline bool accept_needs_backoff(const boost::system::error_code& ec) noexcept {
    namespace e = boost::asio::error;
    using boost::system::errc::errc_t;
    if (!ec) return false;
    return !(ec == e::connection_aborted || ec == e::connection_reset ||
             ec == e::host_unreachable || ec == e::network_unreachable || ec == e::network_down ||
             ec == e::timed_out || ec == e::operation_aborted || ec == errc_t::protocol_error ||
             ec == errc_t::operation_not_permitted);
}

/// One deadline for one connection: when it passes, the socket's pending operations
/// are cancelled and expired() is true, which the connection checks after each
/// operation. Moving the deadline later, as a server does on every request, only
/// stores it (the timer, when it fires early, waits again for the rest); moving it
/// earlier re-arms the timer. So a request costs a clock read, not a timer operation.
///
/// Socket is any Asio socket (`cancel(error_code&)`, `get_executor()`). The
/// deadline must be destroyed before the socket; a wait still pending then finds it
/// stopped and does nothing.
/// Thread safety: as the socket's: use it where the socket is used (one thread, or
/// the socket's strand); the timer's handler runs on the socket's executor.
template <class Socket>
class connection_deadline {
public:
    using clock_type = std::chrono::steady_clock;
    using time_point = clock_type::time_point;
    using duration = clock_type::duration;

    /// No deadline yet (expires_at never).
    explicit connection_deadline(Socket& socket)
        : st_(std::make_shared<state>(socket.get_executor(), &socket)) {}
    connection_deadline(const connection_deadline&) = delete;
    connection_deadline& operator=(const connection_deadline&) = delete;
    ~connection_deadline() {
        st_->socket = nullptr;
        st_->timer.cancel();
    }

    /// Sets the deadline (and clears expired()).
    void expires_at(time_point t) {
        st_->deadline = t;
        st_->expired = false;
        if (t < st_->armed) {
            st_->armed = t;
            arm(st_);
        }
    }
    void expires_after(duration d) { expires_at(clock_type::now() + d); }
    /// No deadline: while the server itself is busy with the request.
    void expires_never() { expires_at(time_point::max()); }

    /// True once the deadline has passed (and the socket's operations were cancelled).
    bool expired() const noexcept { return st_->expired; }
    time_point deadline() const noexcept { return st_->deadline; }

private:
    using timer_type =
        boost::asio::basic_waitable_timer<clock_type, boost::asio::wait_traits<clock_type>,
                                          typename Socket::executor_type>;
    struct state {
        state(const typename Socket::executor_type& ex, Socket* s) : timer(ex), socket(s) {}
        timer_type timer;
        Socket* socket;  // null once the deadline is destroyed
        time_point deadline = time_point::max();
        time_point armed = time_point::max();  // when the timer fires; max: not waiting
        bool expired = false;
    };

    static void arm(const std::shared_ptr<state>& st) {
        st->timer.expires_at(st->armed);  // cancels a wait for a later time
        st->timer.async_wait([st](const boost::system::error_code& ec) {
            // Aborted: destroyed, or re-armed for an earlier time (that wait is pending).
            if (st->socket == nullptr || ec == boost::asio::error::operation_aborted) return;
            if (clock_type::now() < st->deadline) {  // moved later meanwhile: wait for it
                st->armed = st->deadline;
                if (st->armed != time_point::max()) arm(st);
                return;
            }
            st->armed = time_point::max();
            st->expired = true;
            boost::system::error_code ignored;
            st->socket->cancel(ignored);
        });
    }

    std::shared_ptr<state> st_;
};

}  // namespace smart_ratelimit::beast
