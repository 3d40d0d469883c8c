// smart_ratelimit/soci/detail/analytics/bound_query.hpp
// An analytics query under construction: SQL text whose every value is a bound
// parameter (:p0, :p1, ...), the dialect's spellings of its conditions, and how
// to run it and read its rows.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <soci/soci.h>

#include <smart_ratelimit/error.hpp>
#include <smart_ratelimit/event.hpp>
#include <smart_ratelimit/soci/database_url.hpp>
#include <smart_ratelimit/soci/detail/analytics/window_plan.hpp>
#include <smart_ratelimit/soci/session.hpp>

namespace smart_ratelimit::soci::detail::analytics {

/// Query text plus its bound values (strings and integers), named :p0, :p1, ...
class bound_query {
public:
    explicit bound_query(dialect d) : d_(d) {}
    dialect kind() const noexcept { return d_; }

    std::string time(event_time t) {
        values_.push_back({time_value(d_, t), 0, true});
        return time_param(d_, ":p" + std::to_string(values_.size() - 1));
    }
    std::string integer(std::int64_t v) {
        values_.push_back({{}, static_cast<long long>(v), false});
        return d_ == dialect::sqlite
                   ? ":p" + std::to_string(values_.size() - 1)
                   : "CAST(:p" + std::to_string(values_.size() - 1) + " AS BIGINT)";
    }
    std::string text(std::string_view v) {
        values_.push_back({std::string(v), 0, true});
        return ":p" + std::to_string(values_.size() - 1);
    }
    /// `timestamp` within a raw range.
    std::string raw_condition(const window_plan::raw_range& r) {
        std::string c = "timestamp >= " + time(r.lo);
        if (!r.open_end) c += " AND timestamp <= " + time(r.hi);
        return c;
    }
    std::string hour_condition(const window_plan& p) {
        std::string c = "hour >= " + integer(p.hour_from);
        if (p.hour_to) c += " AND hour < " + integer(*p.hour_to);
        return c;
    }
    std::string blocked() const {
        return d_ == dialect::sqlite ? "allowed = 0" : "allowed = false";
    }
    std::string blocked_int() const {
        return d_ == dialect::sqlite ? "CASE WHEN allowed = 0 THEN 1 ELSE 0 END"
                                     : "CASE WHEN allowed THEN 0 ELSE 1 END";
    }
    std::string collate() const { return d_ == dialect::sqlite ? "" : " COLLATE \"C\""; }

    /// Runs `sql_text`, whose rows are three integers, fetching them in blocks
    /// (SOCI's vector into): `row(a, b, c)` for each row.
    template <class Row>
    void run_int3(::soci::session& sql, const std::string& sql_text, Row&& row) {
        constexpr std::size_t block = 4096;
        std::vector<long long> a(block), b(block), c(block);
        run(
            sql, sql_text,
            [&](::soci::statement& st) {
                st.exchange(::soci::into(a));
                st.exchange(::soci::into(b));
                st.exchange(::soci::into(c));
            },
            [&] {
                for (std::size_t i = 0; i < a.size(); ++i) row(a[i], b[i], c[i]);
                a.resize(block);
                b.resize(block);
                c.resize(block);
            });
    }

    /// Runs `sql_text`; `bind_into(st)` adds the into() targets; `row()` is called
    /// for each result row.
    template <class BindInto, class Row>
    void run(::soci::session& sql, const std::string& sql_text, BindInto&& bind_into, Row&& row) {
        try {
            ::soci::statement st(sql);
            bind_into(st);
            for (std::size_t i = 0; i < values_.size(); ++i) {
                const std::string name = "p" + std::to_string(i);
                if (values_[i].is_text)
                    st.exchange(::soci::use(values_[i].s, name));
                else
                    st.exchange(::soci::use(values_[i].i, name));
            }
            st.alloc();
            st.prepare(sql_text);
            st.define_and_bind();
            if (st.execute(true)) {
                do row();
                while (st.fetch());
            }
        } catch (const ::soci::soci_error& e) {
            throw storage_error(std::string("analytics query on ratelimit_event failed: ") +
                                e.what());
        }
    }

private:
    struct value {
        std::string s;
        long long i;
        bool is_text;
    };
    dialect d_;
    std::vector<value> values_;
};

/// The UNION ALL of a window's arms: `rollup_arm()` when the plan uses the rollups,
/// then `raw_arm(range)` for each raw edge range (called in that order, so their
/// bound parameters are numbered in text order).
template <class RollupArm, class RawArm>
std::string union_arms(const window_plan& plan, RollupArm&& rollup_arm, RawArm&& raw_arm) {
    std::string text;
    if (plan.use_rollup) text += rollup_arm();
    for (const auto& r : plan.raw) {
        if (!text.empty()) text += " UNION ALL ";
        text += raw_arm(r);
    }
    return text;
}

/// A set of key ids as one bound text parameter: `column IN` the set.
inline std::string in_id_set(bound_query& q, std::string_view column,
                             const std::vector<std::int64_t>& ids) {
    std::string list;
    for (const auto id : ids) {
        if (!list.empty()) list += ',';
        list += std::to_string(id);
    }
    if (q.kind() == dialect::postgresql)
        return std::string(column) + " = ANY(CAST(" + q.text("{" + list + "}") + " AS BIGINT[]))";
    return std::string(column) + " IN (SELECT value FROM json_each(" + q.text("[" + list + "]") +
           "))";
}

}  // namespace smart_ratelimit::soci::detail::analytics
