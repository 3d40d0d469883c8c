// smart_ratelimit/soci/state_storage.hpp
// basic_sql_state_storage<A>: a storage_backend keeping rate-limit state in SQL
// tables (SQLite, PostgreSQL) so that every process sharing the database sees the
// same counters. Each decision is one short transaction on the database's clock:
// SQLite BEGIN IMMEDIATE, PostgreSQL a per-key advisory transaction lock. Also the
// retention job behind `smart-ratelimit cleanup`; the tables' migration set is
// soci/migrations/state.hpp.
#pragma once

#include <smart_ratelimit/algorithms/any_algorithm.hpp>
#include <smart_ratelimit/concepts.hpp>
#include <smart_ratelimit/decision.hpp>
#include <smart_ratelimit/detail/time_math.hpp>
#include <smart_ratelimit/error.hpp>
#include <smart_ratelimit/soci/database_url.hpp>
#include <smart_ratelimit/soci/detail/sanitize.hpp>
#include <smart_ratelimit/soci/event_store.hpp>
#include <smart_ratelimit/soci/migrations/state.hpp>
#include <smart_ratelimit/soci/schema.hpp>
#include <smart_ratelimit/storage/failure_policy.hpp>
#include <smart_ratelimit/storage/storage_op.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include <soci/soci.h>

