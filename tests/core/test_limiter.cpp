// tests/core/test_limiter.cpp
// The limiter: rule key formatting, fallback and over-long keys, several rules that
// consume only when all pass, shadow mode, cost, events (only from check_and_record),
// a throwing sink, static algorithms, and the configuration errors.
#include <catch2/catch.hpp>

#include <smart_ratelimit/smart_ratelimit.hpp>
#include <support/recording_sink.hpp>

#include <chrono>
#include <random>
#include <string>
#include <vector>

namespace srl = smart_ratelimit;
using namespace std::chrono_literals;

namespace {

struct request {
    std::string user;
    std::string ip = "203.0.113.5";
};

struct user_key {
    std::string operator()(const request& r) const {
        return r.user.empty() ? "" : "user:" + r.user;
    }
};

template <class Sink = srl::null_sink>
using test_limiter = srl::limiter<user_key, srl::in_memory_storage<>, Sink, srl::manual_clock>;

template <class Sink = srl::null_sink>
test_limiter<Sink> make(std::vector<srl::rule_config> rules,
                        srl::manual_clock clock = srl::manual_clock(), Sink sink = Sink{},
                        srl::limiter_options o = {}) {
    return test_limiter<Sink>(user_key{}, rules, std::move(o), srl::in_memory_storage<>{},
                              std::move(sink), clock);
}

}  // namespace

TEST_CASE("named rules prefix keys with rule:<name>: and the unnamed rule does not", "[limiter]") {
    auto named = make({{"login", "5/m"}});
    auto v = named.check(request{"42"});
    REQUIRE(v.size() == 1);
    CHECK(v[0].key.view() == "rule:login:user:42");
    CHECK(v[0].rule == "login");
    CHECK(srl::rule_name_of(v[0].key.view()) == "login");

    auto unnamed = make({{"", "5/m"}});
    v = unnamed.check(request{"42"});
    CHECK(v[0].key.view() == "user:42");
    CHECK(v[0].rule.empty());
    CHECK(srl::rule_key("api-v2_x", "ip:1.2.3.4") == "rule:api-v2_x:ip:1.2.3.4");
}

TEST_CASE("an empty extracted key uses the fallback key, never unlimited", "[limiter]") {
    srl::limiter_options o;
    o.fallback_key = "ip:unknown";
    auto lim = make({{"", "2/m"}}, srl::manual_clock(), srl::null_sink{}, o);
    CHECK(lim.check(request{""})[0].key.view() == "ip:unknown");
    CHECK(lim.check(request{""}).allowed());
    CHECK(lim.check(request{""}).blocked());  // anonymous requests share one bucket
    CHECK(lim.check(request{"7"}).allowed());

    // check_and_record takes the middleware's fallback (the client's IP key).
    const srl::request_info info{"/", "GET", "198.51.100.1", std::nullopt, "ip:198.51.100.1"};
    const auto v = lim.check_and_record(request{""}, info);
    CHECK(v[0].key.view() == "ip:198.51.100.1");
    CHECK(v.allowed());
}

TEST_CASE("over-long keys are shortened with a digest, never skipped", "[limiter]") {
    auto lim = make({{"login", "1/m"}});
    const std::string long_a = std::string(400, 'a') + "1";
    const std::string long_b = std::string(400, 'a') + "2";
    const auto va = lim.check(request{long_a});
    const auto vb = lim.check(request{long_b});
    CHECK(va[0].key.size() == srl::max_key_size);
    CHECK(va[0].key.view().substr(0, 16) == "rule:login:user:");
    CHECK(va[0].key.view() != vb[0].key.view());
    CHECK(srl::rule_name_of(va[0].key.view()) == "login");
    CHECK(va.allowed());
    CHECK(vb.allowed());
    CHECK(lim.check(request{long_a}).blocked());  // still limited
    // Stable: the same long key always maps to the same storage key.
    CHECK(srl::rule_key("login", "user:" + long_a) == std::string(va[0].key.view()));
    // Cutting never splits a UTF-8 sequence.
    std::string utf8;
    while (utf8.size() < 600) utf8 += "\xc3\xa9";
    const std::string k = srl::rule_key("r", utf8);
    const auto cut = k.find('#');
    REQUIRE(cut != std::string::npos);
    CHECK((static_cast<unsigned char>(k[cut - 1]) & 0xC0u) != 0xC0u);
    CHECK(k.size() <= srl::max_key_size);
}

