// tests/beast/test_middleware_api.cpp
// The adapter's API as Beast users expect it: the request_handler forms (a response
// the middleware dresses, a message_generator the handler dresses with the
// limit_result), the error category, and every asynchronous operation completing
// with an error_code when its work executor refuses the job or its storage throws.
#include "middleware_fixture.hpp"

#include <catch2/catch.hpp>

#include <smart_ratelimit/beast/dashboard.hpp>
#include <smart_ratelimit/redis/async.hpp>

#include <boost/asio/bind_executor.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/http/empty_body.hpp>

#include <future>
#include <optional>
#include <stdexcept>
#include <utility>
#include <string>
#include <vector>

using namespace srl_test;
namespace asio = boost::asio;
using request = http::request<http::string_body>;
using response = http::response<http::string_body>;

namespace {

response plain(const request& req) {
    response res{http::status::ok, req.version()};
    res.body() = "plain";
    res.prepare_payload();
    return res;
}

// A handler that answers with another body type, type-erased, and applies the
// rate-limit fields itself.
http::message_generator generator(request& req, const mw::limit_result& r) {
    http::response<http::empty_body> res{http::status::no_content, req.version()};
    r.apply(res);
    res.set("X-Seen-Status", r.allowed() ? "allowed" : "not allowed");
    return http::message_generator(std::move(res));
}

// Sees the result and returns a response: the middleware still adds the fields.
response seeing(const request& req, const mw::limit_result& r) {
    response res = plain(req);
    res.set("X-Rules", std::to_string(r.rules().size()));
    return res;
}

http::message_generator erased_without_result(const request& req) {
    return http::message_generator(plain(req));
}
int not_an_answer(const request&) { return 0; }

// An executor that refuses every job, as a bounded queue that is full would.
struct refusing_executor {
    asio::io_context* ctx;
    asio::execution_context& query(asio::execution::context_t) const noexcept { return *ctx; }
    static constexpr asio::execution::blocking_t query(asio::execution::blocking_t) noexcept {
        return asio::execution::blocking.never;
    }
    refusing_executor require(asio::execution::blocking_t::never_t) const noexcept { return *this; }
    template <class F>
    void execute(F&&) const {
        throw std::runtime_error("queue full");
    }
    friend bool operator==(const refusing_executor& a, const refusing_executor& b) noexcept {
        return a.ctx == b.ctx;
    }
    friend bool operator!=(const refusing_executor& a, const refusing_executor& b) noexcept {
        return !(a == b);
    }
};

}  // namespace

// The concept's table, and the mistakes it rejects.
static_assert(mw::request_handler<decltype(&plain), http::string_body>);
static_assert(mw::request_handler<decltype(&generator), http::string_body>);
static_assert(mw::request_handler<decltype(&seeing), http::string_body>);
static_assert(!mw::request_handler<decltype(&erased_without_result), http::string_body>,
              "a message_generator without the limit_result would lose the rate-limit fields");
static_assert(!mw::request_handler<decltype(&not_an_answer), http::string_body>);
static_assert(!mw::request_handler<decltype(&plain), http::empty_body>, "wrong request type");

