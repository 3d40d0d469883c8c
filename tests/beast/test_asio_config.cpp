// tests/beast/test_asio_config.cpp
// The adapter's headers with and without BOOST_ASIO_NO_DEPRECATED: CMake builds
// this file twice (SRL_EXPECT_NO_DEPRECATED 1 and 0) and each build runs every
// asynchronous operation once, so each template body is instantiated both ways.
#include <smart_ratelimit/beast.hpp>
#include <smart_ratelimit/event.hpp>
#include <smart_ratelimit/limiter.hpp>
#include <smart_ratelimit/redis/async.hpp>
#include <smart_ratelimit/storage/in_memory_storage.hpp>
#if defined(SRL_TEST_WITH_WEBHOOK)
#include <smart_ratelimit/beast/webhook_client.hpp>
#endif

#include <catch2/catch.hpp>

#include <boost/asio/bind_executor.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/beast/http/string_body.hpp>

#include <optional>
#include <vector>

#if SRL_EXPECT_NO_DEPRECATED
#if !defined(BOOST_ASIO_NO_DEPRECATED)
#error "this build should define BOOST_ASIO_NO_DEPRECATED"
#endif
#define SRL_ASIO_MODE "with BOOST_ASIO_NO_DEPRECATED"
#else
#if defined(BOOST_ASIO_NO_DEPRECATED)
#error "smart_ratelimit::beast must not define BOOST_ASIO_NO_DEPRECATED for its users"
#endif
#define SRL_ASIO_MODE "without BOOST_ASIO_NO_DEPRECATED"
#endif

namespace srl = smart_ratelimit;
namespace sb = smart_ratelimit::beast;
namespace asio = boost::asio;
namespace http = boost::beast::http;

TEST_CASE("every asynchronous operation compiles and completes " SRL_ASIO_MODE, "[beast][async]") {
    srl::in_memory_limiter<sb::request_key> lim(sb::request_key::ip(), {{"login", "1/m"}});
    sb::middleware<decltype(lim)> m;
    m.add(lim, {"/login", {}});
    asio::thread_pool pool(1);
    m.set_work_executor(pool.get_executor());
    asio::io_context ioc;
    const auto peer = srl::ip_address::from_string("192.0.2.1");
    http::request<http::string_body> req{http::verb::post, "/login", 11};

    std::vector<unsigned> statuses;
    std::optional<sb::limit_status> checked;
    auto app = [](http::request<http::string_body>& r, const sb::limit_result& res) {
        http::response<http::string_body> out{http::status::ok, r.version()};
        res.apply(out);
        return http::message_generator(std::move(out));
    };
    m.async_check(
        req, peer, asio::bind_executor(ioc, [&](boost::system::error_code ec, sb::limit_result r) {
            CHECK_FALSE(ec);
            checked = r.status();
            m.async_handle(req, peer, app,
                           asio::bind_executor(
                               ioc, [&](boost::system::error_code ec2, http::message_generator) {
                                   CHECK_FALSE(ec2);
                                   statuses.push_back(0);
                               }));
        }));

    const sb::dashboard dash{sb::event_range_source{[] { return std::vector<srl::event>{}; }}};
    std::optional<unsigned> dash_status;
    dash.async_handle(pool.get_executor(),
                      http::request<http::string_body>{http::verb::get, "/ratelimit/health", 11},
                      asio::bind_executor(ioc, [&](boost::system::error_code ec,
                                                   http::response<http::string_body> res) {
                          CHECK_FALSE(ec);
                          dash_status = res.result_int();
                      }));

    srl::in_memory_storage<> storage;
    const srl::any_algorithm algorithm("fixed_window", srl::rate{1, std::chrono::hours(1)});
    std::optional<bool> acquired;
    srl::redis::async_acquire(
        storage, "k", algorithm, 1, pool.get_executor(),
        asio::bind_executor(ioc, [&](boost::system::error_code ec, srl::outcome o) {
            CHECK_FALSE(ec);
            acquired = o.allowed;
        }));

    std::optional<int> ran;
    sb::async_run_blocking(
        pool.get_executor(), [] { return 42; },
        asio::bind_executor(ioc, [&](std::exception_ptr e, int v) {
            CHECK_FALSE(e);
            ran = v;
        }));
    ioc.run();
    pool.join();
    CHECK(checked == sb::limit_status::allowed);
    CHECK(statuses.size() == 1);
    CHECK(dash_status == 200u);
    CHECK(acquired == true);
    CHECK(ran == 42);
#if defined(SRL_TEST_WITH_WEBHOOK)
    CHECK(sb::webhook_signature("s", 1, "b").rfind("sha256=", 0) == 0);
#endif
}
