// tests/storage/test_bounded_wait.cpp
// resilient_storage's bounded-wait mode on its own: a store that blocks behind a
// gate the test opens. A stuck call gets the policy's answer at the timeout, stuck
// workers make new calls fail fast, the stuck calls finish in the background once
// the gate opens, the breaker recovers, and every counter adds up.
#include <catch2/catch.hpp>

#include "support/checked_storage.hpp"

#include <smart_ratelimit/algorithms/any_algorithm.hpp>
#include <smart_ratelimit/clock.hpp>
#include <smart_ratelimit/storage/in_memory_storage.hpp>
#include <smart_ratelimit/storage/resilient_storage.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace srl = smart_ratelimit;
using namespace std::chrono_literals;

namespace {

// Calls wait here while it is closed; counts who came in.
struct gate {
    std::mutex m;
    std::condition_variable cv;
    bool closed = false;
    int entered = 0;

    void pass() {
        std::unique_lock<std::mutex> lock(m);
        ++entered;
        cv.wait(lock, [this] { return !closed; });
    }
    void set_closed(bool c) {
        {
            std::lock_guard<std::mutex> lock(m);
            closed = c;
        }
        cv.notify_all();
    }
    int entered_count() {
        std::lock_guard<std::mutex> lock(m);
        return entered;
    }
};

// The in-memory storage behind a gate and an error switch; copies share all three.
struct gated_storage : srl_test::checked_storage<gated_storage> {
    std::shared_ptr<gate> g = std::make_shared<gate>();
    std::shared_ptr<std::atomic<bool>> down = std::make_shared<std::atomic<bool>>(false);

    void check() const {
        g->pass();
        if (down->load()) throw srl::storage_error("store down");
    }
};

// Opens the gate when the scope ends, so a failed check never leaves a worker stuck
// (the decorator's destructor waits for its workers).
struct open_on_exit {
    std::shared_ptr<gate> g;
    ~open_on_exit() { g->set_closed(false); }
};

using resilient = srl::resilient_storage<gated_storage, srl::no_failover, srl::manual_clock>;

const srl::any_algorithm alg("fixed_window", srl::rate{10, 1h});
const std::chrono::nanoseconds t0 = 3600s;

srl::resilience_options bounded() {
    srl::resilience_options o;
    o.failure_threshold = 3;
    o.open_for = 10s;
    o.timeout = 2s;  // generous: a healthy call on a loaded machine must not reach it
    o.wait_workers = 2;
    return o;
}

// Waits (yielding, no fixed sleeps) until cond holds, for at most a minute.
template <class F>
bool eventually(F cond) {
    const auto end = std::chrono::steady_clock::now() + 60s;
    while (!cond()) {
        if (std::chrono::steady_clock::now() > end) return false;
        std::this_thread::yield();
    }
    return true;
}

}  // namespace

static_assert(srl::storage_backend<resilient>);

TEST_CASE("bounded wait: a healthy store answers through the workers unchanged",
          "[resilience][bounded_wait]") {
    gated_storage s;
    resilient r(s, bounded(), {}, srl::manual_clock(t0));
    for (int i = 0; i < 10; ++i) CHECK(r.acquire("k", alg, t0, 1).allowed);
    CHECK_FALSE(r.acquire("k", alg, t0, 1).allowed);
    CHECK_FALSE(r.peek("k", alg, t0, 1).allowed);
    r.release("k", alg, t0, 1);
    CHECK(r.peek("k", alg, t0, 1).allowed);
    const auto st = r.stats();
    CHECK(st.successes == 14);
    CHECK(st.timed_out == 0);
    CHECK(st.workers_exhausted == 0);
    CHECK(r.state() == srl::breaker_state::closed);
}

TEST_CASE(
    "bounded wait: one worker serves a caller's calls back to back, never found busy with the last "
    "one",
    "[resilience][bounded_wait]") {
    // The worker counts as free once the backend call returns, before the caller
    // wakes: the caller's next call can never find it still busy with the last one.
    gated_storage s;
    auto opts = bounded();
    opts.wait_workers = 1;
    resilient r(s, opts, {}, srl::manual_clock(t0));
    const srl::any_algorithm roomy("fixed_window", srl::rate{1'000'000, 1h});
    constexpr int calls = 20'000;
    int allowed = 0;
    for (int i = 0; i < calls; ++i) allowed += r.acquire("k", roomy, t0, 1).allowed ? 1 : 0;
    CHECK(allowed == calls);
    CHECK(r.stats().workers_exhausted == 0);
    CHECK(r.stats().successes == static_cast<std::uint64_t>(calls));
}

