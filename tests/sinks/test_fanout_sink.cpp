// tests/sinks/test_fanout_sink.cpp
// The fan-out sink: every event reaches each sink in the list, a throwing sink
// is counted and skipped without stopping the others, and sinks can be held by
// value or by reference.
#include <catch2/catch.hpp>

#include <smart_ratelimit/concepts.hpp>
#include <smart_ratelimit/sinks/async_sink.hpp>
#include <smart_ratelimit/sinks/fanout_sink.hpp>
#include <smart_ratelimit/sinks/ring_buffer_sink.hpp>

#include <stdexcept>
#include <vector>

#include "support/sink_test_writer.hpp"

namespace srl = smart_ratelimit;
using srl_test::make_test_event;

namespace {

struct vector_sink {
    std::vector<srl::event> events;
    void record(const srl::event& e) { events.push_back(e); }
};

// Throws on every event whose count is odd.
struct flaky_sink {
    int calls = 0;
    void record(const srl::event& e) {
        ++calls;
        if (e.count % 2) throw std::runtime_error("sink broke");
    }
};

// Tells whether it was handed an rvalue.
struct move_aware_sink {
    int copies = 0;
    int moves = 0;
    void record(const srl::event&) { ++copies; }
    void record(srl::event&& e) {
        ++moves;
        srl::event taken = std::move(e);
        (void)taken;
    }
};

struct throws_anything_sink {
    void record(const srl::event&) { throw 7; }
};

}  // namespace

static_assert(srl::event_sink<srl::fanout_sink<vector_sink, flaky_sink>>);
static_assert(srl::event_sink<srl::fanout_sink<srl::ring_buffer_sink_mt&, vector_sink&>>);

TEST_CASE("fan-out sink records every event to each sink in order", "[sinks][fanout]") {
    srl::fanout_sink<vector_sink, vector_sink> sink;
    for (int i = 0; i < 5; ++i) sink.record(make_test_event("ip:1", i));
    REQUIRE(sink.sink<0>().events.size() == 5);
    CHECK(sink.sink<0>().events == sink.sink<1>().events);
    CHECK(sink.sink<0>().events[3] == make_test_event("ip:1", 3));
    CHECK(sink.failures() == 0);
}

TEST_CASE("fan-out sink keeps going past a throwing sink and counts its failures",
          "[sinks][fanout]") {
    srl::fanout_sink<flaky_sink, throws_anything_sink, vector_sink> sink;
    for (int i = 0; i < 6; ++i) REQUIRE_NOTHROW(sink.record(make_test_event("ip:1", i)));
    CHECK(sink.sink<0>().calls == 6);
    CHECK(sink.sink<2>().events.size() == 6);  // the last sink saw every event
    CHECK(sink.failures(0) == 3);
    CHECK(sink.failures(1) == 6);
    CHECK(sink.failures(2) == 0);
    CHECK(sink.failures(3) == 0);  // out of range: nothing
    CHECK(sink.failures() == 9);
}

TEST_CASE("fan-out sink holds lvalue sinks by reference, e.g. a ring buffer and an async sink",
          "[sinks][fanout]") {
    srl::ring_buffer_sink_mt ring(2);
    srl_test::controlled_writer w;
    srl::async_sink<srl_test::controlled_writer&> async(w);
    vector_sink owned_elsewhere;
    srl::fanout_sink sink(ring, async, owned_elsewhere);
    static_assert(std::is_same_v<
                  decltype(sink),
                  srl::fanout_sink<srl::ring_buffer_sink_mt&,
                                   srl::async_sink<srl_test::controlled_writer&>&, vector_sink&>>);
    for (int i = 0; i < 3; ++i) sink.record(make_test_event("ip:1", i));
    async.flush();
    CHECK(ring.size() == 2);
    CHECK(ring.recorded() == 3);
    CHECK(w.written().size() == 3);
    CHECK(owned_elsewhere.events.size() == 3);
    CHECK(&sink.sink<0>() == &ring);

    srl::fanout_sink by_value(vector_sink{}, flaky_sink{});  // rvalues are moved in
    static_assert(std::is_same_v<decltype(by_value), srl::fanout_sink<vector_sink, flaky_sink>>);
    by_value.record(make_test_event("ip:1", 1));
    CHECK(by_value.sink<0>().events.size() == 1);
    CHECK(by_value.failures(1) == 1);
}

TEST_CASE("fan-out sink moves an rvalue event into the last sink only", "[sinks][fanout]") {
    srl::fanout_sink<move_aware_sink, vector_sink, move_aware_sink> sink;
    sink.record(make_test_event("ip:1", 1));
    CHECK(sink.sink<0>().copies == 1);
    CHECK(sink.sink<0>().moves == 0);
    REQUIRE(sink.sink<1>().events.size() == 1);
    CHECK(sink.sink<1>().events[0] == make_test_event("ip:1", 1));  // read before the move
    CHECK(sink.sink<2>().moves == 1);
    const auto e = make_test_event("ip:1", 2);
    sink.record(e);
    CHECK(sink.sink<2>().copies == 1);

    srl::fanout_sink<flaky_sink> single;  // one sink: the rvalue path alone
    single.record(make_test_event("ip:1", 1));
    CHECK(single.failures(0) == 1);
}
