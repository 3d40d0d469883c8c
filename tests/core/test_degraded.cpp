// tests/core/test_degraded.cpp
// Degraded decisions: a store that cannot decide (answers degraded_outcome() or
// throws) gives `degraded`, never `blocked`; the limiter's failure_policy lets the
// request through or refuses it; nothing is consumed; events say `degraded` with
// allowed = true; several rules give back the quota of the others when one fails
// closed. And the observer hears every decision, timed when it asks.
#include <catch2/catch.hpp>

#include <smart_ratelimit/smart_ratelimit.hpp>
#include <support/recording_sink.hpp>

#include <atomic>
#include <chrono>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace srl = smart_ratelimit;
using namespace std::chrono_literals;

namespace {

struct key_of {
    std::string_view operator()(std::string_view s) const { return s; }
};

// The in-memory storage behind switches: keys listed in `failing` answer degraded
// (or throw, when `throws` is set). Copies share the switches and the state.
class faulty_storage {
public:
    using algorithm_type = srl::any_algorithm;

    struct switches {
        std::vector<std::string> failing;
        bool throws = false;
        bool all = false;
    };

    srl::outcome acquire(std::string_view k, const algorithm_type& a, std::chrono::nanoseconds now,
                         std::uint64_t cost) {
        if (fails(k)) return fail();
        return inner_->acquire(k, a, now, cost);
    }
    srl::outcome peek(std::string_view k, const algorithm_type& a, std::chrono::nanoseconds now,
                      std::uint64_t cost) {
        if (fails(k)) return fail();
        return inner_->peek(k, a, now, cost);
    }
    void release(std::string_view k, const algorithm_type& a, std::chrono::nanoseconds now,
                 std::uint64_t cost) {
        if (fails(k)) {
            fail();
            return;
        }
        inner_->release(k, a, now, cost);
    }

    std::shared_ptr<switches> sw = std::make_shared<switches>();

private:
    bool fails(std::string_view k) const {
        if (sw->all) return true;
        for (const auto& f : sw->failing)
            if (k.find(f) != std::string_view::npos) return true;
        return false;
    }
    srl::outcome fail() const {
        if (sw->throws) throw srl::storage_error("the store is down");
        return srl::degraded_outcome(3s);
    }
    std::shared_ptr<srl::in_memory_storage<>> inner_ = std::make_shared<srl::in_memory_storage<>>();
};

template <class Sink = srl::null_sink, class Observer = srl::null_observer>
using faulty_limiter = srl::limiter<key_of, faulty_storage, Sink, srl::manual_clock, Observer>;

srl::limiter_options policy(srl::failure_policy p) {
    srl::limiter_options o;
    o.on_store_failure = p;
    return o;
}

const srl::request_info info{"/api", "GET", std::string_view("203.0.113.5"), std::nullopt, {}};

}  // namespace

TEST_CASE("a degraded store answer is never blocked: fail_closed refuses, fail_open passes",
          "[limiter][degraded]") {
    for (const bool throws : {false, true}) {
        for (const auto p : {srl::failure_policy::fail_closed, srl::failure_policy::fail_open}) {
            INFO("throws " << throws << ", policy " << srl::to_string(p));
            faulty_storage st;
            st.sw->throws = throws;
            srl_test::recording_sink sink;
            faulty_limiter<srl_test::recording_sink> lim(key_of{}, {{"api", "2/m"}}, policy(p), st,
                                                         sink);
            st.sw->all = true;
            const auto v = lim.check_key_and_record("u", info);
            REQUIRE(v.size() == 1);
            const auto& d = v[0];
            CHECK(d.degraded);
            CHECK(d.kind() == srl::outcome_kind::degraded);
            CHECK_FALSE(d.blocked());
            CHECK_FALSE(v.blocked());
            CHECK(v.degraded());
            CHECK(v.allowed() == (p == srl::failure_policy::fail_open));
            CHECK(d.rejects() == (p == srl::failure_policy::fail_closed));
            CHECK(d.count == 0);
            CHECK(d.remaining == 0);
            CHECK(d.retry_after >= 1s);
            const auto events = sink.events();
            REQUIRE(events.size() == 1);
            CHECK(events[0].outcome == srl::outcome_kind::degraded);
            CHECK(events[0].allowed);  // not a denial: analytics never count it as blocked
            CHECK(events[0].count == 0);
            CHECK(events[0].limit == 2);

            // Nothing was consumed while degraded: the whole quota is there afterwards.
            st.sw->all = false;
            CHECK(lim.check_key("u").allowed());
            CHECK(lim.check_key("u").allowed());
            CHECK(lim.check_key("u").blocked());
        }
    }
}

