// tools/cmd_cleanup.cpp
// `smart-ratelimit cleanup`: the retention job for the rate-limit state tables:
// deletes expired counters and sliding-window entries and token/leaky
// buckets idle longer than --stale-days, in short batches, on the database's clock.
// It never touches ratelimit_event (that is `cleanup-events`).
#include "cli_common.hpp"

#include <smart_ratelimit/soci/state_storage.hpp>

#include <cstdio>
#include <string>

namespace srl_tool {

namespace {

constexpr std::string_view usage_cleanup =
    "usage: smart-ratelimit cleanup [--stale-days N] [--batch-size N] [--dry-run] [--json]\n"
    "                               [--verbose] [--database URL] [--settings FILE] [--quiet]\n"
    "\n"
    "Prunes the rate-limit state tables: counters (ratelimit_counter) and\n"
    "sliding-window entries (ratelimit_sliding_entry) whose window has passed, and\n"
    "token/leaky buckets (ratelimit_token_bucket, ratelimit_leaky_bucket) not used for\n"
    "more than --stale-days days (default 7). Deletes at most --batch-size rows per\n"
    "transaction (default 1000, must be at least 1). --dry-run counts what would be\n"
    "deleted and deletes nothing. --json prints one JSON object with per-table counts.\n"
    "--verbose reports every batch on stderr. Events are never touched (see\n"
    "cleanup-events).\n"
    "Example crontab line:\n"
    "  */15 * * * * smart-ratelimit cleanup --stale-days 7 >> /var/log/ratelimit-cleanup.log "
    "2>&1\n";

}  // namespace

int run_cleanup(args_view args) {
    return guarded("cleanup", [&] {
        const auto a = parse_args(args,
                                  {{"--stale-days", true},
                                   {"--batch-size", true},
                                   {"--dry-run", false},
                                   {"--json", false},
                                   {"--verbose", false}},
                                  usage_cleanup);
        if (a.help) return int{exit_ok};
        srl::soci::state_cleanup_options o;
        o.stale_days = static_cast<int>(int_flag(a, "--stale-days", 7, 0, 1'000'000));
        const long long batch = int_flag(a, "--batch-size", 1000, -1'000'000'000, 1'000'000);
        if (batch <= 0)
            throw usage_error("option '--batch-size': must be at least 1 (got " +
                              std::to_string(batch) + ")");
        o.batch_size = static_cast<int>(batch);
        o.dry_run = a.has("--dry-run");
        const bool json = a.has("--json");
        if (a.has("--verbose"))
            o.on_batch = [&](std::string_view table, std::uint64_t rows) {
                std::fprintf(stderr, "cleanup: %.*s: %s %llu row(s)\n",
                             static_cast<int>(table.size()), table.data(),
                             o.dry_run ? "would delete" : "deleted",
                             static_cast<unsigned long long>(rows));
            };

        const auto url = resolve_database_url(a);
        require_existing_database(url);
        const auto sql = srl::soci::open_session(url);
        if (!srl::soci::state_schema_current(*sql))
            throw exit_error(exit_unavailable,
                             "the rate-limit state tables are missing or outdated in '" +
                                 url.redacted() + "': run `smart-ratelimit migrate`");
        auto counts = srl::soci::cleanup_state(*sql, url.kind, o);

        std::string line;
        if (json) {
            line = "{\"dry_run\":";
            line += o.dry_run ? "true" : "false";
            line += ",\"stale_days\":" + std::to_string(o.stale_days);
            line += ",\"batch_size\":" + std::to_string(o.batch_size);
            line += ",\"tables\":{";
            for (std::size_t t = 0; t < std::size(srl::soci::state_tables); ++t) {
                if (t != 0) line += ',';
                line += '"' + std::string(srl::soci::state_tables[t]) +
                        "\":" + std::to_string(counts[t]);
            }
            line += "},\"total\":" + std::to_string(counts.total()) + "}";
        } else {
            line = std::string("cleanup: ") + (o.dry_run ? "dry run, would delete " : "deleted ") +
                   std::to_string(counts.total()) + " row(s) (";
            for (std::size_t t = 0; t < std::size(srl::soci::state_tables); ++t) {
                if (t != 0) line += ", ";
                line += std::string(srl::soci::state_tables[t]) + " " + std::to_string(counts[t]);
            }
            line += "; stale days " + std::to_string(o.stale_days) + ", batch size " +
                    std::to_string(o.batch_size) + ") from " + url.redacted();
        }
        print_summary(line);
        return int{exit_ok};
    });
}

}  // namespace srl_tool
