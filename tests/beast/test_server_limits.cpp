// tests/beast/test_server_limits.cpp
// beast/server_limits.hpp: the statuses that answer what Beast's parser refuses, the
// accept errors that call for a pause, the default connection cap under a lowered
// RLIMIT_NOFILE, and connection_deadline on a loopback socket pair (a pending read
// cancelled at the deadline, the deadline moved later and earlier, none at all).
#include <smart_ratelimit/beast/server_limits.hpp>

#include <catch2/catch.hpp>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>

#include <cerrno>
#include <chrono>
#include <optional>
#include <string>
#include <string_view>

#include <sys/resource.h>

namespace sb = smart_ratelimit::beast;
namespace asio = boost::asio;
namespace http = boost::beast::http;
using tcp = asio::ip::tcp;
using namespace std::chrono_literals;

namespace {

// What parsing `text` (the whole of it, then its end) leaves as the error.
boost::system::error_code parse(std::string_view text, std::uint32_t header_limit = 8192,
                                std::uint64_t body_limit = 64) {
    http::request_parser<http::string_body> p;
    p.header_limit(header_limit);
    p.body_limit(body_limit);
    boost::system::error_code ec;
    std::size_t at = 0;
    while (at < text.size()) {
        const std::size_t used = p.put(asio::buffer(text.data() + at, text.size() - at), ec);
        at += used;
        if (ec == http::error::need_more) ec = {};
        if (ec || p.is_done() || used == 0) break;
    }
    if (!ec && !p.is_done()) p.put_eof(ec);
    return ec;
}

boost::system::error_code sys(int e) { return {e, boost::system::system_category()}; }

// A connected pair of loopback sockets.
struct socket_pair {
    asio::io_context ioc;
    tcp::socket server{ioc}, client{ioc};
    socket_pair() {
        tcp::acceptor a(ioc, {asio::ip::make_address("127.0.0.1"), 0});
        client.connect(a.local_endpoint());
        a.accept(server);
    }
};

// Reads once from `s`, running `ioc` until the read completes (at most 5 s); the read's
// error and how long it took since `t0`. Callers take `t0` before they arm a timer, so a
// timer of d cannot end the read sooner than d after it.
struct read_result {
    boost::system::error_code ec;
    std::chrono::steady_clock::duration took{};
};
read_result read_once(asio::io_context& ioc, tcp::socket& s,
                      std::chrono::steady_clock::time_point t0 = std::chrono::steady_clock::now()) {
    static char byte[16];
    std::optional<read_result> r;
    s.async_read_some(asio::buffer(byte), [&](boost::system::error_code ec, std::size_t) {
        r = read_result{ec, std::chrono::steady_clock::now() - t0};
        ioc.stop();  // the deadline's timer may still be waiting
    });
    ioc.restart();
    ioc.run_for(5s);
    REQUIRE(r.has_value());
    return *r;
}

// Writes a byte to `s` after `after` (when the timer's io_context runs).
void write_later(tcp::socket& s, asio::steady_timer& t, std::chrono::milliseconds after) {
    t.expires_after(after);
    t.async_wait([&s](boost::system::error_code) { asio::write(s, asio::buffer("x", 1)); });
}

}  // namespace

TEST_CASE("a refused request is answered 431, 413 or 400 and a closed one not at all",
          "[beast][server]") {
    const std::string big_header = "GET / HTTP/1.1\r\nX: " + std::string(200, 'a') + "\r\n\r\n";
    CHECK(sb::refusal_status(parse(big_header, 100)) ==
          http::status::request_header_fields_too_large);
    CHECK(sb::refusal_status(parse("POST / HTTP/1.1\r\nContent-Length: 65\r\n\r\n")) ==
          http::status::payload_too_large);
    CHECK(sb::refusal_status(parse("GARBAGE\r\n\r\n")) == http::status::bad_request);
    CHECK(sb::refusal_status(parse("GET / HTTP/1.1\r\nHost x\r\n\r\n")) ==
          http::status::bad_request);
    // Cut off: the client is gone, there is no one to answer.
    CHECK(sb::refusal_status(parse("POST / HTTP/1.1\r\nContent-Length: 9\r\n\r\nab")) ==
          std::nullopt);
    CHECK(sb::refusal_status(http::error::end_of_stream) == std::nullopt);
    CHECK(sb::refusal_status(asio::error::connection_reset) == std::nullopt);
    CHECK(sb::refusal_status(asio::error::operation_aborted) == std::nullopt);
    CHECK(parse("GET / HTTP/1.1\r\nHost: x\r\n\r\n") == boost::system::error_code{});
}