TEST_CASE("allow() under a store that cannot decide follows the failure policy",
          "[limiter][degraded]") {
    for (const bool throws : {false, true}) {
        for (const auto p : {srl::failure_policy::fail_closed, srl::failure_policy::fail_open}) {
            for (const bool shadow : {false, true}) {
                INFO("throws " << throws << ", policy " << srl::to_string(p) << ", shadow "
                               << shadow);
                faulty_storage st;
                st.sw->throws = throws;
                faulty_limiter<> lim(key_of{}, {{"api", "2/m", "fixed_window", shadow}}, policy(p),
                                     st);
                st.sw->all = true;
                // A shadow rule never refuses, degraded or not.
                CHECK(lim.allow_key("u") == (shadow || p == srl::failure_policy::fail_open));
                CHECK(lim.allow_key("u") == lim.check_key("u").allowed());
                st.sw->all = false;  // nothing was consumed while degraded
                CHECK(lim.allow_key("u"));
                CHECK(lim.allow_key("u"));
                CHECK(lim.allow_key("u") == shadow);
            }
        }
    }
}

TEST_CASE("degraded retry_after is at least a second and keeps the store's longer hint",
          "[limiter][degraded]") {
    faulty_storage st;
    faulty_limiter<> lim(key_of{}, {{"api", "2/m"}}, {}, st);
    st.sw->all = true;
    CHECK(lim.check_key("u").retry_after() == 3s);  // the storage's hint
    srl::outcome o = srl::degraded_outcome(0ns);
    srl::decision d;
    lim.make_decision(d, 0, o);
    CHECK(d.retry_after == 1s);
    CHECK(d.rejects());
}

TEST_CASE("several rules: one degraded under fail_closed refuses and gives back the others' quota",
          "[limiter][degraded]") {
    faulty_storage st;
    srl_test::recording_sink sink;
    faulty_limiter<srl_test::recording_sink> lim(
        key_of{}, {{"a", "2/m"}, {"b", "5/m"}}, policy(srl::failure_policy::fail_closed), st, sink);
    st.sw->failing = {"rule:b:"};
    for (int i = 0; i < 4; ++i) {
        const auto v = lim.check_key_and_record("u", info);
        CHECK_FALSE(v.allowed());
        CHECK_FALSE(v.blocked());
        CHECK(v[0].kind() == srl::outcome_kind::allowed);  // a's peek: within its limit
        CHECK(v[1].kind() == srl::outcome_kind::degraded);
    }
    for (const auto& e : sink.events()) CHECK(e.allowed);
    st.sw->failing.clear();
    // Rule a never spent its quota on refused requests.
    CHECK(lim.check_key("u").allowed());
    CHECK(lim.check_key("u").allowed());
    CHECK(lim.check_key("u").blocked());
}

TEST_CASE("several rules: a degraded rule under fail_open lets the others decide",
          "[limiter][degraded]") {
    faulty_storage st;
    faulty_limiter<> lim(key_of{}, {{"a", "2/m"}, {"b", "5/m"}},
                         policy(srl::failure_policy::fail_open), st);
    st.sw->failing = {"rule:b:"};
    CHECK(lim.check_key("u").allowed());
    CHECK(lim.check_key("u").allowed());
    const auto v = lim.check_key("u");
    CHECK(v.blocked());  // rule a's real limit still holds
    CHECK(v[0].kind() == srl::outcome_kind::blocked);
    CHECK(v[1].kind() == srl::outcome_kind::degraded);
    CHECK(&v.binding() == &v[0]);
}

