// tests/sinks/test_async_sink.cpp
// The asynchronous batching sink: ordering, batching by size and by time, drops
// by reason, retries and recovery, shutdown, and the accounting identity under
// concurrent producers. Synchronization goes through flush(), stop() and the
// controllable writer's condition variable; nothing sleeps or asserts timing.
#include <catch2/catch.hpp>

#include <smart_ratelimit/concepts.hpp>
#include <smart_ratelimit/sinks/async_sink.hpp>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

#include "support/sink_test_writer.hpp"

namespace srl = smart_ratelimit;
using srl_test::controlled_writer;
using srl_test::make_test_event;
using namespace std::chrono_literals;

namespace {

using sink_type = srl::async_sink<controlled_writer&>;

// No real-time waits unless a test asks for them.
srl::async_sink_options quick_options() {
    srl::async_sink_options o;
    o.queue_capacity = 1024;
    o.max_batch = 64;
    o.max_delay = 1h;  // only size, flush and stop trigger a write
    o.max_retries = 3;
    o.initial_backoff = 0ms;
    o.max_backoff = 0ms;
    o.shutdown_timeout = 1h;
    return o;
}

void require_balanced(const srl::async_sink_stats& s) {
    CHECK(s.in_flight() == 0);
    REQUIRE(s.written + s.dropped() == s.offered);
}

std::vector<std::int64_t> counts_of(const std::vector<srl::event>& events) {
    std::vector<std::int64_t> out;
    for (const auto& e : events) out.push_back(e.count);
    return out;
}

struct discard_writer {
    srl::batch_result write_batch(std::span<const srl::event> rows) noexcept {
        return {rows.size(), 0, 0};
    }
};

}  // namespace

// Typical mistakes are not writers, and an async_sink cannot be built over them.
struct returns_void_writer {
    void write_batch(std::span<const srl::event>) {}
};
struct takes_vector_writer {
    srl::batch_result write_batch(std::vector<srl::event>&) { return {}; }
};
template <class W>
concept async_sink_of = requires {
    typename srl::async_sink<W>;
};
static_assert(!srl::event_batch_writer<returns_void_writer>);
static_assert(!srl::event_batch_writer<takes_vector_writer>);
static_assert(!srl::event_batch_writer<int>);
static_assert(!async_sink_of<returns_void_writer>);
static_assert(async_sink_of<discard_writer>);
static_assert(!std::is_move_constructible_v<srl::async_sink<discard_writer>>);

static_assert(srl::event_sink<srl::async_sink<discard_writer>>);
static_assert(srl::event_sink<sink_type>);

TEST_CASE("async sink writes events in the order one producer recorded them", "[sinks][async]") {
    controlled_writer w;
    auto o = quick_options();
    o.max_batch = 7;
    sink_type sink(w, o);
    std::vector<std::int64_t> expected;
    for (int i = 0; i < 1000; ++i) {
        if (i % 2 == 0) {
            sink.record(make_test_event("ip:1", i));  // moved in
        } else {
            const auto e = make_test_event("ip:1", i);
            sink.record(e);  // copied in
        }
        expected.push_back(i);
    }
    sink.flush();
    CHECK(counts_of(w.written()) == expected);
    const auto s = sink.stats();
    CHECK(s.offered == 1000);
    CHECK(s.written == 1000);
    CHECK(s.dropped() == 0);
    CHECK(s.retries == 0);
    CHECK(s.batches == w.calls());
    require_balanced(s);
}

TEST_CASE("async sink writes a full batch without waiting for max_delay or a flush",
          "[sinks][async]") {
    controlled_writer w;
    auto o = quick_options();
    o.max_batch = 4;  // max_delay is an hour: only the size can trigger the write
    sink_type sink(w, o);
    for (int i = 0; i < 4; ++i) sink.record(make_test_event("ip:1", i));
    REQUIRE(w.wait_written(4));
    CHECK(w.call_sizes() == std::vector<std::size_t>{4});

    for (int i = 4; i < 30; ++i) sink.record(make_test_event("ip:1", i));
    sink.flush();
    for (const auto n : w.call_sizes()) CHECK(n <= 4);
    CHECK(w.written().size() == 30);
}

TEST_CASE("async sink writes a partial batch once max_delay has passed", "[sinks][async]") {
    controlled_writer w;
    auto o = quick_options();
    o.max_batch = 1000;
    o.max_delay = 5ms;  // no flush below: only the timer can write these three
    sink_type sink(w, o);
    for (int i = 0; i < 3; ++i) sink.record(make_test_event("ip:1", i));
    REQUIRE(w.wait_written(3));
    CHECK(counts_of(w.written()) == std::vector<std::int64_t>{0, 1, 2});
    sink.flush();  // the sink counts a batch just after the writer returns
    CHECK(sink.stats().written == 3);
}