namespace smart_ratelimit::soci {

/// The state tables, in the order `cleanup` reports them.
inline constexpr std::string_view state_tables[] = {"ratelimit_counter", "ratelimit_sliding_entry",
                                                    "ratelimit_token_bucket",
                                                    "ratelimit_leaky_bucket"};

/// What the storage does when the database fails on the request path
/// (storage/failure_policy.hpp): degrade or raise.
using smart_ratelimit::on_error;

/// Settings of a SQL state storage.
struct sql_state_options {
    std::size_t max_connections = 4;  ///< sessions kept open (a decision holds one)
    std::string key_prefix;           ///< put in front of every key
    on_error errors = on_error::degrade;
};

/// Counters of a SQL state storage.
struct sql_state_stats {
    std::uint64_t decisions = 0;  ///< operations the database answered
    std::uint64_t errors = 0;     ///< operations that failed
    std::uint64_t connects = 0;   ///< sessions opened (reconnects included)
};

namespace detail {

using ::smart_ratelimit::detail::sat_add;

/// The database clock, microsecond resolution, as an SQL expression.
inline std::string_view now_micros_sql(dialect d) noexcept {
    return d == dialect::sqlite ? "CAST((julianday('now') - 2440587.5) * 86400000000.0 AS INTEGER)"
                                : "CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000000 AS BIGINT)";
}

/// The database clock as nanoseconds since the Unix epoch.
inline std::int64_t database_now_ns(::soci::session& sql, dialect d) {
    long long us = 0;
    sql << "SELECT " + std::string(now_micros_sql(d)), ::soci::into(us);
    return static_cast<std::int64_t>(us) * 1000;
}

inline long long to_ll(std::uint64_t v) noexcept {
    return v > static_cast<std::uint64_t>(INT64_MAX) ? INT64_MAX : static_cast<long long>(v);
}
inline std::uint64_t to_u64(long long v) noexcept {
    return v < 0 ? 0 : static_cast<std::uint64_t>(v);
}

// ---- ratelimit_counter: fixed_window and sliding_window_approx ----

struct counter_row {
    bool found = false;
    long long window_start = 0, count = 0, previous = 0;
};

inline counter_row load_counter(::soci::session& sql, const std::string& key,
                                std::string_view alg) {
    counter_row r;
    const std::string a(alg);
    ::soci::indicator ind = ::soci::i_null;
    sql << "SELECT window_start_ns, count, previous_count FROM ratelimit_counter WHERE key = :k "
           "AND algorithm = :a",
        ::soci::into(r.window_start, ind), ::soci::into(r.count), ::soci::into(r.previous),
        ::soci::use(key), ::soci::use(a);
    r.found = sql.got_data() && ind == ::soci::i_ok;
    return r;
}

inline void store_counter(::soci::session& sql, const std::string& key, std::string_view alg,
                          long long window_start, long long count, long long previous,
                          long long expires) {
    const std::string a(alg);
    sql << "INSERT INTO ratelimit_counter (key, algorithm, window_start_ns, count, previous_count, "
           "expires_at_ns)"
           " VALUES (:k, :a, :w, :c, :p, :e) ON CONFLICT (key, algorithm) DO UPDATE SET"
           " window_start_ns = excluded.window_start_ns, count = excluded.count,"
           " previous_count = excluded.previous_count, expires_at_ns = excluded.expires_at_ns",
        ::soci::use(key), ::soci::use(a), ::soci::use(window_start), ::soci::use(count),
        ::soci::use(previous), ::soci::use(expires);
}

inline bool load_state(::soci::session& sql, const std::string& key, const fixed_window&,
                       fixed_window::state_type& s, std::int64_t) {
    const auto r = load_counter(sql, key, fixed_window::algorithm_name);
    if (r.found) s = {r.window_start, to_u64(r.count)};
    return r.found;
}
inline void store_state(::soci::session& sql, const std::string& key, const fixed_window& a,
                        const fixed_window::state_type&, const fixed_window::state_type& s,
                        std::int64_t) {
    store_counter(sql, key, fixed_window::algorithm_name, s.window_start, to_ll(s.count), 0,
                  sat_add(s.window_start, a.period().count()));
}

inline bool load_state(::soci::session& sql, const std::string& key, const sliding_window_approx&,
                       sliding_window_approx::state_type& s, std::int64_t) {
    const auto r = load_counter(sql, key, sliding_window_approx::algorithm_name);
    if (r.found) s = {r.window_start, to_u64(r.count), to_u64(r.previous)};
    return r.found;
}
inline void store_state(::soci::session& sql, const std::string& key,
                        const sliding_window_approx& a, const sliding_window_approx::state_type&,
                        const sliding_window_approx::state_type& s, std::int64_t) {
    store_counter(sql, key, sliding_window_approx::algorithm_name, s.window_start, to_ll(s.current),
                  to_ll(s.previous),
                  sat_add(sat_add(s.window_start, a.period().count()), a.period().count()));
}

// ---- ratelimit_token_bucket ----

inline bool load_state(::soci::session& sql, const std::string& key, const token_bucket&,
                       token_bucket::state_type& s, std::int64_t) {
    long long last = 0, used = 0, credit = 0;
    ::soci::indicator ind = ::soci::i_null;
    sql << "SELECT last_ns, used, credit FROM ratelimit_token_bucket WHERE key = :k",
        ::soci::into(last, ind), ::soci::into(used), ::soci::into(credit), ::soci::use(key);
    if (!sql.got_data() || ind != ::soci::i_ok) return false;
    s = {last, to_u64(used), to_u64(credit)};
    return true;
}
inline void store_state(::soci::session& sql, const std::string& key, const token_bucket&,
                        const token_bucket::state_type&, const token_bucket::state_type& s,
                        std::int64_t now) {
    long long last = s.last, used = to_ll(s.used), credit = to_ll(s.credit), updated = now;
    sql << "INSERT INTO ratelimit_token_bucket (key, last_ns, used, credit, updated_at_ns) VALUES "
           "(:k, :l, :u, :c, :t)"
           " ON CONFLICT (key) DO UPDATE SET last_ns = excluded.last_ns, used = excluded.used,"
           " credit = excluded.credit, updated_at_ns = excluded.updated_at_ns",
        ::soci::use(key), ::soci::use(last), ::soci::use(used), ::soci::use(credit),
        ::soci::use(updated);
}

// ---- ratelimit_leaky_bucket ----

inline bool load_state(::soci::session& sql, const std::string& key, const leaky_bucket&,
                       leaky_bucket::state_type& s, std::int64_t) {
    long long last = 0, tat = 0, frac = 0;
    ::soci::indicator ind = ::soci::i_null;
    sql << "SELECT last_ns, tat_ns, tat_frac FROM ratelimit_leaky_bucket WHERE key = :k",
        ::soci::into(last, ind), ::soci::into(tat), ::soci::into(frac), ::soci::use(key);
    if (!sql.got_data() || ind != ::soci::i_ok) return false;
    s = {last, tat, to_u64(frac)};
    return true;
}
inline void store_state(::soci::session& sql, const std::string& key, const leaky_bucket&,
                        const leaky_bucket::state_type&, const leaky_bucket::state_type& s,
                        std::int64_t now) {
    long long last = s.last, tat = s.tat, frac = to_ll(s.tat_frac), updated = now;
    sql << "INSERT INTO ratelimit_leaky_bucket (key, last_ns, tat_ns, tat_frac, updated_at_ns)"
           " VALUES (:k, :l, :t, :f, :u) ON CONFLICT (key) DO UPDATE SET last_ns = "
           "excluded.last_ns,"
           " tat_ns = excluded.tat_ns, tat_frac = excluded.tat_frac, updated_at_ns = "
           "excluded.updated_at_ns",
        ::soci::use(key), ::soci::use(last), ::soci::use(tat), ::soci::use(frac),
        ::soci::use(updated);
}

/// One decision inside an open transaction: load, run the algorithm, write back.
template <class Alg>
outcome decide(::soci::session& sql, const std::string& key, const Alg& a, std::int64_t now,
               std::uint64_t cost, storage_op o) {
    typename Alg::state_type s{};
    const bool found = load_state(sql, key, a, s, now);
    const std::chrono::nanoseconds n(now);
    if (o == storage_op::peek) return a.peek(s, n, cost);
    const auto before = s;
    if (o == storage_op::release) {
        if (!found) return outcome{};
        a.release(s, n, cost);
        store_state(sql, key, a, before, s, now);
        return outcome{};
    }
    const outcome out = a.try_acquire(s, n, cost);
    if (out.allowed) store_state(sql, key, a, before, s, now);
    return out;
}

// ---- ratelimit_sliding_entry: one row per admission instant ----
//
// Each row carries cum_units, its key's running total of units up to and including
// it. Within a key, admission order is time order: an admission is stamped no earlier
// than the key's newest row, and one at the newest row's instant adds to that row. So,
// with C the newest row's running total:
//   units in the window = C - (cum_units - units) of the first row with at_ns > cutoff;
//   a denied request waits until the first row with cum_units >= C - (limit - cost)
//   leaves the window (the oldest units up to that row make room).
// Each is one index probe whatever the number of rows, so a denial costs O(log n).
// Rows an older version wrote have cum_units NULL: peek reads such a key row by row as
// before; acquire and release first fill in its running totals (one UPDATE, O(n) once).

/// What the bounded queries tell about a key's window.
struct sliding_summary {
    bool legacy = false;          ///< a row without cum_units exists
    bool any = false;             ///< the key has a row with cum_units
    long long total_ever = 0;     ///< C: the newest row's running total
    long long newest_at = 0;      ///< the newest row's instant
    bool in_window = false;       ///< a row is inside the window
    long long before_window = 0;  ///< the running total before the window's first row
    bool wait_found = false;      ///< a row has cum_units >= C - room
    long long wait_at = 0, wait_cum = 0;
};

/// The query behind sliding_summary. One statement, so one snapshot (a peek takes no
/// lock): the newest row, the window's first row, the row whose expiry frees `room`
/// units, and whether a row lacks its running total.
inline constexpr std::string_view sliding_summary_sql =
    "WITH n AS (SELECT cum_units AS c, at_ns AS at FROM ratelimit_sliding_entry"
    " WHERE key = :k AND cum_units IS NOT NULL ORDER BY cum_units DESC LIMIT 1),"
    " w AS (SELECT at_ns, cum_units FROM ratelimit_sliding_entry WHERE key = :k"
    " AND cum_units >= (SELECT c FROM n) - :room ORDER BY cum_units LIMIT 1)"
    " SELECT (SELECT c FROM n), (SELECT at FROM n),"
    " (SELECT cum_units - units FROM ratelimit_sliding_entry WHERE key = :k"
    " AND at_ns > :cut ORDER BY at_ns, cum_units LIMIT 1),"
    " (SELECT at_ns FROM w), (SELECT cum_units FROM w),"
    " CASE WHEN EXISTS (SELECT 1 FROM ratelimit_sliding_entry WHERE key = :k"
    " AND cum_units IS NULL) THEN 1 ELSE 0 END";

/// sliding_summary_sql prepared once on a session and run for each decision: SQLite
/// compiles it and PostgreSQL plans it once (compiling it cost SQLite more than reading
/// a ten-row window). Must be destroyed before its session.
/// Thread safety: one thread at a time, as its session.
class sliding_queries {
public:
    explicit sliding_queries(::soci::session& sql)
        : st_((sql.prepare << std::string(sliding_summary_sql), ::soci::into(c_, c_ind_),
               ::soci::into(at_, at_ind_), ::soci::into(before_, before_ind_),
               ::soci::into(wait_at_, wait_at_ind_), ::soci::into(wait_cum_, wait_cum_ind_),
               ::soci::into(legacy_), ::soci::use(key_, "k"), ::soci::use(room_, "room"),
               ::soci::use(cut_, "cut"))) {}

