// tests/metrics/test_decision_metrics.cpp
// decision_metrics as a limiter observer: every outcome counted (degraded and
// shadow_blocked included), exact totals merged across threads, several limiters on
// one set of counters, 1,000 rules, a rule name reused at another address, and the
// timing sample rate (decisions at a caller's time untimed).
#include <catch2/catch.hpp>

#include <smart_ratelimit/metrics.hpp>
#include <smart_ratelimit/smart_ratelimit.hpp>

#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace srl = smart_ratelimit;
namespace m = smart_ratelimit::metrics;
using namespace std::chrono_literals;

namespace {

struct view_key {
    std::string_view operator()(const std::string& s) const noexcept { return s; }
};

// A store that can never decide.
struct down_storage {
    using algorithm_type = srl::any_algorithm;
    srl::outcome acquire(std::string_view, const algorithm_type&, std::chrono::nanoseconds,
                         std::uint64_t) {
        return srl::degraded_outcome();
    }
    srl::outcome peek(std::string_view, const algorithm_type&, std::chrono::nanoseconds,
                      std::uint64_t) {
        return srl::degraded_outcome();
    }
    void release(std::string_view, const algorithm_type&, std::chrono::nanoseconds, std::uint64_t) {
    }
};

template <class Storage = srl::in_memory_storage<>>
using metered =
    srl::limiter<view_key, Storage, srl::null_sink, srl::manual_clock, m::decision_metrics>;

template <class Storage = srl::in_memory_storage<>>
std::unique_ptr<metered<Storage>> make(std::vector<srl::rule_config> rules,
                                       const m::decision_metrics& dm, srl::limiter_options o = {}) {
    return std::make_unique<metered<Storage>>(view_key{}, rules, std::move(o), Storage{},
                                              srl::null_sink{}, srl::manual_clock{}, dm);
}

std::uint64_t total(const m::decision_metrics& dm, std::string_view rule) {
    std::uint64_t n = 0;
    for (auto k : {srl::outcome_kind::allowed, srl::outcome_kind::blocked,
                   srl::outcome_kind::shadow_blocked, srl::outcome_kind::degraded})
        n += dm.count(rule, k);
    return n;
}

}  // namespace

static_assert(srl::observer<m::decision_metrics>);
static_assert(srl::detail::hears_outcomes<m::decision_metrics>);

TEST_CASE("decision_metrics counts allowed, blocked, shadow_blocked and degraded per rule",
          "[metrics]") {
    m::decision_metrics dm;
    auto lim = make({{"login", "2/h", "fixed_window"}, {"watch", "1/h", "fixed_window", true}}, dm);
    for (int i = 0; i < 3; ++i) (void)lim->check_key("ip:1");
    // 1st: both allow. 2nd: login allows, watch (shadow) over. 3rd: login blocks, watch over.
    CHECK(dm.count("login", srl::outcome_kind::allowed) == 2);
    CHECK(dm.count("login", srl::outcome_kind::blocked) == 1);
    CHECK(dm.count("watch", srl::outcome_kind::allowed) == 1);
    CHECK(dm.count("watch", srl::outcome_kind::shadow_blocked) == 2);

    srl::limiter_options open;
    open.on_store_failure = srl::failure_policy::fail_open;
    auto down = make<down_storage>({{"", "5/s", "token_bucket"}}, dm, open);
    CHECK(down->check_key("k").allowed());
    CHECK(dm.count("", srl::outcome_kind::degraded) == 1);
    CHECK(dm.count("", srl::outcome_kind::allowed) == 0);

    m::exposition out;
    dm.collect(out);
    const std::string text = out.str();
    CHECK(text.find("smart_ratelimit_decisions_total{rule=\"\",outcome=\"degraded\"} 1\n") !=
          std::string::npos);
    CHECK(text.find("smart_ratelimit_decisions_total{rule=\"login\",outcome=\"blocked\"} 1\n") !=
          std::string::npos);
    CHECK(text.find("smart_ratelimit_decisions_total{rule=\"watch\",outcome=\"degraded\"} 0\n") !=
          std::string::npos);
    CHECK(text.find("# TYPE smart_ratelimit_decision_duration_seconds histogram\n") !=
          std::string::npos);
}

