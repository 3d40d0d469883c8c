// tests/soci/test_event_store_sink.cpp
// The asynchronous sink writing into the real event store while the database
// misbehaves: unreachable at start, table missing, server killed mid-stream and
// restarted. The caller never blocks or sees an exception, every loss is counted
// by reason, and writing resumes by itself.
#include "support/event_store_support.hpp"

#include <catch2/catch.hpp>

#include <atomic>
#include <future>
#include <thread>
#include <vector>

#include <smart_ratelimit/sinks/async_sink.hpp>

using namespace srl_test;
namespace ssoci = smart_ratelimit::soci;
using srl::async_sink;
using srl::async_sink_options;
using std::chrono::milliseconds;

namespace {

async_sink_options quick_retries() {
    async_sink_options o;
    o.queue_capacity = 4096;
    o.max_batch = 256;
    o.max_delay = milliseconds(5);
    o.max_retries = 2;
    o.initial_backoff = milliseconds(5);
    o.max_backoff = milliseconds(20);
    o.shutdown_timeout = milliseconds(200);
    return o;
}

void check_accounting(const srl::async_sink_stats& s) {
    CHECK(s.written + s.dropped() == s.offered);
    CHECK(s.in_flight() == 0);
}

}  // namespace

TEST_CASE(
    "event store sink: a missing table drops as write_error, then writing resumes after migrate",
    "[soci][sink][failure]") {
    temp_dir dir;
    const std::string url = dir.sqlite_url();
    async_sink<ssoci::event_store> sink(std::in_place, quick_retries(), url);
    for (int i = 0; i < 300; ++i) sink.record(sample_event(i));
    sink.flush();
    auto s = sink.stats();
    CHECK(s.written == 0);
    CHECK(s.dropped_write_error == 300);
    check_accounting(s);

    ssoci::event_store(url).migrate();
    for (int i = 300; i < 500; ++i) sink.record(sample_event(i));
    sink.flush();
    s = sink.stats();
    CHECK(s.written == 200);
    check_accounting(s);
    sink.stop();
    CHECK(ssoci::event_store(url).count() == 200);
}