    sliding_summary summary(const std::string& key, long long cut, long long room) {
        key_ = key;
        cut_ = cut;
        room_ = room;
        st_.execute(true);
        sliding_summary r;
        r.legacy = legacy_ != 0;
        r.any = c_ind_ == ::soci::i_ok && at_ind_ == ::soci::i_ok;
        r.total_ever = c_;
        r.newest_at = at_;
        r.in_window = r.any && before_ind_ == ::soci::i_ok;
        r.before_window = before_;
        r.wait_found = r.any && wait_at_ind_ == ::soci::i_ok && wait_cum_ind_ == ::soci::i_ok;
        r.wait_at = wait_at_;
        r.wait_cum = wait_cum_;
        // Past the one row: a SQLite statement left on a row keeps its read snapshot
        // after COMMIT, and the session's next BEGIN IMMEDIATE fails as busy.
        st_.fetch();
        return r;
    }

private:
    std::string key_;
    long long cut_ = 0, room_ = 0;
    long long c_ = 0, at_ = 0, before_ = 0, wait_at_ = 0, wait_cum_ = 0, legacy_ = 0;
    ::soci::indicator c_ind_ = ::soci::i_null, at_ind_ = ::soci::i_null,
                      before_ind_ = ::soci::i_null, wait_at_ind_ = ::soci::i_null,
                      wait_cum_ind_ = ::soci::i_null;
    ::soci::statement st_;
};

/// Fills in the running totals of every row of `key`, in time order: rows written by
/// an older version (before the upgrade, or by one still running during it).
inline void index_sliding_rows(::soci::session& sql, const std::string& key) {
    sql << "UPDATE ratelimit_sliding_entry SET cum_units = r.cum FROM (SELECT id, SUM(units)"
           " OVER (ORDER BY at_ns, id) AS cum FROM ratelimit_sliding_entry WHERE key = :k) AS r"
           " WHERE ratelimit_sliding_entry.id = r.id",
        ::soci::use(key, "k");
}

/// Every live row of `key` as a log, read the way the storage did before the running
/// totals: what peek does on a key that still has rows without them.
inline bool load_state(::soci::session& sql, const std::string& key, const sliding_window& a,
                       sliding_window::state_type& s, std::int64_t now) {
    long long at = 0, units = 0;
    long long cut = sat_add(now, -a.period().count());
    ::soci::statement st =
        (sql.prepare << "SELECT at_ns, units FROM ratelimit_sliding_entry"
                        " WHERE key = :k AND at_ns > :c ORDER BY at_ns, id",
         ::soci::into(at), ::soci::into(units), ::soci::use(key), ::soci::use(cut));
    st.execute();
    while (st.fetch()) {
        s.log.push_back({at, to_u64(units)});
        s.total += to_u64(units);
    }
    if (s.log.empty()) return false;
    s.last = now;
    return true;
}

/// A log of at most two entries on which the algorithm decides as on the key's whole
/// log: the same units in the window and the same newest entry (reset_after); when the
/// row that ends a denial's wait is inside the window, the oldest units up to it form
/// the first entry (evaluate() waits for the first entry where the freed units reach
/// `need`, which is that row).
inline sliding_window::state_type sliding_state(const sliding_summary& r, std::int64_t now) {
    sliding_window::state_type s;
    s.last = now;
    if (!r.in_window) return s;
    const long long total = r.total_ever - r.before_window;
    if (r.wait_found && r.wait_cum > r.before_window && r.wait_cum < r.total_ever) {
        s.log.push_back({r.wait_at, to_u64(r.wait_cum - r.before_window)});
        s.log.push_back({r.newest_at, to_u64(r.total_ever - r.wait_cum)});
    } else {
        s.log.push_back({r.newest_at, to_u64(total)});
    }
    s.total = to_u64(total);
    return s;
}

/// Gives back up to `cost` of the newest units in the window, newest row first.
inline void release_sliding(::soci::session& sql, const std::string& key, long long cut,
                            std::uint64_t cost) {
    long long left = to_ll(cost);
    while (left > 0) {
        long long id = 0, at = 0, units = 0;
        ::soci::indicator ind = ::soci::i_null;
        sql << "SELECT id, at_ns, units FROM ratelimit_sliding_entry WHERE key = :k"
               " AND cum_units IS NOT NULL ORDER BY cum_units DESC LIMIT 1",
            ::soci::into(id, ind), ::soci::into(at), ::soci::into(units), ::soci::use(key);
        if (!sql.got_data() || ind != ::soci::i_ok || at <= cut) return;
        const long long take = left < units ? left : units;
        if (take == units) {
            sql << "DELETE FROM ratelimit_sliding_entry WHERE id = :i", ::soci::use(id);
        } else {
            sql << "UPDATE ratelimit_sliding_entry SET units = units - :t,"
                   " cum_units = cum_units - :t WHERE id = :i",
                ::soci::use(take, "t"), ::soci::use(id, "i");
        }
        left -= take;
    }
}

/// The exact sliding window's decision: O(log n) whatever the number of rows, once
/// every row of the key carries its running total. `q` was prepared on `sql`.
inline outcome decide(::soci::session& sql, sliding_queries& q, const std::string& key,
                      const sliding_window& a, std::int64_t now, std::uint64_t cost, storage_op o) {
    const long long period = a.period().count();
    const long long cut = sat_add(now, -period);
    const long long room = cost <= a.limit() ? to_ll(a.limit() - cost) : 0;
    const std::chrono::nanoseconds n(now);
    sliding_summary r = q.summary(key, cut, room);
    if (r.legacy) {
        if (o == storage_op::peek) {
            sliding_window::state_type s;
            load_state(sql, key, a, s, now);
            return a.peek(s, n, cost);
        }
        index_sliding_rows(sql, key);
        r = q.summary(key, cut, room);
    }
    if (o == storage_op::release) {
        release_sliding(sql, key, cut, cost);
        return outcome{};
    }
    auto s = sliding_state(r, now);
    if (o == storage_op::peek) return a.peek(s, n, cost);
    const outcome out = a.try_acquire(s, n, cost);
    if (!out.allowed || cost == 0) return out;
    // An admission: the key's expired rows go, then a new row, or more units on the
    // newest row when that one is not older than now.
    long long units = to_ll(cost), c = sat_add(r.any ? r.total_ever : 0, units);
    sql << "DELETE FROM ratelimit_sliding_entry WHERE key = :k AND at_ns <= :c", ::soci::use(key),
        ::soci::use(cut);
    if (r.any && r.newest_at >= now) {
        long long newest = r.total_ever;
        sql << "UPDATE ratelimit_sliding_entry SET units = units + :u, cum_units = :c"
               " WHERE key = :k AND cum_units = :n",
            ::soci::use(units, "u"), ::soci::use(c, "c"), ::soci::use(key, "k"),
            ::soci::use(newest, "n");
        return out;
    }
    long long at = now, expires = sat_add(now, period);
    sql << "INSERT INTO ratelimit_sliding_entry (key, at_ns, units, expires_at_ns, cum_units)"
           " VALUES (:k, :a, :u, :e, :c)",
        ::soci::use(key), ::soci::use(at), ::soci::use(units), ::soci::use(expires), ::soci::use(c);
    return out;
}

/// The same, preparing the query for this one decision.
inline outcome decide(::soci::session& sql, const std::string& key, const sliding_window& a,
                      std::int64_t now, std::uint64_t cost, storage_op o) {
    sliding_queries q(sql);
    return decide(sql, q, key, a, now, cost, o);
}

/// Rows of one table `cleanup` would delete: the WHERE clause and its bound time.
inline std::string cleanup_condition(std::string_view table) {
    if (table == "ratelimit_counter" || table == "ratelimit_sliding_entry")
        return "expires_at_ns <= :t";
    return "updated_at_ns < :t";
}

}  // namespace detail

/// True when the state tables exist at their latest version.
inline bool state_schema_current(::soci::session& sql) {
    return schema_version(sql, state_migrations.component) >= latest_version(state_migrations);
}

/// The SQL state storage over algorithm A (any_algorithm or one built-in algorithm).
/// Copies share one pool of sessions and one set of counters. The `now` argument is
/// ignored: the database's clock decides, so every machine agrees.
/// Thread safety: every operation may be called concurrently from any thread.
template <class A = any_algorithm>
class basic_sql_state_storage {
public:
    using algorithm_type = A;

