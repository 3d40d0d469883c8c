// smart_ratelimit/analytics/functions.hpp
// The analytics as free function templates over any event_range: traffic
// summary, top offenders, rule hit counts, offender drill-down and alertable
// offenders. Same names, parameter order and defaults as the original library,
// plus a trailing `now` so results are reproducible.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include <smart_ratelimit/analytics/event_range.hpp>
#include <smart_ratelimit/analytics/results.hpp>

namespace smart_ratelimit {

// Common to every function:
// - the window is `timestamp >= window_start(now, days)` = `now - days * 24h`,
//   inclusive; `days` is not clamped (0: from `now` on; negative: a window that
//   starts in the future, so only events stamped at or after that instant count);
// - `now` defaults to the system clock (`event_clock_now()`);
// - one pass over `events`, in order; nothing is kept after the call returns;
// - a negative `limit` or `recent` throws std::invalid_argument naming it.
// Thread safety: the functions share no state; the range must not be modified
// during the call.

/// Totals over the window: {days, total, allowed, blocked, block_rate}.
template <event_range R>
traffic_summary get_traffic_summary(R&& events, int days = 1, event_time now = event_clock_now());

/// Keys with the most blocked events in the window, `blocked_count` desc, ties
/// by key asc (bytewise), at most `limit`.
template <event_range R>
std::vector<offender> get_top_offenders(R&& events, int days = 7, int limit = 100,
                                        event_time now = event_clock_now());

/// Per rule (events with a non-empty rule_name): all events and the blocked ones,
/// `hits` desc, ties by rule_name asc, at most `limit`.
template <event_range R>
std::vector<rule_hits> get_rule_hit_counts(R&& events, int days = 7, int limit = 50,
                                           event_time now = event_clock_now());

/// The drill-down for one key: totals, first/last seen, blocked events by path
/// (at most 20) and the key's `recent` newest events. Events with equal
/// timestamps are ordered by position: the later element counts as the newer
/// one (the SQL store orders them by id, i.e. insertion order, the same way).
template <event_range R>
offender_detail get_offender_detail(R&& events, std::string_view key, int days = 7, int recent = 50,
                                    event_time now = event_clock_now());

/// The top offenders (limit applied first) whose blocked_count >= threshold.
template <event_range R>
std::vector<offender> find_alertable_offenders(R&& events, std::int64_t threshold, int days = 1,
                                               int limit = 100, event_time now = event_clock_now());

}  // namespace smart_ratelimit

#include <smart_ratelimit/analytics/impl/functions.hpp>
