// smart_ratelimit/analytics/impl/functions.hpp
// Bodies of the analytics function templates declared in analytics/functions.hpp.
// Each is one pass over the range: counters for the summary, a string_table for
// the groupings, then a partial sort for the top-k (count desc, ties by name asc).
// Blocked counts read `allowed == false`, so degraded events are never blocked.
#pragma once

#include <algorithm>
#include <queue>
#include <stdexcept>
#include <string>
#include <tuple>
#include <utility>

#include <smart_ratelimit/analytics/detail/string_table.hpp>

namespace smart_ratelimit {
namespace detail::analytics {

inline void check_count(int value, const char* name) {
    if (value < 0)
        throw std::invalid_argument(std::string("analytics: ") + name + " must be >= 0, got " +
                                    std::to_string(value));
}

/// Sorts `items` by (count desc, name asc) and keeps the first `limit`.
template <class T, class Count, class Name>
void top_k(std::vector<T>& items, std::size_t limit, Count count, Name name) {
    auto before = [&](const T& a, const T& b) {
        const auto ca = count(a), cb = count(b);
        if (ca != cb) return ca > cb;
        return name(a) < name(b);
    };
    if (limit < items.size()) {
        std::nth_element(items.begin(), items.begin() + static_cast<std::ptrdiff_t>(limit),
                         items.end(), before);
        items.resize(limit);
    }
    std::sort(items.begin(), items.end(), before);
}

inline double rate(std::int64_t blocked, std::int64_t total) noexcept {
    return total == 0 ? 0.0 : static_cast<double>(blocked) / static_cast<double>(total);
}

}  // namespace detail::analytics

template <event_range R>
traffic_summary get_traffic_summary(R&& events, int days, event_time now) {
    using traits = event_traits<range_event_t<R>>;
    const event_time start = window_start(now, days);
    std::int64_t total = 0, blocked = 0, degraded = 0;
    for (auto&& e : events) {
        const std::int64_t in = event_time(traits::timestamp(e)) >= start;
        total += in;
        blocked += in & std::int64_t{!static_cast<bool>(traits::allowed(e))};
        degraded += in & std::int64_t{outcome_of(e) == outcome_kind::degraded};
    }
    traffic_summary s;
    s.days = days;
    s.total = total;
    s.blocked = blocked;
    s.degraded = degraded;
    s.allowed = total - blocked - degraded;
    s.block_rate = detail::analytics::rate(blocked, total);
    return s;
}

template <event_range R>
std::vector<offender> get_top_offenders(R&& events, int days, int limit, event_time now) {
    using traits = event_traits<range_event_t<R>>;
    detail::analytics::check_count(limit, "limit");
    const event_time start = window_start(now, days);
    detail::analytics::string_table<std::int64_t> table;
    for (auto&& e : events) {
        if (static_cast<bool>(traits::allowed(e))) continue;
        if (!(event_time(traits::timestamp(e)) >= start)) continue;
        decltype(auto) key = traits::key(e);
        ++table(std::string_view(key));
    }
    std::vector<std::pair<std::string_view, std::int64_t>> items;
    items.reserve(table.size());
    table.for_each([&](std::string_view k, std::int64_t n) { items.emplace_back(k, n); });
    detail::analytics::top_k(
        items, static_cast<std::size_t>(limit), [](const auto& p) { return p.second; },
        [](const auto& p) { return p.first; });
    std::vector<offender> out;
    out.reserve(items.size());
    for (const auto& [k, n] : items) out.push_back(offender{std::string(k), n});
    return out;
}

template <event_range R>
std::vector<rule_hits> get_rule_hit_counts(R&& events, int days, int limit, event_time now) {
    using traits = event_traits<range_event_t<R>>;
    detail::analytics::check_count(limit, "limit");
    const event_time start = window_start(now, days);
    struct counts {
        std::int64_t hits = 0;
        std::int64_t blocked = 0;
    };
    detail::analytics::string_table<counts> table;
    for (auto&& e : events) {
        if (!(event_time(traits::timestamp(e)) >= start)) continue;
        decltype(auto) rule = traits::rule_name(e);
        const std::string_view name(rule);
        if (name.empty()) continue;
        counts& c = table(name);
        ++c.hits;
        c.blocked += !static_cast<bool>(traits::allowed(e));
    }
    std::vector<rule_hits> out;
    out.reserve(table.size());
    table.for_each([&](std::string_view k, const counts& c) {
        out.push_back(rule_hits{std::string(k), c.hits, c.blocked});
    });
    detail::analytics::top_k(
        out, static_cast<std::size_t>(limit), [](const rule_hits& r) { return r.hits; },
        [](const rule_hits& r) -> const std::string& { return r.rule_name; });
    return out;
}

template <event_range R>
offender_detail get_offender_detail(R&& events, std::string_view key, int days, int recent,
                                    event_time now) {
    using traits = event_traits<range_event_t<R>>;
    detail::analytics::check_count(recent, "recent");
    const event_time start = window_start(now, days);

    offender_detail d;
    d.key = std::string(key);
    d.days = days;
    detail::analytics::string_table<std::int64_t> paths;
    // The newest `recent` events: a min-heap on (timestamp, position).
    struct candidate {
        event_time ts;
        std::uint64_t pos;
        recent_event ev;
    };
    auto newer = [](const candidate& a, const candidate& b) {
        return std::tie(a.ts, a.pos) > std::tie(b.ts, b.pos);
    };
    std::vector<candidate> heap;
    const auto want = static_cast<std::size_t>(recent);
    heap.reserve(std::min<std::size_t>(want, 1024));

    std::uint64_t pos = 0;
    for (auto&& e : events) {
        const std::uint64_t here = pos++;
        decltype(auto) k = traits::key(e);
        if (std::string_view(k) != key) continue;
        const event_time ts(traits::timestamp(e));
        if (!(ts >= start)) continue;
        const bool allowed = static_cast<bool>(traits::allowed(e));
        const outcome_kind outcome = outcome_of(e);
        ++d.total;
        if (outcome == outcome_kind::degraded) {
            ++d.degraded;
        } else if (allowed) {
            ++d.allowed;
        } else {
            ++d.blocked;
            decltype(auto) p = traits::path(e);
            ++paths(std::string_view(p));
        }
        if (!d.first_seen || ts < *d.first_seen) d.first_seen = ts;
        if (!d.last_seen || ts > *d.last_seen) d.last_seen = ts;
        if (want == 0) continue;
        if (heap.size() == want) {
            // heap.front() is the oldest kept; a later position breaks timestamp ties.
            if (!(ts >= heap.front().ts)) continue;
            std::pop_heap(heap.begin(), heap.end(), newer);
            heap.pop_back();
        }
        decltype(auto) p = traits::path(e);
        decltype(auto) m = traits::method(e);
        decltype(auto) r = traits::rule_name(e);
        heap.push_back(candidate{
            ts, here,
            recent_event{ts, std::string(std::string_view(p)), std::string(std::string_view(m)),
                         allowed, static_cast<std::int64_t>(traits::count(e)),
                         static_cast<std::int64_t>(traits::limit(e)),
                         std::string(std::string_view(r)), outcome}});
        std::push_heap(heap.begin(), heap.end(), newer);
    }
    d.block_rate = detail::analytics::rate(d.blocked, d.total);
    std::vector<std::pair<std::string_view, std::int64_t>> by_path;
    by_path.reserve(paths.size());
    paths.for_each([&](std::string_view p, std::int64_t n) { by_path.emplace_back(p, n); });
    detail::analytics::top_k(
        by_path, offender_detail_max_paths, [](const auto& p) { return p.second; },
        [](const auto& p) { return p.first; });
    d.by_path.reserve(by_path.size());
    for (const auto& [p, n] : by_path) d.by_path.push_back(path_count{std::string(p), n});
    std::sort(heap.begin(), heap.end(), newer);
    d.recent_events.reserve(heap.size());
    for (auto& c : heap) d.recent_events.push_back(std::move(c.ev));
    return d;
}

template <event_range R>
std::vector<offender> find_alertable_offenders(R&& events, std::int64_t threshold, int days,
                                               int limit, event_time now) {
    auto top = get_top_offenders(static_cast<R&&>(events), days, limit, now);
    std::erase_if(top, [&](const offender& o) { return o.blocked_count < threshold; });
    return top;
}

}  // namespace smart_ratelimit