    /// Opens no connection yet (the first decision does). The state tables must
    /// exist (`smart-ratelimit migrate`, or migrate() with state_migrations).
    explicit basic_sql_state_storage(database_url url, sql_state_options o = {})
        : impl_(std::make_shared<impl>(std::move(url), std::move(o))) {
        if (impl_->opts.max_connections == 0)
            throw config_error("SQL state storage: max_connections must be >= 1");
    }
    explicit basic_sql_state_storage(std::string_view url, sql_state_options o = {})
        : basic_sql_state_storage(parse_database_url(url), std::move(o)) {}

    outcome acquire(std::string_view key, const A& a, std::chrono::nanoseconds,
                    std::uint64_t cost) {
        return guarded(key, a, cost, storage_op::acquire);
    }
    outcome peek(std::string_view key, const A& a, std::chrono::nanoseconds, std::uint64_t cost) {
        return guarded(key, a, cost, storage_op::peek);
    }
    void release(std::string_view key, const A& a, std::chrono::nanoseconds, std::uint64_t cost) {
        guarded(key, a, cost, storage_op::release);
    }

    /// The database's clock (nanoseconds since the Unix epoch, microsecond resolution).
    /// Throws storage_error when the database is unreachable.
    std::int64_t database_now_ns() {
        return with_session(
            [&](pooled& p) { return detail::database_now_ns(*p.sql, dialect_of()); });
    }

