// examples/demo_server.cpp
// The demo: a Beast server whose API is protected by the limiter (POST /api/login
// at 5/m per IP under the rule `login`, GET /api/items at 100/m per user or IP),
// every decision logged to SQL through the async sink and the SOCI event store,
// and the staff dashboard under /ratelimit/. Prints its URL and a staff token.
// `--help` lists the flags; the settings of SPEC 11 are read as everywhere else.
#include <smart_ratelimit/beast/dashboard.hpp>
#include <smart_ratelimit/beast/middleware.hpp>
#include <smart_ratelimit/beast/soci_dashboard_source.hpp>
#include <smart_ratelimit/limiter.hpp>
#include <smart_ratelimit/settings.hpp>
#include <smart_ratelimit/sinks/async_sink.hpp>
#include <smart_ratelimit/soci/analytics.hpp>
#include <smart_ratelimit/soci/event_store.hpp>
#include <smart_ratelimit/storage/in_memory_storage.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace srl = smart_ratelimit;
namespace sb = smart_ratelimit::beast;
namespace asio = boost::asio;
namespace http = boost::beast::http;
using tcp = asio::ip::tcp;

namespace {

using store_sink = srl::async_sink<srl::soci::event_store>;

/// Forwards events to the async sink (or nowhere, when logging is off).
struct sink_ref {
    store_sink* sink = nullptr;
    void record(const srl::event& e) noexcept {
        if (sink != nullptr) sink->record(e);
    }
    void record(srl::event&& e) noexcept {
        if (sink != nullptr) sink->record(std::move(e));
    }
};

using demo_limiter = srl::limiter<sb::request_key, srl::in_memory_storage<>, sink_ref>;

/// Demo identity: a request naming a user in `X-Demo-User` counts as that user.
/// (A real application returns the id of its authenticated session here.)
struct demo_identity {
    std::optional<std::string> operator()(const http::request_header<>& h) const {
        const auto v = h["X-Demo-User"];
        if (v.empty() || v.size() > 64) return std::nullopt;
        return std::string(v);
    }
};

using demo_middleware = sb::middleware<demo_limiter, demo_identity>;
using demo_dashboard = sb::dashboard<sb::soci_event_store_source, sb::staff_token_authorizer>;

enum class mode { full, limit, none };

struct options {
    std::string address = "127.0.0.1";
    unsigned short port = 8080;
    std::optional<std::string> database;
    std::optional<std::string> staff_token;
    std::optional<std::string> settings_file;
    std::vector<std::array<std::string, 3>> setting_flags;  // key, value, flag
    std::string login_rate = "5/m";
    std::string items_rate = "100/m";
    mode run_mode = mode::full;
    int threads = 1;
    bool migrate = false;
};

[[noreturn]] void usage(int code) {
    std::fputs(
        "usage: demo_server [options]\n"
        "  --port N              TCP port (0: pick a free one; the actual port is printed). Default 8080\n"
        "  --address ADDR        address to bind. Default 127.0.0.1\n"
        "  --database URL        event database (RATELIMIT_DATABASE_URL), e.g. sqlite:///events.db\n"
        "  --staff-token TOKEN   dashboard staff token (default: a random one, printed)\n"
        "  --settings FILE       settings file (else RATELIMIT_SETTINGS); the environment wins over it\n"
        "  --log-events on|off   RATELIMIT_LOG_EVENTS (the demo's default: on)\n"
        "  --fail-open on|off    RATELIMIT_FAIL_OPEN\n"
        "  --trusted-proxies L   RATELIMIT_TRUSTED_PROXIES, comma-separated CIDRs\n"
        "  --default-limit RATE  RATELIMIT_DEFAULT_LIMIT: a per-IP rule `default` on every /api/ path\n"
        "  --login-rate RATE     rate of POST /api/login per IP. Default 5/m\n"
        "  --items-rate RATE     rate of GET /api/items per user or IP. Default 100/m\n"
        "  --mode full|limit|none  benchmark modes: limiter and logging / limiter only / no limiter\n"
        "  --threads N           I/O threads. Default 1\n"
        "  --migrate             create or update the event tables before serving (as `smart-ratelimit migrate`)\n",
        code == 0 ? stdout : stderr);
    std::exit(code);
}

options parse_args(int argc, char** argv) {
    options o;
    auto value = [&](int& i) -> std::string {
        if (i + 1 >= argc) {
            std::fprintf(stderr, "demo_server: %s needs a value\n", argv[i]);
            usage(64);
        }
        return argv[++i];
    };
    for (int i = 1; i < argc; ++i) {
        const std::string_view a = argv[i];
        if (a == "--help" || a == "-h") usage(0);
        else if (a == "--port") {
            const std::string v = value(i);
            char* end = nullptr;
            const long p = std::strtol(v.c_str(), &end, 10);
            if (v.empty() || *end != '\0' || p < 0 || p > 65535) {
                std::fprintf(stderr, "demo_server: --port: not a port number: '%s'\n", v.c_str());
                std::exit(64);
            }
            o.port = static_cast<unsigned short>(p);
        } else if (a == "--address") o.address = value(i);
        else if (a == "--database") o.database = value(i);
        else if (a == "--staff-token") o.staff_token = value(i);
        else if (a == "--settings") o.settings_file = value(i);
        else if (a == "--log-events") o.setting_flags.push_back({"RATELIMIT_LOG_EVENTS", value(i), "--log-events"});
        else if (a == "--fail-open") o.setting_flags.push_back({"RATELIMIT_FAIL_OPEN", value(i), "--fail-open"});
        else if (a == "--trusted-proxies") o.setting_flags.push_back({"RATELIMIT_TRUSTED_PROXIES", value(i), "--trusted-proxies"});
        else if (a == "--default-limit") o.setting_flags.push_back({"RATELIMIT_DEFAULT_LIMIT", value(i), "--default-limit"});
        else if (a == "--login-rate") o.login_rate = value(i);
        else if (a == "--items-rate") o.items_rate = value(i);
        else if (a == "--mode") {
            const std::string v = value(i);
            if (v == "full") o.run_mode = mode::full;
            else if (v == "limit") o.run_mode = mode::limit;
            else if (v == "none") o.run_mode = mode::none;
            else {
                std::fprintf(stderr, "demo_server: --mode: expected full, limit or none, got '%s'\n", v.c_str());
                std::exit(64);
            }
        } else if (a == "--threads") {
            const std::string v = value(i);
            o.threads = std::atoi(v.c_str());
            if (o.threads < 1 || o.threads > 64) {
                std::fprintf(stderr, "demo_server: --threads: expected 1..64, got '%s'\n", v.c_str());
                std::exit(64);
            }
        } else if (a == "--migrate") o.migrate = true;
        else {
            std::fprintf(stderr, "demo_server: unknown option '%s'\n", argv[i]);
            usage(64);
        }
    }
    return o;
}

std::string random_token() {
    std::random_device rd;
    static constexpr char hex[] = "0123456789abcdef";
    std::string t;
    for (int i = 0; i < 32; ++i) t += hex[rd() & 15u];
    return t;
}

/// The application behind the middleware: tiny JSON answers.
http::response<http::string_body> app(const http::request<http::string_body>& req) {
    http::response<http::string_body> res{http::status::ok, req.version()};
    res.set(http::field::content_type, "application/json");
    res.keep_alive(req.keep_alive());
    const auto path = sb::path_of(req.target());
    if (path == "/api/login" && req.method() == http::verb::post) res.body() = "{\"ok\":true}";
    else if (path == "/api/items" && req.method() == http::verb::get) res.body() = "{\"items\":[]}";
    else if (path == "/") res.body() = "{\"dashboard\":\"/ratelimit/dashboard/\"}";
    else if (path == "/favicon.ico") {
        res.result(http::status::no_content);
        res.erase(http::field::content_type);
    }
    else {
        res.result(http::status::not_found);
        res.body() = "{\"error\":\"not found\"}";
    }
    res.prepare_payload();
    return res;
}

/// Serializes a small, complete response (Content-Length set) into `out` in one
/// piece: for answers this tiny, walking Beast's per-field buffer sequence costs
/// more CPU than copying the bytes, and one contiguous buffer is one iovec.
void flatten(const http::response<http::string_body>& res, std::string& out) {
    out.clear();
    out += res.version() == 10 ? "HTTP/1.0 " : "HTTP/1.1 ";
    char code[4] = {char('0' + res.result_int() / 100), char('0' + res.result_int() / 10 % 10),
                    char('0' + res.result_int() % 10), ' '};
    out.append(code, 4);
    const auto reason = res.reason();
    out.append(reason.data(), reason.size());
    out += "\r\n";
    for (const auto& f : res) {
        const auto n = f.name_string();
        const auto v = f.value();
        out.append(n.data(), n.size());
        out += ": ";
        out.append(v.data(), v.size());
        out += "\r\n";
    }
    out += "\r\n";
    out += res.body();
}

struct server {
    const options& opt;
    demo_middleware* mw;          // null in mode none
    const demo_dashboard* dash;   // null in mode none
    asio::thread_pool& work;

