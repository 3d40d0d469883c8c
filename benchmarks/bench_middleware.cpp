// benchmarks/bench_middleware.cpp
// What the Beast middleware adds to a request, in process: the raw limiter decision
// on a pre-extracted key (the baseline), the middleware's check (route match, client
// IP resolution, key extraction, headers) with and without event logging to a ring
// buffer, the X-Forwarded-For walk, and dressing a response with the rate-limit fields.
#include <smart_ratelimit/beast.hpp>
#include <smart_ratelimit/limiter.hpp>
#include <smart_ratelimit/sinks/ring_buffer_sink.hpp>

#include <benchmark/benchmark.h>

#include <boost/beast/http.hpp>

#include <memory>
#include <string>
#include <utility>

namespace srl = smart_ratelimit;
namespace sb = smart_ratelimit::beast;
namespace http = boost::beast::http;

namespace {

struct ring_ref {
    srl::ring_buffer_sink_mt* ring;
    void record(const srl::event& e) { ring->record(e); }
};

using plain_limiter = srl::in_memory_limiter<sb::request_key>;
using logging_limiter = srl::in_memory_limiter<sb::request_key, ring_ref>;

constexpr const char* big_rate = "1000000000/d";  // never blocks during a run

http::request<http::string_body> make_request() {
    http::request<http::string_body> req{http::verb::get, "/api/items?page=2", 11};
    req.set(http::field::host, "example.com");
    req.set(http::field::user_agent, "bench");
    req.set(http::field::accept, "*/*");
    return req;
}

// One in-memory limiter on one route, a request and its peer: what most cases check.
struct items_route {
    plain_limiter lim{sb::request_key::ip(), {{"items", big_rate}}};
    sb::middleware<plain_limiter> mw;
    const http::request<http::string_body> req = make_request();
    const srl::ip_address peer = srl::ip_address::from_string("203.0.113.5");
    explicit items_route(sb::route r = {"/api/items", {http::verb::get}}) {
        mw.add(lim, std::move(r));
    }
};

void BM_limiter_check_key(benchmark::State& state) {
    plain_limiter lim(sb::request_key::ip(), {{"items", big_rate}});
    for (auto _ : state) benchmark::DoNotOptimize(lim.check_key("ip:203.0.113.5"));
}
BENCHMARK(BM_limiter_check_key);

void BM_middleware_check(benchmark::State& state) {
    items_route x;
    for (auto _ : state) benchmark::DoNotOptimize(x.mw.check(x.req, x.peer));
}
BENCHMARK(BM_middleware_check);

void BM_middleware_check_and_dress(benchmark::State& state) {
    items_route x;
    for (auto _ : state) {
        http::response<http::string_body> res{http::status::ok, 11};
        x.mw.check(x.req, x.peer).apply(res);
        benchmark::DoNotOptimize(res);
    }
}
BENCHMARK(BM_middleware_check_and_dress);

// A server that writes its own small responses: the fields go straight into the
// output buffer as header lines through limit_result::append_fields (what the demo
// server does).
void BM_middleware_check_and_write(benchmark::State& state) {
    items_route x;
    std::string out;
    out.reserve(512);
    for (auto _ : state) {
        out.clear();
        x.mw.check(x.req, x.peer).append_fields(out);
        benchmark::DoNotOptimize(out.data());
    }
}
BENCHMARK(BM_middleware_check_and_write);

void BM_middleware_check_logging(benchmark::State& state) {
    srl::ring_buffer_sink_mt ring(4096);
    logging_limiter lim(sb::request_key::ip(), {{"items", big_rate}}, {}, {}, ring_ref{&ring});
    sb::middleware_options o;
    o.log_events = true;
    sb::middleware<logging_limiter> mw(o);
    mw.add(lim, {"/api/items", {http::verb::get}});
    const auto req = make_request();
    const auto peer = srl::ip_address::from_string("203.0.113.5");
    for (auto _ : state) benchmark::DoNotOptimize(mw.check(req, peer));
}
BENCHMARK(BM_middleware_check_logging);

void BM_middleware_unmatched(benchmark::State& state) {
    items_route x({"/api/login", {http::verb::post}});
    for (auto _ : state) benchmark::DoNotOptimize(x.mw.check(x.req, x.peer));
}
BENCHMARK(BM_middleware_unmatched);

void BM_xff_trusted_chain(benchmark::State& state) {
    auto req = make_request();
    req.insert("X-Forwarded-For", "198.51.100.7, 203.0.113.5");
    req.insert("X-Forwarded-For", "10.1.2.3");
    const auto trusted = srl::cidr_list::parse("10.0.0.0/8, 192.168.0.0/16");
    const auto peer = srl::ip_address::from_string("10.0.0.1");
    for (auto _ : state) benchmark::DoNotOptimize(sb::request_view::resolve(req, peer, trusted));
}
BENCHMARK(BM_xff_trusted_chain);

void BM_ipv6_key(benchmark::State& state) {
    const auto a = srl::ip_address::from_string("2001:db8:1:2:aaaa:bbbb:cccc:dddd");
    for (auto _ : state) benchmark::DoNotOptimize(srl::ip_key(a));
}
BENCHMARK(BM_ipv6_key);

}  // namespace

BENCHMARK_MAIN();