    /// True when the state tables exist at their latest version; storage_error when unreachable.
    bool schema_current() {
        return with_session([&](pooled& p) { return state_schema_current(*p.sql); });
    }

    sql_state_stats stats() const noexcept {
        sql_state_stats s;
        s.decisions = impl_->decisions.load(std::memory_order_relaxed);
        s.errors = impl_->errors.load(std::memory_order_relaxed);
        s.connects = impl_->connects.load(std::memory_order_relaxed);
        return s;
    }
    const database_url& url() const noexcept { return impl_->url; }
    const sql_state_options& options() const noexcept { return impl_->opts; }

private:
    // A session of the pool and the statements prepared on it (destroyed first).
    struct pooled {
        std::unique_ptr<::soci::session> sql;
        std::unique_ptr<detail::sliding_queries> sliding;  // on its first sliding decision
    };

    struct impl {
        impl(database_url u, sql_state_options o) : url(std::move(u)), opts(std::move(o)) {}
        database_url url;
        sql_state_options opts;
        std::mutex m;
        std::condition_variable cv;
        std::vector<std::unique_ptr<pooled>> idle;
        std::size_t open = 0;
        std::atomic<std::uint64_t> decisions{0}, errors{0}, connects{0};
    };

    dialect dialect_of() const noexcept { return impl_->url.kind; }