TEST_CASE("event store sink: stop with a full queue flushes what the database accepts",
          "[soci][sink]") {
    temp_dir dir;
    const std::string url = dir.sqlite_url();
    ssoci::event_store(url).migrate();
    auto opts = quick_retries();
    opts.queue_capacity = 1000;
    opts.max_delay = milliseconds(60'000);  // nothing is written before stop() but full batches
    async_sink<ssoci::event_store> sink(std::in_place, opts, url);
    for (int i = 0; i < 3000; ++i) sink.record(sample_event(i));
    // A poison timestamp among them: dropped alone as invalid_row.
    auto bad = sample_event(3000);
    bad.timestamp = srl::event_time{std::chrono::microseconds{-70'000'000'000'000'000}};
    sink.record(bad);
    sink.stop();
    const auto s = sink.stats();
    check_accounting(s);
    CHECK(s.offered == 3001);
    CHECK(s.written > 0);
    CHECK(s.dropped_write_error == 0);
    CHECK(s.dropped_invalid_row + s.dropped_queue_full + s.written == 3001);
    CHECK(ssoci::event_store(url).count() == static_cast<std::int64_t>(s.written));
}

TEST_CASE("event store sink: PostgreSQL unreachable at start, killed mid-stream and restarted",
          "[soci][sink][failure][postgresql]") {
    private_postgres server;
    if (!server) {
        if (servers_required()) FAIL("SMART_RATELIMIT_TEST_PG_BIN is not set");
        return;
    }
    auto opts = quick_retries();
    opts.max_retries = 3;
    async_sink<ssoci::event_store> sink(std::in_place, opts, server.url());

    // 1. Nothing listens yet: the producer is never blocked, losses are write_error.
    std::int64_t seq = 0;
    for (; seq < 2000; ++seq) sink.record(sample_event(seq, "ip:down"));
    sink.flush();
    auto s = sink.stats();
    CHECK(s.written == 0);
    CHECK(s.dropped_write_error == 2000);
    check_accounting(s);

    // 2. The server comes up and the schema is created: writing resumes by itself.
    server.start();
    ssoci::event_store(server.url()).migrate();
    for (std::int64_t end = seq + 2000; seq < end; ++seq) sink.record(sample_event(seq, "ip:up"));
    sink.flush();
    s = sink.stats();
    CHECK(s.written == 2000);
    check_accounting(s);

    // 3. Killed (SIGKILL) while a producer keeps recording, then restarted.
    std::atomic<bool> stop_producer{false};
    std::atomic<std::int64_t> produced{0};
    std::thread producer([&] {
        std::int64_t i = 1'000'000;
        while (!stop_producer.load()) {
            sink.record(sample_event(i++, "ip:stream"));
            produced.fetch_add(1);
            if (i % 100 == 0)
                std::this_thread::sleep_for(milliseconds(1));  // pace: about 100k events/s
        }
    });
    auto wait_for_written = [&](std::uint64_t target) {
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
        while (sink.stats().written < target && std::chrono::steady_clock::now() < deadline)
            std::this_thread::sleep_for(milliseconds(10));
        return sink.stats().written >= target;
    };
    REQUIRE(wait_for_written(s.written + 1000));
    server.kill();
    // The producer keeps going while the server is gone.
    const auto produced_at_kill = produced.load();
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
    while (produced.load() < produced_at_kill + 20'000 &&
           std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(milliseconds(5));
    CHECK(produced.load() >= produced_at_kill + 20'000);
    const auto written_while_down = sink.stats().written;

    server.start();
    CHECK(wait_for_written(written_while_down + 1000));
    stop_producer = true;
    producer.join();
    sink.stop();
    s = sink.stats();
    check_accounting(s);
    CHECK(s.dropped() > 0);
    CHECK(s.dropped_invalid_row == 0);
    INFO("written " << s.written << ", queue_full " << s.dropped_queue_full << ", write_error "
                    << s.dropped_write_error);
    // What the sink counts as written is in the table (a batch whose commit the crash
    // hid may be there too, never less).
    const auto rows = ssoci::event_store(server.url()).count();
    CHECK(rows >= static_cast<std::int64_t>(s.written));
    CHECK(rows <= static_cast<std::int64_t>(s.offered));
    CHECK(sink.writer().connects() >= 2);
}

TEST_CASE(
    "event store sink: PostgreSQL frozen mid-stream: a write gives up at the write "
    "timeout, stop() ends in time and counts what it could not write",
    "[soci][sink][failure][postgresql]") {
    private_postgres server;
    if (!server) {
        if (servers_required()) FAIL("SMART_RATELIMIT_TEST_PG_BIN is not set");
        return;
    }
    server.start();
    ssoci::event_store(server.url()).migrate();
    ssoci::event_store_options eo;
    eo.write_timeout = milliseconds(500);
    const std::string url = server.url();  // connecting gives up after 2 s

    // The writer alone: a batch while the server is frozen fails within its timeout,
    // and after the thaw the next batch is written on a new connection.
    ssoci::event_store store(url, eo);
    std::vector<srl::event> batch;
    for (int i = 0; i < 100; ++i) batch.push_back(sample_event(i, "ip:direct"));
    CHECK(store.write_batch(batch).written == 100);
    {
        thaw_on_exit guard{server};
        server.freeze();
        auto pending = std::async(std::launch::async, [&] { return store.write_batch(batch); });
        const bool returned =
            pending.wait_for(std::chrono::seconds(10)) == std::future_status::ready;
        server.thaw();
        REQUIRE(returned);
        const auto r = pending.get();
        CHECK(r.failed == 100);
        CHECK(store.last_error().find("did not answer") != std::string::npos);
    }
    CHECK(store.write_batch(batch).written == 100);
    CHECK(store.connects() == 2);

    // The sink: stop() on SIGTERM while the server is frozen ends within
    // shutdown_timeout plus one write and one connect timeout, and every event
    // recorded is written or counted as dropped.
    auto opts = quick_retries();
    opts.shutdown_timeout = milliseconds(300);
    async_sink<ssoci::event_store> sink(std::in_place, opts, url, eo);
    for (int i = 0; i < 500; ++i) sink.record(sample_event(i, "ip:before"));
    sink.flush();
    REQUIRE(sink.stats().written == 500);
    thaw_on_exit guard{server};
    server.freeze();
    for (int i = 0; i < 2000; ++i) sink.record(sample_event(i, "ip:frozen"));
    const auto t0 = std::chrono::steady_clock::now();
    auto stopping = std::async(std::launch::async, [&] { sink.stop(); });
    const bool stopped = stopping.wait_for(std::chrono::seconds(15)) == std::future_status::ready;
    server.thaw();
    stopping.get();
    REQUIRE(stopped);
    CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(8));
    const auto s = sink.stats();
    check_accounting(s);
    CHECK(s.written == 500);
    CHECK(s.dropped_write_error == 2000);
    CHECK(ssoci::event_store(server.url()).count() == 700);
}
