// tests/sinks/test_async_sink_running.cpp
// async_sink::running(), the accessor health checks read: true from construction
// until stop() is called, false from then on (even while the writer thread still
// drains the queue) and after the destructor's stop. No sleeps: the controllable
// writer's gate holds the writer thread where the test needs it.
#include <catch2/catch.hpp>

#include <smart_ratelimit/sinks/async_sink.hpp>

#include <chrono>
#include <thread>

#include "support/sink_test_writer.hpp"

namespace srl = smart_ratelimit;
using srl_test::controlled_writer;
using srl_test::make_test_event;
using namespace std::chrono_literals;

namespace {

srl::async_sink_options held_options() {
    srl::async_sink_options o;
    o.max_delay = 1h;  // only flush and stop trigger a write
    o.initial_backoff = 0ms;
    o.max_backoff = 0ms;
    o.shutdown_timeout = 1h;
    return o;
}

}  // namespace

TEST_CASE("an async sink is running from construction until stop", "[sinks][health]") {
    controlled_writer w;
    srl::async_sink<controlled_writer&> sink(w, held_options());
    CHECK(sink.running());
    sink.record(make_test_event("k", 1));
    sink.flush();
    CHECK(sink.running());
    sink.stop();
    CHECK_FALSE(sink.running());
    sink.stop();  // idempotent
    CHECK_FALSE(sink.running());
}

TEST_CASE("an async sink stops running as soon as stop begins, before its writer has drained",
          "[sinks][health]") {
    controlled_writer w;
    srl::async_sink<controlled_writer&> sink(w, held_options());
    w.close_gate();
    sink.record(make_test_event("k", 1));
    std::thread stopper([&] { sink.stop(); });
    REQUIRE(w.wait_calls(1));  // the writer thread holds the last batch at the gate
    CHECK_FALSE(sink.running());
    w.open_gate();
    stopper.join();
    CHECK_FALSE(sink.running());
    CHECK(sink.stats().written == 1);
}