    // Borrows a session (opening one when below the cap), runs f, returns it; a
    // session that failed is closed rather than returned.
    template <class F>
    auto with_session(F&& f) -> decltype(f(std::declval<pooled&>())) {
        std::unique_ptr<pooled> s;
        {
            std::unique_lock<std::mutex> lock(impl_->m);
            impl_->cv.wait(lock, [&] {
                return !impl_->idle.empty() || impl_->open < impl_->opts.max_connections;
            });
            if (!impl_->idle.empty()) {
                s = std::move(impl_->idle.back());
                impl_->idle.pop_back();
            } else {
                ++impl_->open;
            }
        }
        auto give_back = [&](bool keep) {
            std::lock_guard<std::mutex> lock(impl_->m);
            if (keep && s) {
                impl_->idle.push_back(std::move(s));
            } else {
                --impl_->open;
            }
            impl_->cv.notify_one();
        };
        try {
            if (!s) {
                s = std::make_unique<pooled>();
                s->sql = open_session(impl_->url);
                impl_->connects.fetch_add(1, std::memory_order_relaxed);
            }
            if constexpr (std::is_void_v<decltype(f(*s))>) {
                f(*s);
                give_back(true);
            } else {
                auto r = f(*s);
                give_back(true);
                return r;
            }
        } catch (const ::soci::soci_error& e) {
            give_back(false);
            throw storage_error("SQL state storage '" + impl_->url.redacted() + "': " + e.what());
        } catch (...) {
            give_back(false);
            throw;
        }
    }

