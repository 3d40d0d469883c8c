// tests/sinks/test_ring_buffer_sink.cpp
// The ring buffer sink: keeps the last N events, wraps around, snapshots in
// both orders, feeds the analytics as an event range, and stays consistent
// while several threads record into it.
#include <catch2/catch.hpp>

#include <smart_ratelimit/analytics/event_range.hpp>
#include <smart_ratelimit/concepts.hpp>
#include <smart_ratelimit/sinks/ring_buffer_sink.hpp>

#include <atomic>
#include <ranges>
#include <string>
#include <thread>
#include <vector>

#include "support/sink_test_writer.hpp"

namespace srl = smart_ratelimit;
using srl_test::make_test_event;

static_assert(srl::event_sink<srl::ring_buffer_sink_mt>);
static_assert(srl::event_sink<srl::ring_buffer_sink_st>);
static_assert(
    std::ranges::input_range<decltype(std::declval<srl::ring_buffer_sink_mt&>().snapshot())>);
static_assert(srl::event_range<decltype(std::declval<srl::ring_buffer_sink_mt&>().snapshot())>);

namespace {
template <class Range>
std::vector<std::int64_t> counts_of(const Range& events) {
    std::vector<std::int64_t> out;
    for (const auto& e : events) out.push_back(e.count);
    return out;
}
}  // namespace

TEMPLATE_TEST_CASE("ring buffer sink keeps the last N events and wraps around", "[sinks][ring]",
                   srl::ring_buffer_sink_mt, srl::ring_buffer_sink_st) {
    TestType sink(3);
    CHECK(sink.capacity() == 3);
    CHECK(sink.size() == 0);
    CHECK(sink.snapshot().empty());

    sink.record(make_test_event("ip:1", 1));
    sink.record(make_test_event("ip:1", 2));
    CHECK(counts_of(sink.snapshot()) == std::vector<std::int64_t>{1, 2});

    for (int i = 3; i <= 7; ++i) {
        const auto e = make_test_event("ip:1", i);
        if (i % 2)
            sink.record(e);
        else
            sink.record(make_test_event("ip:1", i));
    }
    CHECK(sink.size() == 3);
    CHECK(sink.recorded() == 7);
    CHECK(sink.failed() == 0);
    CHECK(counts_of(sink.snapshot()) == std::vector<std::int64_t>{5, 6, 7});
    CHECK(counts_of(sink.snapshot_newest_first()) == std::vector<std::int64_t>{7, 6, 5});
    CHECK(sink.snapshot().front() == make_test_event("ip:1", 5));  // whole events, not just counts

    sink.clear();
    CHECK(sink.size() == 0);
    CHECK(sink.recorded() == 7);
    sink.record(make_test_event("ip:1", 8));
    CHECK(counts_of(sink.snapshot()) == std::vector<std::int64_t>{8});
}

TEST_CASE("ring buffer sink of capacity one keeps only the newest event", "[sinks][ring]") {
    srl::ring_buffer_sink_st sink(1);
    for (int i = 0; i < 5; ++i) sink.record(make_test_event("ip:1", i));
    CHECK(counts_of(sink.snapshot()) == std::vector<std::int64_t>{4});
}

TEST_CASE("ring buffer sink larger than what was recorded holds everything in order",
          "[sinks][ring]") {
    srl::ring_buffer_sink_mt sink(100'000);
    for (int i = 0; i < 1000; ++i) sink.record(make_test_event("ip:1", i));
    const auto snap = sink.snapshot();
    REQUIRE(snap.size() == 1000);
    for (int i = 0; i < 1000; ++i) REQUIRE(snap[i].count == i);
}

TEST_CASE("ring buffer sink rejects a zero capacity with a clear error", "[sinks][ring]") {
    CHECK_THROWS_MATCHES(
        srl::ring_buffer_sink_mt(0), srl::config_error,
        Catch::Matchers::Message("ring_buffer_sink: capacity must be at least 1, got 0"));
}

TEST_CASE("ring buffer snapshots stay consistent while threads record", "[sinks][ring]") {
    constexpr std::size_t capacity = 64;
    constexpr int producers = 2;
    constexpr int per_producer = 20000;
    srl::ring_buffer_sink_mt sink(capacity);
    std::atomic<int> running{producers};
    std::vector<std::thread> threads;
    for (int p = 0; p < producers; ++p) {
        threads.emplace_back([&, p] {
            const std::string key = "ip:" + std::to_string(p);
            for (int i = 0; i < per_producer; ++i) sink.record(make_test_event(key, i));
            running.fetch_sub(1);
        });
    }
    // Each snapshot holds min(capacity, recorded) events, and each producer's events
    // in it are a run of consecutive sequence numbers (the newest ones it recorded).
    int snapshots = 0;
    auto check_snapshot = [&] {
        const auto snap = sink.snapshot();
        REQUIRE(snap.size() <= capacity);
        std::vector<std::int64_t> last(producers, -1);
        for (const auto& e : snap) {
            const int p = e.key.back() - '0';
            if (last[p] >= 0) REQUIRE(e.count == last[p] + 1);
            last[p] = e.count;
        }
        ++snapshots;
    };
    while (running.load() > 0) check_snapshot();
    for (auto& t : threads) t.join();
    check_snapshot();
    CHECK(sink.recorded() == producers * per_producer);
    CHECK(sink.size() == capacity);
    CHECK(snapshots >= 1);
}
