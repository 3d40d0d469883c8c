// tests/beast/test_middleware_async.cpp
// The asynchronous middleware: the check as an Asio operation with a callback and
// with a coroutine, on a work thread pool so the io_context thread never runs the
// (possibly blocking) check, async_handle with both kinds of handler, the errors
// (error_code first, as Asio's), and one small Beast server on loopback.
#include "middleware_fixture.hpp"

#include <catch2/catch.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/beast/core.hpp>

#include <atomic>
#include <exception>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

using namespace srl_test;
namespace asio = boost::asio;

namespace {

// Remembers the thread the check ran on (the identify callable runs inside check).
struct thread_spy {
    std::shared_ptr<std::atomic<std::thread::id>> seen =
        std::make_shared<std::atomic<std::thread::id>>();
    std::optional<std::string> operator()(const http::request_header<>&) const {
        seen->store(std::this_thread::get_id());
        return std::string("7");
    }
};

http::response<http::string_body> hello(const http::request<http::string_body>& req) {
    http::response<http::string_body> res{http::status::ok, req.version()};
    res.set(http::field::content_type, "text/plain");
    res.body() = "hello";
    res.keep_alive(req.keep_alive());
    res.prepare_payload();
    return res;
}

}  // namespace

TEST_CASE("async_check completes a callback on its bound executor", "[beast][async]") {
    recording_sink sink;
    auto lim = make_limiter(mw::request_key::ip(), {{"login", "2/m"}}, sink, minute_clock());
    mw::middleware<test_limiter> m;
    m.add(*lim);
    auto req = make_request(http::verb::post, "/api/login");
    asio::io_context ioc;
    std::vector<mw::limit_status> got;
    bool on_io_thread = true;
    for (int i = 0; i < 3; ++i)
        m.async_check(
            req, addr("192.0.2.1"),
            asio::bind_executor(
                ioc.get_executor(), [&](boost::system::error_code ec, mw::limit_result r) {
                    CHECK_FALSE(ec);
                    on_io_thread = on_io_thread && ioc.get_executor().running_in_this_thread();
                    got.push_back(r.status());
                }));
    CHECK(got.empty());  // never completes inside the initiating call
    ioc.run();
    REQUIRE(got.size() == 3);
    CHECK(got[0] == mw::limit_status::allowed);
    CHECK(got[1] == mw::limit_status::allowed);
    CHECK(got[2] == mw::limit_status::blocked);
    CHECK(on_io_thread);
}

TEST_CASE("with a work executor the check runs on the pool, not the io_context thread",
          "[beast][async]") {
    recording_sink sink;
    auto lim =
        make_limiter(mw::request_key::user_or_ip(), {{"items", "3/m"}}, sink, minute_clock());
    thread_spy spy;
    mw::middleware_options o;
    o.log_events = true;
    mw::middleware<test_limiter, thread_spy> m(o, spy);
    m.add(*lim);
    asio::thread_pool pool(1);
    m.set_work_executor(pool.get_executor());
    auto req = make_request(http::verb::get, "/api/items?page=2");
    asio::io_context ioc;
    std::optional<mw::limit_result> result;
    std::thread::id completed_on;
    m.async_check(req, addr("192.0.2.1"),
                  asio::bind_executor(ioc, [&](boost::system::error_code ec, mw::limit_result r) {
                      CHECK_FALSE(ec);
                      completed_on = std::this_thread::get_id();
                      result = std::move(r);
                  }));
    ioc.run();  // returns only once the completion ran: the pending check keeps it busy
    REQUIRE(result);
    CHECK(result->status() == mw::limit_status::allowed);
    CHECK(completed_on == std::this_thread::get_id());
    CHECK(spy.seen->load() != std::this_thread::get_id());
    CHECK(spy.seen->load() != std::thread::id{});
    REQUIRE(sink.size() == 1);
    CHECK(sink.events()[0].key == "rule:items:user:7");
    CHECK(sink.events()[0].path == "/api/items");
    pool.join();
}