TEST_CASE("shadow rules report shadow_blocked, and a degraded shadow rule never refuses",
          "[limiter][degraded][shadow]") {
    faulty_storage st;
    srl::limiter_options o = policy(srl::failure_policy::fail_closed);
    o.shadow = true;
    srl_test::recording_sink sink;
    faulty_limiter<srl_test::recording_sink> lim(key_of{}, {{"a", "1/m"}}, o, st, sink);
    CHECK(lim.check_key_and_record("u", info)[0].kind() == srl::outcome_kind::allowed);
    const auto over = lim.check_key_and_record("u", info);
    CHECK(over.allowed());
    CHECK(over[0].kind() == srl::outcome_kind::shadow_blocked);
    st.sw->all = true;
    const auto down = lim.check_key_and_record("u", info);
    CHECK(down.allowed());
    CHECK(down[0].kind() == srl::outcome_kind::degraded);
    const auto events = sink.events();
    REQUIRE(events.size() == 3);
    CHECK(events[1].outcome == srl::outcome_kind::shadow_blocked);
    CHECK_FALSE(events[1].allowed);
    CHECK(events[2].outcome == srl::outcome_kind::degraded);
}

TEST_CASE("outcome names round-trip and agree with the allowed column", "[event][degraded]") {
    for (const auto k : {srl::outcome_kind::allowed, srl::outcome_kind::blocked,
                         srl::outcome_kind::shadow_blocked, srl::outcome_kind::degraded}) {
        CHECK(srl::parse_outcome_kind(srl::to_string(k)) == k);
        const auto e = srl::make_event({}, "k", "/", "GET", k, 0, 1);
        CHECK(e.outcome == k);
        CHECK(e.allowed == srl::allowed_column(k));
    }
    CHECK_FALSE(srl::parse_outcome_kind("Blocked").has_value());
    CHECK_FALSE(srl::parse_outcome_kind("").has_value());
    CHECK(srl::make_event({}, "k", "/", "GET", false, 0, 1).outcome == srl::outcome_kind::blocked);
    CHECK(srl::make_event({}, "k", "/", "GET", true, 0, 1).outcome == srl::outcome_kind::allowed);
}

