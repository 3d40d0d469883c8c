// smart_ratelimit/analytics/results.hpp
// The plain result types of the analytics functions. Every field has
// the name and the meaning of the original library's dictionary key; the order of the
// members is the order of the JSON keys. Values only: no references into the input.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <smart_ratelimit/event.hpp>

namespace smart_ratelimit {

/// Totals over a window. `block_rate` is blocked / total, unrounded, 0.0 when total is 0.
/// total = allowed + blocked + degraded: a degraded event (the store could not decide)
/// is neither allowed nor blocked. Shadow-mode denials count as blocked.
struct traffic_summary {
    int days = 0;
    std::int64_t total = 0;
    std::int64_t allowed = 0;
    std::int64_t blocked = 0;
    double block_rate = 0.0;
    std::int64_t degraded = 0;

    friend bool operator==(const traffic_summary&, const traffic_summary&) = default;
};

/// One key and the number of its blocked events in the window.
struct offender {
    std::string key;
    std::int64_t blocked_count = 0;

    friend bool operator==(const offender&, const offender&) = default;
};

/// One rule (non-empty rule_name): all its events in the window, and the blocked ones.
struct rule_hits {
    std::string rule_name;
    std::int64_t hits = 0;
    std::int64_t blocked = 0;

    friend bool operator==(const rule_hits&, const rule_hits&) = default;
};

/// One path of an offender and the number of its blocked events there.
struct path_count {
    std::string path;
    std::int64_t blocked_count = 0;

    friend bool operator==(const path_count&, const path_count&) = default;
};

/// One event of an offender, as listed in `offender_detail::recent_events`.
struct recent_event {
    event_time timestamp{};
    std::string path;
    std::string method;
    bool allowed = true;
    std::int64_t count = 0;
    std::int64_t limit = 0;
    std::string rule_name;
    outcome_kind outcome = outcome_kind::allowed;

    friend bool operator==(const recent_event&, const recent_event&) = default;
};

/// The drill-down for one key. `first_seen`/`last_seen` are empty when no event
/// of the key is in the window; `by_path` holds blocked events only (at most 20,
/// count desc, ties by path asc); `recent_events` is newest first.
struct offender_detail {
    std::string key;
    int days = 0;
    std::int64_t total = 0;
    std::int64_t allowed = 0;
    std::int64_t blocked = 0;
    double block_rate = 0.0;
    std::int64_t degraded = 0;
    std::optional<event_time> first_seen;
    std::optional<event_time> last_seen;
    std::vector<path_count> by_path;
    std::vector<recent_event> recent_events;

    friend bool operator==(const offender_detail&, const offender_detail&) = default;
};

/// How many paths `offender_detail::by_path` lists at most (the original library's 20).
inline constexpr std::size_t offender_detail_max_paths = 20;

}  // namespace smart_ratelimit