TEST_CASE("decision_metrics counts allow()'s outcomes as check()'s, timing the same sample",
          "[metrics]") {
    m::decision_metrics dm(m::decision_metrics_options{.time_every = 2});
    auto lim = make<srl::concurrent_storage<srl::gcra>>({{"api", "3/h", "gcra"}}, dm);
    for (int i = 0; i < 4; ++i) (void)lim->allow_key("k");
    (void)lim->check_key("k");
    CHECK(dm.count("api", srl::outcome_kind::allowed) == 3);
    CHECK(dm.count("api", srl::outcome_kind::blocked) == 2);
    // One decision in two from the first, allow() or check(): the 1st, 3rd and 5th.
    CHECK(dm.duration().snapshot().count() == 3);
    (void)lim->allow_at(std::string("k"), 1s);  // a caller's time: counted, untimed
    (void)lim->allow_at(std::string("k"), 1s);
    CHECK(dm.count("api", srl::outcome_kind::blocked) == 4);
    CHECK(dm.duration().snapshot().count() == 3);

    srl::limiter_options shadow;
    shadow.shadow = true;
    auto watch = make<srl::concurrent_storage<srl::gcra>>({{"watch", "1/h", "gcra"}}, dm, shadow);
    CHECK(watch->allow_key("k"));
    CHECK(watch->allow_key("k"));
    CHECK(dm.count("watch", srl::outcome_kind::allowed) == 1);
    CHECK(dm.count("watch", srl::outcome_kind::shadow_blocked) == 1);

    srl::limiter_options closed;
    closed.on_store_failure = srl::failure_policy::fail_closed;
    auto down = make<down_storage>({{"down", "5/s", "token_bucket"}}, dm, closed);
    CHECK_FALSE(down->allow_key("k"));
    CHECK(dm.count("down", srl::outcome_kind::degraded) == 1);
}

TEST_CASE("a limiter's rules have their series from the start, bound once", "[metrics]") {
    m::decision_metrics dm;
    auto lim = make({{"login", "2/h", "fixed_window"}, {"search", "9/h", "fixed_window"}}, dm);
    m::exposition out;
    dm.collect(out);
    const std::string before = out.str();
    for (const char* series :
         {"{rule=\"login\",outcome=\"allowed\"} 0\n", "{rule=\"search\",outcome=\"blocked\"} 0\n"})
        CHECK(before.find(std::string(m::decision_metrics::decisions_name) + series) !=
              std::string::npos);
    // The bound handles count exactly what the name lookup would, and so does a
    // decision the limiter is told about outside check() (the middleware's path).
    (void)lim->check_key("u");
    srl::decision d;
    lim->make_decision(d, 1, srl::outcome{.allowed = false});
    lim->observe(d, srl::not_timed);
    CHECK(dm.count("login", srl::outcome_kind::allowed) == 1);
    CHECK(dm.count("search", srl::outcome_kind::allowed) == 1);
    CHECK(dm.count("search", srl::outcome_kind::blocked) == 1);
    dm.on_decision(d, srl::not_timed);  // unbound: found by name, same series
    CHECK(dm.count("search", srl::outcome_kind::blocked) == 2);
    CHECK(dm.bind("search") == dm.bind("search"));
}

TEST_CASE("decision_metrics merges exact totals from many threads", "[metrics][concurrency]") {
    constexpr int threads = 4;
    constexpr int per_thread = 20000;
    m::decision_metrics dm(m::decision_metrics_options{.time_every = 7});
    auto a = make({{"a", "1000000000/s", "token_bucket"}}, dm);
    auto b = make({{"b", "1/h", "fixed_window"}}, dm);
    std::vector<std::thread> ts;
    for (int t = 0; t < threads; ++t)
        ts.emplace_back([&, t] {
            const std::string key = "k" + std::to_string(t);
            for (int i = 0; i < per_thread; ++i) {
                (void)a->check_key(key);
                (void)b->check_key("shared");
            }
        });
    // Scrape while they count: never more than the final totals.
    for (int i = 0; i < 20; ++i) {
        m::exposition out;
        dm.collect(out);
        CHECK(total(dm, "a") <= std::uint64_t{threads} * per_thread);
    }
    for (auto& t : ts) t.join();
    CHECK(dm.count("a", srl::outcome_kind::allowed) == std::uint64_t{threads} * per_thread);
    CHECK(dm.count("b", srl::outcome_kind::allowed) == 1);
    CHECK(dm.count("b", srl::outcome_kind::blocked) == std::uint64_t{threads} * per_thread - 1);
    // Each thread times one request in 7 (the 2 limiters share its countdown; a thread
    // that takes over an exited thread's cells continues its phase).
    const auto timed = dm.duration().snapshot().count();
    CHECK(timed >= std::uint64_t{threads} * (2 * per_thread / 7));
    CHECK(timed <= std::uint64_t{threads} * ((2 * per_thread + 6) / 7));
}

