// tools/cmd_cleanup_events.cpp
// `smart-ratelimit cleanup-events`: the retention job for the event log. Deletes
// events older than N days (on PostgreSQL whole day partitions are dropped, the
// cutoff's day deleted in short batches) and prints one line; meant for cron.
// `--dry-run` counts what would go and deletes nothing. It never touches the
// rate-limit state tables (that is `cleanup`).
#include "cli_common.hpp"

#include <chrono>
#include <cstdint>
#include <string>

#include <smart_ratelimit/soci/detail/sql_time.hpp>

namespace srl_tool {

namespace {

constexpr std::string_view usage_cleanup_events =
    "usage: smart-ratelimit cleanup-events [--older-than-days N] [--batch-size N] [--dry-run]\n"
    "                                      [--database URL] [--settings FILE] [--quiet]\n"
    "\n"
    "Deletes events with timestamp < now - N days (default 30), at most\n"
    "--batch-size rows per transaction (default 1000), and prints how many.\n"
    "On PostgreSQL, where the table is partitioned by UTC day, every day wholly\n"
    "older than the cutoff is dropped as a whole partition (detached under a short\n"
    "lock, then its rollups corrected and dropped without blocking writers) and only the cutoff's "
    "own day is deleted in batches;\n"
    "the line then also says how many partitions were dropped.\n"
    "--dry-run counts the events that would be deleted (on PostgreSQL, and names\n"
    "the day partitions that would be dropped, with any an interrupted cleanup left\n"
    "detached, ratelimit_event_gone_p*) and deletes nothing (a\n"
    "missing SQLite file is then an error, exit 69, and is not created).\n"
    "Example crontab line:\n"
    "  0 3 * * * smart-ratelimit cleanup-events --older-than-days 30 >> "
    "/var/log/ratelimit-cleanup.log 2>&1\n";

}  // namespace

int run_cleanup_events(args_view args) {
    return guarded("cleanup-events", [&] {
        const auto a = parse_args(
            args, {{"--older-than-days", true}, {"--batch-size", true}, {"--dry-run", false}},
            usage_cleanup_events);
        if (a.help) return int{exit_ok};
        const auto days = int_flag(a, "--older-than-days", 30, 0, 1'000'000);
        const auto batch = int_flag(a, "--batch-size", 1000, 1, 1'000'000);
        const auto store = open_event_store(a);
        const std::string tail = " older than " + std::to_string(days) + " day(s) (batch size " +
                                 std::to_string(batch) + ") from " + store.url().redacted();
        const auto now = std::chrono::time_point_cast<std::chrono::microseconds>(
            std::chrono::system_clock::now());
        if (a.has("--dry-run")) {
            // The same set cleanup_old deletes: timestamp < cutoff, which on microsecond
            // timestamps is the inclusive window ending 1 us before the cutoff.
            const srl::event_time cutoff = now - std::chrono::hours{24} * days;
            std::int64_t n = 0;
            if (cutoff > srl::soci::detail::min_event_time) {  // as cleanup_old: nothing is older
                srl::soci::event_query q;
                q.until = cutoff - std::chrono::microseconds{1};
                n = store.count(q);
            }
            n += store.detached_events();  // a killed cleanup's days: the next one drops them
            // On PostgreSQL: which of them would go as whole day partitions.
            const auto days_dropped = store.droppable_partitions(static_cast<int>(days), now);
            std::string dropped;
            if (store.sql_dialect() == srl::soci::dialect::postgresql) {
                dropped = " (" + std::to_string(days_dropped.size()) + " day partition(s)";
                if (!days_dropped.empty())
                    dropped += days_dropped.size() == 1
                                   ? ": " + days_dropped.front()
                                   : ": " + days_dropped.front() + " .. " + days_dropped.back();
                dropped += ")";
            }
            print_summary("cleanup-events: dry run, would delete " + std::to_string(n) +
                          " event(s)" + dropped + tail);
            return int{exit_ok};
        }
        const auto r = store.cleanup(static_cast<int>(days), static_cast<int>(batch), now);
        const std::string dropped =
            store.sql_dialect() == srl::soci::dialect::postgresql
                ? " (" + std::to_string(r.partitions_dropped) + " day partition(s) dropped)"
                : "";
        print_summary("cleanup-events: deleted " + std::to_string(r.deleted) + " event(s)" +
                      dropped + tail);
        return int{exit_ok};
    });
}

}  // namespace srl_tool