TEST_CASE(
    "handle() takes a response handler, a result-aware handler and a message_generator handler",
    "[beast][middleware]") {
    recording_sink sink;
    auto lim = make_limiter(mw::request_key::ip(), {{"login", "2/m"}}, sink, minute_clock());
    mw::middleware<test_limiter> m;
    m.add(*lim, {"/api/login", {http::verb::post}});
    auto req = make_request(http::verb::post, "/api/login");

    const std::string a = serialize(m.handle(req, addr("192.0.2.1"), plain));
    CHECK(a.rfind("HTTP/1.1 200", 0) == 0);
    CHECK(a.find("RateLimit: \"login\";r=1;t=60") != std::string::npos);

    const std::string b = serialize(m.handle(req, addr("192.0.2.2"), seeing));
    CHECK(b.find("X-Rules: 1") != std::string::npos);
    CHECK(b.find("RateLimit: \"login\";r=1;t=60") != std::string::npos);

    // The generator's handler applied the fields before erasing its response.
    const std::string c = serialize(m.handle(req, addr("192.0.2.1"), generator));
    CHECK(c.rfind("HTTP/1.1 204", 0) == 0);
    CHECK(c.find("X-Seen-Status: allowed") != std::string::npos);
    CHECK(c.find("RateLimit: \"login\";r=0;t=60") != std::string::npos);
    CHECK(c.find("RateLimit-Policy: \"login\";q=2;w=60") != std::string::npos);

    // Over the limit the handler does not run, whatever its form.
    const std::string d = serialize(m.handle(req, addr("192.0.2.1"), generator));
    CHECK(d.rfind("HTTP/1.1 429", 0) == 0);
    CHECK(d.find("X-Seen-Status") == std::string::npos);
}

TEST_CASE("async_handle takes a message_generator handler that applies the fields itself",
          "[beast][async]") {
    recording_sink sink;
    auto lim = make_limiter(mw::request_key::ip(), {{"login", "1/m"}}, sink, minute_clock());
    mw::middleware<test_limiter> m;
    m.add(*lim, {"/api/login", {http::verb::post}});
    asio::thread_pool pool(1);
    m.set_work_executor(pool.get_executor());
    auto req = make_request(http::verb::post, "/api/login");
    std::vector<std::string> wires;
    std::vector<boost::system::error_code> errors;
    asio::io_context ioc;
    auto done =
        asio::bind_executor(ioc, [&](boost::system::error_code ec, http::message_generator msg) {
            errors.push_back(ec);
            wires.push_back(serialize(std::move(msg)));
        });
    m.async_handle(req, addr("192.0.2.1"), generator, done);
    ioc.run();
    ioc.restart();
    m.async_handle(req, addr("192.0.2.1"), generator, done);
    ioc.run();
    pool.join();
    REQUIRE(wires.size() == 2);
    CHECK_FALSE(errors[0]);
    CHECK_FALSE(errors[1]);  // a 429 is an answer, not an error
    CHECK(wires[0].rfind("HTTP/1.1 204", 0) == 0);
    CHECK(wires[0].find("RateLimit: \"login\";r=0;t=60") != std::string::npos);
    CHECK(wires[1].rfind("HTTP/1.1 429", 0) == 0);
}

TEST_CASE("a degraded store is a result, not an error, in async_check", "[beast][async]") {
    recording_sink sink;
    flaky_storage storage;
    storage.failing->store(true);
    auto lim = make_limiter(mw::request_key::ip(), {{"login", "5/m"}}, sink, minute_clock(),
                            std::move(storage));
    mw::middleware<test_limiter> m;
    m.add(*lim);
    auto req = make_request(http::verb::get, "/");
    asio::io_context ioc;
    boost::system::error_code ec = mw::error::check_failed;
    std::optional<mw::limit_status> status;
    m.async_check(req, addr("192.0.2.1"),
                  asio::bind_executor(ioc, [&](boost::system::error_code e, mw::limit_result r) {
                      ec = e;
                      status = r.status();
                  }));
    ioc.run();
    CHECK_FALSE(ec);
    CHECK(status == mw::limit_status::degraded_closed);
}

TEST_CASE("the error codes are in the adapter's category, with messages", "[beast][async]") {
    const boost::system::error_code ec = mw::error::handler_failed;
    CHECK(ec.category() == mw::error_category());
    CHECK(std::string(ec.category().name()) == "smart_ratelimit.beast");
    CHECK(ec.message() == "the request handler threw an exception");
    CHECK(boost::system::error_code(mw::error::work_rejected).message() ==
          "the work executor rejected the job");
    CHECK(boost::system::error_code(mw::error::check_failed) !=
          boost::system::error_code(mw::error::storage_failed));
    CHECK(ec.failed());
}

