// smart_ratelimit/soci/impl/sql_analytics.hpp
// The out-of-line bodies of sql_analytics (included only at the bottom of
// soci/sql_analytics.hpp): the summary, rule and per-key queries, and top-N
// offenders by the threshold algorithm over the key spans. Degraded counts come
// from raw rows (detail/outcome_sql.hpp), never from the rollups.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <tuple>
#include <unordered_map>
#include <utility>
#include <vector>

#include <soci/soci.h>

#include <smart_ratelimit/analytics/csv.hpp>
#include <smart_ratelimit/analytics/event_range.hpp>
#include <smart_ratelimit/analytics/results.hpp>
#include <smart_ratelimit/error.hpp>
#include <smart_ratelimit/soci/detail/analytics/bound_query.hpp>
#include <smart_ratelimit/soci/detail/analytics/read_snapshot.hpp>
#include <smart_ratelimit/soci/detail/analytics/window_plan.hpp>
#include <smart_ratelimit/soci/detail/outcome_sql.hpp>
#include <smart_ratelimit/soci/session.hpp>

namespace smart_ratelimit::soci {

namespace detail::analytics {

inline void check_count(int value, const char* name) {
    if (value < 0)
        throw std::invalid_argument(std::string("analytics: ") + name + " must be >= 0, got " +
                                    std::to_string(value));
}

/// Runs `text`, whose rows are (key, blocked count), into offenders in row order.
inline std::vector<offender> read_offenders(bound_query& q, ::soci::session& sql,
                                            const std::string& text) {
    std::vector<offender> out;
    std::string key;
    long long n = 0;
    q.run(
        sql, text,
        [&](::soci::statement& st) {
            st.exchange(::soci::into(key));
            st.exchange(::soci::into(n));
        },
        [&] {
            out.push_back(offender{key, n});
        });
    return out;
}

}  // namespace detail::analytics

inline traffic_summary sql_analytics::traffic_summary_at(int days, event_time now) const {
    using namespace detail::analytics;
    traffic_summary s;
    s.days = days;
    const event_time start = window_start(now, days);
    if (window_empty(start, end)) return s;
    const window_plan plan = plan_window(start, end, rollups());
    const bool outcomes = detail::outcome_column_ready(sql);
    bound_query q(kind);
    std::string text =
        "SELECT CAST(COALESCE(SUM(t), 0) AS BIGINT), CAST(COALESCE(SUM(b), 0) AS BIGINT),"
        " CAST(COALESCE(SUM(g), 0) AS BIGINT) FROM (";
    text += union_arms(
        plan,
        [&] {
            return "SELECT total AS t, blocked AS b, 0 AS g FROM ratelimit_rollup_hour WHERE " +
                   q.hour_condition(plan);
        },
        [&](const window_plan::raw_range& r) {
            return "SELECT COUNT(*) AS t, COALESCE(SUM(" + q.blocked_int() +
                   "), 0) AS b, 0 AS g FROM ratelimit_event WHERE " + q.raw_condition(r);
        });
    // Degraded rows are rare and not rolled up: one arm over the whole window reads
    // them from the partial index (ratelimit_event_degraded_timestamp_idx).
    if (outcomes) {
        const window_plan::raw_range whole{start, end.value_or(start), !end.has_value()};
        text += " UNION ALL SELECT 0 AS t, 0 AS b, COUNT(*) AS g FROM ratelimit_event WHERE " +
                detail::degraded_condition(kind, outcomes) + " AND " + q.raw_condition(whole);
    }
    text += ") w";
    long long total = 0, blocked = 0, degraded = 0;
    q.run(
        sql, text,
        [&](::soci::statement& st) {
            st.exchange(::soci::into(total));
            st.exchange(::soci::into(blocked));
            st.exchange(::soci::into(degraded));
        },
        [] {});
    s.total = total;
    s.blocked = blocked;
    s.degraded = degraded;
    s.allowed = total - blocked - degraded;
    s.block_rate = total == 0 ? 0.0 : static_cast<double>(blocked) / static_cast<double>(total);
    return s;
}

inline std::vector<offender> sql_analytics::top_offenders_at(int days, int limit,
                                                             event_time now) const {
    using namespace detail::analytics;
    check_count(limit, "limit");
    std::vector<offender> out;
    const event_time start = window_start(now, days);
    if (limit == 0 || window_empty(start, end)) return out;
    const window_plan plan = plan_window(start, end, rollups());
    if (!plan.use_rollup) return raw_top_offenders(plan, limit);
    read_snapshot snapshot(sql, kind);
    return span_top_offenders(plan, static_cast<std::size_t>(limit));
}

inline std::vector<rule_hits> sql_analytics::rule_hit_counts_at(int days, int limit,
                                                                event_time now) const {
    using namespace detail::analytics;
    check_count(limit, "limit");
    std::vector<rule_hits> out;
    const event_time start = window_start(now, days);
    if (limit == 0 || window_empty(start, end)) return out;
    const window_plan plan = plan_window(start, end, rollups());
    bound_query q(kind);
    std::string text =
        "SELECT rule_name, CAST(SUM(h) AS BIGINT) AS hs, CAST(SUM(b) AS BIGINT) FROM (";
    text += union_arms(
        plan,
        [&] {
            return "SELECT rule_name, hits AS h, blocked AS b FROM ratelimit_rollup_rule_hour "
                   "WHERE " +
                   q.hour_condition(plan);
        },
        [&](const window_plan::raw_range& r) {
            return "SELECT rule_name, COUNT(*) AS h, SUM(" + q.blocked_int() +
                   ") AS b FROM ratelimit_event WHERE rule_name <> '' AND " + q.raw_condition(r) +
                   " GROUP BY rule_name";
        });
    text += ") w GROUP BY rule_name ORDER BY hs DESC, rule_name" + q.collate() + " ASC LIMIT " +
            q.integer(limit);
    std::string name;
    long long hits = 0, blocked = 0;
    q.run(
        sql, text,
        [&](::soci::statement& st) {
            st.exchange(::soci::into(name));
            st.exchange(::soci::into(hits));
            st.exchange(::soci::into(blocked));
        },
        [&] {
            out.push_back(rule_hits{name, hits, blocked});
        });
    return out;
}

inline offender_detail sql_analytics::offender_detail_at(std::string_view key, int days, int recent,
                                                         event_time now) const {
    using namespace detail::analytics;
    check_count(recent, "recent");
    offender_detail d;
    d.key = std::string(key);
    d.days = days;
    const event_time start = window_start(now, days);
    if (window_empty(start, end)) return d;
    const window_plan::raw_range r{start, end.value_or(start), !end.has_value()};
    const bool outcomes = detail::outcome_column_ready(sql);  // may fail: before the snapshot
    // Both statements read one key's index range, in one snapshot (the totals and the
    // recent events agree) and without parallel workers.
    read_snapshot snapshot(sql, kind, snapshot_plans::serial);
    {
        // One pass over the key's rows in the window (the (key, timestamp) index, which
        // on PostgreSQL carries allowed, outcome and path: an index-only scan), grouped
        // by path: the totals are the groups' sums, the paths those with blocked rows.
        bound_query q(kind);
        const std::string text = "SELECT path, COUNT(*), CAST(SUM(" + q.blocked_int() +
                                 ") AS BIGINT), CAST(SUM(" + detail::degraded_int(kind, outcomes) +
                                 ") AS BIGINT), " + time_column_micros(kind, "MIN(timestamp)") +
                                 ", " + time_column_micros(kind, "MAX(timestamp)") +
                                 " FROM ratelimit_event WHERE key = " + q.text(key) + " AND " +
                                 q.raw_condition(r) + " GROUP BY path";
        std::string path;
        ::soci::indicator path_ind = ::soci::i_ok;
        long long total = 0, blocked = 0, degraded = 0, first = 0, last = 0;
        std::optional<long long> first_seen, last_seen;
        std::vector<path_count> paths;
        q.run(
            sql, text,
            [&](::soci::statement& st) {
                st.exchange(::soci::into(path, path_ind));
                st.exchange(::soci::into(total));
                st.exchange(::soci::into(blocked));
                st.exchange(::soci::into(degraded));
                st.exchange(::soci::into(first));
                st.exchange(::soci::into(last));
            },
            [&] {
                d.total += total;
                d.blocked += blocked;
                d.degraded += degraded;
                first_seen = std::min(first_seen.value_or(first), first);
                last_seen = std::max(last_seen.value_or(last), last);
                if (blocked > 0)
                    paths.push_back(
                        path_count{path_ind == ::soci::i_ok ? path : std::string(), blocked});
            });
        d.allowed = d.total - d.blocked - d.degraded;
        d.block_rate =
            d.total == 0 ? 0.0 : static_cast<double>(d.blocked) / static_cast<double>(d.total);
        if (d.total == 0) return d;
        d.first_seen = event_time{std::chrono::microseconds{*first_seen}};
        d.last_seen = event_time{std::chrono::microseconds{*last_seen}};
        // As the in-memory drill-down: by count, then path in byte order, the first 20.
        smart_ratelimit::detail::analytics::top_k(
            paths, offender_detail_max_paths, [](const path_count& p) { return p.blocked_count; },
            [](const path_count& p) -> const std::string& { return p.path; });
        d.by_path = std::move(paths);
    }
    if (recent > 0) {
        bound_query q(kind);
        const std::string text =
            "SELECT " + time_column_micros(kind) + ", path, method, " +
            (kind == dialect::sqlite ? "allowed" : "CAST(allowed AS INTEGER)") +
            ", count, \"limit\", rule_name, " + detail::outcome_select(outcomes) +
            " FROM ratelimit_event WHERE key = " + q.text(key) + " AND " + q.raw_condition(r) +
            " ORDER BY timestamp DESC, id DESC LIMIT " + q.integer(recent);
        long long ts = 0, count = 0, limit = 0;
        int allowed = 0;
        std::string path, method, rule, outcome;
        ::soci::indicator pi = ::soci::i_ok, mi = ::soci::i_ok, ri = ::soci::i_ok,
                          oi = ::soci::i_null;
        q.run(
            sql, text,
            [&](::soci::statement& st) {
                st.exchange(::soci::into(ts));
                st.exchange(::soci::into(path, pi));
                st.exchange(::soci::into(method, mi));
                st.exchange(::soci::into(allowed));
                st.exchange(::soci::into(count));
                st.exchange(::soci::into(limit));
                st.exchange(::soci::into(rule, ri));
                st.exchange(::soci::into(outcome, oi));
            },
            [&] {
                d.recent_events.push_back(
                    recent_event{event_time{std::chrono::microseconds{ts}},
                                 pi == ::soci::i_ok ? path : "", mi == ::soci::i_ok ? method : "",
                                 allowed != 0, count, limit, ri == ::soci::i_ok ? rule : "",
                                 detail::read_outcome(allowed != 0, oi, outcome)});
            });
    }
    return d;
}

inline std::vector<offender> sql_analytics::raw_top_offenders(
    const detail::analytics::window_plan& plan, int limit) const {
    using namespace detail::analytics;
    bound_query q(kind);
    std::string text = "SELECT key, CAST(SUM(n) AS BIGINT) AS c FROM (";
    for (std::size_t i = 0; i < plan.raw.size(); ++i) {
        if (i > 0) text += " UNION ALL ";
        text += "SELECT key, COUNT(*) AS n FROM ratelimit_event WHERE " + q.blocked() + " AND " +
                q.raw_condition(plan.raw[i]) + " GROUP BY key";
    }
    text +=
        ") w GROUP BY key ORDER BY c DESC, key" + q.collate() + " ASC LIMIT " + q.integer(limit);
    return read_offenders(q, sql, text);
}

inline std::string sql_analytics::raw_id_arm(detail::analytics::bound_query& q,
                                             const detail::analytics::window_plan& plan) {
    if (plan.raw.empty()) return {};
    std::string text = "SELECT k.id AS key_id, r.n FROM (SELECT key, COUNT(*) AS n FROM (";
    for (std::size_t i = 0; i < plan.raw.size(); ++i) {
        if (i > 0) text += " UNION ALL ";
        text += "SELECT key FROM ratelimit_event WHERE " + q.blocked() + " AND " +
                q.raw_condition(plan.raw[i]);
    }
    return text + ") e GROUP BY key) r JOIN ratelimit_rollup_key k ON k.key = r.key";
}

inline void sql_analytics::complete(const std::vector<detail::analytics::key_span>& spans,
                                    const std::vector<std::int64_t>& threshold,
                                    const std::vector<std::int64_t>& open,
                                    std::unordered_map<std::int64_t, known_key>& known) const {
    using namespace detail::analytics;
    bound_query q(kind);
    std::string text;
    if (kind == dialect::postgresql) {
        std::string ss, ls, bs, ks;
        for (const auto id : open) {
            const auto& k = known[id];
            for (std::size_t i = 0; i < spans.size(); ++i) {
                if (threshold[i] == 0) continue;
                if (k.seen(static_cast<std::uint32_t>(i))) continue;
                const char* sep = ss.empty() ? "" : ",";
                ss += sep + std::to_string(i);
                ls += sep + std::to_string(spans[i].level);
                bs += sep + std::to_string(spans[i].bucket);
                ks += sep + std::to_string(id);
            }
        }
        if (ss.empty()) return;
        text = "SELECT p.s, p.k, x.blocked FROM unnest(CAST(" + q.text("{" + ss + "}") +
               " AS BIGINT[]), CAST(" + q.text("{" + ls + "}") + " AS INTEGER[]), CAST(" +
               q.text("{" + bs + "}") + " AS BIGINT[]), CAST(" + q.text("{" + ks + "}") +
               " AS BIGINT[])) AS p(s, l, b, k), LATERAL (SELECT blocked FROM "
               "ratelimit_rollup_key_span"
               " WHERE level = p.l AND bucket = p.b AND key_id = p.k OFFSET 0) x";
    } else {
        for (std::size_t i = 0; i < spans.size(); ++i) {
            if (threshold[i] == 0) continue;
            if (!text.empty()) text += " UNION ALL ";
            text += "SELECT " + q.integer(static_cast<std::int64_t>(i)) +
                    " AS s, key_id, blocked FROM ratelimit_rollup_key_span WHERE level = " +
                    q.integer(spans[i].level) + " AND bucket = " + q.integer(spans[i].bucket) +
                    " AND " + in_id_set(q, "key_id", open);
        }
        if (text.empty()) return;
    }
    q.run_int3(sql, text, [&](long long s, long long id, long long n) {
        auto& k = known[id];
        const auto i = static_cast<std::uint32_t>(s);
        if (!k.seen(i)) k.count += n;
    });
}

inline std::vector<offender> sql_analytics::span_top_offenders(
    const detail::analytics::window_plan& plan, std::size_t limit) const {
    using namespace detail::analytics;
    // The hours that hold per-key data bound the spans (an open or very long window
    // would otherwise split into spans up to year 9999).
    std::vector<key_span> spans;
    {
        bound_query q(kind);
        long long lo = 0, hi = 0;
        ::soci::indicator lo_ind = ::soci::i_null, hi_ind = ::soci::i_null;
        q.run(
            sql,
            "SELECT (SELECT MIN(bucket) FROM ratelimit_rollup_key_span WHERE level = 0),"
            " (SELECT MAX(bucket) FROM ratelimit_rollup_key_span WHERE level = 0)",
            [&](::soci::statement& st) {
                st.exchange(::soci::into(lo, lo_ind));
                st.exchange(::soci::into(hi, hi_ind));
            },
            [] {});
        if (lo_ind == ::soci::i_ok && hi_ind == ::soci::i_ok) {
            const std::int64_t from = std::max<std::int64_t>(plan.hour_from, lo);
            const std::int64_t to =
                plan.hour_to ? std::min<std::int64_t>(*plan.hour_to, hi + 1) : hi + 1;
            spans = split_spans(from, to);
        }
    }
    // The raw edges, per key id, whole.
    std::vector<std::pair<std::int64_t, std::int64_t>> raw;
    if (!plan.raw.empty()) {
        bound_query q(kind);
        const std::string text = raw_id_arm(q, plan);
        long long id = 0, n = 0;
        q.run(
            sql, text,
            [&](::soci::statement& st) {
                st.exchange(::soci::into(id));
                st.exchange(::soci::into(n));
            },
            [&] { raw.emplace_back(id, n); });
    }
    std::size_t depth = list_depth > 0 ? list_depth : 2 * limit + 16;
    for (int round = 0; round < 4; ++round, depth *= 4) {
        std::unordered_map<std::int64_t, known_key> known;
        known.reserve(raw.size() + std::min<std::size_t>(spans.size() * depth, 1U << 16));
        for (const auto& [id, n] : raw) known[id].count += n;
        std::vector<std::int64_t> threshold(spans.size(), 0);
        if (!spans.empty()) {
            bound_query q(kind);
            std::string text;
            for (std::size_t i = 0; i < spans.size(); ++i) {
                if (i > 0) text += " UNION ALL ";
                text += "SELECT * FROM (SELECT " + q.integer(static_cast<std::int64_t>(i)) +
                        " AS s, key_id, blocked FROM ratelimit_rollup_key_span WHERE level = " +
                        q.integer(spans[i].level) + " AND bucket = " + q.integer(spans[i].bucket) +
                        " ORDER BY blocked DESC LIMIT " +
                        q.integer(static_cast<std::int64_t>(depth)) + ") AS t" + std::to_string(i);
            }
            std::vector<std::size_t> rows(spans.size(), 0);
            std::vector<std::int64_t> least(spans.size(),
                                            0);  // of the rows read (the depth-th largest)
            std::vector<std::tuple<std::uint32_t, std::int64_t, std::int64_t>> read;
            q.run_int3(sql, text, [&](long long s, long long id, long long n) {
                const auto i = static_cast<std::uint32_t>(s);
                least[i] = ++rows[i] == 1 ? n : std::min<std::int64_t>(least[i], n);
                read.emplace_back(i, id, n);
            });
            for (std::size_t i = 0; i < spans.size(); ++i)
                if (rows[i] >= depth) threshold[i] = least[i];
            for (const auto& [i, key_id, count] : read) {
                auto& k = known[key_id];
                k.count += count;
                k.seen_threshold += threshold[i];
                k.mark(i);
            }
        }
        std::int64_t unread = 0;  // T
        for (const auto t : threshold) unread += t;
        // The N-th largest lower bound.
        std::int64_t nth = 0;
        if (known.size() >= limit) {
            std::vector<std::int64_t> lows;
            lows.reserve(known.size());
            for (const auto& [id, k] : known) lows.push_back(k.count);
            std::nth_element(lows.begin(), lows.begin() + static_cast<std::ptrdiff_t>(limit - 1),
                             lows.end(), std::greater<>());
            nth = lows[limit - 1];
        }
        if (unread > 0 && unread >= nth) continue;  // an unread key could still make the top N
        // Keys that can reach the N-th count: complete their spans read to depth.
        std::vector<std::int64_t> open;
        for (const auto& [id, k] : known)
            if (k.count + (unread - k.seen_threshold) >= nth && k.seen_threshold < unread)
                open.push_back(id);
        if (!open.empty()) complete(spans, threshold, open, known);
        // Exact counts now for every key that can reach `nth`; keep those at or above
        // the N-th exact count (ties included), name them, sort.
        std::vector<std::pair<std::int64_t, std::int64_t>> exact;  // (count, id)
        for (const auto& [id, k] : known)
            if (k.count + (unread - k.seen_threshold) >= nth && k.count > 0)
                exact.emplace_back(k.count, id);
        std::sort(exact.begin(), exact.end(), std::greater<>());
        if (exact.size() > limit) {
            const std::int64_t cut = exact[limit - 1].first;
            exact.erase(std::find_if(exact.begin() + static_cast<std::ptrdiff_t>(limit),
                                     exact.end(), [&](const auto& e) { return e.first < cut; }),
                        exact.end());
        }
        std::vector<offender> out;
        if (exact.empty()) return out;
        std::unordered_map<std::int64_t, std::int64_t> count_of;
        std::vector<std::int64_t> ids;
        for (const auto& [count, id] : exact) {
            count_of[id] = count;
            ids.push_back(id);
        }
        bound_query q(kind);
        const std::string text =
            "SELECT id, key FROM ratelimit_rollup_key WHERE " + in_id_set(q, "id", ids);
        long long id = 0;
        std::string key;
        q.run(
            sql, text,
            [&](::soci::statement& st) {
                st.exchange(::soci::into(id));
                st.exchange(::soci::into(key));
            },
            [&] {
                out.push_back(offender{key, count_of[id]});
            });
        std::sort(out.begin(), out.end(), [](const offender& a, const offender& b) {
            return a.blocked_count != b.blocked_count ? a.blocked_count > b.blocked_count
                                                      : a.key < b.key;
        });
        if (out.size() > limit) out.resize(limit);
        return out;
    }
    // Counts too flat for the lists to separate the top N: group every span.
    bound_query q(kind);
    std::string text = "SELECT k.key, w.c FROM (SELECT key_id, CAST(SUM(n) AS BIGINT) AS c FROM (";
    bool first = true;
    for (const auto& sp : spans) {
        if (!first) text += " UNION ALL ";
        first = false;
        text += "SELECT key_id, blocked AS n FROM ratelimit_rollup_key_span WHERE level = " +
                q.integer(sp.level) + " AND bucket = " + q.integer(sp.bucket);
    }
    if (!plan.raw.empty()) text += (first ? "" : " UNION ALL ") + raw_id_arm(q, plan);
    text +=
        ") u GROUP BY key_id) w JOIN ratelimit_rollup_key k ON k.id = w.key_id ORDER BY w.c DESC, "
        "k.key" +
        q.collate() + " ASC LIMIT " + q.integer(static_cast<std::int64_t>(limit));
    return read_offenders(q, sql, text);
}

}  // namespace smart_ratelimit::soci