TEST_CASE("a coroutine awaits the check and async_handle's response", "[beast][async]") {
    recording_sink sink;
    auto lim = make_limiter(mw::request_key::ip(), {{"login", "2/m"}}, sink, minute_clock());
    mw::middleware<test_limiter> m;
    m.add(*lim, {"/api/login", {http::verb::post}});
    asio::thread_pool pool(2);
    m.set_work_executor(pool.get_executor());
    asio::io_context ioc;
    std::vector<std::string> wires;
    std::optional<mw::limit_status> checked;
    std::string handler_error;
    boost::system::error_code thrown;
    auto req = make_request(http::verb::post, "/api/login");
    auto other = make_request(http::verb::post, "/api/login");
    asio::co_spawn(
        ioc,
        [&]() -> asio::awaitable<void> {
            auto r = co_await m.async_check(other, addr("198.51.100.3"), asio::use_awaitable);
            checked = r.status();
            for (int i = 0; i < 3; ++i) {
                auto msg =
                    co_await m.async_handle(req, addr("192.0.2.1"), hello, asio::use_awaitable);
                wires.push_back(serialize(msg));
            }
            auto throwing =
                [](const http::request<http::string_body>&) -> http::response<http::string_body> {
                throw std::runtime_error("handler failed");
            };
            // as_tuple: the error and the 500 to write.
            auto [ec, msg] = co_await m.async_handle(other, addr("198.51.100.3"), throwing,
                                                     asio::as_tuple(asio::use_awaitable));
            handler_error = ec.message();
            CHECK(ec == mw::error::handler_failed);
            wires.push_back(serialize(msg));
            // use_awaitable: the error throws, as every Asio operation's does.
            try {
                co_await m.async_handle(other, addr("198.51.100.4"), throwing, asio::use_awaitable);
            } catch (const boost::system::system_error& e) {
                thrown = e.code();
            }
        },
        [](std::exception_ptr e) {
            if (e) std::rethrow_exception(e);
        });
    ioc.run();
    pool.join();
    CHECK(checked == mw::limit_status::allowed);
    REQUIRE(wires.size() == 4);
    CHECK(wires[0].rfind("HTTP/1.1 200", 0) == 0);
    CHECK(wires[0].find("RateLimit: \"login\";r=1;t=60") != std::string::npos);
    CHECK(wires[1].find("RateLimit: \"login\";r=0;t=60") != std::string::npos);
    CHECK(wires[2].rfind("HTTP/1.1 429", 0) == 0);
    CHECK(wires[2].find("Retry-After: 60") != std::string::npos);
    CHECK(handler_error == "the request handler threw an exception");
    CHECK(wires[3].rfind("HTTP/1.1 500", 0) == 0);
    CHECK(wires[3].find("Connection: close") != std::string::npos);
    CHECK(thrown == mw::error::handler_failed);
}

TEST_CASE("async_run_blocking runs a direct limiter check off the io thread", "[beast][async]") {
    recording_sink sink;
    auto lim = make_limiter(mw::request_key::ip(), {{"", "1/m"}}, sink, minute_clock());
    asio::thread_pool pool(1);
    asio::io_context ioc;
    auto req = make_request(http::verb::get, "/");
    const mw::request_view view(req, addr("192.0.2.1"));
    std::vector<bool> allowed;
    std::string error;
    asio::co_spawn(
        ioc,
        [&]() -> asio::awaitable<void> {
            for (int i = 0; i < 2; ++i) {
                auto v = co_await mw::async_run_blocking(
                    pool.get_executor(), [&] { return lim->check(view); }, asio::use_awaitable);
                allowed.push_back(v.allowed());
            }
            try {
                co_await mw::async_run_blocking(
                    pool.get_executor(), []() -> int { throw std::runtime_error("boom"); },
                    asio::use_awaitable);
            } catch (const std::exception& e) {
                error = e.what();
            }
        },
        asio::detached);
    ioc.run();
    pool.join();
    CHECK(allowed == std::vector<bool>{true, false});
    CHECK(error == "boom");
    CHECK(sink.size() == 0);  // a direct check writes no event
}

