// tools/cmd_import.cpp
// `smart-ratelimit import`: reads event JSON lines (event_jsonl.hpp; e.g. a previous
// export or the reference library's history) from stdin or --input FILE, streaming, and writes
// them through the same asynchronous batching writer as live events. Bad lines
// are reported with their line number and skipped; the good ones are kept.
#include "cli_common.hpp"
#include "event_jsonl.hpp"

#include <cstdio>
#include <cstdlib>
#include <string>
#include <utility>

#include <smart_ratelimit/sinks/async_sink.hpp>

namespace srl_tool {

namespace {

constexpr std::string_view usage_import =
    "usage: smart-ratelimit import [--input FILE] [--database URL] [--settings FILE] [--quiet]\n"
    "\n"
    "Reads events as JSON lines (the format `export` writes) from --input or stdin\n"
    "and appends them to the event log. user_id may be a string, an integer (stored\n"
    "as its decimal text: 42 is exported back as 42) or null. outcome is optional\n"
    "(absent: allowed or blocked, as `allowed` says); when present it must agree with\n"
    "allowed (true for allowed and degraded, false for blocked and shadow_blocked).\n"
    "A malformed line is\n"
    "reported with its line number and skipped; the exit code is then 65 and every\n"
    "good line is written.\n"
    "Exit code 69 when the database failed and some events could not be written.\n";

constexpr std::size_t max_reported_lines = 100;

}  // namespace

int run_import(args_view args) {
    return guarded("import", [&] {
        const auto a = parse_args(args, {{"--input", true}}, usage_import);
        if (a.help) return int{exit_ok};
        const auto input = a.value("--input");
        std::FILE* in = stdin;
        if (input) {
            in = std::fopen(input->c_str(), "rb");
            if (in == nullptr) throw usage_error("--input: cannot read '" + *input + "'");
        }
        struct closer {
            std::FILE* f;
            bool own;
            ~closer() {
                if (own) std::fclose(f);
            }
        } close_in{in, input.has_value()};

        // Checks the URL, the connection and the schema before reading anything.
        const std::string url = open_event_store(a).url().redacted();

        srl::async_sink_options opts;
        opts.queue_capacity = 16384;
        opts.max_batch = 1000;
        opts.max_delay = std::chrono::milliseconds(20);
        srl::async_sink<srl::soci::event_store> sink(std::in_place, opts, resolve_database_url(a));
        // The queue drops when full; import must not, so it waits for the writer
        // every half queue.
        const std::size_t window = opts.queue_capacity / 2;

        char* line = nullptr;
        std::size_t cap = 0;
        std::uint64_t line_no = 0, events = 0, bad = 0, since_flush = 0;
        ssize_t len = 0;
        while ((len = ::getline(&line, &cap, in)) >= 0) {
            ++line_no;
            std::string_view text(line, static_cast<std::size_t>(len));
            while (!text.empty() && (text.back() == '\n' || text.back() == '\r'))
                text.remove_suffix(1);
            if (text.find_first_not_of(" \t") == std::string_view::npos) continue;
            try {
                sink.record(parse_event_json(text));
                ++events;
                if (++since_flush >= window) {
                    sink.flush();
                    since_flush = 0;
                }
            } catch (const jsonl_error& e) {
                if (++bad <= max_reported_lines)
                    std::fprintf(stderr, "smart-ratelimit import: line %llu: %s\n",
                                 static_cast<unsigned long long>(line_no), e.what());
            }
        }
        const bool read_failed = std::ferror(in) != 0;
        std::free(line);
        sink.stop();
        const auto st = sink.stats();
        if (bad > max_reported_lines)
            std::fprintf(stderr, "smart-ratelimit import: %llu more bad line(s) not shown\n",
                         static_cast<unsigned long long>(bad - max_reported_lines));
        print_summary("import: read " + std::to_string(line_no) + " line(s) from " +
                      (input ? *input : std::string("stdin")) + ": " + std::to_string(st.written) +
                      " event(s) written to " + url + ", " + std::to_string(bad) +
                      " bad line(s), " + std::to_string(st.dropped_invalid_row) +
                      " invalid event(s), " +
                      std::to_string(st.dropped_write_error + st.dropped_queue_full) +
                      " not written (database errors)");
        if (read_failed) throw exit_error(exit_failure, "reading the input failed");
        if (st.dropped_write_error + st.dropped_queue_full > 0) {
            const std::string why = sink.writer().last_error();
            throw exit_error(exit_unavailable, "the database failed during the import" +
                                                   (why.empty() ? std::string() : ": " + why));
        }
        if (bad > 0 || st.dropped_invalid_row > 0) return int{exit_data};
        return int{exit_ok};
    });
}

}  // namespace srl_tool
