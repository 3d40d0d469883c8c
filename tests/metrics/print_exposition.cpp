// tests/metrics/print_exposition.cpp
// Prints a realistic exposition, every metric family of metrics/ with hostile label
// values, for `promtool check metrics` (the metrics.promtool test).
#include <smart_ratelimit/metrics.hpp>
#include <smart_ratelimit/smart_ratelimit.hpp>

#include <chrono>
#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

namespace srl = smart_ratelimit;
namespace m = smart_ratelimit::metrics;

namespace {
struct view_key {
    std::string_view operator()(const std::string& s) const noexcept { return s; }
};
}  // namespace

int main() {
    m::registry reg;
    m::decision_metrics dm(m::decision_metrics_options{.time_every = 1});
    srl::limiter<view_key, srl::in_memory_storage<>, srl::null_sink, srl::steady_clock,
                 m::decision_metrics>
        lim(view_key{},
            {{"", "5/s", "token_bucket"},
             {"login", "3/s", "fixed_window"},
             {"watch-all", "1/s", "fixed_window", true}},
            {}, {}, {}, {}, dm);
    for (int i = 0; i < 10; ++i) (void)lim.check_key("ip:203.0.113.5");
    dm.add_rule("never_used");
    reg.add(m::build_info{});
    reg.add(dm);

    srl::async_sink_stats s;
    s.offered = 100;
    s.written = 90;
    s.dropped_queue_full = 3;
    s.dropped_write_error = 2;
    s.dropped_invalid_row = 1;
    reg.add(m::event_sink_metrics([s] { return s; }, "events \"main\"\\\n\xFF"));
    reg.add(m::storage_metrics("redis", [] {
        return m::storage_health{srl::breaker_state::half_open, {{"failure", 4}, {"timed_out", 1}}};
    }));
    reg.add(m::storage_metrics("sql\n\"quoted\"", [] {
        return m::storage_health{std::nullopt, {{"failure", 0}}};
    }));
    m::alert_metrics alerts;
    alerts.record("email", true);
    alerts.record("web\\hook\"\n", false);
    reg.add(alerts);
    std::fputs(reg.scrape().c_str(), stdout);
    return 0;
}
