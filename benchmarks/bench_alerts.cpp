// benchmarks/bench_alerts.cpp
// What an alert run costs besides the network: the texts for 100 offenders (body,
// webhook JSON, RFC 5322 message) next to copying the same keys into one string,
// and one webhook POST over loopback with webhook_client next to the same bytes
// exchanged over a bare Asio socket (same in-process server, same run).
#include <benchmark/benchmark.h>

#include <smart_ratelimit/alerts.hpp>
#include <smart_ratelimit/beast/webhook_client.hpp>
#include <smart_ratelimit/smtp/message.hpp>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <string>
#include <thread>
#include <vector>

namespace srl = smart_ratelimit;
namespace net = boost::asio;
namespace http = boost::beast::http;
using tcp = net::ip::tcp;

namespace {

std::vector<srl::offender> offenders(std::size_t n) {
    std::vector<srl::offender> out;
    for (std::size_t i = 0; i < n; ++i)
        out.push_back(
            {"rule:login:ip:203.0." + std::to_string(i / 250) + "." + std::to_string(i % 250),
             static_cast<std::int64_t>(1000 - i)});
    return out;
}

void BM_baseline_concat_keys(benchmark::State& state) {
    const auto o = offenders(static_cast<std::size_t>(state.range(0)));
    for (auto _ : state) {
        std::string s;
        for (const auto& x : o) {
            s += x.key;
            s += std::to_string(x.blocked_count);
            s += '\n';
        }
        benchmark::DoNotOptimize(s);
    }
}
BENCHMARK(BM_baseline_concat_keys)->Arg(100);

void BM_alert_texts(benchmark::State& state) {
    const auto o = offenders(static_cast<std::size_t>(state.range(0)));
    const auto date = std::chrono::floor<std::chrono::seconds>(std::chrono::system_clock::now());
    for (auto _ : state) {
        srl::mail m{"alerts@example.org",
                    {"ops@example.com"},
                    srl::alert_subject(o.size()),
                    srl::alert_body(o, 100, 1)};
        auto text = srl::smtp::build_message(m, date, 1);
        auto json = srl::alert_webhook_payload(o, 100, 1);
        benchmark::DoNotOptimize(text);
        benchmark::DoNotOptimize(json);
    }
}
BENCHMARK(BM_alert_texts)->Arg(100);

/// A minimal HTTP/1.1 server on 127.0.0.1: one request per connection, 200, close.
class loopback_server {
public:
    loopback_server() : acceptor_(ioc_, tcp::endpoint(net::ip::make_address("127.0.0.1"), 0)) {
        port_ = acceptor_.local_endpoint().port();
        thread_ = std::thread([this] {
            for (;;) {
                tcp::socket s(ioc_);
                boost::system::error_code ec;
                acceptor_.accept(s, ec);
                if (ec || stop_) return;
                boost::beast::flat_buffer buf;
                http::request<http::string_body> req;
                http::read(s, buf, req, ec);
                if (ec) continue;
                http::response<http::string_body> res{http::status::ok, 11};
                res.body() = "ok";
                res.keep_alive(false);
                res.prepare_payload();
                http::write(s, res, ec);
                s.shutdown(tcp::socket::shutdown_both, ec);
            }
        });
    }
    ~loopback_server() {
        stop_ = true;
        boost::system::error_code ec;
        tcp::socket poke(ioc_);
        poke.connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), port_), ec);
        thread_.join();
    }
    unsigned short port() const { return port_; }

private:
    net::io_context ioc_;
    tcp::acceptor acceptor_;
    unsigned short port_ = 0;
    std::atomic<bool> stop_{false};
    std::thread thread_;
};

const std::string payload = srl::alert_webhook_payload(offenders(10), 100, 1);

void BM_baseline_raw_socket_post(benchmark::State& state) {
    loopback_server server;
    const std::string request =
        "POST /hook HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        "Connection: close\r\nContent-Length: " +
        std::to_string(payload.size()) + "\r\n\r\n" + payload;
    net::io_context ioc;
    for (auto _ : state) {
        tcp::socket s(ioc);
        s.connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), server.port()));
        net::write(s, net::buffer(request));
        std::string response;
        boost::system::error_code ec;
        net::read(s, net::dynamic_buffer(response), ec);  // until the server closes
        benchmark::DoNotOptimize(response);
    }
}
BENCHMARK(BM_baseline_raw_socket_post)->Unit(benchmark::kMicrosecond)->UseRealTime();

void BM_webhook_client_post(benchmark::State& state) {
    loopback_server server;
    srl::beast::webhook_client client;
    const std::string url = "http://127.0.0.1:" + std::to_string(server.port()) + "/hook";
    for (auto _ : state) {
        auto st = client.post(url, payload);
        if (!st.ok) state.SkipWithError(st.error.c_str());
        benchmark::DoNotOptimize(st);
    }
}
BENCHMARK(BM_webhook_client_post)->Unit(benchmark::kMicrosecond)->UseRealTime();

void BM_webhook_client_post_signed(benchmark::State& state) {
    loopback_server server;
    srl::beast::webhook_client client(
        srl::beast::webhook_options{std::chrono::seconds(5), "secret", ""});
    const std::string url = "http://127.0.0.1:" + std::to_string(server.port()) + "/hook";
    for (auto _ : state) {
        auto st = client.post(url, payload);
        if (!st.ok) state.SkipWithError(st.error.c_str());
        benchmark::DoNotOptimize(st);
    }
}
BENCHMARK(BM_webhook_client_post_signed)->Unit(benchmark::kMicrosecond)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