namespace {

// Counts decisions by outcome and asks for timing every other request.
struct counting_observer {
    struct state {
        std::atomic<int> by_kind[4] = {};
        std::atomic<int> timed{0}, untimed{0}, asked{0};
    };
    std::shared_ptr<state> s = std::make_shared<state>();
    bool time_next() { return s->asked.fetch_add(1) % 2 == 0; }
    void on_decision(const srl::decision& d, std::chrono::nanoseconds t) {
        s->by_kind[static_cast<int>(d.kind())].fetch_add(1);
        (t == srl::not_timed ? s->untimed : s->timed).fetch_add(1);
        if (t != srl::not_timed) CHECK(t >= 0ns);
    }
};

struct throwing_observer {
    void on_decision(const srl::decision&, std::chrono::nanoseconds) {
        throw std::runtime_error("observer");
    }
};

// Binds each rule to its position in `names` and records which handle each decision
// came with; decisions of foreign rules arrive unbound.
struct binding_observer {
    struct state {
        std::vector<std::string> names;
        std::vector<std::pair<std::size_t, std::string>> heard;  // (handle, d.rule)
        std::vector<std::string> unbound;
    };
    std::shared_ptr<state> s = std::make_shared<state>();
    std::size_t bind(std::string_view name) {
        s->names.emplace_back(name);
        return s->names.size() - 1;
    }
    void on_decision(std::size_t h, const srl::decision& d, std::chrono::nanoseconds) {
        s->heard.emplace_back(h, std::string(d.rule));
    }
    void on_decision(const srl::decision& d, std::chrono::nanoseconds) {
        s->unbound.emplace_back(d.rule);
    }
};

// Takes the decision's timer: reads it after moving the shared manual clock by `step`,
// so the time it hears is the step exactly when the timer starts at the decision's
// clock read and reads the clock only when asked. Also has the other forms, which the
// limiter must not use for the decisions it makes itself.
struct timer_observer {
    struct state {
        std::vector<std::chrono::nanoseconds> heard;
        std::vector<std::chrono::nanoseconds> plain;  // the on_decision(d, t) form
        int asked = 0;
        bool throws = false;
    };
    std::shared_ptr<state> s = std::make_shared<state>();
    srl::manual_clock clock;
    std::chrono::nanoseconds step{0};
    bool time_next() { return ++s->asked > 0; }
    void on_decision(const srl::decision&, const srl::decision_timer& t) {
        if (s->throws) throw std::runtime_error("observer");
        clock.advance(step);
        s->heard.push_back(t.elapsed());
    }
    void on_decision(const srl::decision&, std::chrono::nanoseconds t) { s->plain.push_back(t); }
};

// Binds rules and hears outcomes alone (on_outcome) as well as whole decisions: records
// which form each decision came by, and reads the timer after moving the shared manual
// clock by `step`, as timer_observer does.
struct outcome_observer {
    struct state {
        std::vector<std::pair<std::size_t, srl::outcome_kind>> outcomes;  // (handle, kind)
        std::vector<std::chrono::nanoseconds> times;
        int decisions = 0;  // the on_decision forms
        bool throws = false;
    };
    std::shared_ptr<state> s = std::make_shared<state>();
    srl::manual_clock clock;
    std::chrono::nanoseconds step{0};
    std::size_t bind(std::string_view name) { return name.size(); }
    void on_outcome(std::size_t h, srl::outcome_kind k, const srl::decision_timer& t) {
        if (s->throws) throw std::runtime_error("observer");
        clock.advance(step);
        s->outcomes.emplace_back(h, k);
        s->times.push_back(t.elapsed());
    }
    void on_decision(std::size_t, const srl::decision&, std::chrono::nanoseconds) {
        ++s->decisions;
    }
    void on_decision(const srl::decision&, std::chrono::nanoseconds) { ++s->decisions; }
};

}  // namespace

static_assert(srl::observer<counting_observer>);
static_assert(!srl::bound_observer<counting_observer>);
static_assert(srl::bound_observer<binding_observer>);
static_assert(srl::observer<srl::null_observer>);
static_assert(!srl::observer<int>);
// Only a bound observer with on_outcome hears allow()'s outcomes alone.
static_assert(srl::detail::hears_outcomes<outcome_observer>);
static_assert(!srl::detail::hears_outcomes<binding_observer>);
static_assert(!srl::detail::hears_outcomes<counting_observer>);

TEST_CASE("the observer hears every rule decision with its outcome, timed when it asks",
          "[limiter][observer]") {
    faulty_storage st;
    counting_observer obs;
    faulty_limiter<srl::null_sink, counting_observer> lim(key_of{}, {{"a", "2/m"}, {"b", "5/m"}},
                                                          {}, st, {}, srl::manual_clock(), obs);
    lim.check_key("u");  // 2 allowed
    lim.check_key("u");  // 2 allowed
    lim.check_key("u");  // a blocked, b allowed (peek)
    st.sw->all = true;
    lim.check_key("u");  // 2 degraded
    const auto& s = *obs.s;
    CHECK(s.by_kind[static_cast<int>(srl::outcome_kind::allowed)] == 5);
    CHECK(s.by_kind[static_cast<int>(srl::outcome_kind::blocked)] == 1);
    CHECK(s.by_kind[static_cast<int>(srl::outcome_kind::degraded)] == 2);
    CHECK(s.asked == 4);
    CHECK(s.timed == 4);  // requests 1 and 3, two rules each
    CHECK(s.untimed == 4);
}

