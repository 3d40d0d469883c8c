// tests/beast/dashboard_test_server.hpp
// A small Beast server on 127.0.0.1 (port picked by the kernel) that serves a
// dashboard through async_handle on a worker pool (with the socket peer), and a
// blocking HTTP client, so the dashboard tests talk to it over a real loopback socket.
#pragma once

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>

#include <smart_ratelimit/beast/keys.hpp>

#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace srl_test {

namespace asio = boost::asio;
namespace http = boost::beast::http;
using tcp = asio::ip::tcp;

/// Serves `dash` (anything with matches() and async_handle()) until destroyed.
template <class Dashboard>
class dashboard_server {
public:
    explicit dashboard_server(const Dashboard& dash)
        : dash_(dash), acceptor_(ioc_, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)) {
        asio::co_spawn(ioc_, listen(), asio::detached);
        thread_ = std::thread([this] { ioc_.run(); });
    }
    ~dashboard_server() {
        ioc_.stop();
        thread_.join();
        pool_.join();
    }
    dashboard_server(const dashboard_server&) = delete;
    dashboard_server& operator=(const dashboard_server&) = delete;

    unsigned short port() const { return acceptor_.local_endpoint().port(); }

private:
    asio::awaitable<void> listen() {
        for (;;) {
            auto [ec, socket] =
                co_await acceptor_.async_accept(asio::as_tuple(asio::use_awaitable));
            if (ec) co_return;
            asio::co_spawn(ioc_, session(std::move(socket)), asio::detached);
        }
    }

    asio::awaitable<void> session(tcp::socket socket) {
        boost::system::error_code peer_error;
        const auto endpoint = socket.remote_endpoint(peer_error);
        if (peer_error) co_return;
        const auto peer = smart_ratelimit::beast::to_ip_address(endpoint.address());
        boost::beast::flat_buffer buffer;
        for (;;) {
            http::request<http::string_body> req;
            auto [ec, n] =
                co_await http::async_read(socket, buffer, req, asio::as_tuple(asio::use_awaitable));
            if (ec) co_return;
            http::response<http::string_body> res;
            if (dash_.matches(req.target())) {
                // Written even on an error (work_rejected): the answer is then a bare 503.
                auto [dec, answer] =
                    co_await dash_.async_handle(pool_.get_executor(), std::move(req), peer,
                                                asio::as_tuple(asio::use_awaitable));
                res = std::move(answer);
                if (dec) res.keep_alive(false);
            } else {
                res = http::response<http::string_body>{http::status::not_found, req.version()};
                res.body() = "app";
                res.keep_alive(req.keep_alive());
                res.prepare_payload();
            }
            const bool keep = res.keep_alive();
            auto [wec, wn] =
                co_await http::async_write(socket, res, asio::as_tuple(asio::use_awaitable));
            if (wec || !keep) co_return;
        }
    }

    const Dashboard& dash_;
    asio::io_context ioc_;
    asio::thread_pool pool_{2};
    tcp::acceptor acceptor_;
    std::thread thread_;
};

using header_list = std::vector<std::pair<std::string, std::string>>;

/// One request over a fresh connection; returns the whole response.
inline http::response<http::string_body> fetch(unsigned short port, http::verb method,
                                               const std::string& target,
                                               const header_list& headers = {},
                                               const std::string& body = {}) {
    asio::io_context ioc;
    tcp::socket socket(ioc);
    socket.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
    http::request<http::string_body> req{method, target, 11};
    req.set(http::field::host, "127.0.0.1:" + std::to_string(port));
    for (const auto& [k, v] : headers) req.insert(k, v);
    if (!body.empty()) {
        req.set(http::field::content_type, "application/x-www-form-urlencoded");
        req.body() = body;
    }
    req.prepare_payload();
    http::write(socket, req);
    boost::beast::flat_buffer buffer;
    http::response<http::string_body> res;
    http::read(socket, buffer, res);
    boost::system::error_code ec;
    socket.shutdown(tcp::socket::shutdown_both, ec);
    return res;
}

inline http::response<http::string_body> get(unsigned short port, const std::string& target,
                                             const header_list& headers = {}) {
    return fetch(port, http::verb::get, target, headers);
}

}  // namespace srl_test
