// tools/cmd_alerts.cpp
// `smart-ratelimit alerts`: the alerting cron job. Finds the offenders at or over
// the threshold in the event log and alerts them by e-mail (libcurl SMTP) and then
// webhook (Beast), honouring the cool-down; `--dry-run` only lists them. Prints
// one summary line; exit 0 ok, 1 a channel failed, 64/69/78 as every command.
// `--metrics-file PATH` leaves the alerts sent (counted across runs) and the build
// in the Prometheus text format, for node_exporter's textfile collector.
#include "cli_common.hpp"

#include <smart_ratelimit/alerts.hpp>
#include <smart_ratelimit/metrics.hpp>
#include <smart_ratelimit/soci/alert_log.hpp>
#include <smart_ratelimit/soci/analytics.hpp>
#if defined(SRL_TOOL_WITH_SMTP)
#include <smart_ratelimit/smtp.hpp>
#endif
#if defined(SRL_TOOL_WITH_BEAST)
#include <smart_ratelimit/beast/webhook_client.hpp>
#endif

#include <array>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <optional>
#include <regex>
#include <span>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include <unistd.h>

namespace srl_tool {

namespace {

constexpr std::string_view usage_alerts =
    "usage: smart-ratelimit alerts [--threshold N] [--days N] [--limit N] [--dry-run] [--json]\n"
    "                              [--metrics-file PATH] [--database URL] [--settings FILE] "
    "[--quiet]\n"
    "\n"
    "Finds the keys with at least N blocked requests in the last D days (default 1;\n"
    "N defaults to RATELIMIT_ALERT_THRESHOLD, unset or 0 = disabled) among the top\n"
    "--limit offenders (default 100) and alerts them: an e-mail to RATELIMIT_ALERT_EMAILS\n"
    "through RATELIMIT_SMTP_URL, then a POST to RATELIMIT_ALERT_WEBHOOK. With\n"
    "RATELIMIT_ALERT_COOLDOWN_MINUTES, a key alerted within that many minutes is\n"
    "skipped (remembered in ratelimit_alert_log; run `smart-ratelimit migrate`).\n"
    "--dry-run lists the offenders and sends nothing (and never creates a missing\n"
    "SQLite file: exit 69). --json prints the result object (with --dry-run: its\n"
    "offenders and no channel).\n"
    "--metrics-file PATH writes smart_ratelimit_alerts_sent_total{channel,result}\n"
    "(this run's alerts added to the counts already in PATH),\n"
    "smart_ratelimit_alerts_last_run_timestamp_seconds and smart_ratelimit_build_info\n"
    "to PATH in the Prometheus text format, atomically (a temporary file renamed over\n"
    "it): point node_exporter's --collector.textfile.directory at its directory and\n"
    "name it *.prom. Not written by --dry-run or when the database is unreachable.\n"
    "Exit codes: 0 ok (also: disabled, no offenders), 1 a channel failed, 64 bad\n"
    "arguments, 69 database unreachable, 78 bad settings.\n"
    "Example crontab line:\n"
    "  */5 * * * * smart-ratelimit alerts >> /var/log/ratelimit-alerts.log 2>&1\n";

#if defined(SRL_TOOL_WITH_SMTP)
using mailer_type = srl::smtp::curl_mailer;
mailer_type make_mailer(const srl::settings& s) {
    return mailer_type(srl::smtp::smtp_options_from(s));
}
#else
using mailer_type = srl::no_mail_sender;
mailer_type make_mailer(const srl::settings&) { return {}; }
#endif

#if defined(SRL_TOOL_WITH_BEAST)
using webhook_type = srl::beast::webhook_client;
webhook_type make_webhook(const srl::settings& s) {
    return webhook_type(srl::beast::webhook_options_from(s));
}
#else
using webhook_type = srl::no_webhook_sender;
webhook_type make_webhook(const srl::settings&) { return {}; }
#endif

/// The cool-down memory: the database table when a cool-down is configured. Keys
/// are claimed in it before sending, so several nodes running this command from
/// cron at once alert each key once.
struct cli_alert_log {
    std::optional<srl::soci::sql_alert_log> sql;

