// smart_ratelimit/soci/event_stream.hpp
// Reading the event log back: an `event_query` (window, key, order, chunk size)
// and `event_stream`, a single-pass range over the matching rows fetched in
// chunks by keyset pagination, so memory stays bounded whatever the table size.
#pragma once

#include <chrono>
#include <cstddef>
#include <iterator>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <soci/soci.h>

#include <smart_ratelimit/error.hpp>
#include <smart_ratelimit/event.hpp>
#include <smart_ratelimit/soci/database_url.hpp>
#include <smart_ratelimit/soci/detail/outcome_sql.hpp>
#include <smart_ratelimit/soci/session.hpp>

namespace smart_ratelimit::soci {

/// Which end a read starts from.
enum class event_order { newest_first, oldest_first };

/// A read: the window [since, until] (both inclusive, either open), an optional key,
/// the order (by timestamp, then id) and how many rows one round trip fetches.
struct event_query {
    std::optional<event_time> since{};
    std::optional<event_time> until{};
    std::optional<std::string> key{};
    event_order order = event_order::newest_first;
    std::size_t chunk = 1000;
};

/// A single-pass input range over stored events, fetched `chunk` rows at a time by
/// keyset pagination on (timestamp, id) over its own connection: memory stays
/// bounded whatever the table size. Each event's outcome is read from the outcome
/// column (detail::read_outcome: NULL, as in rows written before events v3 or by an
/// older writer, and unknown text read as outcome_of_allowed(allowed)). Iteration
/// throws storage_error if the database fails mid-read. Thread safety: one thread at a time.
class event_stream {
public:
    class iterator {
    public:
        using value_type = event;
        using reference = const event&;
        using pointer = const event*;
        using difference_type = std::ptrdiff_t;
        using iterator_category = std::input_iterator_tag;
        using iterator_concept = std::input_iterator_tag;

        iterator() = default;
        const event& operator*() const { return s_->buffer_[s_->pos_]; }
        const event* operator->() const { return &s_->buffer_[s_->pos_]; }
        iterator& operator++() {
            s_->advance();
            return *this;
        }
        void operator++(int) { s_->advance(); }
        friend bool operator==(const iterator& it, std::default_sentinel_t) noexcept {
            return it.done();
        }

    private:
        friend class event_stream;
        explicit iterator(event_stream* s) : s_(s) {}
        bool done() const noexcept { return s_ == nullptr || s_->at_end(); }
        event_stream* s_ = nullptr;
    };

    event_stream(std::unique_ptr<::soci::session> sql, dialect d, event_query q)
        : sql_(std::move(sql)), dialect_(d), query_(std::move(q)) {
        if (query_.chunk == 0) throw config_error("event_query.chunk must be > 0");
    }
    event_stream(event_stream&&) noexcept = default;
    event_stream& operator=(event_stream&&) noexcept = default;

    /// Starts the read (first chunk fetched here). Call once.
    iterator begin() {
        if (!started_) {
            started_ = true;
            fetch();
        }
        return iterator{this};
    }
    std::default_sentinel_t end() const noexcept { return {}; }

private:
    bool at_end() const noexcept { return pos_ >= buffer_.size(); }

    void advance() {
        ++pos_;
        if (pos_ >= buffer_.size() && !exhausted_) fetch();
    }