TEST_CASE("several rules consume quota only when all of them pass", "[limiter]") {
    srl::manual_clock clock;
    auto lim = make({{"burst", "2/s", "token_bucket"}, {"hourly", "3/h", "fixed_window"}}, clock);
    CHECK(lim.check(request{"1"}).allowed());
    CHECK(lim.check(request{"1"}).allowed());
    auto v = lim.check(request{"1"});  // burst rejects: hourly must not be charged
    CHECK(v.blocked());
    CHECK(v[0].blocked());
    CHECK_FALSE(v[1].blocked());
    CHECK(v.binding().rule == "burst");
    CHECK(v.retry_after() == 500ms);
    clock.advance(1s);
    v = lim.check(request{"1"});  // the third hourly unit is still there
    CHECK(v.allowed());
    CHECK(v[1].remaining == 0);
    clock.advance(1s);
    v = lim.check(request{"1"});
    CHECK(v.blocked());
    CHECK(v.binding().rule == "hourly");
    // The burst rule was not charged by the request hourly rejected.
    CHECK(
        lim.storage().peek("rule:burst:user:1", lim.rules()[0].algorithm, clock.now(), 2).allowed);
}

TEST_CASE("shadow rules decide and report but never block", "[limiter]") {
    srl_test::recording_sink sink;
    auto lim = make<srl_test::recording_sink>(
        {{"strict", "1/m", "fixed_window", true}, {"loose", "5/m"}}, srl::manual_clock(), sink);
    const srl::request_info info{"/api", "POST", "203.0.113.5", "42", {}};
    CHECK(lim.check_and_record(request{"42"}, info).allowed());
    const auto v = lim.check_and_record(request{"42"}, info);
    CHECK(v.allowed());         // the request proceeds
    CHECK_FALSE(v[0].allowed);  // but the shadow rule says it was over
    CHECK(v[0].shadow);
    CHECK_FALSE(v[0].blocked());
    CHECK(v[1].remaining == 3);  // the real rule consumed
    const auto events = sink.events();
    REQUIRE(events.size() == 4);
    CHECK_FALSE(events[2].allowed);  // logged as over the limit
    CHECK(events[2].rule_name == "strict");

    // Limiter-wide shadow mode.
    srl::limiter_options o;
    o.shadow = true;
    auto all = make({{"", "1/m"}}, srl::manual_clock(), srl::null_sink{}, o);
    CHECK(all.check(request{"1"}).allowed());
    const auto w = all.check(request{"1"});
    CHECK(w.allowed());
    CHECK_FALSE(w[0].allowed);
}

TEST_CASE("cost weighs a request and a cost above the limit is never retryable", "[limiter]") {
    auto lim = make({{"upload", "10/m", "token_bucket"}});
    auto v = lim.check(request{"9"}, 7);
    CHECK(v.allowed());
    CHECK(v[0].remaining == 3);
    CHECK(v[0].count == 7);
    v = lim.check(request{"9"}, 4);
    CHECK(v.blocked());
    CHECK(v[0].retryable);
    CHECK(v.retry_after() == 6s);
    v = lim.check(request{"9"}, 11);
    CHECK(v.blocked());
    CHECK_FALSE(v[0].retryable);
    CHECK(v.retry_after() == srl::never);
    CHECK(lim.check(request{"9"}, 3).allowed());
}