    srl::alert_claim claim(std::string_view key, srl::event_time at, srl::event_time since) {
        return sql ? sql->claim(key, at, since) : srl::alert_claim{true, std::nullopt};
    }
    void release(std::string_view key, srl::event_time at, std::optional<srl::event_time> prev) {
        if (sql) sql->release(key, at, prev);
    }

    std::optional<srl::event_time> last_alerted(std::string_view key) {
        return sql ? sql->last_alerted(key) : std::nullopt;
    }
    void record(std::string_view key, srl::event_time at) {
        if (sql) sql->record(key, at);
    }
};

/// The alert counts a previous run left in `path` (none when it does not exist).
std::vector<std::pair<std::array<std::string, 2>, std::uint64_t>> previous_counts(
    const std::string& path) {
    std::vector<std::pair<std::array<std::string, 2>, std::uint64_t>> out;
    std::ifstream in(path);
    static const std::regex line_rx(
        R"rx(^smart_ratelimit_alerts_sent_total\{channel="([a-z]+)",result="([a-z]+)"\} ([0-9]{1,19})$)rx");
    std::smatch m;
    for (std::string line; std::getline(in, line);)
        if (std::regex_match(line, m, line_rx))
            out.push_back({{m[1].str(), m[2].str()}, std::stoull(m[3].str())});
    return out;
}

/// Writes the alerts' exposition to `path` atomically: a temporary file beside it,
/// flushed, then renamed over it (a textfile collector never reads half a file).
void write_metrics_file(const std::string& path, const srl::alert_result& r) {
    srl::metrics::labeled_counter sent("smart_ratelimit_alerts_sent_total",
                                       "Offender alerts sent, by channel and result.",
                                       {"channel", "result"});
    for (std::string_view ch : {"email", "webhook"})
        for (std::string_view res : {"sent", "failed"}) sent.touch({ch, res});
    for (const auto& [labels, n] : previous_counts(path)) sent.add({labels[0], labels[1]}, n);
    for (const auto& c : r.channels) sent.add({c.channel, c.sent ? "sent" : "failed"});

    srl::metrics::exposition e;
    sent.collect(e);
    constexpr std::string_view last_run = "smart_ratelimit_alerts_last_run_timestamp_seconds";
    e.declare(last_run, srl::metrics::metric_type::gauge,
              "When `smart-ratelimit alerts` last ran (Unix time).");
    const auto now =
        std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch());
    e.sample(last_run, std::span<const srl::metrics::label>{}, now.count());
    srl::metrics::build_info{}.collect(e);
    std::string text;
    e.write_to(text);

    const std::string tmp = path + ".tmp." + std::to_string(::getpid());
    std::FILE* f = std::fopen(tmp.c_str(), "w");
    bool ok = f != nullptr && std::fwrite(text.data(), 1, text.size(), f) == text.size();
    if (f != nullptr) ok = std::fflush(f) == 0 && ::fsync(::fileno(f)) == 0 && ok;
    if (f != nullptr) ok = std::fclose(f) == 0 && ok;
    const int err = errno;
    if (!ok || std::rename(tmp.c_str(), path.c_str()) != 0) {
        const std::string why = std::strerror(ok ? errno : err);
        std::remove(tmp.c_str());
        throw exit_error(exit_failure, "cannot write the metrics file '" + path + "': " + why);
    }
}

std::string channel_summary(const srl::channel_result& c) {
    if (!c.sent) return c.channel + " FAILED: " + c.error;
    if (c.channel == "email")
        return "email sent to " + std::to_string(c.to.size()) + " recipient(s)";
    return "webhook sent";
}

}  // namespace

