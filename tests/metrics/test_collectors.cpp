// tests/metrics/test_collectors.cpp
// The scrape-time collectors: an async sink's events and queue depth (and its on_drop
// hook), a resilient_storage's breaker state and errors through a whole breaker cycle
// on a manual clock (and its on_breaker_change hook), and the alert counter.
#include <catch2/catch.hpp>

#include <smart_ratelimit/metrics.hpp>
#include <smart_ratelimit/sinks/async_sink.hpp>
#include <smart_ratelimit/storage/in_memory_storage.hpp>
#include <smart_ratelimit/storage/resilient_storage.hpp>

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace srl = smart_ratelimit;
namespace m = smart_ratelimit::metrics;
using namespace std::chrono_literals;

namespace {

// Writes every row but reports the last one of each batch invalid.
struct one_invalid_writer {
    srl::batch_result write_batch(std::span<const srl::event> rows) noexcept {
        if (rows.empty()) return {};
        return {rows.size() - 1, 1, 0};
    }
};

// The in-memory storage behind a switch that makes it throw.
struct switchable_storage {
    using algorithm_type = srl::any_algorithm;
    std::shared_ptr<srl::in_memory_storage<>> inner = std::make_shared<srl::in_memory_storage<>>();
    std::shared_ptr<std::atomic<bool>> down = std::make_shared<std::atomic<bool>>(false);

    srl::outcome acquire(std::string_view k, const algorithm_type& a, std::chrono::nanoseconds now,
                         std::uint64_t c) {
        check();
        return inner->acquire(k, a, now, c);
    }
    srl::outcome peek(std::string_view k, const algorithm_type& a, std::chrono::nanoseconds now,
                      std::uint64_t c) {
        check();
        return inner->peek(k, a, now, c);
    }
    void release(std::string_view k, const algorithm_type& a, std::chrono::nanoseconds now,
                 std::uint64_t c) {
        check();
        inner->release(k, a, now, c);
    }
    void check() const {
        if (down->load()) throw srl::storage_error("store down");
    }
};

bool contains(const std::string& text, const std::string& line) {
    return text.find(line) != std::string::npos;
}

}  // namespace

TEST_CASE("an async sink's counters are read at scrape time, and drops reach on_drop",
          "[metrics]") {
    std::mutex mu;
    std::vector<std::pair<srl::drop_reason, std::uint64_t>> drops;
    srl::async_sink_options o;
    o.on_drop = [&](srl::drop_reason r, std::uint64_t n) {
        std::lock_guard<std::mutex> lock(mu);
        drops.emplace_back(r, n);
    };
    srl::async_sink<one_invalid_writer> sink(one_invalid_writer{}, o);
    m::registry reg;
    reg.add(m::event_sink_metrics(sink));
    for (int i = 0; i < 3; ++i) sink.record(srl::event{});
    sink.flush();
    sink.stop();
    sink.record(srl::event{});  // after stop: queue_full
    const std::string text = reg.scrape();
    CHECK(contains(text, "# TYPE smart_ratelimit_events_total counter\n"));
    CHECK(contains(text, "smart_ratelimit_events_total{result=\"offered\"} 4\n"));
    CHECK(contains(text, "smart_ratelimit_events_total{result=\"written\"} 2\n"));
    CHECK(contains(text, "smart_ratelimit_events_total{result=\"dropped_queue_full\"} 1\n"));
    CHECK(contains(text, "smart_ratelimit_events_total{result=\"dropped_write_error\"} 0\n"));
    CHECK(contains(text, "smart_ratelimit_events_total{result=\"dropped_invalid\"} 1\n"));
    CHECK(contains(
        text,
        "# TYPE smart_ratelimit_event_queue_depth gauge\nsmart_ratelimit_event_queue_depth 0\n"));
    std::lock_guard<std::mutex> lock(mu);
    REQUIRE(drops.size() == 2);
    CHECK(drops[0] == std::pair{srl::drop_reason::invalid_row, std::uint64_t{1}});
    CHECK(drops[1] == std::pair{srl::drop_reason::queue_full, std::uint64_t{1}});
}