TEST_CASE("a Beast server on loopback answers 200 then 429 with the rate-limit fields",
          "[beast][async][socket]") {
    recording_sink sink;
    auto lim = make_limiter(mw::request_key::ip(), {{"login", "3/m"}}, sink, minute_clock());
    mw::middleware_options o;
    o.log_events = true;
    mw::middleware<test_limiter> m(o);
    m.add(*lim, {"/api/login", {http::verb::post}});

    asio::io_context ioc;
    asio::ip::tcp::acceptor acceptor(ioc, {asio::ip::make_address("127.0.0.1"), 0});
    const auto port = acceptor.local_endpoint().port();
    auto session = [&](asio::ip::tcp::socket socket) -> asio::awaitable<void> {
        boost::beast::tcp_stream stream(std::move(socket));
        boost::beast::flat_buffer buffer;
        const auto peer = mw::to_ip_address(stream.socket().remote_endpoint().address());
        for (;;) {
            http::request<http::string_body> req;
            boost::beast::error_code ec;
            co_await http::async_read(stream, buffer, req,
                                      asio::redirect_error(asio::use_awaitable, ec));
            if (ec) break;
            auto msg = co_await m.async_handle(req, peer, hello, asio::use_awaitable);
            co_await boost::beast::async_write(stream, std::move(msg), asio::use_awaitable);
        }
    };
    asio::co_spawn(
        ioc,
        [&]() -> asio::awaitable<void> {
            auto socket = co_await acceptor.async_accept(asio::use_awaitable);
            co_await session(std::move(socket));
        },
        asio::detached);
    std::thread server([&] { ioc.run(); });

    std::vector<unsigned> statuses;
    std::string last_retry_after, last_ratelimit;
    {
        asio::io_context client_ioc;
        boost::beast::tcp_stream client(client_ioc);
        client.expires_after(std::chrono::seconds(60));
        client.connect(asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
        boost::beast::flat_buffer buffer;
        for (int i = 0; i < 4; ++i) {
            http::request<http::string_body> req{http::verb::post, "/api/login", 11};
            req.set(http::field::host, "127.0.0.1");
            req.prepare_payload();
            http::write(client, req);
            http::response<http::string_body> res;
            http::read(client, buffer, res);
            statuses.push_back(res.result_int());
            last_retry_after = field(res, "Retry-After");
            last_ratelimit = field(res, "RateLimit");
        }
        boost::beast::error_code ec;
        client.socket().shutdown(asio::ip::tcp::socket::shutdown_both, ec);
        client.close();
    }
    server.join();  // the session ends when the client closes; then run() returns
    CHECK(statuses == std::vector<unsigned>{200, 200, 200, 429});
    CHECK(last_retry_after == "60");
    CHECK(last_ratelimit == "\"login\";r=0;t=60");
    const auto events = sink.events();
    REQUIRE(events.size() == 4);
    CHECK(events[3].ip_address == std::optional<std::string>("127.0.0.1"));
    CHECK(events[3].key == "rule:login:ip:127.0.0.1");
    CHECK_FALSE(events[3].allowed);
}

TEST_CASE("eight threads through two matching routes admit exactly the tighter limit",
          "[beast][middleware][concurrency]") {
    recording_sink sink;
    auto clock = minute_clock();  // frozen: no window rolls over during the test
    auto global = make_limiter(mw::request_key::ip(), {{"api", "100/m"}}, sink, clock);
    auto login = make_limiter(mw::request_key::ip(), {{"login", "10/m"}}, sink, clock);
    mw::middleware<test_limiter> m;
    m.add(*global, {"/api", {}}).add(*login, {"/api/login", {http::verb::post}});
    const auto post = make_request(http::verb::post, "/api/login");
    std::atomic<int> allowed{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 8; ++t)
        threads.emplace_back([&] {
            for (int i = 0; i < 50; ++i)
                if (m.check(post, addr("203.0.113.5")).allowed()) ++allowed;
        });
    for (auto& th : threads) th.join();
    CHECK(allowed.load() == 10);
    // The 390 rejected logins spent nothing from the global budget: 90 GETs remain.
    const auto get = make_request(http::verb::get, "/api/items");
    int gets = 0;
    while (gets < 200 && m.check(get, addr("203.0.113.5")).allowed()) ++gets;
    CHECK(gets == 90);
}