    asio::awaitable<void> session(tcp::socket socket) {
        boost::beast::flat_buffer buffer;
        std::string wire;
        const srl::ip_address peer = sb::to_ip_address(socket.remote_endpoint().address());
        for (;;) {
            http::request_parser<http::string_body> p;
            p.body_limit(64 * 1024);
            auto [ec, n] = co_await http::async_read(socket, buffer, p, asio::as_tuple(asio::use_awaitable));
            if (ec) co_return;
            http::request<http::string_body> req = p.release();
            bool keep = req.keep_alive();
            boost::system::error_code wec;
            if (dash != nullptr && dash->matches(req.target())) {
                auto res = co_await dash->async_handle(work.get_executor(), std::move(req), asio::use_awaitable);
                keep = res.keep_alive();
                std::tie(wec, n) = co_await http::async_write(socket, res, asio::as_tuple(asio::use_awaitable));
            } else if (mw != nullptr) {
                // The limiters keep their state in memory, so checking never blocks:
                // decide on the I/O thread. (A SQL or Redis storage would use
                // mw->async_handle with a work executor instead.)
                // (check + apply is mw->handle without its type-erased message_generator.)
                const sb::limit_result r = mw->check(req, peer);
                http::response<http::string_body> res = r.allowed() ? app(req) : r.make_response(req);
                if (r.allowed()) r.apply(res);
                keep = res.keep_alive();
                flatten(res, wire);
                std::tie(wec, n) = co_await asio::async_write(socket, asio::buffer(wire), asio::as_tuple(asio::use_awaitable));
            } else {
                auto res = app(req);
                flatten(res, wire);
                std::tie(wec, n) = co_await asio::async_write(socket, asio::buffer(wire), asio::as_tuple(asio::use_awaitable));
            }
            if (wec || !keep) break;
        }
        boost::system::error_code ignored;
        socket.shutdown(tcp::socket::shutdown_send, ignored);
    }