    outcome guarded(std::string_view key, const A& a, std::uint64_t cost, storage_op o) {
        try {
            outcome out = run(key, a, cost, o);
            impl_->decisions.fetch_add(1, std::memory_order_relaxed);
            return out;
        } catch (const std::exception&) {
            impl_->errors.fetch_add(1, std::memory_order_relaxed);
            if (impl_->opts.errors == on_error::raise) throw;
            return degraded_outcome();
        }
    }

    outcome run(std::string_view key, const A& a, std::uint64_t cost, storage_op o) {
        std::string k;
        k.reserve(impl_->opts.key_prefix.size() + key.size());
        detail::append_storable_key(k, impl_->opts.key_prefix);
        detail::append_storable_key(k, key);
        const dialect d = dialect_of();
        return with_session([&](pooled& p) {
            ::soci::session& sql = *p.sql;
            long long now_us = 0;
            if (d == dialect::sqlite) {
                sql << (o == storage_op::peek ? "BEGIN" : "BEGIN IMMEDIATE");
            } else {
                sql << "BEGIN";
            }
            try {
                if (d == dialect::postgresql && o != storage_op::peek) {
                    // Serializes the decisions on this key, row or no row; taken before the clock.
                    sql << "SELECT " + std::string(detail::now_micros_sql(d)) +
                               " FROM (SELECT pg_advisory_xact_lock(hashtextextended(:k, 7368052)) "
                               "OFFSET 0) AS l",
                        ::soci::into(now_us), ::soci::use(k);
                } else {
                    sql << "SELECT " + std::string(detail::now_micros_sql(d)), ::soci::into(now_us);
                }
                const std::int64_t now = static_cast<std::int64_t>(now_us) * 1000;
                const auto decide = [&](const auto& alg) {
                    if constexpr (std::is_same_v<std::decay_t<decltype(alg)>, sliding_window>) {
                        if (!p.sliding) p.sliding = std::make_unique<detail::sliding_queries>(sql);
                        return detail::decide(sql, *p.sliding, k, alg, now, cost, o);
                    } else {
                        return detail::decide(sql, k, alg, now, cost, o);
                    }
                };
                outcome out;
                if constexpr (std::is_same_v<A, any_algorithm>) {
                    out = std::visit(decide, a.get());
                } else {
                    out = decide(a);
                }
                sql << "COMMIT";
                return out;
            } catch (...) {
                try {
                    sql << "ROLLBACK";
                } catch (...) {}
                throw;
            }
        });
    }