TEST_CASE("check writes no events; check_and_record writes one per rule decision", "[limiter]") {
    srl_test::recording_sink sink;
    srl::manual_clock clock;
    clock.set_wall(srl::event_time(std::chrono::seconds(1'700'000'000)));
    auto lim = make<srl_test::recording_sink>({{"a", "1/m"}, {"b", "10/m"}}, clock, sink);
    (void)lim.check(request{"5"});
    (void)lim.check_key("user:6");
    CHECK(sink.size() == 0);

    const srl::request_info info{"/login", "POST", "2001:db8::1", "5", {}};
    (void)lim.check_and_record(request{"5"}, info);
    const auto events = sink.events();
    REQUIRE(events.size() == 2);
    const auto& e = events[0];
    CHECK(e.key == "rule:a:user:5");
    CHECK(e.rule_name == "a");
    CHECK(e.path == "/login");
    CHECK(e.method == "POST");
    CHECK_FALSE(e.allowed);  // the first check() already used rule a's unit
    CHECK(e.count == 1);
    CHECK(e.limit == 1);
    CHECK(e.ip_address == std::optional<std::string>("2001:db8::1"));
    CHECK(e.user_id == std::optional<std::string>("5"));
    CHECK(e.timestamp == srl::event_time(std::chrono::seconds(1'700'000'000)));
    CHECK(events[1].key == "rule:b:user:5");
    CHECK(events[1].limit == 10);
    CHECK(events[1].allowed);  // rule b alone would have passed
    CHECK_FALSE(events[1].ip_address == std::nullopt);
}

TEST_CASE("a throwing sink never changes a decision", "[limiter]") {
    auto lim = make<srl_test::throwing_sink>({{"", "2/m"}}, srl::manual_clock());
    auto ref = make({{"", "2/m"}}, srl::manual_clock());
    const srl::request_info info{"/", "GET", std::nullopt, std::nullopt, {}};
    for (int i = 0; i < 5; ++i) {
        const auto a = lim.check_and_record(request{"1"}, info);
        const auto b = ref.check(request{"1"});
        CHECK(a.allowed() == b.allowed());
        CHECK(a[0].remaining == b[0].remaining);
    }
    CHECK(lim.sink_failures() == 5);

    int calls = 0;
    auto cb = srl::callback_sink([&](const srl::event& e) {
        ++calls;
        if (e.allowed) throw 42;  // not even a std::exception
    });
    auto lim2 = test_limiter<decltype(cb)>(user_key{}, {{"", "1/m"}}, {},
                                           srl::in_memory_storage<>{}, cb, srl::manual_clock());
    CHECK(lim2.check_and_record(request{"1"}, info).allowed());
    CHECK(lim2.check_and_record(request{"1"}, info).blocked());
    CHECK(calls == 2);
    CHECK(lim2.sink_failures() == 1);
}

namespace {

// Twin limiters fed the same requests, costs and times, one asked by check(), the
// other by allow(), allow_at() and allow_key() in turns: the same answer every time,
// and the same state left behind (what check() says afterwards on each).
template <class Storage>
void allow_agrees_with_check(const std::vector<srl::rule_config>& rules,
                             srl::limiter_options o = {}) {
    using twin = srl::limiter<user_key, Storage, srl::null_sink, srl::manual_clock>;
    srl::manual_clock checked_clock, allowed_clock;
    twin checked(user_key{}, rules, o, Storage{}, {}, checked_clock);
    twin allowed(user_key{}, rules, o, Storage{}, {}, allowed_clock);
    // A short key, the fallback key, one longer than max_key_size (shortened with a digest).
    const std::string users[] = {"1", "", std::string(srl::max_key_size, 'x'), "2"};
    std::mt19937 rng(20261206);
    int over = 0;  // requests some rule found over its limit (shadow or not)
    for (int i = 0; i < 3000; ++i) {
        const request req{users[rng() % 4]};
        const std::uint64_t cost = rng() % 8 == 0 ? 3 : 1;
        const auto step = std::chrono::milliseconds(rng() % 60);
        checked_clock.advance(step);
        allowed_clock.advance(step);
        CAPTURE(i, req.user.size(), cost);
        const srl::verdict v = checked.check(req, cost);
        const bool want = v.allowed();
        for (const srl::decision& d : v.decisions()) over += d.allowed ? 0 : 1;
        switch (i % 3) {
            case 0:
                REQUIRE(allowed.allow(req, cost) == want);
                break;
            case 1:
                REQUIRE(allowed.allow_at(req, allowed_clock.now(), cost) == want);
                break;
            default:
                REQUIRE(allowed.allow_key(user_key{}(req), cost) == want);
                break;
        }
    }
    CHECK(over > 300);  // both answers were common
    CHECK(over < 2700);
    for (const auto& u : users) {
        const srl::verdict a = checked.check(request{u}), b = allowed.check(request{u});
        REQUIRE(a.size() == b.size());
        for (std::size_t r = 0; r < a.size(); ++r) {
            CHECK(a[r].key == b[r].key);
            CHECK(a[r].count == b[r].count);
            CHECK(a[r].remaining == b[r].remaining);
            CHECK(a[r].reset_after == b[r].reset_after);
        }
    }
}

}  // namespace

TEST_CASE("allow() answers as check().allowed() and consumes the same quota", "[limiter]") {
    using gcra_storage = srl::concurrent_storage<srl::gcra>;
    SECTION("one unnamed rule on concurrent_storage<gcra> (no verdict, no count)") {
        allow_agrees_with_check<gcra_storage>({{"", "4/s", "gcra"}});
    }
    SECTION("one named rule: the key formatted on the stack") {
        allow_agrees_with_check<gcra_storage>({{"api", "4/s", "gcra"}});
    }
    SECTION("a shadow rule, and limiter-wide shadow mode, never refuse") {
        allow_agrees_with_check<gcra_storage>({{"api", "4/s", "gcra", true}});
        srl::limiter_options o;
        o.shadow = true;
        allow_agrees_with_check<gcra_storage>({{"", "4/s", "gcra"}}, o);
    }
    SECTION("a storage without admit(): acquire's outcome") {
        allow_agrees_with_check<srl::in_memory_storage<>>({{"api", "4/s", "sliding_window"}});
    }
    SECTION("several rules: check()'s peek-then-acquire") {
        allow_agrees_with_check<srl::in_memory_storage<>>(
            {{"burst", "5/s", "token_bucket"}, {"minute", "150/m", "fixed_window"}});
    }
}

TEST_CASE("a limiter over a specific algorithm accepts only that algorithm's name", "[limiter]") {
    using gcra_limiter = srl::limiter<srl::fixed_key, srl::in_memory_storage<srl::leaky_bucket>>;
    gcra_limiter lim(srl::fixed_key("global"), {{"", "2/s", ""}, {"x", "5/s", "leaky_bucket"}});
    CHECK(lim.check(0).allowed());
    CHECK_THROWS_AS(gcra_limiter(srl::fixed_key("g"), {{"", "2/s", "token_bucket"}}),
                    srl::config_error);
    std::vector<gcra_limiter::rule_type> rules;
    rules.push_back({"direct", srl::leaky_bucket(srl::rate{1, 1s}), false});
    gcra_limiter direct(srl::fixed_key("g"), std::move(rules), {});
    CHECK(direct.check(0).allowed());
    CHECK(direct.check(0).blocked());
}

TEST_CASE("configuration errors throw at construction and name the bad value", "[limiter]") {
    auto message = [](auto&& f) -> std::string {
        try {
            f();
        } catch (const srl::config_error& e) {
            return e.what();
        }
        return "no error";
    };
    using lim = srl::in_memory_limiter<srl::fixed_key>;
    const srl::fixed_key k("k");
    CHECK_THAT(message([&] {
                   (void)lim(k, {{"bad name", "1/m"}});
               }),
               Catch::Contains("\"bad name\""));
    CHECK_THAT(message([&] { (void)lim(k, {{"r:x", "1/m"}}); }), Catch::Contains("\"r:x\""));
    CHECK_THAT(message([&] { (void)lim(k, {{"a\nb", "1/m"}}); }), Catch::Contains("\"a\\nb\""));
    CHECK_THAT(message([&] {
                   (void)lim(k, {{"a", "1/m", "gcra\r\n"}});
               }),
               Catch::Contains("\"gcra\\r\\n\""));
    CHECK_THAT(message([&] {
                   (void)lim(k, {{std::string(101, 'a'), "1/m"}});
               }),
               Catch::Contains("invalid rule name"));
    CHECK_THAT(message([&] { (void)lim(k, {{"a", "1/mins"}}); }), Catch::Contains("\"1/mins\""));
    CHECK_THAT(message([&] {
                   (void)lim(k, {{"a", "1/m", "tokenbucket"}});
               }),
               Catch::Contains("\"tokenbucket\""));
    CHECK_THAT(message([&] {
                   (void)lim(k, {{"a", "1/m"}, {"a", "2/m"}});
               }),
               Catch::Contains("duplicate rule name \"a\""));
    CHECK_THAT(message([&] {
                   (void)lim(k, {{"", "1/m"}, {"", "2/m"}});
               }),
               Catch::Contains("at most one unnamed rule"));
    CHECK_THAT(message([&] { (void)lim(k, {}); }), Catch::Contains("at least one rule"));
    std::vector<srl::rule_config> nine;
    for (int i = 0; i < 9; ++i) nine.push_back({"r" + std::to_string(i), "1/m"});
    CHECK_THAT(message([&] { (void)lim(k, nine); }), Catch::Contains("at most 8 rules"));
    srl::limiter_options o;
    o.fallback_key = "";
    CHECK_THAT(message([&] { (void)lim(k, {{"", "1/m"}}, o); }), Catch::Contains("fallback_key"));
}

TEST_CASE("generic key extractors: fixed, callable-based and composite", "[limiter]") {
    const request r{"42", "198.51.100.7"};
    const srl::fixed_key fixed("global");
    CHECK(fixed(r) == "global");
    const srl::key_function by_ip([](const request& q) { return q.ip; }, "ip:");
    CHECK(by_ip(r) == "ip:198.51.100.7");
    CHECK(by_ip(request{"1", ""}).empty());  // empty stays empty: the limiter falls back
    const srl::key_function plain([](const request& q) -> std::string_view { return q.user; });
    CHECK(plain(r) == "42");
    const srl::composite_key both(srl::fixed_key("tenant:acme"), user_key{});
    CHECK(both(r) == "tenant:acme:user:42");
    CHECK(both(request{"", "x"}).empty());
    static_assert(srl::key_extractor_for<srl::fixed_key, request>);
    static_assert(srl::key_extractor_for<decltype(by_ip), request>);
    static_assert(srl::key_extractor_for<decltype(both), request>);

    srl::manual_in_memory_limiter<decltype(both)> lim(both, {{"t", "1/m"}});
    CHECK(lim.check(r)[0].key.view() == "rule:t:tenant:acme:user:42");
}

TEST_CASE("verdict picks the binding decision and the longest wait", "[limiter]") {
    srl::verdict v;
    CHECK(v.allowed());
    auto& a = v.emplace_back();
    a.allowed = true;
    a.remaining = 5;
    auto& b = v.emplace_back();
    b.allowed = true;
    b.remaining = 2;
    CHECK(&v.binding() == &v[1]);
    auto& c = v.emplace_back();
    c.allowed = false;
    c.retry_after = 3s;
    auto& d = v.emplace_back();
    d.allowed = false;
    d.shadow = true;
    d.retry_after = 10s;
    CHECK(v.blocked());
    CHECK(&v.binding() == &v[2]);
    CHECK(v.retry_after() == 3s);
    const srl::verdict copy = v;
    CHECK(copy.size() == 4);
    CHECK(copy[2].retry_after == 3s);
}

TEST_CASE("a copied verdict keeps every field and key of every decision", "[limiter]") {
    const auto fill = [](srl::decision& d, int i, std::string_view key) {
        d.allowed = i % 2 == 0;
        d.shadow = i == 1;
        d.retryable = i != 2;
        d.degraded = i == 3;
        d.limit = 100 + static_cast<std::uint64_t>(i);
        d.remaining = 50 + static_cast<std::uint64_t>(i);
        d.count = 7 + static_cast<std::uint64_t>(i);
        d.reset_after = std::chrono::seconds(i + 1);
        d.retry_after = std::chrono::milliseconds(i + 10);
        d.rule = i == 0 ? "login" : "burst";
        d.key.assign(key);
    };
    const auto same = [](const srl::verdict& a, const srl::verdict& b) {
        REQUIRE(a.size() == b.size());
        for (std::size_t i = 0; i < a.size(); ++i) {
            CAPTURE(i);
            CHECK(a[i].allowed == b[i].allowed);
            CHECK(a[i].shadow == b[i].shadow);
            CHECK(a[i].retryable == b[i].retryable);
            CHECK(a[i].degraded == b[i].degraded);
            CHECK(a[i].limit == b[i].limit);
            CHECK(a[i].remaining == b[i].remaining);
            CHECK(a[i].count == b[i].count);
            CHECK(a[i].reset_after == b[i].reset_after);
            CHECK(a[i].retry_after == b[i].retry_after);
            CHECK(a[i].rule == b[i].rule);
            CHECK(a[i].key == b[i].key);
        }
    };
    const std::string longest(srl::max_key_size, 'k');
    srl::verdict v;
    fill(v.emplace_back(), 0, "rule:login:ip:203.0.113.5");
    fill(v.emplace_back(), 1, "");
    fill(v.emplace_back(), 2, longest);
    fill(v.emplace_back(), 3, "u");
    const srl::verdict copy = v;
    same(copy, v);
    // Assigned over a verdict with more decisions and longer keys: nothing of the old
    // one shows through.
    srl::verdict over;
    for (int i = 0; i < 6; ++i) fill(over.emplace_back(), 5, longest);
    over = v;
    same(over, v);
    CHECK(over[3].key.view() == "u");
    const srl::verdict& alias = over;
    over = alias;  // assigned to itself: unchanged
    same(over, v);
}

TEST_CASE("a limiter can hold its sink by reference, built from rule configurations",
          "[limiter][sink]") {
    srl_test::recording_sink sink;
    srl::limiter<user_key, srl::in_memory_storage<>, srl_test::recording_sink&, srl::manual_clock>
        lim(user_key{}, std::vector<srl::rule_config>{{"a", "1/m"}}, {}, srl::in_memory_storage<>{},
            sink);
    const srl::request_info info{"/", "GET", std::nullopt, std::nullopt, {}};
    lim.check_and_record(request{"7"}, info);
    lim.check_and_record(request{"7"}, info);
    REQUIRE(sink.size() == 2);
    CHECK(sink.events()[1].outcome == srl::outcome_kind::blocked);
    CHECK(&lim.sink() == &sink);
}