TEST_CASE("accept pauses when descriptors or memory run out, not for one failed connection",
          "[beast][server]") {
    CHECK(sb::accept_needs_backoff(asio::error::no_descriptors));  // EMFILE
    CHECK(sb::accept_needs_backoff(sys(EMFILE)));
    CHECK(sb::accept_needs_backoff(sys(ENFILE)));
    CHECK(sb::accept_needs_backoff(sys(ENOBUFS)));
    CHECK(sb::accept_needs_backoff(sys(ENOMEM)));
    CHECK(sb::accept_needs_backoff(sys(EINVAL)));  // unexpected: pause rather than spin
    CHECK_FALSE(sb::accept_needs_backoff({}));
    CHECK_FALSE(sb::accept_needs_backoff(sys(ECONNABORTED)));
    CHECK_FALSE(sb::accept_needs_backoff(sys(ECONNRESET)));
    CHECK_FALSE(sb::accept_needs_backoff(sys(EPROTO)));
    CHECK_FALSE(sb::accept_needs_backoff(sys(EPERM)));
    CHECK_FALSE(sb::accept_needs_backoff(sys(ENETUNREACH)));
}

TEST_CASE("the default connection cap leaves descriptors for the rest of the process",
          "[beast][server]") {
    rlimit saved{};
    REQUIRE(::getrlimit(RLIMIT_NOFILE, &saved) == 0);
    const auto with_soft_limit = [&](rlim_t soft) {
        rlimit rl = saved;
        rl.rlim_cur = std::min(soft, saved.rlim_max);
        REQUIRE(::setrlimit(RLIMIT_NOFILE, &rl) == 0);
        const std::size_t n = sb::default_max_connections();
        REQUIRE(::setrlimit(RLIMIT_NOFILE, &saved) == 0);
        return n;
    };
    if (saved.rlim_max >= 1024) CHECK(with_soft_limit(1024) == 1024 - 64);
    CHECK(with_soft_limit(100) == 50);
    CHECK(with_soft_limit(1) == 1);
    if (saved.rlim_max >= 20'000) CHECK(with_soft_limit(20'000) == 10'000);
    CHECK(sb::server_limits{}.max_connections == sb::default_max_connections());
}

TEST_CASE("a connection's deadline cancels its pending read when it passes", "[beast][server]") {
    socket_pair p;
    sb::connection_deadline<tcp::socket> d(p.server);
    CHECK_FALSE(d.expired());
    const auto t0 = std::chrono::steady_clock::now();
    d.expires_after(50ms);
    const auto r = read_once(p.ioc, p.server, t0);
    CHECK(r.ec == asio::error::operation_aborted);
    CHECK(d.expired());
    CHECK(r.took >= 50ms);
    CHECK(r.took < 2s);

    // A new deadline clears expired() and is watched again.
    d.expires_after(30ms);
    CHECK_FALSE(d.expired());
    CHECK(read_once(p.ioc, p.server).ec == asio::error::operation_aborted);
    CHECK(d.expired());
}

TEST_CASE("a connection's deadline moved later postpones it, moved earlier brings it forward",
          "[beast][server]") {
    socket_pair p;
    asio::steady_timer writer(p.ioc);
    sb::connection_deadline<tcp::socket> d(p.server);

    SECTION("later: a byte that arrives before the new deadline is read") {
        const auto t0 = std::chrono::steady_clock::now();
        d.expires_after(20ms);
        d.expires_after(2s);
        write_later(p.client, writer, 100ms);
        const auto r = read_once(p.ioc, p.server, t0);
        CHECK_FALSE(r.ec);
        CHECK_FALSE(d.expired());
        CHECK(r.took >= 100ms);  // the byte was read, not cut off at the first deadline
    }
    SECTION("earlier: the read is cancelled at the earlier deadline") {
        d.expires_after(10s);
        d.expires_after(30ms);
        const auto r = read_once(p.ioc, p.server);
        CHECK(r.ec == asio::error::operation_aborted);
        CHECK(d.expired());
        CHECK(r.took < 2s);
    }
    SECTION("never: no deadline while the server is busy") {
        d.expires_after(20ms);
        d.expires_never();
        write_later(p.client, writer, 100ms);
        CHECK_FALSE(read_once(p.ioc, p.server).ec);
        CHECK_FALSE(d.expired());
    }
}

TEST_CASE("a connection's deadline destroyed before it passes leaves the socket alone",
          "[beast][server]") {
    socket_pair p;
    const auto t0 = std::chrono::steady_clock::now();
    {
        sb::connection_deadline<tcp::socket> d(p.server);
        d.expires_after(20ms);
    }
    asio::steady_timer writer(p.ioc);
    write_later(p.client, writer, 100ms);
    const auto r = read_once(p.ioc, p.server, t0);
    CHECK_FALSE(r.ec);
    CHECK(r.took >= 100ms);  // the byte was read, not cut off at the first deadline
}