    std::shared_ptr<impl> impl_;
};

/// The SQL state storage with run-time algorithm choice.
using sql_state_storage = basic_sql_state_storage<any_algorithm>;

static_assert(storage_backend<sql_state_storage>);

/// Rows `cleanup_state` deleted (or, in a dry run, would delete), per table.
struct state_cleanup_counts {
    std::uint64_t counters = 0;         ///< ratelimit_counter rows past their window
    std::uint64_t sliding_entries = 0;  ///< ratelimit_sliding_entry rows out of their window
    std::uint64_t token_buckets = 0;    ///< ratelimit_token_bucket rows idle longer than stale_days
    std::uint64_t leaky_buckets = 0;    ///< ratelimit_leaky_bucket rows idle longer than stale_days
    std::uint64_t total() const noexcept {
        return counters + sliding_entries + token_buckets + leaky_buckets;
    }
    std::uint64_t& operator[](std::size_t table) noexcept {
        return table == 0   ? counters
               : table == 1 ? sliding_entries
               : table == 2 ? token_buckets
                            : leaky_buckets;
    }
};

/// Settings of one cleanup run.
struct state_cleanup_options {
    int stale_days = 7;     ///< buckets not updated for longer than this are deleted
    int batch_size = 1000;  ///< rows per DELETE (one short transaction each); must be > 0
    bool dry_run = false;   ///< count, delete nothing
    /// Called after each batch with the table and the rows it deleted (or would delete).
    std::function<void(std::string_view table, std::uint64_t rows)> on_batch;
};

/// Prunes the state tables on the database's clock: counters and sliding-window
/// entries whose window has passed, token/leaky buckets idle longer than
/// `stale_days`. Never touches ratelimit_event. config_error for batch_size <= 0 or
/// stale_days < 0; storage_error when the database fails.
inline state_cleanup_counts cleanup_state(::soci::session& sql, dialect d,
                                          const state_cleanup_options& o) {
    if (o.batch_size <= 0)
        throw config_error("cleanup: batch size must be at least 1 (got " +
                           std::to_string(o.batch_size) + ")");
    if (o.stale_days < 0)
        throw config_error("cleanup: stale days must not be negative (got " +
                           std::to_string(o.stale_days) + ")");
    state_cleanup_counts out;
    try {
        const std::int64_t now = detail::database_now_ns(sql, d);
        const long long stale_before = ::smart_ratelimit::detail::sat_add(
            now, -static_cast<std::int64_t>(o.stale_days) * 86'400'000'000'000LL);
        for (std::size_t t = 0; t < std::size(state_tables); ++t) {
            const std::string table(state_tables[t]);
            long long bound = t < 2 ? static_cast<long long>(now) : stale_before;
            const std::string cond = detail::cleanup_condition(table);
            if (o.dry_run) {
                long long n = 0;
                sql << "SELECT COUNT(*) FROM " + table + " WHERE " + cond, ::soci::into(n),
                    ::soci::use(bound, "t");
                out[t] = detail::to_u64(n);
                if (o.on_batch && n > 0) o.on_batch(table, out[t]);
                continue;
            }
            const std::string rowid = d == dialect::sqlite ? "rowid" : "ctid";
            const std::string del = "DELETE FROM " + table + " WHERE " + rowid + " IN (SELECT " +
                                    rowid + " FROM " + table + " WHERE " + cond + " LIMIT " +
                                    std::to_string(o.batch_size) + ")";
            for (;;) {
                ::soci::statement st = (sql.prepare << del, ::soci::use(bound, "t"));
                st.execute(true);
                const long long n = st.get_affected_rows();
                if (n > 0) {
                    out[t] += static_cast<std::uint64_t>(n);
                    if (o.on_batch) o.on_batch(table, static_cast<std::uint64_t>(n));
                }
                if (n < o.batch_size) break;
            }
        }
    } catch (const ::soci::soci_error& e) {
        throw storage_error(std::string("cleanup: ") + e.what());
    }
    return out;
}

}  // namespace smart_ratelimit::soci