int run_alerts(args_view args) {
    return guarded("alerts", [&] {
        const auto a = parse_args(args,
                                  {{"--threshold", true},
                                   {"--days", true},
                                   {"--limit", true},
                                   {"--dry-run", false},
                                   {"--json", false},
                                   {"--metrics-file", true}},
                                  usage_alerts);
        if (a.help) return int{exit_ok};
        const auto threshold_flag = a.value("--threshold");
        const auto flag_threshold = int_flag(a, "--threshold", 0, 0, 1'000'000'000'000);
        const auto days = static_cast<int>(int_flag(a, "--days", 1, 1, 36'500));
        const auto limit = static_cast<int>(int_flag(a, "--limit", 100, 1, 1'000'000));
        const bool dry_run = a.has("--dry-run");
        const bool json = a.has("--json");
        const auto metrics_file = a.value("--metrics-file");
        if (metrics_file && metrics_file->empty()) throw usage_error("--metrics-file needs a path");

        const srl::settings s = load_cli_settings(a);
        srl::alert_request req = srl::alert_request_from(s);
        if (threshold_flag) req.threshold = flag_threshold;
        req.days = days;
        req.limit = limit;

        if (req.threshold <= 0) {
            if (metrics_file) write_metrics_file(*metrics_file, srl::alert_result{});
            if (json)
                print_summary(srl::to_json(srl::alert_result{}));
            else
                print_summary(
                    "alerts: disabled (no threshold: set RATELIMIT_ALERT_THRESHOLD or pass "
                    "--threshold)");
            return int{exit_ok};
        }

        const auto store = open_event_store(a);
        const srl::event_time now = srl::event_clock_now();
        req.now = now;
        auto offenders =
            srl::soci::find_alertable_offenders(store, req.threshold, days, limit, now);

        if (dry_run && json) {  // the result object of a run with no channel
            srl::alert_result r;
            r.enabled = true;
            r.threshold = req.threshold;
            r.days = days;
            r.offenders = std::move(offenders);
            print_summary(srl::to_json(r));
            return int{exit_ok};
        }
        if (dry_run) {
            std::string out = std::to_string(offenders.size()) +
                              " offender(s) >= " + std::to_string(req.threshold) + " blocked in " +
                              std::to_string(days) + " day(s):\n";
            for (const auto& o : offenders)
                out += "  " + srl::detail::printable_line(o.key) + ": " +
                       std::to_string(o.blocked_count) + "\n";
            std::fwrite(out.data(), 1, out.size(), stdout);
            return int{exit_ok};
        }

        cli_alert_log log;
        if (req.cooldown.count() > 0) log.sql.emplace(store);
        srl::alert_dispatcher<mailer_type, webhook_type, cli_alert_log&> dispatcher(
            make_mailer(s), make_webhook(s), log);
        const srl::alert_result r = dispatcher.deliver(std::move(offenders), req);
        if (metrics_file) write_metrics_file(*metrics_file, r);

        if (json) {
            print_summary(srl::to_json(r));
        } else {
            std::string line = "alerts: " + std::to_string(r.offenders.size()) +
                               " offender(s) >= " + std::to_string(req.threshold) + " blocked in " +
                               std::to_string(days) + " day(s)";
            if (r.cooldown) line += " (" + std::to_string(r.suppressed) + " in cool-down)";
            if (r.offenders.empty())
                line += "; nothing to send";
            else if (r.channels.empty())
                line +=
                    "; no channel configured (set RATELIMIT_ALERT_EMAILS or "
                    "RATELIMIT_ALERT_WEBHOOK)";
            for (const auto& c : r.channels) line += "; " + channel_summary(c);
            if (!r.error.empty()) line += "; cool-down log FAILED";
            print_summary(line);
        }
        if (!r.error.empty())  // only the cool-down table can fail here: a database error
            throw exit_error(exit_unavailable, "database unavailable: " + r.error);
        return r.ok() ? int{exit_ok} : int{exit_failure};
    });
}

}  // namespace srl_tool
