// smart_ratelimit/soci/detail/pg_wait.hpp
// Waiting on a PostgreSQL connection until a deadline. libpq's blocking calls
// (PQexec, PQgetResult on a busy connection) wait without limit, and a frozen server
// holds them forever: its kernel still acknowledges, so neither keepalives nor
// tcp_user_timeout end the wait. The event writer puts its connection in
// non-blocking mode and waits here instead, in poll(2).
#pragma once

#include <cerrno>
#include <chrono>
#include <climits>

#include <poll.h>

#include <soci/postgresql/soci-postgresql.h>

namespace smart_ratelimit::soci::detail {

using pg_deadline = std::chrono::steady_clock::time_point;

/// How a wait on the connection ended.
enum class pg_wait { ready, failed, timed_out };

/// Waits until the connection's socket is readable (or writable, with
/// `for_write`), or `deadline` passes.
inline pg_wait pg_poll(PGconn* pg, bool for_write, pg_deadline deadline) noexcept {
    const int fd = PQsocket(pg);
    if (fd < 0) return pg_wait::failed;
    pollfd p{fd, static_cast<short>(POLLIN | (for_write ? POLLOUT : 0)), 0};
    for (;;) {
        const auto left = std::chrono::ceil<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0) return pg_wait::timed_out;
        const int ms = left.count() > INT_MAX ? INT_MAX : static_cast<int>(left.count());
        const int rc = ::poll(&p, 1, ms);
        if (rc > 0) return pg_wait::ready;
        if (rc < 0 && errno != EINTR) return pg_wait::failed;
    }
}

/// Sends what libpq holds in its output buffer, reading what the server says
/// meanwhile (as PQflush asks of non-blocking callers).
inline pg_wait pg_flush(PGconn* pg, pg_deadline deadline) noexcept {
    for (;;) {
        const int rc = PQflush(pg);
        if (rc == 0) return pg_wait::ready;
        if (rc < 0) return pg_wait::failed;
        if (const pg_wait w = pg_poll(pg, true, deadline); w != pg_wait::ready) return w;
        if (PQconsumeInput(pg) == 0) return pg_wait::failed;
    }
}

/// Waits until PQgetResult would not block; then `*out` is its result (nullptr
/// when the command has no more).
inline pg_wait pg_next_result(PGconn* pg, pg_deadline deadline, PGresult** out) noexcept {
    *out = nullptr;
    while (PQisBusy(pg) != 0) {
        if (const pg_wait w = pg_poll(pg, false, deadline); w != pg_wait::ready) return w;
        if (PQconsumeInput(pg) == 0) return pg_wait::failed;
    }
    *out = PQgetResult(pg);
    return pg_wait::ready;
}

/// Sends `sql` and waits for its results until `deadline`; `*last` gets the last
/// result (the caller PQclears it) and the others are cleared.
inline pg_wait pg_exec(PGconn* pg, const char* sql, pg_deadline deadline,
                       PGresult** last) noexcept {
    *last = nullptr;
    if (PQsendQuery(pg, sql) == 0) return pg_wait::failed;
    if (const pg_wait w = pg_flush(pg, deadline); w != pg_wait::ready) return w;
    for (;;) {
        PGresult* res = nullptr;
        if (const pg_wait w = pg_next_result(pg, deadline, &res); w != pg_wait::ready) return w;
        if (res == nullptr) return pg_wait::ready;
        const ExecStatusType st = PQresultStatus(res);
        PQclear(*last);
        *last = res;
        // COPY hands the connection to the caller: no further result until it ends.
        if (st == PGRES_COPY_IN || st == PGRES_COPY_OUT) return pg_wait::ready;
    }
}

}  // namespace smart_ratelimit::soci::detail
