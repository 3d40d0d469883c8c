// examples/structured_log_observer.cpp
// An observer of your own beside the Prometheus one: every decision that is not
// `allowed` becomes one JSON line (rule, key, outcome, retry_after_ms), and a small
// fan-out hands each decision to it and to metrics::decision_metrics. The same shape
// reaches a logger or an OpenTelemetry meter: write on_decision, compose.
#include <smart_ratelimit/analytics/json_text.hpp>
#include <smart_ratelimit/metrics.hpp>
#include <smart_ratelimit/smart_ratelimit.hpp>

#include <chrono>
#include <cstdio>
#include <string>

namespace srl = smart_ratelimit;
using namespace std::chrono_literals;

/// One JSON line on stdout per decision that is not `allowed`. Thread safety: one
/// fwrite per line, which stdio locks.
struct json_log_observer {
    void on_decision(const srl::decision& d, std::chrono::nanoseconds) const {
        if (d.kind() == srl::outcome_kind::allowed) return;
        std::string line = "{\"rule\":";
        srl::append_json_string(line, d.rule);
        line += ",\"key\":";
        srl::append_json_string(line, d.key.view());  // the client's key: escaped
        line +=
            ",\"outcome\":\"" + std::string(srl::to_string(d.kind())) + "\",\"retry_after_ms\":";
        line += std::to_string(
            std::chrono::duration_cast<std::chrono::milliseconds>(d.retry_after).count());
        line += "}\n";
        std::fwrite(line.data(), 1, line.size(), stdout);
    }
};

/// Hands each decision to two observers; the first (the metrics) picks the requests
/// that are timed, one in 256 by default.
template <class A, class B>
struct fanout_observer {
    A first;
    B second;
    bool time_next() { return first.time_next(); }
    void on_decision(const srl::decision& d, std::chrono::nanoseconds t) {
        first.on_decision(d, t);
        second.on_decision(d, t);
    }
};

struct request {
    std::string ip;
};

int main() {
    const auto by_ip = srl::key_function([](const request& r) { return r.ip; }, "ip:");
    const srl::metrics::decision_metrics metrics;  // a handle: the registry would hold a copy
    using observer = fanout_observer<srl::metrics::decision_metrics, json_log_observer>;
    srl::limiter<decltype(by_ip), srl::in_memory_storage<>, srl::null_sink, srl::manual_clock,
                 observer>
        limiter(by_ip, {{"login", "3/m"}}, {}, {}, {}, srl::manual_clock{}, observer{metrics, {}});

    for (int i = 0; i < 5; ++i) (void)limiter.check(request{"203.0.113.9"});  // 3 allowed, 2 logged

    std::printf(
        "decisions_total{rule=\"login\"}: allowed %llu, blocked %llu\n",
        static_cast<unsigned long long>(metrics.count("login", srl::outcome_kind::allowed)),
        static_cast<unsigned long long>(metrics.count("login", srl::outcome_kind::blocked)));
    return 0;
}
