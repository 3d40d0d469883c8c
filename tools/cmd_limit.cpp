// tools/cmd_limit.cpp
// `smart-ratelimit limit`: one rate-limit decision against a shared store, printed
// as one JSON line; exit 0 when allowed, 75 (EX_TEMPFAIL) when denied, 64 for bad
// arguments, 69 when the store cannot be reached. Lets shell scripts and cron jobs
// on many machines limit themselves, and operators probe a key (--peek).
#include "cli_common.hpp"

#include <smart_ratelimit/algorithms/any_algorithm.hpp>
#include <smart_ratelimit/detail/json_escape.hpp>
#include <smart_ratelimit/rate.hpp>

#if defined(SRL_TOOL_WITH_REDIS)
#include <smart_ratelimit/redis.hpp>
#endif
#include <smart_ratelimit/soci/state_storage.hpp>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>

namespace srl_tool {

namespace {

constexpr std::string_view usage_limit =
    "usage: smart-ratelimit limit [--store URL] --rate R --key K [--algorithm A] [--cost N]\n"
    "                             [--prefix P] [--timeout-ms N] [--peek]\n"
    "                             [--database URL] [--settings FILE] [--quiet]\n"
    "\n"
    "Takes one decision for key K against the shared store and prints it as one JSON\n"
    "line (--quiet: no line; the exit code is the answer). --store:\n"
    "redis://[:password@]host[:port][/db], or a database with the state tables\n"
    "(`migrate`): sqlite:///file.db, postgresql://user@host/db. Without --store the\n"
    "store is the database every command uses: --database, else RATELIMIT_DATABASE_URL,\n"
    "else the settings file, else sqlite:///smart_ratelimit.db (a missing SQLite file\n"
    "is exit 69, never created). --rate: e.g. 10/m.\n"
    "--algorithm: fixed_window (default), sliding_window, sliding_window_approx,\n"
    "token_bucket, leaky_bucket or gcra. --cost: units this call weighs (default 1).\n"
    "--prefix: the storage's key prefix (Redis default srl:, as the library's Redis\n"
    "storage; SQL default none).\n"
    "--timeout-ms: connect and command timeout (default 2000). --peek: decide without\n"
    "consuming anything.\n"
    "Exit codes: 0 allowed, 75 denied, 64 bad arguments, 69 store unreachable or\n"
    "without the state tables, 78 bad settings.\n"
    "Example: smart-ratelimit limit --store redis://127.0.0.1:6379 --rate 10/m --key job:backup || "
    "exit 0\n";

using srl::detail::append_json_string;

std::string ms_field(std::chrono::nanoseconds d) {
    if (d == srl::never) return "null";
    return std::to_string(
        std::chrono::duration_cast<std::chrono::milliseconds>(d + std::chrono::nanoseconds(999'999))
            .count());
}

}  // namespace

int run_limit(args_view args) {
    return guarded("limit", [&]() -> int {
        const auto a = parse_args(args,
                                  {{"--store", true},
                                   {"--rate", true},
                                   {"--key", true},
                                   {"--algorithm", true},
                                   {"--cost", true},
                                   {"--prefix", true},
                                   {"--timeout-ms", true},
                                   {"--peek", false}},
                                  usage_limit);
        if (a.help) return exit_ok;
        for (const char* required : {"--rate", "--key"})
            if (!a.value(required))
                throw usage_error(std::string("missing option '") + required + "'");
        if (a.value("--store") && a.database)
            throw usage_error("--store and --database both name the store: give one");
        // Without --store: the database every command uses (RATELIMIT_DATABASE_URL...).
        const std::string store =
            a.value("--store") ? *a.value("--store") : resolve_database_url(a).original;
        const std::string key = *a.value("--key");
        if (key.empty()) throw usage_error("option '--key' must not be empty");
        srl::rate r;
        try {
            r = srl::parse_rate(*a.value("--rate"));
        } catch (const srl::config_error& e) {
            throw usage_error(std::string("--rate: ") + e.what());
        }
        const std::string alg_name = a.value("--algorithm").value_or("fixed_window");
        std::optional<srl::any_algorithm> alg;
        try {
            alg.emplace(alg_name, r);
        } catch (const srl::config_error& e) {
            throw usage_error(std::string("--algorithm: ") + e.what());
        }
        const auto cost = static_cast<std::uint64_t>(int_flag(a, "--cost", 1, 1, 1'000'000'000));
        const auto timeout =
            std::chrono::milliseconds(int_flag(a, "--timeout-ms", 2000, 1, 600'000));
        const bool peek = a.has("--peek");

        if (store == "memory" || store.rfind("memory:", 0) == 0)
            throw usage_error(
                "--store memory is meaningless for one decision (the state would die with this "
                "process); use a shared store: redis://host:port");
        auto report = [&](const srl::outcome& out, const std::string& shown) {
            std::string line = "{\"allowed\":";
            line += out.allowed ? "true" : "false";
            line += ",\"key\":";
            append_json_string(line, key);
            line += ",\"algorithm\":";
            append_json_string(line, alg->name());
            line += ",\"limit\":" + std::to_string(alg->limit());
            line += ",\"period_s\":" +
                    std::to_string(
                        std::chrono::duration_cast<std::chrono::seconds>(alg->period()).count());
            line += ",\"cost\":" + std::to_string(cost);
            line += ",\"count\":" + std::to_string(out.count);
            line += ",\"remaining\":" + std::to_string(out.remaining);
            line += ",\"reset_after_ms\":" + ms_field(out.reset_after);
            line += ",\"retry_after_ms\":" + ms_field(out.retry_after);
            line += ",\"retryable\":";
            line += out.retryable ? "true" : "false";
            line += ",\"peek\":";
            line += peek ? "true" : "false";
            line += ",\"store\":";
            append_json_string(line, shown);
            line += "}";
            print_summary(line);
            return out.allowed ? exit_ok : exit_tempfail;
        };
        if (store.rfind("sqlite:", 0) == 0 || store.rfind("sqlite3:", 0) == 0 ||
            store.rfind("postgresql:", 0) == 0 || store.rfind("postgres:", 0) == 0) {
            // SQL state tables: one locked transaction on the database's clock.
            srl::soci::database_url url;
            try {
                url = srl::soci::parse_database_url(store);
            } catch (const srl::config_error& e) {
                throw usage_error(std::string("--store: ") + e.what());
            }
            require_existing_database(url);
            srl::soci::sql_state_options so;
            so.max_connections = 1;
            so.errors = srl::soci::on_error::raise;
            if (const auto p = a.value("--prefix")) so.key_prefix = *p;
            srl::soci::sql_state_storage storage(url, so);
            if (!storage.schema_current())
                throw exit_error(exit_unavailable,
                                 "the rate-limit state tables are missing in '" + url.redacted() +
                                     "': run `smart-ratelimit migrate --database URL`");
            const srl::outcome out =
                peek ? storage.peek(key, *alg, std::chrono::nanoseconds(0), cost)
                     : storage.acquire(key, *alg, std::chrono::nanoseconds(0), cost);
            return report(out, url.redacted());
        }
#if defined(SRL_TOOL_WITH_REDIS)
        if (!smart_ratelimit::redis::is_redis_url(store))
            throw usage_error(
                "--store '" + store +
                "': unknown store URL (expected redis://host:port[/db], sqlite:///file.db or "
                "postgresql://user@host/db)");
        namespace rds = smart_ratelimit::redis;
        rds::redis_storage_options o;
        try {
            o = rds::redis_options_from_url(store, timeout, timeout, 1);
        } catch (const srl::config_error& e) {
            throw usage_error(std::string("--store: ") + e.what());
        }
        if (const auto p = a.value("--prefix")) o.prefix = *p;
        o.errors = rds::on_error::raise;
        std::optional<rds::redis_storage> storage;
        try {
            storage.emplace(o);
        } catch (const srl::config_error& e) {
            throw usage_error(std::string("--prefix: ") + e.what());
        }
        const srl::outcome out =
            peek ? storage->peek(key, *alg, std::chrono::nanoseconds(0), cost)
                 : storage->acquire(key, *alg, std::chrono::nanoseconds(0), cost);
        return report(out, o.pool.conn.url.redacted());
#else
        throw usage_error("--store '" + store + "': this smart-ratelimit was built without Redis support (hiredis)");
#endif
    });
}

}  // namespace srl_tool