TEST_CASE("an observer that takes the timer reads it on demand, from the decision's start",
          "[limiter][observer]") {
    static_assert(srl::detail::times_lazily<timer_observer>);
    static_assert(!srl::detail::times_lazily<counting_observer>);
    srl::manual_clock clock;
    timer_observer obs{.clock = clock, .step = 7ms};
    srl::limiter<key_of, srl::in_memory_storage<>, srl::null_sink, srl::manual_clock,
                 timer_observer>
        lim(key_of{}, {{"a", "1/m"}, {"b", "5/m"}}, {}, {}, {}, clock, obs);
    CHECK(lim.check_key("u").allowed());
    // Each rule's read is 7 ms after the previous one: the start is the decision's time.
    CHECK(obs.s->heard == std::vector<std::chrono::nanoseconds>{7ms, 14ms});
    obs.s->heard.clear();
    CHECK(lim.check_at(std::string_view("u"), clock.now()).blocked());
    CHECK(obs.s->heard == std::vector{srl::not_timed, srl::not_timed});  // a caller's time
    CHECK(obs.s->asked == 0);                                            // time_next is not asked
    CHECK(obs.s->plain.empty());  // nor the plain form called
    srl::decision d;              // decisions made outside check: the plain form
    lim.make_decision(d, 0, srl::outcome{.allowed = true});
    lim.observe(d, srl::not_timed);
    CHECK(obs.s->plain == std::vector{srl::not_timed});
    obs.s->throws = true;  // a throwing timer observer is caught and counted
    CHECK(lim.check_key("v").allowed());
    CHECK(lim.sink_failures() == 2);
}

TEST_CASE("allow() tells the observer every rule decision, as check() does",
          "[limiter][observer]") {
    counting_observer obs;
    faulty_limiter<srl::null_sink, counting_observer> lim(key_of{}, {{"api", "2/m"}}, {},
                                                          faulty_storage{}, srl::null_sink{},
                                                          srl::manual_clock(), obs);
    CHECK(lim.allow_key("u"));
    CHECK(lim.allow_key("u"));
    CHECK_FALSE(lim.allow_key("u"));
    CHECK(obs.s->by_kind[static_cast<int>(srl::outcome_kind::allowed)] == 2);
    CHECK(obs.s->by_kind[static_cast<int>(srl::outcome_kind::blocked)] == 1);
    CHECK(obs.s->timed + obs.s->untimed == 3);
}

TEST_CASE("allow() tells an observer that hears outcomes alone by on_outcome, with a timer",
          "[limiter][observer]") {
    srl::manual_clock clock;
    faulty_storage st;
    outcome_observer obs{.clock = clock, .step = 3ms};
    srl::limiter<key_of, faulty_storage, srl::null_sink, srl::manual_clock, outcome_observer> lim(
        key_of{}, {{"api", "2/m"}}, policy(srl::failure_policy::fail_closed), st, {}, clock, obs);
    const auto& s = *obs.s;
    CHECK(lim.allow_key("u"));
    CHECK(lim.allow_key("u"));
    CHECK_FALSE(lim.allow_key("u"));
    st.sw->all = true;
    CHECK_FALSE(lim.allow_key("u"));  // degraded, failing closed
    st.sw->all = false;
    CHECK_FALSE(lim.allow_at(std::string_view("u"), clock.now()));  // at a caller's time
    using heard_t = std::vector<std::pair<std::size_t, srl::outcome_kind>>;
    const std::size_t h = 3;  // bind("api")
    CHECK(s.outcomes == heard_t{{h, srl::outcome_kind::allowed},
                                {h, srl::outcome_kind::allowed},
                                {h, srl::outcome_kind::blocked},
                                {h, srl::outcome_kind::degraded},
                                {h, srl::outcome_kind::blocked}});
    // Timed from the decision's clock read, on demand; a caller's time is untimed.
    CHECK(s.times == std::vector<std::chrono::nanoseconds>{3ms, 3ms, 3ms, 3ms, srl::not_timed});
    CHECK(s.decisions == 0);

    // check() still builds the decision and tells it whole.
    CHECK(lim.check_key("u").blocked());
    CHECK(s.decisions == 1);
    CHECK(s.outcomes.size() == 5);

    // A throwing on_outcome changes no decision and is counted.
    obs.s->throws = true;
    CHECK(lim.allow_key("v"));
    CHECK_FALSE(lim.allow_key("u"));
    CHECK(lim.sink_failures() == 2);
}

