// examples/beast_server.cpp
// A Boost.Beast server with the rate-limit middleware: POST /login takes 5 requests
// a minute per client IP, the sixth gets 429. Run it, then (the README shows this file):
//   for i in 1 2 3 4 5 6; do curl -s -o /dev/null -w '%{http_code}\n' -X POST localhost:8080/login; done
#include <smart_ratelimit/beast.hpp>

#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>

#include <cstdlib>

namespace srl = smart_ratelimit;
namespace sb = smart_ratelimit::beast;
namespace http = boost::beast::http;
using tcp = boost::asio::ip::tcp;

int main(int argc, char** argv) {
    srl::in_memory_limiter<sb::request_key> login(sb::request_key::ip(), {{"login", "5/m"}});
    sb::middleware<decltype(login)> mw;
    mw.add(login, {"/login", {http::verb::post}});
    auto app = [](const http::request<http::string_body>& req) {
        http::response<http::string_body> res{http::status::ok, req.version(), "welcome\n"};
        res.prepare_payload();
        return res;
    };

    boost::asio::io_context io;
    const auto port = static_cast<unsigned short>(argc > 1 ? std::atoi(argv[1]) : 8080);
    tcp::acceptor acceptor(io, {tcp::v4(), port});
    for (;;) {  // one request per connection, to keep the example short
        tcp::socket socket = acceptor.accept();
        boost::beast::flat_buffer buffer;
        http::request<http::string_body> req;
        boost::beast::error_code ec;
        http::read(socket, buffer, req, ec);
        if (ec) continue;
        const auto peer = sb::to_ip_address(socket.remote_endpoint().address());
        boost::beast::write(socket, mw.handle(req, peer, app), ec);
    }
}
