// smart_ratelimit/soci/detail/pg_copy_writer.hpp
// The event store's PostgreSQL writer: one COPY ratelimit_event FROM STDIN per
// batch on the session's PGconn (with the outcome column from events v3 on), the
// rows in COPY text format built in a buffer kept across batches. The connection is
// non-blocking and every wait on the server ends at the batch's deadline
// (detail/pg_wait.hpp).
#pragma once

#include <chrono>
#include <cstdint>
#include <new>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>

#include <soci/postgresql/soci-postgresql.h>

#include <smart_ratelimit/event.hpp>
#include <smart_ratelimit/soci/detail/pg_wait.hpp>
#include <smart_ratelimit/soci/detail/sql_time.hpp>
#include <smart_ratelimit/soci/detail/writer_failure.hpp>

namespace smart_ratelimit::soci::detail {

// COPY text format: backslash, tab, newline and carriage return escaped.
inline void append_copy_text(std::string& out, std::string_view s) {
    for (const char c : s) {
        switch (c) {
            case '\\':
                out += "\\\\";
                break;
            case '\t':
                out += "\\t";
                break;
            case '\n':
                out += "\\n";
                break;
            case '\r':
                out += "\\r";
                break;
            default:
                out += c;
        }
    }
}
inline void append_int(std::string& out, std::int64_t v) {
    char buf[24];
    char* end = buf + sizeof buf;
    char* p = end;
    const bool neg = v < 0;
    std::uint64_t u = neg ? 0 - static_cast<std::uint64_t>(v) : static_cast<std::uint64_t>(v);
    do {
        *--p = static_cast<char>('0' + u % 10);
        u /= 10;
    } while (u != 0);
    if (neg) *--p = '-';
    out.append(p, end);
}

/// Thrown by pg_copy_writer when the server rejected the COPY with check_violation
/// (23514): a row whose day has no partition yet (events v4), or a CHECK
/// constraint. The caller creates the batch's partitions and retries once; a
/// second one is a rejected row. `message` is the server's (not yet last_error:
/// a retry that succeeds leaves no error behind).
struct copy_check_violation {
    std::string message;
};

/// Writes batches by COPY. Errors: store_failure when the store failed (COPY not
/// started, connection lost; `broken` when the server did not answer by the
/// deadline), copy_check_violation (above), another exception when the server
/// rejected a row; `last_error` gets the message. The connection must be in
/// non-blocking mode (PQsetnonblocking).
class pg_copy_writer {
public:
    void write(PGconn* pg, std::span<const event* const> rows, std::string& last_error,
               std::chrono::milliseconds timeout) {
        const pg_deadline deadline = std::chrono::steady_clock::now() + timeout;
        auto check = [&](pg_wait w) {
            if (w == pg_wait::ready) return;
            if (w == pg_wait::timed_out)
                note_error(last_error, "PostgreSQL did not answer within " +
                                           std::to_string(timeout.count()) + " ms");
            else
                note_error(last_error, PQerrorMessage(pg));
            throw store_failure{true};
        };
        // The COPY with the outcome column (events v3); on an older database, where it
        // fails as an undefined column before any row is sent, the one without it.
        PGresult* res = nullptr;
        check(pg_exec(pg,
                      "COPY ratelimit_event (timestamp, key, rule_name, path, method, allowed,"
                      " count, \"limit\", ip_address, user_id, outcome) FROM STDIN",
                      deadline, &res));
        bool with_outcome = true;
        if (res != nullptr && PQresultStatus(res) == PGRES_FATAL_ERROR) {
            const char* state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
            if (state != nullptr && std::string_view(state) == "42703") {  // undefined_column
                PQclear(res);
                res = nullptr;
                with_outcome = false;
                check(pg_exec(pg,
                              "COPY ratelimit_event (timestamp, key, rule_name, path, method,"
                              " allowed, count, \"limit\", ip_address, user_id) FROM STDIN",
                              deadline, &res));
            }
        }
        const bool started = res != nullptr && PQresultStatus(res) == PGRES_COPY_IN;
        if (!started) {
            note_error(last_error, res != nullptr ? PQresultErrorMessage(res) : PQerrorMessage(pg));
            PQclear(res);
            // Table missing or connection gone: the store failed, not a row.
            throw store_failure{};
        }
        PQclear(res);
        std::string& buf = buffer_;
        bool filled = true;
        try {
            fill(buf, rows, with_outcome);
        } catch (...) {  // out of memory: end the COPY so the connection stays usable
            filled = false;
        }
        int sent = filled ? PQputCopyData(pg, buf.data(), static_cast<int>(buf.size())) : -1;
        while (sent == 0) {  // non-blocking: libpq's buffer is full, send some first
            check(pg_flush(pg, deadline));
            sent = PQputCopyData(pg, buf.data(), static_cast<int>(buf.size()));
        }
        int ended = PQputCopyEnd(pg, sent == 1 ? nullptr : "client aborted");
        while (ended == 0) {
            check(pg_flush(pg, deadline));
            ended = PQputCopyEnd(pg, sent == 1 ? nullptr : "client aborted");
        }
        check(pg_flush(pg, deadline));
        bool rejected = false;
        bool check_violation = false;
        std::string message;
        for (;;) {
            check(pg_next_result(pg, deadline, &res));
            if (res == nullptr) break;
            if (PQresultStatus(res) != PGRES_COMMAND_OK) {
                rejected = true;
                const char* state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
                check_violation = state != nullptr && std::string_view(state) == "23514";
                try {
                    message = PQresultErrorMessage(res);
                } catch (...) {}
            }
            PQclear(res);
        }
        if (!filled) throw std::bad_alloc();
        if (sent != 1 || ended != 1 || PQstatus(pg) != CONNECTION_OK) {
            if (rejected) note_error(last_error, message);
            throw store_failure{};
        }
        if (check_violation) throw copy_check_violation{std::move(message)};
        if (rejected) {
            note_error(last_error, message);
            throw std::runtime_error("row rejected");
        }
    }

private:
    // The rows in COPY text format.
    static void fill(std::string& buf, std::span<const event* const> rows, bool with_outcome) {
        buf.clear();
        buf.reserve(rows.size() * 176);
        for (const event* e : rows) {
            append_pg_time(buf, e->timestamp);
            buf += '\t';
            append_copy_text(buf, e->key);
            buf += '\t';
            append_copy_text(buf, e->rule_name);
            buf += '\t';
            append_copy_text(buf, e->path);
            buf += '\t';
            append_copy_text(buf, e->method);
            buf += e->allowed ? "\tt\t" : "\tf\t";
            append_int(buf, e->count);
            buf += '\t';
            append_int(buf, e->limit);
            buf += '\t';
            if (e->ip_address)
                append_copy_text(buf, *e->ip_address);
            else
                buf += "\\N";
            buf += '\t';
            if (e->user_id)
                append_copy_text(buf, *e->user_id);
            else
                buf += "\\N";
            if (with_outcome) {
                buf += '\t';
                buf += to_string(e->outcome);
            }
            buf += '\n';
        }
    }

    std::string buffer_;
};

}  // namespace smart_ratelimit::soci::detail