TEST_CASE("allow() with a shadow rule or several rules tells outcomes as check() would",
          "[limiter][observer]") {
    outcome_observer obs;
    faulty_limiter<srl::null_sink, outcome_observer> shadow(
        key_of{}, {{"watch", "1/m", "fixed_window", true}}, {}, faulty_storage{}, {},
        srl::manual_clock(), obs);
    CHECK(shadow.allow_key("u"));
    CHECK(shadow.allow_key("u"));  // over, but a shadow rule never refuses
    using heard_t = std::vector<std::pair<std::size_t, srl::outcome_kind>>;
    CHECK(obs.s->outcomes ==
          heard_t{{5, srl::outcome_kind::allowed}, {5, srl::outcome_kind::shadow_blocked}});

    // Several rules take check()'s path: whole decisions, one per rule.
    outcome_observer two;
    faulty_limiter<srl::null_sink, outcome_observer> lim(key_of{}, {{"a", "1/m"}, {"bb", "5/m"}},
                                                         {}, faulty_storage{}, {},
                                                         srl::manual_clock(), two);
    CHECK(lim.allow_key("u"));
    CHECK_FALSE(lim.allow_key("u"));
    CHECK(two.s->outcomes.empty());
    CHECK(two.s->decisions == 4);
}

TEST_CASE("a throwing observer changes no decision and is counted", "[limiter][observer]") {
    srl::limiter<key_of, srl::in_memory_storage<>, srl::null_sink, srl::manual_clock,
                 throwing_observer>
        lim(key_of{}, {{"a", "1/m"}}, {}, {}, {}, srl::manual_clock(), throwing_observer{});
    CHECK(lim.check_key("u").allowed());
    CHECK(lim.check_key("u").blocked());
    CHECK(lim.sink_failures() == 2);
}

TEST_CASE("a binding observer binds each rule once and hears each decision with its handle",
          "[limiter][observer]") {
    binding_observer obs;
    srl::limiter<key_of, srl::in_memory_storage<>, srl::null_sink, srl::manual_clock,
                 binding_observer>
        lim(key_of{}, {{"a", "2/m"}, {"b", "5/m"}, {"c", "1/m"}}, {}, {}, {}, srl::manual_clock(),
            obs);
    const auto& s = *obs.s;
    CHECK(s.names == std::vector<std::string>{"a", "b", "c"});  // at construction, in order
    lim.check_key("u");                                         // all three allowed
    lim.check_key("u");  // c refuses at peek: three decisions, nothing consumed
    using heard_t = std::vector<std::pair<std::size_t, std::string>>;
    CHECK(s.heard == heard_t{{0, "a"}, {1, "b"}, {2, "c"}, {0, "a"}, {1, "b"}, {2, "c"}});
    CHECK(s.names.size() == 3);  // never bound again

    // Decisions made outside check() (the middleware's path): by index, or found by
    // the rule's name; a decision of another limiter's rule reaches the unbound form.
    srl::decision d;
    lim.make_decision(d, 1, srl::outcome{.allowed = true});
    lim.observe(1, d, srl::not_timed);
    lim.observe(d, srl::not_timed);
    const std::string other = "b";  // same text, another rule
    d.rule = other;
    lim.observe(d, srl::not_timed);
    CHECK(s.heard.size() == 8);
    CHECK(s.heard[6] == std::pair<std::size_t, std::string>{1, "b"});
    CHECK(s.heard[7] == std::pair<std::size_t, std::string>{1, "b"});
    CHECK(s.unbound == std::vector<std::string>{"b"});
}
