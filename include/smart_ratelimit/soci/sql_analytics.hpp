// smart_ratelimit/soci/sql_analytics.hpp
// sql_analytics: the analytics of the in-memory functions computed by the
// database over ratelimit_event on one SOCI session, with bound parameters only
// and never reading the table into memory; through the rollups (soci/rollups.hpp)
// when they are there. Bodies in soci/impl/sql_analytics.hpp.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <soci/soci.h>

#include <smart_ratelimit/analytics/results.hpp>
#include <smart_ratelimit/event.hpp>
#include <smart_ratelimit/soci/database_url.hpp>
#include <smart_ratelimit/soci/detail/analytics/bound_query.hpp>
#include <smart_ratelimit/soci/detail/analytics/window_plan.hpp>
#include <smart_ratelimit/soci/rollups.hpp>

namespace smart_ratelimit::soci {

/// Where the SQL analytics run: a session on a database holding ratelimit_event,
/// its dialect, and whether to use the rollups (default: when migrate_analytics ran).
/// `end` (inclusive, optional) bounds the window above: the `report --as-of`
/// reproduction; the free functions (soci/analytics.hpp) leave it open.
/// Thread safety: one thread at a time per session.
struct sql_analytics {
    ::soci::session& sql;
    dialect kind;
    std::optional<bool> use_rollups{};
    std::optional<event_time> end{};

    bool rollups() const {
        return use_rollups ? *use_rollups : detail::analytics::rollups_ready(sql);
    }

    traffic_summary traffic_summary_at(int days, event_time now) const;

    std::vector<offender> top_offenders_at(int days, int limit, event_time now) const;

    /// Initial depth of the per-span lists that top_offenders_at reads (0: 2 x limit
    /// + 16); each further round reads 4 times deeper. A tuning knob, and lets tests
    /// drive every path of the threshold algorithm on small data.
    std::size_t list_depth = 0;

    std::vector<rule_hits> rule_hit_counts_at(int days, int limit, event_time now) const;

    offender_detail offender_detail_at(std::string_view key, int days, int recent,
                                       event_time now) const;

private:
    /// Top offenders from raw rows only (no rollups, or a window without a whole hour).
    std::vector<offender> raw_top_offenders(const detail::analytics::window_plan& plan,
                                            int limit) const;

    /// Blocked events per key id in the raw edge ranges of `plan`, as one query
    /// (key_id, n) to use as a UNION ALL arm; empty when there are none. Grouped by
    /// key first, so the key table is joined once.
    static std::string raw_id_arm(detail::analytics::bound_query& q,
                                  const detail::analytics::window_plan& plan);

    struct known_key {
        std::int64_t count = 0;  // lower bound; exact once it was read in every read-to-depth span
        std::int64_t seen_threshold = 0;       // sum of the thresholds of the spans it was read in
        std::uint64_t seen_low = 0;            // spans 0..63 it was read in
        std::vector<std::uint32_t> seen_high;  // spans from 64 on it was read in (long windows)

        bool seen(std::uint32_t span) const {
            if (span < 64) return (seen_low >> span & 1U) != 0;
            return std::find(seen_high.begin(), seen_high.end(), span) != seen_high.end();
        }
        void mark(std::uint32_t span) {
            if (span < 64)
                seen_low |= std::uint64_t{1} << span;
            else
                seen_high.push_back(span);
        }
    };

    /// Adds to the keys `open` their counters in the spans read to depth
    /// (threshold > 0) they were not read in: exact counts. PostgreSQL probes each
    /// missing (span, key) pair through the primary key (a LATERAL look-up, since
    /// the planner would otherwise scan whole spans); SQLite does the same with an IN
    /// list per span.
    void complete(const std::vector<detail::analytics::key_span>& spans,
                  const std::vector<std::int64_t>& threshold, const std::vector<std::int64_t>& open,
                  std::unordered_map<std::int64_t, known_key>& known) const;

    /// Top offenders through the key spans: the threshold algorithm. Each round reads
    /// the `depth` largest counters of every span of the window (plus the raw edges,
    /// whole); a key read nowhere has at most T = the sum over spans of the depth-th
    /// counter (0 for a span read to its end). Once the N-th largest known lower bound
    /// exceeds T, the top N are among the known keys: those that can still reach it get
    /// their missing spans looked up, and are sorted by exact count, then key. Rounds
    /// read 4 times deeper; after 4, one grouped query over every span does it.
    std::vector<offender> span_top_offenders(const detail::analytics::window_plan& plan,
                                             std::size_t limit) const;
};

}  // namespace smart_ratelimit::soci

#include <smart_ratelimit/soci/impl/sql_analytics.hpp>
