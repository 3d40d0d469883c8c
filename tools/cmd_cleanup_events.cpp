// tools/cmd_cleanup_events.cpp
// `smart-ratelimit cleanup-events`: the retention job for the event log (SPEC 10).
// Deletes events older than N days in short batches and prints one line; meant
// for cron. It never touches the rate-limit state tables (that is `cleanup`).
#include "cli_common.hpp"

#include <string>

namespace srl_tool {

namespace {

constexpr std::string_view usage_cleanup_events =
    "usage: smart-ratelimit cleanup-events [--older-than-days N] [--batch-size N]\n"
    "                                      [--database URL] [--settings FILE]\n"
    "\n"
    "Deletes events with timestamp < now - N days (default 30), at most\n"
    "--batch-size rows per transaction (default 1000), and prints how many.\n"
    "Example crontab line:\n"
    "  0 3 * * * smart-ratelimit cleanup-events --older-than-days 30 >> /var/log/ratelimit-cleanup.log 2>&1\n";

}  // namespace

int run_cleanup_events(args_view args) {
    return guarded("cleanup-events", [&] {
        const auto a = parse_args(args, {{"--older-than-days", true}, {"--batch-size", true}}, usage_cleanup_events);
        if (a.help) return int{exit_ok};
        const auto days = int_flag(a, "--older-than-days", 30, 0, 1'000'000);
        const auto batch = int_flag(a, "--batch-size", 1000, 1, 1'000'000);
        const auto store = open_event_store(a);
        const auto deleted = store.cleanup_old(static_cast<int>(days), static_cast<int>(batch));
        print_summary("cleanup-events: deleted " + std::to_string(deleted) + " event(s) older than " +
                      std::to_string(days) + " day(s) (batch size " + std::to_string(batch) + ") from " +
                      store.url().redacted());
        return int{exit_ok};
    });
}

}  // namespace srl_tool