TEST_CASE("async sink drops and counts queue_full while the writer is blocked", "[sinks][async]") {
    controlled_writer w;
    auto o = quick_options();
    o.queue_capacity = 8;
    o.max_batch = 4;
    sink_type sink(w, o);
    w.close_gate();
    for (int i = 0; i < 4; ++i) sink.record(make_test_event("ip:1", i));
    REQUIRE(w.wait_calls(1));  // the writer holds those 4 and waits at the gate
    for (int i = 4; i < 12; ++i) sink.record(make_test_event("ip:1", i));   // fills the queue
    for (int i = 12; i < 17; ++i) sink.record(make_test_event("ip:1", i));  // no room
    auto s = sink.stats();
    CHECK(s.offered == 17);
    CHECK(s.dropped_queue_full == 5);
    CHECK(s.in_flight() == 12);
    CHECK(s.written + s.dropped() + s.in_flight() == s.offered);

    w.open_gate();
    sink.flush();
    s = sink.stats();
    CHECK(s.written == 12);
    CHECK(s.dropped_queue_full == 5);
    CHECK(s.dropped_write_error == 0);
    std::vector<std::int64_t> expected;
    for (int i = 0; i < 12; ++i) expected.push_back(i);
    CHECK(counts_of(w.written()) == expected);
    require_balanced(s);
}

TEST_CASE("async sink retries failed rows and resumes when the store recovers", "[sinks][async]") {
    controlled_writer w;
    auto o = quick_options();
    o.max_retries = 5;
    sink_type sink(w, o);

    SECTION("a store that fails a few calls loses nothing") {
        w.fail_next_calls(3);
        for (int i = 0; i < 10; ++i) sink.record(make_test_event("ip:1", i));
        sink.flush();
        const auto s = sink.stats();
        CHECK(s.written == 10);
        CHECK(s.retries == 3);
        CHECK(s.dropped() == 0);
        CHECK(counts_of(w.written()).size() == 10);
        require_balanced(s);
    }
    SECTION("only the failed tail of a batch is retried, without duplicates") {
        w.fail_from_row_once(3);
        for (int i = 0; i < 8; ++i) sink.record(make_test_event("ip:1", i));
        sink.flush();
        CHECK(counts_of(w.written()) == std::vector<std::int64_t>{0, 1, 2, 3, 4, 5, 6, 7});
        CHECK(w.call_sizes() == std::vector<std::size_t>{8, 5});
        CHECK(sink.stats().retries == 1);
        require_balanced(sink.stats());
    }
    SECTION(
        "a store that stays down past the retry budget drops as write_error, then "
        "writing resumes by itself") {
        w.set_mode(controlled_writer::mode::fail_all);
        for (int i = 0; i < 10; ++i) sink.record(make_test_event("ip:1", i));
        sink.flush();
        auto s = sink.stats();
        CHECK(s.written == 0);
        CHECK(s.dropped_write_error == 10);
        CHECK(s.retries == 5 * s.batches);
        CHECK(w.calls() == 6 * s.batches);
        require_balanced(s);

        w.set_mode(controlled_writer::mode::accept);  // the store is back
        for (int i = 10; i < 14; ++i) sink.record(make_test_event("ip:1", i));
        for (int i = 14; i < 64 + 10; ++i) sink.record(make_test_event("ip:1", i));
        REQUIRE(w.wait_written(64));  // a full batch went out with no flush()
        sink.flush();
        s = sink.stats();
        CHECK(s.written == 64);
        CHECK(s.dropped_write_error == 10);
        require_balanced(s);
    }
}

TEST_CASE("async sink resumes by itself on the timer after an outage", "[sinks][async]") {
    controlled_writer w;
    auto o = quick_options();
    o.max_batch = 1000;
    o.max_delay = 5ms;
    o.max_retries = 1;
    sink_type sink(w, o);
    w.set_mode(controlled_writer::mode::fail_all);
    for (int i = 0; i < 3; ++i) sink.record(make_test_event("ip:1", i));
    sink.flush();
    CHECK(sink.stats().dropped_write_error == 3);
    w.set_mode(controlled_writer::mode::accept);
    for (int i = 3; i < 6; ++i) sink.record(make_test_event("ip:1", i));
    REQUIRE(w.wait_written(3));
    CHECK(counts_of(w.written()) == std::vector<std::int64_t>{3, 4, 5});
}

