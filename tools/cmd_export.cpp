// tools/cmd_export.cpp
// `smart-ratelimit export`: streams events out of the event log as JSON lines
// (the format of event_jsonl.hpp), oldest first so that `import` replays them in their original order,
// to stdout or --output FILE, chunk by chunk, never holding the table in memory.
#include "cli_common.hpp"
#include "event_jsonl.hpp"

#include <cstdio>
#include <string>

namespace srl_tool {

namespace {

constexpr std::string_view usage_export =
    "usage: smart-ratelimit export [--since TS] [--until TS] [--key KEY] [--output FILE]\n"
    "                              [--database URL] [--settings FILE] [--quiet]\n"
    "\n"
    "Writes the matching events as JSON lines, oldest first: one object per line\n"
    "with timestamp (RFC 3339 UTC, microseconds, Z), key, rule_name, path, method,\n"
    "allowed, count, limit, ip_address, user_id (null when unknown) and outcome\n"
    "(allowed, blocked, shadow_blocked or degraded; rows older than the outcome read\n"
    "as allowed or blocked, as `allowed` says). user_id is\n"
    "stored as text; one that is a canonical integer (optional '-', no leading zeros,\n"
    "fits in 64 bits, e.g. 42) is written as a JSON number, any other as a string\n"
    "(\"abc\", \"007\").\n"
    "--since and --until are RFC 3339 date-times, both inclusive. The summary line\n"
    "goes to stderr when the events go to stdout. export only reads: a missing\n"
    "SQLite file is exit 69 and is not created.\n";

srl::event_time time_flag(const parsed_args& a, std::string_view flag) {
    const auto v = a.value(flag);
    const auto t = parse_rfc3339(*v);
    if (!t)
        throw usage_error("option '" + std::string(flag) + "': '" + *v +
                          "' is not an RFC 3339 date-time such as 2026-05-07T22:41:55Z");
    return *t;
}

}  // namespace

int run_export(args_view args) {
    return guarded("export", [&] {
        const auto a = parse_args(
            args, {{"--since", true}, {"--until", true}, {"--key", true}, {"--output", true}},
            usage_export);
        if (a.help) return int{exit_ok};
        srl::soci::event_query q;
        q.order = srl::soci::event_order::oldest_first;
        if (a.has("--since")) q.since = time_flag(a, "--since");
        if (a.has("--until")) q.until = time_flag(a, "--until");
        if (q.since && q.until && *q.since > *q.until)
            throw usage_error("--since is after --until");
        q.key = a.value("--key");
        const auto store = open_event_store(a);

        const auto output = a.value("--output");
        std::FILE* out = stdout;
        if (output) {
            out = std::fopen(output->c_str(), "wb");
            if (out == nullptr) throw usage_error("--output: cannot write '" + *output + "'");
        }
        std::uint64_t n = 0;
        std::string buf;
        bool write_failed = false;
        try {
            for (const srl::event& e : store.events(q)) {
                append_event_json(buf, e);
                ++n;
                if (buf.size() >= 1 << 16) {
                    write_failed |= std::fwrite(buf.data(), 1, buf.size(), out) != buf.size();
                    buf.clear();
                }
            }
            write_failed |= std::fwrite(buf.data(), 1, buf.size(), out) != buf.size();
            write_failed |= std::fflush(out) != 0;
        } catch (...) {
            if (output) std::fclose(out);
            throw;
        }
        if (output) write_failed |= std::fclose(out) != 0;
        if (write_failed)
            throw exit_error(exit_failure,
                             "writing the events to " +
                                 (output ? "'" + *output + "'" : std::string("stdout")) +
                                 " failed");
        print_summary("export: wrote " + std::to_string(n) + " event(s) from " +
                          store.url().redacted() + " to " +
                          (output ? *output : std::string("stdout")),
                      output ? stdout : stderr);
        return int{exit_ok};
    });
}

}  // namespace srl_tool