TEST_CASE("decision_metrics times one request in time_every per thread", "[metrics]") {
    m::decision_metrics every(m::decision_metrics_options{.time_every = 1});
    m::decision_metrics sampled(m::decision_metrics_options{.time_every = 10});
    auto a = make({{"r", "1000/s", "token_bucket"}}, every);
    auto b = make({{"r", "1000/s", "token_bucket"}}, sampled);
    for (int i = 0; i < 100; ++i) {
        (void)a->check_key("k");
        (void)b->check_key("k");
    }
    CHECK(every.duration().snapshot().count() == 100);
    CHECK(sampled.duration().snapshot().count() == 10);
    CHECK(sampled.count("r", srl::outcome_kind::allowed) == 100);  // counting is never sampled
    // A manual clock that does not move times every request at 0 s: the first bucket.
    CHECK(every.duration().snapshot().counts.front() == 100);
    CHECK(m::decision_metrics{}.time_every() == 256);
    // Decisions at a caller's time (check_at) are counted but never timed.
    for (int i = 0; i < 5; ++i) (void)a->check_at(std::string("k"), 1000s);
    CHECK(every.duration().snapshot().count() == 100);
    CHECK(total(every, "r") == 105);
    // A limiter with two rules times one rule decision in time_every.
    m::decision_metrics two(m::decision_metrics_options{.time_every = 4});
    auto c = make({{"x", "1000/s", "token_bucket"}, {"y", "1000/s", "token_bucket"}}, two);
    for (int i = 0; i < 10; ++i) (void)c->check_key("k");
    CHECK(two.duration().snapshot().count() == 5);  // 20 rule decisions: the 1st, 5th, ...
}

TEST_CASE("decision_metrics keeps 1,000 rules of 125 limiters apart", "[metrics]") {
    m::decision_metrics dm;
    std::vector<std::unique_ptr<metered<>>> lims;
    for (int l = 0; l < 125; ++l) {
        std::vector<srl::rule_config> rules;
        for (int r = 0; r < 8; ++r)
            rules.push_back({"r" + std::to_string(l * 8 + r), "1000/s", "token_bucket"});
        lims.push_back(make(rules, dm));
    }
    for (int round = 0; round < 3; ++round)
        for (std::size_t l = 0; l < lims.size(); ++l)
            for (std::size_t i = 0; i <= l % 3; ++i) (void)lims[l]->check_key("k");
    for (int l = 0; l < 125; ++l)
        for (int r = 0; r < 8; ++r)
            REQUIRE(dm.count("r" + std::to_string(l * 8 + r), srl::outcome_kind::allowed) ==
                    std::uint64_t(3 * (l % 3 + 1)));
    m::exposition out;
    dm.collect(out);
    const std::string text = out.str();
    std::size_t lines = 0;
    for (std::size_t p = 0;
         (p = text.find("smart_ratelimit_decisions_total{", p)) != std::string::npos; ++p)
        ++lines;
    CHECK(lines == 4000);
}

TEST_CASE("a rule name met at an address another name used before is counted right", "[metrics]") {
    m::decision_metrics dm;
    for (int i = 0; i < 50; ++i) {
        // Each limiter is destroyed before the next is built: the allocator reuses addresses.
        auto lim = make({{"n" + std::to_string(i % 5), "10/s", "token_bucket"}}, dm);
        (void)lim->check_key("k");
    }
    for (int i = 0; i < 5; ++i)
        CHECK(dm.count("n" + std::to_string(i), srl::outcome_kind::allowed) == 10);
}

TEST_CASE("decision_metrics shows added rules before their first decision", "[metrics]") {
    m::decision_metrics dm;
    auto lim = make({{"api", "10/s", "token_bucket"}}, dm);
    dm.add_rules(*lim);
    m::exposition out;
    dm.collect(out);
    CHECK(out.str().find("smart_ratelimit_decisions_total{rule=\"api\",outcome=\"allowed\"} 0\n") !=
          std::string::npos);
    CHECK(total(dm, "api") == 0);
    CHECK(total(dm, "unknown") == 0);
}