TEST_CASE("async sink counts poison rows as invalid_row and never retries them", "[sinks][async]") {
    controlled_writer w;
    sink_type sink(w, quick_options());
    sink.record(make_test_event("ip:1", 0));
    sink.record(make_test_event("poison:nul", 1));
    sink.record(make_test_event("ip:1", 2));
    sink.record(make_test_event("poison:utf8", 3));
    sink.flush();
    auto s = sink.stats();
    CHECK(s.written == 2);
    CHECK(s.dropped_invalid_row == 2);
    CHECK(s.retries == 0);
    CHECK(w.seen().size() == 4);  // each row handed over exactly once
    CHECK(counts_of(w.written()) == std::vector<std::int64_t>{0, 2});
    require_balanced(s);

    // A poison row in a batch that also fails: counted once as invalid, the
    // failed tail retried and written.
    w.fail_from_row_once(2);
    sink.record(make_test_event("poison:a", 4));
    sink.record(make_test_event("ip:1", 5));
    sink.record(make_test_event("ip:1", 6));
    sink.flush();
    s = sink.stats();
    CHECK(s.dropped_invalid_row == 3);
    CHECK(s.written == 4);
    CHECK(s.retries == 1);
    require_balanced(s);
}

TEST_CASE("async sink keeps written + dropped == offered under concurrent producers",
          "[sinks][async]") {
    controlled_writer w;
    auto o = quick_options();
    o.queue_capacity = 64;  // small: producers outrun the writer and drops happen
    o.max_batch = 16;
    o.max_retries = 1;
    sink_type sink(w, o);
    w.fail_next_calls(5);

    constexpr int producers = 3;
    constexpr int per_producer = 20000;
    std::atomic<bool> done{false};
    std::atomic<int> bad_snapshots{0};
    std::thread observer([&] {
        while (!done.load()) {
            const auto s = sink.stats();
            if (s.written + s.dropped() > s.offered) bad_snapshots.fetch_add(1);
        }
    });
    std::vector<std::thread> threads;
    for (int p = 0; p < producers; ++p) {
        threads.emplace_back([&sink, p] {
            const std::string key = "ip:producer-" + std::to_string(p);
            for (int i = 0; i < per_producer; ++i) sink.record(make_test_event(key, i));
        });
    }
    for (auto& t : threads) t.join();
    sink.flush();
    done = true;
    observer.join();

    const auto s = sink.stats();
    CHECK(bad_snapshots.load() == 0);
    CHECK(s.offered == producers * per_producer);
    CHECK(s.written == w.written().size());
    require_balanced(s);
    // Each producer's events arrive in its own order, none twice.
    std::vector<std::int64_t> last(producers, -1);
    for (const auto& e : w.written()) {
        const int p = e.key.back() - '0';
        REQUIRE(e.count > last[p]);
        last[p] = e.count;
    }
}

TEST_CASE("async sink stop writes what a full queue holds", "[sinks][async]") {
    controlled_writer w;
    auto o = quick_options();
    o.queue_capacity = 8;
    o.max_batch = 4;
    sink_type sink(w, o);
    w.close_gate();
    for (int i = 0; i < 4; ++i) sink.record(make_test_event("ip:1", i));
    REQUIRE(w.wait_calls(1));
    for (int i = 4; i < 20; ++i) sink.record(make_test_event("ip:1", i));  // 8 queued, 8 dropped

    SECTION("a healthy store accepts everything queued") {
        w.open_gate();
        sink.stop();
        const auto s = sink.stats();
        CHECK(s.written == 12);
        CHECK(s.dropped_queue_full == 8);
        require_balanced(s);
    }
    SECTION(
        "a store that gives up mid-shutdown keeps what it accepted, the rest is "
        "dropped within the shutdown deadline") {
        w.accept_only(6);
        w.open_gate();
        sink.stop();  // max_retries is 3, backoff 0: bounded even without the deadline
        const auto s = sink.stats();
        CHECK(s.written == 6);
        CHECK(s.dropped_write_error == 6);
        CHECK(s.dropped_queue_full == 8);
        require_balanced(s);
    }
    // After stop, events are refused and counted.
    sink.record(make_test_event("ip:1", 99));
    const auto s = sink.stats();
    CHECK(s.offered == 21);
    CHECK(s.dropped_queue_full == 9);
    require_balanced(s);
    sink.flush();  // returns at once on a stopped sink
    sink.stop();   // idempotent
}