TEST_CASE(
    "bounded wait: a frozen store gets the policy's answer at the timeout, exhausted workers fail "
    "fast, "
    "and service recovers when the store resumes",
    "[resilience][bounded_wait]") {
    gated_storage s;
    srl::manual_clock clock(t0);
    auto opts = bounded();
    opts.failure_threshold = 5;  // room for a skipped call before both workers are stuck
    resilient r(s, opts, {}, clock);
    open_on_exit guard{s.g};
    CHECK(r.acquire("k", alg, t0, 1).allowed);

    s.g->set_closed(true);
    // Calls time out until both workers are stuck inside the store (a call abandoned
    // before a worker picked it up is skipped and frees its worker at once).
    int timed_out = 0;
    while (s.g->entered_count() < 3 && timed_out < 50) {  // 1 healthy call + 2 stuck
        const auto t = std::chrono::steady_clock::now();
        const auto o = r.acquire("k", alg, t0, 1);
        CHECK(std::chrono::steady_clock::now() - t < 30s);
        CHECK_FALSE(o.allowed);
        CHECK(o.retry_after > 0ns);
        ++timed_out;
    }
    REQUIRE(s.g->entered_count() == 3);
    CHECK(r.stats().timed_out == static_cast<std::uint64_t>(timed_out));

    // Both workers are stuck: the next call is refused at once (no waiting for the timeout
    // is asserted; only that it is counted as refused, not timed out).
    const auto before = r.stats();
    if (r.state() == srl::breaker_state::closed) {
        CHECK_FALSE(r.acquire("k", alg, t0, 1).allowed);
        CHECK(r.stats().workers_exhausted == before.workers_exhausted + 1);
        CHECK(r.stats().timed_out == before.timed_out);
    }
    // Whatever the mix, the breaker is open after five failures, and then short-circuits.
    while (r.state() == srl::breaker_state::closed) CHECK_FALSE(r.acquire("k", alg, t0, 1).allowed);
    CHECK(r.state() == srl::breaker_state::open);
    CHECK(r.stats().opened == 1);
    CHECK_FALSE(r.acquire("k", alg, t0, 1).allowed);
    CHECK(r.stats().short_circuited >= 1);

    // While open and still frozen: the open period ends, the probe is refused (workers
    // stuck) or times out, and the breaker opens again.
    clock.advance(10s);
    CHECK_FALSE(r.acquire("k", alg, t0, 1).allowed);
    CHECK(r.state() == srl::breaker_state::open);
    CHECK(r.stats().opened == 2);

    // The store resumes: the stuck calls finish in the background, their results dropped.
    s.g->set_closed(false);
    const auto abandoned = r.stats().timed_out;
    REQUIRE(eventually([&] { return r.stats().late_completions == abandoned; }));

    clock.advance(10s);
    const auto o = r.acquire("k", alg, t0, 1);
    CHECK(o.allowed);
    CHECK(r.state() == srl::breaker_state::closed);
    CHECK(r.stats().recovered == 1);
    // The trade-off: stuck acquires that went through later consumed quota. The count is
    // the healthy call, each abandoned call that reached the store, and this one.
    CHECK(o.count == static_cast<std::uint64_t>(s.g->entered_count()));
    CHECK(o.count >= 4);

    const auto st = r.stats();
    CHECK(st.degraded_answers == st.timed_out + st.workers_exhausted + st.short_circuited);
    CHECK(st.successes == 2);
}

TEST_CASE("bounded wait: degraded at the timeout, and a store error is a failure, not a timeout",
          "[resilience][bounded_wait]") {
    gated_storage s;
    resilient r(s, bounded(), {}, srl::manual_clock(t0));
    open_on_exit guard{s.g};

    s.down->store(true);
    const auto e = r.acquire("k", alg, t0, 1);
    CHECK(e.degraded);
    CHECK(e.count == 0);
    CHECK(r.stats().failures == 1);
    CHECK(r.stats().timed_out == 0);
    s.down->store(false);

    s.g->set_closed(true);
    const auto t = r.peek("k", alg, t0, 1);
    CHECK(t.degraded);
    CHECK(r.stats().timed_out == 1);
    CHECK(r.stats().degraded_answers == 2);
    s.g->set_closed(false);
    REQUIRE(eventually([&] { return r.stats().late_completions == 1; }));
    CHECK(r.acquire("k", alg, t0, 1).allowed);
    CHECK(r.stats().successes == 1);
}

TEST_CASE(
    "bounded wait: concurrent callers through two workers all get an answer, counted once each",
    "[resilience][bounded_wait]") {
    gated_storage s;
    auto o = bounded();
    o.failure_threshold = 1000000;  // refusals under contention must not open the breaker here
    resilient r(s, o, {}, srl::manual_clock(t0));
    const srl::any_algorithm big("fixed_window", srl::rate{1000000, 1h});
    std::atomic<int> allowed{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t)
        threads.emplace_back([&, t] {
            resilient copy = r;  // copies share workers, breaker and counters
            for (int i = 0; i < 200; ++i)
                if (copy.acquire("k" + std::to_string(t), big, t0, 1).allowed) allowed.fetch_add(1);
        });
    for (auto& th : threads) th.join();
    const auto st = r.stats();
    CHECK(st.successes + st.workers_exhausted + st.timed_out + st.failures == 800);
    CHECK(st.successes == static_cast<std::uint64_t>(allowed.load()));
    CHECK(st.successes > 0);
    CHECK(st.degraded_answers == 800 - st.successes);
}

TEST_CASE("bounded wait: too many workers or a zero timeout is a configuration error that names it",
          "[resilience][bounded_wait]") {
    auto o = bounded();
    o.wait_workers = srl::resilience_options::max_wait_workers + 1;
    CHECK_THROWS_WITH(resilient(gated_storage{}, o, {}, srl::manual_clock(t0)),
                      Catch::Contains("wait_workers 257"));
    o.wait_workers = 2;
    o.timeout = 0ms;
    CHECK_THROWS_WITH(resilient(gated_storage{}, o, {}, srl::manual_clock(t0)),
                      Catch::Contains("timeout"));
    CHECK_THROWS_AS(resilient(gated_storage{}, o, {}, srl::manual_clock(t0)), srl::config_error);
    o.wait_workers = 0;  // without bounded wait a zero timeout only marks every call slow
    CHECK_NOTHROW(resilient(gated_storage{}, o, {}, srl::manual_clock(t0)));
}
