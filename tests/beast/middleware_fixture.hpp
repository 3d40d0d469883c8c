// tests/beast/middleware_fixture.hpp
// Shared pieces of the middleware tests: the limiter type they use (manual clock,
// recording sink), a storage that can be told to throw, and request builders.
#pragma once

#include <smart_ratelimit/beast.hpp>
#include <smart_ratelimit/clock.hpp>
#include <smart_ratelimit/limiter.hpp>
#include <smart_ratelimit/storage/in_memory_storage.hpp>

#include <support/recording_sink.hpp>

#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/http/message_generator.hpp>
#include <boost/system/system_error.hpp>

#include <atomic>
#include <chrono>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace srl = smart_ratelimit;
namespace mw = smart_ratelimit::beast;
namespace http = boost::beast::http;

namespace srl_test {

/// in_memory_storage that throws while `failing` is set (a storage outage).
class flaky_storage {
public:
    using algorithm_type = srl::any_algorithm;

    std::shared_ptr<std::atomic<bool>> failing = std::make_shared<std::atomic<bool>>(false);

    srl::outcome acquire(std::string_view k, const algorithm_type& a, std::chrono::nanoseconds now,
                         std::uint64_t cost) {
        fail_if_set();
        return inner_.acquire(k, a, now, cost);
    }
    srl::outcome peek(std::string_view k, const algorithm_type& a, std::chrono::nanoseconds now,
                      std::uint64_t cost) {
        fail_if_set();
        return inner_.peek(k, a, now, cost);
    }
    void release(std::string_view k, const algorithm_type& a, std::chrono::nanoseconds now,
                 std::uint64_t cost) {
        inner_.release(k, a, now, cost);
    }

private:
    void fail_if_set() const {
        if (failing->load()) throw std::runtime_error("storage is down");
    }
    srl::in_memory_storage<> inner_;
};

using test_limiter =
    srl::limiter<mw::request_key, flaky_storage, recording_sink, srl::manual_clock>;

/// A limiter keyed by `key` with the given rules, sharing `sink` and `clock`.
inline std::unique_ptr<test_limiter> make_limiter(mw::request_key key,
                                                  std::vector<srl::rule_config> rules,
                                                  recording_sink sink, srl::manual_clock clock,
                                                  flaky_storage storage = {},
                                                  srl::limiter_options options = {}) {
    return std::make_unique<test_limiter>(std::move(key), rules, std::move(options),
                                          std::move(storage), std::move(sink), std::move(clock));
}

/// A clock at a whole minute, so fixed windows of a minute start now.
inline srl::manual_clock minute_clock() { return srl::manual_clock(std::chrono::seconds(960)); }

inline http::request<http::string_body> make_request(
    http::verb method, std::string target,
    std::vector<std::pair<std::string, std::string>> fields = {}) {
    http::request<http::string_body> req{method, target, 11};
    for (auto& [n, v] : fields) req.insert(n, v);
    return req;
}

inline srl::ip_address addr(std::string_view s) { return srl::ip_address::from_string(s); }

/// What a client receives: `msg` serialized. Throws on a serialization error.
inline std::string serialize(http::message_generator& msg) {
    std::string wire;
    boost::beast::error_code ec;
    while (!msg.is_done()) {
        const auto buffers = msg.prepare(ec);
        if (ec) throw boost::system::system_error(ec);
        wire += boost::beast::buffers_to_string(buffers);
        msg.consume(boost::beast::buffer_bytes(buffers));
    }
    return wire;
}
inline std::string serialize(http::message_generator&& msg) { return serialize(msg); }

/// A handler that counts its calls and answers 200 "ok".
struct ok_handler {
    int* calls;
    http::response<http::string_body> operator()(
        const http::request<http::string_body>& req) const {
        ++*calls;
        http::response<http::string_body> res{http::status::ok, req.version()};
        res.body() = "ok";
        res.prepare_payload();
        return res;
    }
};

inline std::string field(const http::response_header<>& res, std::string_view name) {
    const auto v = res[boost::beast::string_view(name.data(), name.size())];
    return std::string(v.data(), v.size());
}

}  // namespace srl_test