    void fetch() {
        buffer_.clear();
        pos_ = 0;
        if (exhausted_) return;
        const bool desc = query_.order == event_order::newest_first;
        if (!outcome_checked_) {
            try {
                has_outcome_ = detail::outcome_column_ready(*sql_);
            } catch (const storage_error&) {
                has_outcome_ = false;  // the read below reports the failure
            }
            outcome_checked_ = true;
        }
        std::string q = "SELECT CAST(id AS BIGINT), " + time_column_micros(dialect_) +
                        ", key, rule_name, path, method, " +
                        (dialect_ == dialect::sqlite ? "allowed" : "CAST(allowed AS INTEGER)") +
                        ", count, \"limit\", ip_address, user_id, " +
                        detail::outcome_select(has_outcome_) + " FROM ratelimit_event WHERE 1 = 1";
        std::vector<std::string> values;
        values.reserve(5);
        if (query_.since) {
            q += " AND timestamp >= " + time_param(dialect_, ":since");
            values.push_back(time_value(dialect_, *query_.since));
        }
        if (query_.until) {
            q += " AND timestamp <= " + time_param(dialect_, ":until");
            values.push_back(time_value(dialect_, *query_.until));
        }
        if (query_.key) {
            q += " AND key = :key";
            values.push_back(*query_.key);
        }
        if (have_cursor_) {
            const char* op = desc ? " < " : " > ";
            q += std::string(" AND (timestamp") + op + time_param(dialect_, ":c1") +
                 " OR (timestamp = " + time_param(dialect_, ":c2") + " AND id" + op + ":cid))";
            values.push_back(
                time_value(dialect_, event_time{std::chrono::microseconds{cursor_ts_}}));
            values.push_back(values.back());
        }
        q += desc ? " ORDER BY timestamp DESC, id DESC" : " ORDER BY timestamp ASC, id ASC";
        q += " LIMIT " + std::to_string(query_.chunk);

        const std::size_t n = query_.chunk;
        std::vector<long long> ids(n), ts(n), counts(n), limits(n);
        std::vector<int> allowed(n);
        std::vector<std::string> keys(n), rules(n), paths(n), methods(n), ips(n), users(n),
            outcomes(n);
        std::vector<::soci::indicator> rule_ind(n), path_ind(n), method_ind(n), ip_ind(n),
            user_ind(n), outcome_ind(n);
        long long cid = cursor_id_;
        try {
            ::soci::statement st(*sql_);
            st.exchange(::soci::into(ids));
            st.exchange(::soci::into(ts));
            st.exchange(::soci::into(keys));
            st.exchange(::soci::into(rules, rule_ind));
            st.exchange(::soci::into(paths, path_ind));
            st.exchange(::soci::into(methods, method_ind));
            st.exchange(::soci::into(allowed));
            st.exchange(::soci::into(counts));
            st.exchange(::soci::into(limits));
            st.exchange(::soci::into(ips, ip_ind));
            st.exchange(::soci::into(users, user_ind));
            st.exchange(::soci::into(outcomes, outcome_ind));
            std::size_t v = 0;
            if (query_.since) st.exchange(::soci::use(values[v++], "since"));
            if (query_.until) st.exchange(::soci::use(values[v++], "until"));
            if (query_.key) st.exchange(::soci::use(values[v++], "key"));
            if (have_cursor_) {
                st.exchange(::soci::use(values[v], "c1"));
                st.exchange(::soci::use(values[v + 1], "c2"));
                st.exchange(::soci::use(cid, "cid"));
            }
            st.alloc();
            st.prepare(q);
            st.define_and_bind();
            if (!st.execute(true)) ids.clear();
        } catch (const ::soci::soci_error& e) {
            throw storage_error(std::string("reading ratelimit_event failed: ") + e.what());
        }
        const std::size_t got = ids.size();
        buffer_.resize(got);
        auto text = [](std::vector<std::string>& col, std::vector<::soci::indicator>& ind,
                       std::size_t i) {
            return ind[i] == ::soci::i_ok ? std::move(col[i]) : std::string();
        };
        for (std::size_t i = 0; i < got; ++i) {
            event& e = buffer_[i];
            e.timestamp = event_time{std::chrono::microseconds{ts[i]}};
            e.key = std::move(keys[i]);
            e.rule_name = text(rules, rule_ind, i);
            e.path = text(paths, path_ind, i);
            e.method = text(methods, method_ind, i);
            e.allowed = allowed[i] != 0;
            e.outcome = detail::read_outcome(e.allowed, outcome_ind[i], outcomes[i]);
            e.count = counts[i];
            e.limit = limits[i];
            if (ip_ind[i] == ::soci::i_ok) e.ip_address = std::move(ips[i]);
            if (user_ind[i] == ::soci::i_ok) e.user_id = std::move(users[i]);
        }
        if (got > 0) {
            have_cursor_ = true;
            cursor_ts_ = ts[got - 1];
            cursor_id_ = ids[got - 1];
        }
        if (got < n) exhausted_ = true;
    }

    std::unique_ptr<::soci::session> sql_;
    dialect dialect_;
    event_query query_;
    std::vector<event> buffer_;
    std::size_t pos_ = 0;
    bool started_ = false;
    bool exhausted_ = false;
    bool have_cursor_ = false;
    bool outcome_checked_ = false;
    bool has_outcome_ = false;
    long long cursor_ts_ = 0;
    long long cursor_id_ = 0;
};

}  // namespace smart_ratelimit::soci
