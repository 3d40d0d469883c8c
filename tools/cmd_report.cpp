// tools/cmd_report.cpp
// `smart-ratelimit report`: traffic analytics from the event log, computed by
// the database. Terminal tables (summary, top offenders, rule hits) by default;
// `--json` for the same as one JSON object, `--csv` for the offenders CSV, `--key`
// for one key's drill-down (JSON); `--as-of` reproduces the report at an instant.
#include "cli_common.hpp"

#include <cstdio>
#include <optional>
#include <string>
#include <vector>

#include <smart_ratelimit/analytics/csv.hpp>
#include <smart_ratelimit/analytics/format.hpp>
#include <smart_ratelimit/analytics/json_text.hpp>
#include <smart_ratelimit/soci/analytics.hpp>

namespace srl_tool {

namespace {

constexpr std::string_view usage_report =
    "usage: smart-ratelimit report [--days N] [--limit N] [--json | --csv | --key KEY]\n"
    "                              [--as-of TIMESTAMP] [--database URL] [--settings FILE]\n"
    "                              [--quiet]\n"
    "\n"
    "Reports on the event log for the last N days (default 7; window: timestamp >=\n"
    "now - N days, inclusive):\n"
    "  (default)    the traffic summary, top offenders and rule hits as tables\n"
    "  --json       the same as {\"summary\": ..., \"top_offenders\": ..., \"rule_hits\": ...}\n"
    "  --csv        the top offenders as CSV (key,blocked_count; CRLF)\n"
    "  --key KEY    the drill-down for one key, as JSON\n"
    "  --limit N    rows of top offenders and rule hits (default 20); with --csv the\n"
    "               offenders (default 1000); with --key the recent events (default 50)\n"
    "  --as-of T    report as it read at T (RFC 3339, e.g. 2026-05-07T12:00:00Z):\n"
    "               now = T and events stamped after T are left out\n"
    "Run `smart-ratelimit migrate` once first (it also creates the hourly rollups\n"
    "that keep reports fast on large logs). report only reads: a missing SQLite file\n"
    "is exit 69 and is not created.\n";

/// Terminal-safe text: control characters (which could move the cursor or
/// recolour the terminal) shown as \\n, \\r, \\t or \\xNN; a backslash doubled.
std::string printable(std::string_view s) {
    static constexpr char hex[] = "0123456789abcdef";
    std::string out;
    out.reserve(s.size());
    for (const char ch : s) {
        const auto c = static_cast<unsigned char>(ch);
        if (c == '\\')
            out += "\\\\";
        else if (c == '\n')
            out += "\\n";
        else if (c == '\r')
            out += "\\r";
        else if (c == '\t')
            out += "\\t";
        else if (c < 0x20 || c == 0x7f) {
            out += "\\x";
            out.push_back(hex[c >> 4]);
            out.push_back(hex[c & 15]);
        } else {
            out.push_back(ch);
        }
    }
    return out;
}

void print_tables(const srl::traffic_summary& s, const std::vector<srl::offender>& top,
                  const std::vector<srl::rule_hits>& rules, srl::event_time now, bool as_of) {
    const auto start = srl::window_start(now, s.days);
    std::printf("Traffic, last %d day(s): %s .. %s%s\n", s.days, srl::format_rfc3339(start).c_str(),
                srl::format_rfc3339(now).c_str(), as_of ? " (as of)" : "");
    std::printf("  %-11s %12lld\n", "total", static_cast<long long>(s.total));
    std::printf("  %-11s %12lld\n", "allowed", static_cast<long long>(s.allowed));
    std::printf("  %-11s %12lld\n", "blocked", static_cast<long long>(s.blocked));
    std::printf("  %-11s %12s\n", "block rate", srl::format_plain_decimal(s.block_rate).c_str());

    std::printf("\nTop offenders (%zu)\n", top.size());
    if (top.empty()) {
        std::printf("  (no blocked requests)\n");
    } else {
        std::printf("  %4s  %12s  %s\n", "#", "blocked", "key");
        for (std::size_t i = 0; i < top.size(); ++i)
            std::printf("  %4zu  %12lld  %s\n", i + 1, static_cast<long long>(top[i].blocked_count),
                        printable(top[i].key).c_str());
    }

    std::printf("\nRule hits (%zu)\n", rules.size());
    if (rules.empty()) {
        std::printf("  (no events with a rule)\n");
    } else {
        std::printf("  %12s  %12s  %s\n", "hits", "blocked", "rule");
        for (const auto& r : rules)
            std::printf("  %12lld  %12lld  %s\n", static_cast<long long>(r.hits),
                        static_cast<long long>(r.blocked), printable(r.rule_name).c_str());
    }
}

}  // namespace

int run_report(args_view args) {
    return guarded("report", [&] {
        const auto a = parse_args(args,
                                  {{"--days", true},
                                   {"--limit", true},
                                   {"--json", false},
                                   {"--csv", false},
                                   {"--key", true},
                                   {"--as-of", true}},
                                  usage_report);
        if (a.help) return int{exit_ok};
        const bool json = a.has("--json");
        const bool csv = a.has("--csv");
        const auto key = a.value("--key");
        if (static_cast<int>(json) + static_cast<int>(csv) + static_cast<int>(key.has_value()) > 1)
            throw usage_error("--json, --csv and --key are alternatives: give one");
        if (key && key->empty()) throw usage_error("option '--key': the key is empty");
        const int days = static_cast<int>(int_flag(a, "--days", 7, 1, 36500));
        const long long default_limit = csv ? 1000 : key ? 50 : 20;
        const int limit = static_cast<int>(int_flag(a, "--limit", default_limit, 0, 1'000'000));

        std::optional<srl::event_time> as_of;
        if (const auto t = a.value("--as-of")) {
            as_of = srl::parse_rfc3339(*t);
            if (!as_of)
                throw usage_error("option '--as-of': '" + *t +
                                  "' is not an RFC 3339 timestamp (e.g. 2026-05-07T12:00:00Z)");
        }
        const srl::event_time now = as_of ? *as_of : srl::event_clock_now();

        const auto store = open_event_store(a);
        auto session = store.open_session();
        const srl::soci::sql_analytics sql{*session, store.sql_dialect(), std::nullopt, as_of};

        if (key) {
            const auto d = sql.offender_detail_at(*key, days, limit, now);
            std::printf("%s\n", srl::to_json_string(d).c_str());
            return int{exit_ok};
        }
        if (csv) {
            const std::string text =
                srl::format_offenders_csv(sql.top_offenders_at(days, limit, now));
            std::fwrite(text.data(), 1, text.size(), stdout);
            return int{exit_ok};
        }
        const auto summary = sql.traffic_summary_at(days, now);
        const auto top = sql.top_offenders_at(days, limit, now);
        const auto rules = sql.rule_hit_counts_at(days, limit, now);
        if (json) {
            std::string out = "{\"summary\":";
            srl::append_json(out, summary);
            out += ",\"top_offenders\":";
            srl::append_json(out, top);
            out += ",\"rule_hits\":";
            srl::append_json(out, rules);
            out += "}\n";
            std::fwrite(out.data(), 1, out.size(), stdout);
            return int{exit_ok};
        }
        print_tables(summary, top, rules, now, as_of.has_value());
        return int{exit_ok};
    });
}

}  // namespace srl_tool