TEST_CASE("a named sink's samples carry its name; the depth counts what is in flight",
          "[metrics]") {
    srl::async_sink_stats s;
    s.offered = 10;
    s.written = 4;
    s.dropped_write_error = 1;
    m::exposition out;
    m::event_sink_metrics([s] { return s; }, "audit").collect(out);
    const std::string text = out.str();
    CHECK(contains(text, "smart_ratelimit_events_total{sink=\"audit\",result=\"offered\"} 10\n"));
    CHECK(contains(text, "smart_ratelimit_event_queue_depth{sink=\"audit\"} 5\n"));
}

TEST_CASE("a resilient storage's breaker and errors are scraped through a whole cycle",
          "[metrics]") {
    using resilient =
        srl::resilient_storage<switchable_storage, srl::no_failover, srl::manual_clock>;
    std::vector<std::pair<srl::breaker_state, srl::breaker_state>> changes;
    srl::resilience_options o;
    o.failure_threshold = 2;
    o.open_for = 10s;
    o.timeout = 1h;  // no call is slow on a loaded test machine
    o.on_breaker_change = [&](srl::breaker_state from, srl::breaker_state to) {
        changes.emplace_back(from, to);
    };
    switchable_storage store;
    srl::manual_clock clock;
    resilient r(store, o, {}, clock);
    m::registry reg;
    reg.add(m::storage_metrics("redis", r));
    const srl::any_algorithm alg("fixed_window", srl::rate{100, 1h});
    const auto state = [&] { return reg.scrape(); };

    CHECK(contains(state(), "smart_ratelimit_storage_breaker_state{storage=\"redis\"} 0\n"));
    *store.down = true;
    (void)r.acquire("k", alg, clock.now(), 1);
    (void)r.acquire("k", alg, clock.now(), 1);  // second failure: opens
    (void)r.acquire("k", alg, clock.now(), 1);  // short-circuited
    std::string text = state();
    CHECK(contains(text, "smart_ratelimit_storage_breaker_state{storage=\"redis\"} 2\n"));
    CHECK(contains(text,
                   "smart_ratelimit_storage_errors_total{storage=\"redis\",kind=\"failure\"} 2\n"));
    CHECK(contains(
        text,
        "smart_ratelimit_storage_errors_total{storage=\"redis\",kind=\"short_circuited\"} 1\n"));
    clock.advance(10s);
    CHECK(contains(state(), "smart_ratelimit_storage_breaker_state{storage=\"redis\"} 1\n"));
    *store.down = false;
    CHECK(r.acquire("k", alg, clock.now(), 1).allowed);  // the probe succeeds: closed
    CHECK(contains(state(), "smart_ratelimit_storage_breaker_state{storage=\"redis\"} 0\n"));
    using bs = srl::breaker_state;
    CHECK(changes == std::vector<std::pair<bs, bs>>{{bs::closed, bs::open},
                                                    {bs::open, bs::half_open},
                                                    {bs::half_open, bs::closed}});
}

TEST_CASE("a throwing breaker callback changes nothing", "[metrics]") {
    srl::resilience_options o;
    o.failure_threshold = 1;
    o.timeout = 1h;
    o.on_breaker_change = [](srl::breaker_state, srl::breaker_state) {
        throw std::runtime_error("observer");
    };
    switchable_storage store;
    srl::resilient_storage<switchable_storage, srl::no_failover, srl::manual_clock> r(store, o);
    *store.down = true;
    const srl::any_algorithm alg("fixed_window", srl::rate{1, 1h});
    CHECK(r.acquire("k", alg, 1000s, 1).degraded);
    CHECK(r.state() == srl::breaker_state::open);
}

TEST_CASE("alert_metrics counts by channel and result, from an alert result too", "[metrics]") {
    struct channel {
        std::string channel;
        bool sent;
    };
    struct result {
        std::vector<channel> channels;
    };
    m::alert_metrics a;
    a.record("email", true);
    a.record(result{{{"email", false}, {"webhook", true}}});
    CHECK(a.value("email", "sent") == 1);
    CHECK(a.value("email", "failed") == 1);
    CHECK(a.value("webhook", "sent") == 1);
    CHECK(a.value("webhook", "failed") == 0);
    m::exposition out;
    a.collect(out);
    CHECK(contains(out.str(),
                   "smart_ratelimit_alerts_sent_total{channel=\"webhook\",result=\"failed\"} 0\n"));
}
