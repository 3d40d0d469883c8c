// examples/beast_middleware.cpp
// The Beast middleware in a few lines: POST /api/login limited to 3 per minute per
// client IP under the rule `login`, checked in process (no socket) so the responses
// can be printed: three 200s carrying RateLimit fields, then a 429 with Retry-After.
// The rule is a sliding window: a fixed window's edge, aligned to the clock, could
// fall between the four requests and start the count again.
// In a server, pass the socket's peer address and write the returned message.
#include <smart_ratelimit/beast.hpp>
#include <smart_ratelimit/limiter.hpp>

#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/http.hpp>

#include <cstdio>
#include <string>

namespace srl = smart_ratelimit;
namespace sb = smart_ratelimit::beast;
namespace http = boost::beast::http;

using http_limiter = srl::in_memory_limiter<sb::request_key>;

static http::response<http::string_body> app(const http::request<http::string_body>& req) {
    http::response<http::string_body> res{http::status::ok, req.version()};
    res.set(http::field::content_type, "application/json");
    res.body() = R"({"token":"t0k3n"})";
    res.prepare_payload();
    return res;
}

int main() {
    http_limiter login(sb::request_key::ip(), {{"login", "3/m", "sliding_window"}});

    sb::middleware_options options;
    options.trusted_proxies = srl::cidr_list::parse("10.0.0.0/8");  // our load balancer
    sb::middleware<http_limiter> mw(options);
    mw.add(login, {"/api/login", {http::verb::post}});

    // The load balancer (10.0.0.1) forwards requests of the client 203.0.113.5.
    http::request<http::string_body> req{http::verb::post, "/api/login", 11};
    req.set("X-Forwarded-For", "203.0.113.5");
    const auto peer = srl::ip_address::from_string("10.0.0.1");

    for (int i = 1; i <= 4; ++i) {
        http::message_generator msg = mw.handle(req, peer, app);
        std::string wire;
        boost::beast::error_code ec;
        while (!msg.is_done()) {
            const auto buffers = msg.prepare(ec);
            wire += boost::beast::buffers_to_string(buffers);
            msg.consume(boost::beast::buffer_bytes(buffers));
        }
        std::printf("--- request %d\n%s\n\n", i, wire.c_str());
    }
    const auto st = mw.stats();
    std::printf("allowed %llu, blocked %llu\n", static_cast<unsigned long long>(st.allowed),
                static_cast<unsigned long long>(st.blocked));
    return st.allowed == 3 && st.blocked == 1 ? 0 : 1;
}