TEST_CASE("async sink shutdown deadline bounds a store that never recovers", "[sinks][async]") {
    controlled_writer w;
    auto o = quick_options();
    o.max_retries = 1'000'000'000;  // without the deadline stop() would not return
    o.initial_backoff = 1ms;
    o.max_backoff = 1ms;
    o.shutdown_timeout = 20ms;
    w.set_mode(controlled_writer::mode::fail_all);
    {
        sink_type sink(w, o);
        for (int i = 0; i < 200; ++i) sink.record(make_test_event("ip:1", i));
        sink.stop();
        const auto s = sink.stats();
        CHECK(s.written == 0);
        CHECK(s.dropped_write_error == 200);
        require_balanced(s);
    }
}

TEST_CASE("async sink destructor flushes the queue", "[sinks][async]") {
    controlled_writer w;
    {
        sink_type sink(w, quick_options());
        for (int i = 0; i < 10; ++i) sink.record(make_test_event("ip:1", i));
    }
    CHECK(w.written().size() == 10);
}

TEST_CASE("async sink never lets a throwing writer reach the caller", "[sinks][async]") {
    controlled_writer w;
    sink_type sink(w, quick_options());
    auto mode = GENERATE(controlled_writer::mode::throw_std, controlled_writer::mode::throw_other);
    w.set_mode(mode);
    for (int i = 0; i < 5; ++i) REQUIRE_NOTHROW(sink.record(make_test_event("ip:1", i)));
    REQUIRE_NOTHROW(sink.flush());
    auto s = sink.stats();
    CHECK(s.dropped_write_error == 5);
    CHECK(s.retries == 3 * s.batches);  // thrown = the whole batch failed, retried
    require_balanced(s);

    w.set_mode(controlled_writer::mode::accept);
    sink.record(make_test_event("ip:1", 5));
    sink.flush();
    CHECK(sink.stats().written == 1);
}

TEST_CASE("async sink flush_for reports whether everything was resolved", "[sinks][async]") {
    controlled_writer w;
    sink_type sink(w, quick_options());
    w.close_gate();
    sink.record(make_test_event("ip:1", 0));
    sink.record(make_test_event("ip:1", 1));
    CHECK_FALSE(sink.flush_for(1ms));  // the writer is held at the gate
    w.open_gate();
    CHECK(sink.flush_for(srl_test::generous));
    CHECK(sink.stats().written == 2);
}

TEST_CASE("async sink rejects bad options with an error naming the field", "[sinks][async]") {
    controlled_writer w;
    auto check = [&](auto mutate, const std::string& field) {
        auto o = quick_options();
        mutate(o);
        try {
            sink_type sink(w, o);
            FAIL("no error for " << field);
        } catch (const srl::config_error& e) {
            CHECK_THAT(e.what(), Catch::Contains("async_sink_options." + field));
        }
    };
    check([](auto& o) { o.queue_capacity = 0; }, "queue_capacity");
    check([](auto& o) { o.max_batch = 0; }, "max_batch");
    check([](auto& o) { o.max_delay = -1ms; }, "max_delay");
    check([](auto& o) { o.initial_backoff = -1ms; }, "initial_backoff");
    check([](auto& o) { o.initial_backoff = 10ms, o.max_backoff = 5ms; }, "max_backoff");
    check([](auto& o) { o.shutdown_timeout = -1ms; }, "shutdown_timeout");
}

TEST_CASE("async sink constructs its writer in place and names drop reasons", "[sinks][async]") {
    srl::async_sink<discard_writer> sink(std::in_place, srl::async_sink_options{});
    sink.record(make_test_event("ip:1", 0));
    sink.flush();
    CHECK(sink.stats().written == 1);
    CHECK(srl::to_string(srl::drop_reason::queue_full) == "queue_full");
    CHECK(srl::to_string(srl::drop_reason::write_error) == "write_error");
    CHECK(srl::to_string(srl::drop_reason::invalid_row) == "invalid_row");
    srl::async_sink_stats s;
    s.offered = 10;
    s.written = 4;
    s.dropped_queue_full = 1;
    s.dropped_write_error = 2;
    s.dropped_invalid_row = 3;
    CHECK(s.dropped() == 6);
    CHECK(s.dropped(srl::drop_reason::write_error) == 2);
    CHECK(s.in_flight() == 0);
}

TEST_CASE("async sink accepts the largest durations without overflowing", "[sinks][async]") {
    controlled_writer w;
    auto o = quick_options();
    o.max_delay = std::chrono::milliseconds::max();
    o.max_backoff = std::chrono::milliseconds::max();
    o.initial_backoff = std::chrono::milliseconds::max() / 3;
    o.shutdown_timeout = std::chrono::milliseconds::max();
    sink_type sink(w, o);
    sink.record(make_test_event("ip:1", 0));
    sink.flush();
    sink.record(make_test_event("ip:1", 1));
    sink.stop();
    CHECK(sink.stats().written == 2);
    require_balanced(sink.stats());
}