    asio::awaitable<void> listen(tcp::acceptor& acceptor) {
        for (;;) {
            auto [ec, socket] = co_await acceptor.async_accept(asio::as_tuple(asio::use_awaitable));
            if (ec) {
                if (ec == asio::error::operation_aborted || !acceptor.is_open()) co_return;
                continue;  // e.g. too many open files: keep serving
            }
            socket.set_option(tcp::no_delay(true));
            asio::co_spawn(acceptor.get_executor(), session(std::move(socket)), asio::detached);
        }
    }
};

int run(const options& opt) {
    // Settings: the demo logs by default; file, environment, then flags override.
    srl::settings s;
    s.log_events = true;
    {
        const auto env = srl::process_environment();
        std::optional<std::string> file = opt.settings_file;
        if (!file) {
            const auto it = env.find(srl::settings_file_variable);
            if (it != env.end() && !it->second.empty()) file = it->second;
        }
        if (file) srl::apply_settings_json(s, srl::read_settings_file(*file), *file);
        srl::apply_environment(s, env);
        for (const auto& [k, v, flag] : opt.setting_flags) srl::apply_setting(s, k, v, flag);
        if (opt.database) srl::apply_setting(s, "RATELIMIT_DATABASE_URL", *opt.database, "--database");
    }
    const bool limiting = opt.run_mode != mode::none;
    const bool logging = opt.run_mode == mode::full && s.log_events;

    sb::middleware_options mo;
    mo.log_events = logging;
    mo.on_storage_failure = s.fail_open ? sb::fail_policy::fail_open : sb::fail_policy::fail_closed;
    mo.trusted_proxies = srl::cidr_list::from_strings(s.trusted_proxies);
    demo_limiter login(sb::request_key::ip(), {{"login", opt.login_rate}}, {}, {}, sink_ref{});
    demo_limiter items(sb::request_key::user_or_ip(), {{"items", opt.items_rate}}, {}, {}, sink_ref{});
    std::unique_ptr<demo_limiter> fallback;
    demo_middleware mw(mo);
    mw.add(login, sb::route{"/api/login", {http::verb::post}, 1});
    mw.add(items, sb::route{"/api/items", {http::verb::get}, 1});
    if (!s.default_limit.empty()) {
        fallback = std::make_unique<demo_limiter>(sb::request_key::ip(),
                                                  std::vector<srl::rule_config>{{"default", s.default_limit}},
                                                  srl::limiter_options{}, srl::in_memory_storage<>{},
                                                  sink_ref{});
        mw.add(*fallback, sb::route{"/api/", {}, 1});
    }

    const std::string token = opt.staff_token ? *opt.staff_token : random_token();
    sb::staff_token_authorizer staff{token};

    // Configuration is valid; now the database.
    srl::soci::event_store store(s.database_url);
    if (opt.migrate) {
        store.migrate();
        srl::soci::migrate_analytics(store);  // the rollups the dashboard's queries use
    }
    if (!store.schema_current()) {
        std::fprintf(stderr,
                     "demo_server: the event tables of %s are missing or old: run "
                     "`smart-ratelimit migrate --database <url>` or pass --migrate\n",
                     srl::soci::detail::redact_url(s.database_url).c_str());
        return 78;
    }
    std::unique_ptr<store_sink> sink;
    if (logging) {
        sink = std::make_unique<store_sink>(std::in_place, srl::async_sink_options{}, s.database_url);
        login.sink().sink = items.sink().sink = sink.get();
        if (fallback) fallback->sink().sink = sink.get();
    }
    const demo_dashboard dash{sb::soci_event_store_source{store}, std::move(staff)};

    asio::io_context ioc(opt.threads);
    asio::thread_pool work(2);
    tcp::acceptor acceptor(ioc);
    const tcp::endpoint ep(asio::ip::make_address(opt.address), opt.port);
    acceptor.open(ep.protocol());
    acceptor.set_option(asio::socket_base::reuse_address(true));
    acceptor.bind(ep);
    acceptor.listen(asio::socket_base::max_listen_connections);
    const unsigned short port = acceptor.local_endpoint().port();

    server srv{opt, limiting ? &mw : nullptr, limiting ? &dash : nullptr, work};
    asio::co_spawn(ioc, srv.listen(acceptor), asio::detached);

    asio::signal_set signals(ioc, SIGINT, SIGTERM);
    signals.async_wait([&](const boost::system::error_code&, int) {
        boost::system::error_code ignored;
        acceptor.close(ignored);
        ioc.stop();
    });

    const std::string host = ep.address().is_v6() ? "[" + opt.address + "]" : opt.address;
    std::printf("demo_server: listening on http://%s:%u/ (mode %s, event logging %s, database %s)\n", host.c_str(),
                port, opt.run_mode == mode::full ? "full" : opt.run_mode == mode::limit ? "limit" : "none",
                logging ? "on" : "off", srl::soci::detail::redact_url(s.database_url).c_str());
    if (limiting) {
        std::printf("dashboard: http://%s:%u/ratelimit/dashboard/\n", host.c_str(), port);
        std::printf("sign in:   http://%s:%u/ratelimit/signin\n", host.c_str(), port);
        std::printf("staff token: %s\n", token.c_str());
    }
    std::fflush(stdout);

    std::vector<std::thread> threads;
    for (int i = 1; i < opt.threads; ++i) threads.emplace_back([&ioc] { ioc.run(); });
    ioc.run();
    for (auto& t : threads) t.join();
    work.join();

    if (sink) {
        sink->stop();  // flushes the queue
        const auto st = sink->stats();
        std::printf("demo_server: stopped; events offered %llu, written %llu, dropped %llu\n",
                    static_cast<unsigned long long>(st.offered), static_cast<unsigned long long>(st.written),
                    static_cast<unsigned long long>(st.dropped()));
    } else {
        std::printf("demo_server: stopped\n");
    }
    const auto ms = mw.stats();
    std::printf("demo_server: requests checked %llu, allowed %llu, blocked %llu\n",
                static_cast<unsigned long long>(ms.checked), static_cast<unsigned long long>(ms.allowed),
                static_cast<unsigned long long>(ms.blocked));
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    const options opt = parse_args(argc, argv);
    try {
        return run(opt);
    } catch (const srl::config_error& e) {
        std::fprintf(stderr, "demo_server: configuration error: %s\n", e.what());
        return 78;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "demo_server: error: %s\n", e.what());
        return 69;
    }
}