TEST_CASE(
    "a work executor that refuses the job completes every operation with an error, not inline",
    "[beast][async]") {
    recording_sink sink;
    auto lim = make_limiter(mw::request_key::ip(), {{"login", "5/m"}}, sink, minute_clock());
    mw::middleware<test_limiter> m;
    m.add(*lim);
    asio::io_context ioc;
    const refusing_executor refusing{&ioc};
    m.set_work_executor(refusing);
    auto req = make_request(http::verb::get, "/");

    std::vector<boost::system::error_code> errors;
    std::optional<mw::limit_status> checked;
    m.async_check(req, addr("192.0.2.1"),
                  asio::bind_executor(ioc, [&](boost::system::error_code ec, mw::limit_result r) {
                      errors.push_back(ec);
                      checked = r.status();
                  }));
    std::string wire;
    m.async_handle(
        req, addr("192.0.2.1"), plain,
        asio::bind_executor(ioc, [&](boost::system::error_code ec, http::message_generator msg) {
            errors.push_back(ec);
            wire = serialize(std::move(msg));
        }));
    const mw::dashboard dash{mw::event_range_source{[] { return std::vector<srl::event>{}; }}};
    std::optional<unsigned> dash_status;
    dash.async_handle(refusing, request{http::verb::get, "/ratelimit/health", 11},
                      asio::bind_executor(ioc, [&](boost::system::error_code ec, response res) {
                          errors.push_back(ec);
                          dash_status = res.result_int();
                      }));
    srl::in_memory_storage<> storage;
    const srl::any_algorithm algorithm("fixed_window", srl::rate{1, std::chrono::hours(1)});
    std::optional<bool> degraded;
    srl::redis::async_acquire(
        storage, "k", algorithm, 1, refusing,
        asio::bind_executor(ioc, [&](boost::system::error_code ec, srl::outcome o) {
            errors.push_back(ec);
            degraded = o.degraded;
        }));
    std::string blocking_error;
    mw::async_run_blocking(
        refusing, [] { return 1; }, asio::bind_executor(ioc, [&](std::exception_ptr e, int) {
            try {
                if (e) std::rethrow_exception(e);
            } catch (const std::exception& x) {
                blocking_error = x.what();
            }
        }));
    CHECK(errors.empty());  // never inside the initiating call
    ioc.run();
    REQUIRE(errors.size() == 4);
    for (const auto& ec : errors) CHECK(ec == mw::error::work_rejected);
    CHECK(checked == mw::limit_status::degraded_closed);  // a 503 if answered anyway
    CHECK(wire.rfind("HTTP/1.1 503", 0) == 0);
    CHECK(dash_status == 503u);
    CHECK(degraded == true);
    CHECK(blocking_error == "queue full");
}

TEST_CASE(
    "redis::async_acquire reports a throwing storage as storage_failed with a degraded outcome",
    "[beast][async]") {
    flaky_storage storage;
    const srl::any_algorithm algorithm("fixed_window", srl::rate{2, std::chrono::hours(1)});
    asio::thread_pool pool(1);
    CHECK(
        srl::redis::async_acquire(storage, "k", algorithm, 1, pool.get_executor(), asio::use_future)
            .get()
            .allowed);
    storage.failing->store(true);
    // A callback, not use_future: an exception carried through the future would be
    // freed on the pool's thread, a hand-over TSan cannot see synchronised.
    std::promise<std::pair<boost::system::error_code, srl::outcome>> failed;
    srl::redis::async_acquire(storage, "k", algorithm, 1, pool.get_executor(),
                              [&failed](boost::system::error_code ec, srl::outcome o) {
                                  failed.set_value({ec, o});
                              });
    auto [ec, result] = failed.get_future().get();
    CHECK(ec == mw::error::storage_failed);
    CHECK(result.degraded);
    pool.join();
}
