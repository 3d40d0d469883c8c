// tests/beast/test_middleware.cpp
// The middleware in process, without sockets: statuses and header fields, the 429
// body and its problem+json negotiation, HTTP key extraction (spoofed
// X-Forwarded-For included), the events it writes, multi-route decisions and the
// fail policy.
#include "middleware_fixture.hpp"

#include <support/temp_dir.hpp>

#include <catch2/catch.hpp>

#include <boost/beast/core/flat_buffer.hpp>

#include <cstdint>
#include <fstream>
#include <initializer_list>
#include <limits>
#include <string>
#include <utility>
#include <vector>

using namespace srl_test;
using std::chrono::seconds;

namespace {

struct login_fixture {
    recording_sink sink;
    srl::manual_clock clock = minute_clock();
    std::unique_ptr<test_limiter> lim =
        make_limiter(mw::request_key::ip(), {{"login", "5/m"}}, sink, clock);
};

}  // namespace

TEST_CASE("an allowed limited response carries the draft and legacy rate-limit fields",
          "[beast][middleware]") {
    login_fixture f;
    mw::middleware<test_limiter> m;
    m.add(*f.lim, {"/api/login", {http::verb::post}});
    auto req = make_request(http::verb::post, "/api/login?next=/home");
    const auto r = m.check(req, addr("203.0.113.5"));
    REQUIRE(r.status() == mw::limit_status::allowed);
    http::response<http::string_body> res{http::status::ok, 11};
    r.apply(res);
    CHECK(field(res, "RateLimit-Policy") == "\"login\";q=5;w=60");
    CHECK(field(res, "RateLimit") == "\"login\";r=4;t=60");
    CHECK(field(res, "X-RateLimit-Limit") == "5");
    CHECK(field(res, "X-RateLimit-Remaining") == "4");
    const auto wall =
        std::chrono::duration_cast<seconds>(f.clock.wall_now().time_since_epoch()).count();
    CHECK(field(res, "X-RateLimit-Reset") == std::to_string(wall + 60));
}

TEST_CASE("the request over the limit gets 429, Retry-After and the rate-limit body",
          "[beast][middleware]") {
    login_fixture f;
    mw::middleware<test_limiter> m;
    m.add(*f.lim, {"/api/login", {http::verb::post}});
    auto req = make_request(http::verb::post, "/api/login");
    for (int i = 0; i < 5; ++i) REQUIRE(m.check(req, addr("203.0.113.5")).allowed());
    f.clock.advance(std::chrono::milliseconds(59'500));  // half a second left in the window
    const auto r = m.check(req, addr("203.0.113.5"));
    REQUIRE(r.status() == mw::limit_status::blocked);
    const auto res = r.make_response(req);
    CHECK(res.result() == http::status::too_many_requests);
    CHECK(field(res, "Retry-After") == "1");  // 0.5 s rounds up to 1
    CHECK(res.body() == "Rate limit exceeded. Please try again later.");
    CHECK(field(res, "Content-Type") == "text/plain; charset=utf-8");
    CHECK(field(res, "RateLimit") == "\"login\";r=0;t=1");
    CHECK(field(res, "RateLimit-Policy") == "\"login\";q=5;w=60");
    CHECK(field(res, "X-RateLimit-Remaining") == "0");
    CHECK(res.keep_alive());
    // Another client is not affected.
    CHECK(m.check(req, addr("203.0.113.6")).allowed());
    const auto st = m.stats();
    CHECK(st.checked == 7);
    CHECK(st.blocked == 1);
    CHECK(st.allowed == 6);
}

TEST_CASE("Retry-After is at least one second and rounds up", "[beast][middleware]") {
    using std::chrono::nanoseconds;
    CHECK(mw::ceil_seconds(nanoseconds(1)) == 1);
    CHECK(mw::ceil_seconds(seconds(2)) == 2);
    CHECK(mw::ceil_seconds(seconds(2) + nanoseconds(1)) == 3);
    CHECK(mw::ceil_seconds(nanoseconds(0)) == 0);
    CHECK(mw::ceil_seconds(srl::never) == 365ull * 24 * 3600);
    http::response<http::string_body> res;
    mw::set_retry_after(res, nanoseconds(0));
    CHECK(field(res, "Retry-After") == "1");
    mw::set_retry_after(res, std::chrono::milliseconds(1500));
    CHECK(field(res, "Retry-After") == "2");
}

TEST_CASE("the draft and legacy header groups can each be switched off", "[beast][middleware]") {
    login_fixture f;
    mw::middleware_options o;
    o.headers.legacy_headers = false;
    mw::middleware<test_limiter> m(o);
    m.add(*f.lim);
    auto req = make_request(http::verb::get, "/");
    http::response<http::string_body> res;
    m.check(req, addr("192.0.2.1")).apply(res);
    CHECK_FALSE(field(res, "RateLimit").empty());
    CHECK(res.find("X-RateLimit-Limit") == res.end());
    CHECK(res.find("X-RateLimit-Reset") == res.end());

    mw::middleware_options o2;
    o2.headers.draft_headers = false;
    mw::middleware<test_limiter> m2(o2);
    m2.add(*f.lim);
    http::response<http::string_body> res2;
    m2.check(req, addr("192.0.2.1")).apply(res2);
    CHECK(res2.find("RateLimit") == res2.end());
    CHECK(res2.find("RateLimit-Policy") == res2.end());
    CHECK(field(res2, "X-RateLimit-Remaining") == "3");
}

TEST_CASE("an unnamed rule is reported as the default policy", "[beast][middleware]") {
    recording_sink sink;
    auto lim = make_limiter(mw::request_key::ip(), {{"", "100/h"}}, sink, minute_clock());
    mw::middleware<test_limiter> m;
    m.add(*lim);
    auto req = make_request(http::verb::get, "/x");
    http::response<http::string_body> res;
    m.check(req, addr("192.0.2.1")).apply(res);
    CHECK(field(res, "RateLimit-Policy") == "\"default\";q=100;w=3600");
    CHECK(field(res, "RateLimit").rfind("\"default\";r=99;t=", 0) == 0);
}

TEST_CASE("the 429 is problem+json when the client's Accept prefers JSON", "[beast][middleware]") {
    CHECK(mw::prefers_json("application/json"));
    CHECK(mw::prefers_json("application/problem+json"));
    CHECK(mw::prefers_json("application/json, text/plain, */*"));
    CHECK(mw::prefers_json("application/json, */*"));
    CHECK(mw::prefers_json("text/plain;q=0.5, application/json"));
    CHECK(mw::prefers_json("application/*"));
    CHECK_FALSE(mw::prefers_json(""));
    CHECK_FALSE(mw::prefers_json("*/*"));
    CHECK_FALSE(mw::prefers_json("text/plain, application/json"));
    CHECK_FALSE(
        mw::prefers_json("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"));
    CHECK_FALSE(mw::prefers_json("application/json;q=0"));
    CHECK_FALSE(mw::prefers_json("application/json;q=0.5, text/*"));
    CHECK_FALSE(mw::prefers_json("application/json;q=2"));  // malformed q: range ignored

    login_fixture f;
    mw::middleware<test_limiter> m;
    m.add(*f.lim);
    auto req = make_request(http::verb::post, "/api/login", {{"Accept", "application/json"}});
    for (int i = 0; i < 5; ++i) REQUIRE(m.check(req, addr("198.51.100.1")).allowed());
    const auto r = m.check(req, addr("198.51.100.1"));
    const auto res = r.make_response(req);
    CHECK(res.result() == http::status::too_many_requests);
    CHECK(field(res, "Content-Type") == "application/problem+json");
    CHECK(res.body().find("\"status\":429") != std::string::npos);
    CHECK(res.body().find("\"detail\":\"Rate limit exceeded. Please try again later.\"") !=
          std::string::npos);
    CHECK(res.body().find("\"retry_after\":60") != std::string::npos);
    CHECK_FALSE(field(res, "Retry-After").empty());
    CHECK_FALSE(field(res, "RateLimit").empty());

    mw::middleware_options o;
    o.problem_json = false;
    mw::middleware<test_limiter> plain(o);
    plain.add(*f.lim);
    const auto res2 = plain.check(req, addr("198.51.100.1")).make_response(req);
    CHECK(res2.body() == "Rate limit exceeded. Please try again later.");
}

TEST_CASE("a request no route matches is not limited, logged or dressed", "[beast][middleware]") {
    login_fixture f;
    mw::middleware_options o;
    o.log_events = true;
    mw::middleware<test_limiter> m(o);
    m.add(*f.lim, {"/api/login", {http::verb::post}});
    for (auto [verb, target] :
         {std::pair{http::verb::get, "/api/login"}, std::pair{http::verb::post, "/api/loginx"},
          std::pair{http::verb::post, "/static/a.css"}}) {
        auto req = make_request(verb, target);
        const auto r = m.check(req, addr("203.0.113.5"));
        CHECK(r.status() == mw::limit_status::unlimited);
        http::response<http::string_body> res;
        r.apply(res);
        CHECK(res.find("RateLimit") == res.end());
    }
    CHECK(f.sink.size() == 0);
    CHECK(m.stats().checked == 0);
    auto sub = make_request(http::verb::post, "/api/login/otp");
    CHECK(m.check(sub, addr("203.0.113.5")).status() == mw::limit_status::allowed);
    auto absolute = make_request(http::verb::post, "http://example.com/api/login?a=b");
    CHECK(m.check(absolute, addr("203.0.113.5")).status() == mw::limit_status::allowed);
    CHECK(f.sink.events().back().path == "/api/login");
}

TEST_CASE("route prefixes match at segment boundaries", "[beast][middleware]") {
    const mw::route api{"/api", {}};
    CHECK(api.matches("/api", http::verb::get));
    CHECK(api.matches("/api/items", http::verb::delete_));
    CHECK_FALSE(api.matches("/apix", http::verb::get));
    CHECK_FALSE(api.matches("/ap", http::verb::get));
    const mw::route dir{"/static/", {http::verb::get, http::verb::head}};
    CHECK(dir.matches("/static/x", http::verb::head));
    CHECK_FALSE(dir.matches("/static/x", http::verb::post));
    CHECK(mw::route{}.matches("/anything", http::verb::get));
    CHECK(mw::path_of("/a/b?c=d#e") == "/a/b");
    CHECK(mw::path_of("/a#frag") == "/a");
    CHECK(mw::path_of("/a#b?c=d") == "/a");
    CHECK(mw::path_of("/a?b#c?d") == "/a");
    CHECK(mw::path_of("?x") == "");
    CHECK(mw::path_of("http://example.com/api/login?x=1") == "/api/login");
    CHECK(mw::path_of("HTTPS://example.com:8443/a/b") == "/a/b");
    CHECK(mw::path_of("http://example.com") == "/");
    CHECK(mw::path_of("http://example.com?q") == "/");
    CHECK(mw::path_of("*") == "*");
}

TEST_CASE("paths are matched in canonical form", "[beast][middleware]") {
    struct spelling {
        const char* sent;
        const char* canonical;
    };
    for (const auto& [sent, canonical] : std::initializer_list<spelling>{
             {"/api/login", "/api/login"},
             {"/api//login", "/api/login"},
             {"//api///login", "/api/login"},
             {"/api/./login", "/api/login"},
             {"/api/x/../login", "/api/login"},
             {"/../../api/login", "/api/login"},
             {"/api%2Flogin", "/api/login"},
             {"/api%2flogin", "/api/login"},
             {"/%61pi/login", "/api/login"},
             {"/api/%2e%2e/admin", "/admin"},
             {"/api/login/", "/api/login/"},
             {"/api/login/.", "/api/login/"},
             {"/api/x/..", "/api/"},
             {"/API/login", "/API/login"},  // case is kept
             {"/api/%zz%4", "/api/%zz%4"},  // malformed escapes stay as sent
             {"/api/%252F", "/api/%2F"},    // decoded once, not twice
             {"//", "/"},
             {"", "/"},
             {"api/login", "/api/login"}}) {
        INFO(sent);
        CHECK(mw::canonical_path(sent) == canonical);
    }
    // Already canonical: the same bytes back, no copy.
    std::string buffer;
    const std::string_view clean = "/api/items/42";
    CHECK(mw::canonical_path(clean, buffer).data() == clean.data());

    const mw::route login{"/api/login", {http::verb::post}};
    for (const char* sent : {"/api//login", "/api/./login", "/api%2Flogin", "/x/../api/login/"})
        CHECK(login.matches(sent, http::verb::post));
    CHECK_FALSE(login.matches("/api/loginx", http::verb::post));
    CHECK_FALSE(login.matches("/api%2Floginx", http::verb::post));
}

TEST_CASE("another spelling of a limited path shares its limit", "[beast][middleware]") {
    login_fixture f;
    mw::middleware_options o;
    o.log_events = true;
    mw::middleware<test_limiter> m(o);
    m.add(*f.lim, {"/api/login", {http::verb::post}});
    for (const char* target :
         {"/api/login", "/api//login", "/api/./login", "/api%2Flogin", "/%61pi/login?x=1"})
        REQUIRE(m.check(make_request(http::verb::post, target), addr("203.0.113.5")).allowed());
    // Five in the minute, however spelled: the sixth is refused, and events keep what
    // the client sent.
    const auto r = m.check(make_request(http::verb::post, "/api/x/../login"), addr("203.0.113.5"));
    CHECK(r.status() == mw::limit_status::blocked);
    REQUIRE(f.sink.events().size() == 6);
    CHECK(f.sink.events()[1].path == "/api//login");
    CHECK(f.sink.events()[5].path == "/api/x/../login");
}

TEST_CASE("routes with a bad prefix or cost are rejected at configuration", "[beast][middleware]") {
    login_fixture f;
    mw::middleware<test_limiter> m;
    CHECK_THROWS_WITH(m.add(*f.lim, {"api", {}}), Catch::Contains("\"api\""));
    CHECK_THROWS_WITH(m.add(*f.lim, {"/api//login", {}}),
                      Catch::Contains("not canonical") && Catch::Contains("\"/api/login\""));
    CHECK_THROWS_WITH(m.add(*f.lim, {"/api/%6Cogin", {}}), Catch::Contains("not canonical"));
    CHECK_THROWS_WITH(m.add(*f.lim, {"/api", {}, 0}), Catch::Contains("cost"));
    CHECK_THROWS_WITH(m.add(*f.lim, {"/api", {}, 6}), Catch::Contains("rule \"login\""));
    mw::middleware_options o;
    o.fallback_grouping.ipv6_prefix = 0;
    CHECK_THROWS_AS(mw::middleware<test_limiter>(o), srl::config_error);
}

TEST_CASE("events carry the path without query, method, socket peer and user id",
          "[beast][middleware][events]") {
    login_fixture f;
    mw::middleware_options o;
    o.log_events = true;
    o.trusted_proxies = srl::cidr_list::parse("10.0.0.0/8");
    auto identify = [](const http::request_header<>& req) -> std::optional<std::string> {
        const auto v = req["X-Test-User"];
        if (v.empty()) return std::nullopt;
        return std::string(v.data(), v.size());
    };
    mw::middleware<test_limiter, decltype(identify)> m(o, identify);
    m.add(*f.lim, {"/api/login", {http::verb::post}});
    auto req = make_request(http::verb::post, "/api/login?token=secret",
                            {{"X-Forwarded-For", "6.6.6.6, 203.0.113.5"}, {"X-Test-User", "42"}});
    for (int i = 0; i < 6; ++i) m.check(req, addr("10.0.0.1"));
    const auto events = f.sink.events();
    REQUIRE(events.size() == 6);
    const auto& e = events.back();
    CHECK(e.key == "rule:login:ip:203.0.113.5");  // keyed by the forwarded client
    CHECK(e.rule_name == "login");
    CHECK(e.path == "/api/login");
    CHECK(e.method == "POST");
    CHECK(e.ip_address == std::optional<std::string>("10.0.0.1"));  // REMOTE_ADDR: the peer
    CHECK(e.user_id == std::optional<std::string>("42"));
    CHECK(e.limit == 5);
    CHECK_FALSE(e.allowed);
    CHECK(events.front().allowed);
    CHECK(events.front().count == 1);
    CHECK(e.timestamp == f.clock.wall_now());

    auto anon = make_request(http::verb::post, "/api/login");
    m.check(anon, addr("2001:db8::7"));
    const auto e2 = f.sink.events().back();
    CHECK(e2.user_id == std::nullopt);
    CHECK(e2.ip_address == std::optional<std::string>("2001:db8::7"));
    CHECK(e2.key == "rule:login:ip:2001:db8::/64");
}

TEST_CASE("with logging off, or a limiter used directly, nothing is written",
          "[beast][middleware][events]") {
    login_fixture f;
    mw::middleware<test_limiter> m;  // log_events defaults to false
    m.add(*f.lim);
    auto req = make_request(http::verb::post, "/api/login");
    for (int i = 0; i < 7; ++i) m.check(req, addr("203.0.113.5"));
    CHECK(f.sink.size() == 0);
    // The limiter called from handler code: decides, writes nothing.
    const mw::request_view view(req, addr("203.0.113.9"));
    CHECK(f.lim->check(view).allowed());
    CHECK(f.sink.size() == 0);
}

TEST_CASE("a spoofed X-Forwarded-For from an untrusted peer is ignored", "[beast][keys]") {
    login_fixture f;
    mw::middleware_options o;
    o.log_events = true;
    o.trusted_proxies = srl::cidr_list::parse("10.0.0.0/8");
    mw::middleware<test_limiter> m(o);
    m.add(*f.lim);
    // Each request claims a fresh address; all come from one untrusted peer.
    for (int i = 0; i < 6; ++i) {
        auto req = make_request(http::verb::post, "/api/login",
                                {{"X-Forwarded-For", "1.2.3." + std::to_string(i)}});
        const auto r = m.check(req, addr("198.51.100.20"));
        CHECK(r.allowed() == (i < 5));
    }
    for (const auto& e : f.sink.events()) CHECK(e.key == "rule:login:ip:198.51.100.20");
}

TEST_CASE("a trusted proxy's X-Forwarded-For lines are all read, right to left", "[beast][keys]") {
    http::request<http::string_body> req{http::verb::get, "/", 11};
    req.insert("X-Forwarded-For", "6.6.6.6");
    req.insert("X-Forwarded-For", "203.0.113.5, 10.0.0.3");
    const auto trusted = srl::cidr_list::parse("10.0.0.0/8");
    const mw::request_view v(req, addr("10.0.0.1"), trusted);
    CHECK(v.client() == addr("203.0.113.5"));
    CHECK(v.peer() == addr("10.0.0.1"));
    CHECK(mw::ip_key{}(v) == "ip:203.0.113.5");
    const mw::request_view untrusted(req, addr("192.0.2.1"), trusted);
    CHECK(untrusted.client() == addr("192.0.2.1"));
    const mw::request_view mapped(req, addr("::ffff:10.0.0.1"), trusted);
    CHECK(mapped.client() == addr("203.0.113.5"));
    CHECK(mw::to_ip_address(boost::asio::ip::make_address("::ffff:192.0.2.1")) ==
          addr("192.0.2.1"));
    CHECK(mw::to_ip_address(boost::asio::ip::make_address("2001:db8::1")) == addr("2001:db8::1"));
}

TEST_CASE("HTTP key extractors produce ip, user, header and composite keys", "[beast][keys]") {
    auto req =
        make_request(http::verb::get, "/", {{"X-Api-Key", "  k-123 "}, {"x-tenant", "acme"}});
    mw::request_view v(req, addr("2001:DB8:1:2:3:4:5:6"));
    CHECK(mw::ip_key{}(v) == "ip:2001:db8:1:2::/64");
    CHECK(mw::ip_key{{32, 128}}(v) == "ip:2001:db8:1:2:3:4:5:6");
    CHECK(mw::user_key<>{}(v).empty());
    CHECK(mw::header_key("X-Api-Key")(v) == "header:X-Api-Key:k-123");
    CHECK(mw::header_key("X-Tenant")(v) == "header:X-Tenant:acme");
    CHECK(mw::header_key("X-Missing")(v).empty());
    CHECK_THROWS_WITH(mw::header_key("Bad Name"), Catch::Contains("\"Bad Name\""));
    CHECK_THROWS_AS(mw::header_key(""), srl::config_error);

    mw::user_key from_header([](const mw::request_view& r) {
        const auto x = r.request()["X-Tenant"];
        return std::string(x.data(), x.size());
    });
    CHECK(from_header(v) == "user:acme");
    mw::user_key optional_user(
        [](const mw::request_view&) { return std::optional<std::string>{}; });
    CHECK(optional_user(v).empty());

    mw::first_key user_or_ip(mw::user_key<>{}, mw::ip_key{});
    CHECK(user_or_ip(v) == "ip:2001:db8:1:2::/64");
    v.set_user_id(std::string_view("42"));
    CHECK(user_or_ip(v) == "user:42");
    CHECK(mw::request_key::user_or_ip()(v) == "user:42");
    CHECK(mw::request_key::header("X-Api-Key")(v) == "header:X-Api-Key:k-123");
    CHECK(mw::request_key({{mw::request_key::kind::header, "X-None"},
                           {mw::request_key::kind::ip, ""}})(v) == "ip:2001:db8:1:2::/64");
    CHECK_THROWS_AS(mw::request_key(std::vector<mw::request_key::part>{}), srl::config_error);
    CHECK_THROWS_AS(mw::request_key::header("a:b"), srl::config_error);
    static_assert(srl::key_extractor_for<mw::request_key, mw::request_view>);
    static_assert(srl::key_extractor_for<mw::ip_key, mw::request_view>);
    static_assert(srl::key_extractor_for<mw::header_key, mw::request_view>);
    static_assert(srl::key_extractor_for<mw::user_key<>, mw::request_view>);
    static_assert(srl::key_extractor_for<decltype(user_or_ip), mw::request_view>);
}

TEST_CASE("an empty extracted key falls back to the client's IP key", "[beast][middleware]") {
    recording_sink sink;
    auto clock = minute_clock();
    auto lim = make_limiter(mw::request_key::user(), {{"items", "2/m"}}, sink, clock);
    for (const bool log : {true, false}) {
        mw::middleware_options o;
        o.log_events = log;
        mw::middleware<test_limiter> m(o);
        m.add(*lim);
        auto req = make_request(http::verb::get, "/api/items");
        const std::string ip = log ? "192.0.2.10" : "192.0.2.11";
        CHECK(m.check(req, addr(ip)).allowed());
        CHECK(m.check(req, addr(ip)).allowed());
        CHECK_FALSE(m.check(req, addr(ip)).allowed());  // anonymous clients are limited per IP
        const std::string other = log ? "192.0.2.98" : "192.0.2.99";
        CHECK(m.check(req, addr(other)).allowed());  // ...each address on its own
    }
    REQUIRE(sink.size() >= 1);
    CHECK(sink.events().front().key == "rule:items:ip:192.0.2.10");
}

TEST_CASE("several matching routes are decided together and consume only if all pass",
          "[beast][middleware]") {
    recording_sink sink;
    auto clock = minute_clock();
    auto global = make_limiter(mw::request_key::ip(), {{"api", "10/m"}}, sink, clock);
    auto login = make_limiter(mw::request_key::ip(), {{"login", "2/m"}, {"login-burst", "5/h"}},
                              sink, clock);
    mw::middleware_options o;
    o.log_events = true;
    mw::middleware<test_limiter> m(o);
    m.add(*global, {"/api", {}}).add(*login, {"/api/login", {http::verb::post}});
    auto post = make_request(http::verb::post, "/api/login");
    auto r1 = m.check(post, addr("203.0.113.5"));
    REQUIRE(r1.allowed());
    REQUIRE(r1.rules().size() == 3);
    http::response<http::string_body> res;
    r1.apply(res);
    CHECK(field(res, "RateLimit-Policy") ==
          "\"api\";q=10;w=60, \"login\";q=2;w=60, \"login-burst\";q=5;w=3600");
    // Fixed windows are aligned to multiples of their period: at t=960 s the hour has 2640 s left.
    CHECK(field(res, "RateLimit") ==
          "\"api\";r=9;t=60, \"login\";r=1;t=60, \"login-burst\";r=4;t=2640");
    CHECK(field(res, "X-RateLimit-Limit") == "2");  // the rule closest to its limit
    CHECK(m.check(post, addr("203.0.113.5")).allowed());
    const auto denied = m.check(post, addr("203.0.113.5"));
    CHECK(denied.status() == mw::limit_status::blocked);
    CHECK(denied.binding().policy == "login");
    // The rejected login spent nothing from the global budget: 8 GETs still pass.
    auto get = make_request(http::verb::get, "/api/items");
    for (int i = 0; i < 8; ++i) CHECK(m.check(get, addr("203.0.113.5")).allowed());
    CHECK_FALSE(m.check(get, addr("203.0.113.5")).allowed());
    // One event per rule decision; the blocked login logged under each rule.
    const auto events = sink.events();
    REQUIRE(events.size() == 3 * 3 + 9);
    CHECK(events[6].key == "rule:api:ip:203.0.113.5");
    CHECK(events[6].allowed);  // the global rule itself would have allowed it
    CHECK(events[7].key == "rule:login:ip:203.0.113.5");
    CHECK_FALSE(events[7].allowed);
    CHECK(events[8].rule_name == "login-burst");
    // The global rule blocks a login too, without spending the login budget.
    clock.advance(seconds(60));
    auto other = make_request(http::verb::post, "/api/login");
    for (int i = 0; i < 10; ++i) REQUIRE(m.check(get, addr("198.51.100.1")).allowed());
    CHECK_FALSE(m.check(other, addr("198.51.100.1")).allowed());
    http::response<http::string_body> res2;
    clock.advance(seconds(60));
    m.check(other, addr("198.51.100.1")).apply(res2);
    CHECK(field(res2, "RateLimit") ==
          "\"api\";r=9;t=60, \"login\";r=1;t=60, \"login-burst\";r=4;t=2520");
}

TEST_CASE("a failing store is degraded, never a 429: 503 by default, a pass under fail_open",
          "[beast][middleware][degraded]") {
    recording_sink sink;
    flaky_storage storage, open_storage;
    auto failing = storage.failing;
    open_storage.failing = failing;
    auto lim = make_limiter(mw::request_key::ip(), {{"login", "5/m"}}, sink, minute_clock(),
                            std::move(storage));
    srl::limiter_options open_options;
    open_options.on_store_failure = srl::failure_policy::fail_open;
    auto open_lim = make_limiter(mw::request_key::ip(), {{"login", "5/m"}}, sink, minute_clock(),
                                 std::move(open_storage), open_options);
    auto req = make_request(http::verb::post, "/api/login");
    failing->store(true);

    mw::middleware_options o;
    o.log_events = true;
    mw::middleware<test_limiter> closed(o);
    closed.add(*lim);
    const auto r = closed.check(req, addr("192.0.2.1"));
    CHECK(r.status() == mw::limit_status::degraded_closed);
    CHECK(r.degraded());
    CHECK_FALSE(r.allowed());
    CHECK(r.rules().empty());
    const auto res = r.make_response(req);
    CHECK(res.result() == http::status::service_unavailable);
    CHECK(field(res, "Retry-After") == "1");
    CHECK(res.find("RateLimit") == res.end());
    CHECK(res.find("RateLimit-Policy") == res.end());
    CHECK(res.find("X-RateLimit-Remaining") == res.end());
    CHECK(closed.stats().degraded_closed == 1);
    CHECK(closed.stats().blocked == 0);

    mw::middleware<test_limiter> open(o);
    open.add(*open_lim);
    const auto r2 = open.check(req, addr("192.0.2.1"));
    CHECK(r2.status() == mw::limit_status::degraded_open);
    CHECK(r2.allowed());
    http::response<http::string_body> res2;
    r2.apply(res2);
    CHECK(res2.find("RateLimit") == res2.end());
    CHECK(res2.find("X-RateLimit-Limit") == res2.end());
    CHECK(open.stats().degraded_open == 1);

    // Each degraded decision is logged as such: allowed (not a denial), outcome degraded.
    auto events = sink.events();
    REQUIRE(events.size() == 2);
    for (const auto& e : events) {
        CHECK(e.outcome == srl::outcome_kind::degraded);
        CHECK(e.allowed);
        CHECK(e.key == "rule:login:ip:192.0.2.1");
    }

    // Several routes: a store failure on any rule degrades the whole request.
    auto lim2 = make_limiter(mw::request_key::ip(), {{"api", "5/m"}}, sink, minute_clock());
    mw::middleware<test_limiter> multi(o);
    multi.add(*lim2, {"/api", {}}).add(*lim, {"/api/login", {}});
    CHECK(multi.check(req, addr("192.0.2.1")).status() == mw::limit_status::degraded_closed);
    events = sink.events();
    REQUIRE(events.size() == 4);
    CHECK(events[2].outcome == srl::outcome_kind::allowed);  // rule api peeked fine
    CHECK(events[3].outcome == srl::outcome_kind::degraded);

    // The quota of the rule that was fine was not spent on the refused request.
    failing->store(false);
    for (int i = 0; i < 5; ++i)
        CHECK(multi.check(req, addr("192.0.2.1")).status() == mw::limit_status::allowed);
    CHECK(multi.check(req, addr("192.0.2.1")).status() == mw::limit_status::blocked);
    CHECK(closed.check(req, addr("192.0.2.2")).status() == mw::limit_status::allowed);
}

TEST_CASE("a client over its limit gets the 429 even when another rule is degraded",
          "[beast][middleware][degraded]") {
    recording_sink sink;
    flaky_storage down;
    down.failing->store(true);
    auto healthy = make_limiter(mw::request_key::ip(), {{"api", "1/m"}}, sink, minute_clock());
    auto broken = make_limiter(mw::request_key::ip(), {{"login", "5/m"}}, sink, minute_clock(),
                               std::move(down));
    mw::middleware<test_limiter> m;
    m.add(*healthy, {"/api", {}}).add(*broken, {"/api/login", {}});
    auto req = make_request(http::verb::post, "/api/login");
    // First request: api allows (peek), login is degraded and fails closed: 503.
    CHECK(m.check(req, addr("192.0.2.9")).status() == mw::limit_status::degraded_closed);
    // Exhaust api through a path only it covers, then the login path is a 429.
    auto other = make_request(http::verb::get, "/api/items");
    CHECK(m.check(other, addr("192.0.2.9")).status() == mw::limit_status::allowed);
    const auto r = m.check(req, addr("192.0.2.9"));
    CHECK(r.status() == mw::limit_status::blocked);
    CHECK(r.make_response(req).result() == http::status::too_many_requests);
}

TEST_CASE("middleware_options_from reads log_events and trusted proxies from the settings",
          "[beast][middleware][settings]") {
    srl::settings s;
    s.log_events = true;
    s.trusted_proxies = {"10.0.0.0/8"};
    auto o = mw::middleware_options_from(s);
    CHECK(o.log_events);
    CHECK(o.trusted_proxies.contains(*srl::ip_address::parse("10.1.2.3")));
    s.log_events = false;
    CHECK_FALSE(mw::middleware_options_from(s).log_events);
    s.trusted_proxies = {"not a cidr"};
    CHECK_THROWS_AS(mw::middleware_options_from(s), srl::config_error);
    s.fail_open = true;
    CHECK(srl::limiter_options_from(s).on_store_failure == srl::failure_policy::fail_open);
    s.fail_open = false;
    CHECK(srl::limiter_options_from(s).on_store_failure == srl::failure_policy::fail_closed);
}

TEST_CASE("handle() runs the handler when allowed and answers 429 itself when not",
          "[beast][middleware]") {
    login_fixture f;
    mw::middleware<test_limiter> m;
    m.add(*f.lim, {"/api/login", {http::verb::post}});
    int calls = 0;
    auto req = make_request(http::verb::post, "/api/login");
    for (int i = 0; i < 6; ++i) {
        // What a client would receive.
        const std::string wire = serialize(m.handle(req, addr("192.0.2.1"), ok_handler{&calls}));
        if (i < 5) {
            CHECK(wire.rfind("HTTP/1.1 200", 0) == 0);
            CHECK(wire.find("RateLimit: \"login\";r=" + std::to_string(4 - i)) !=
                  std::string::npos);
        } else {
            CHECK(wire.rfind("HTTP/1.1 429", 0) == 0);
            CHECK(wire.find("Retry-After: ") != std::string::npos);
            CHECK(wire.find("Rate limit exceeded. Please try again later.") != std::string::npos);
        }
    }
    CHECK(calls == 5);
}

TEST_CASE("a throwing identify policy makes the request anonymous and is counted",
          "[beast][middleware]") {
    recording_sink sink;
    auto lim =
        make_limiter(mw::request_key::user_or_ip(), {{"items", "5/m"}}, sink, minute_clock());
    auto identify = [](const http::request_header<>&) -> std::optional<std::string> {
        throw std::runtime_error("session store down");
    };
    mw::middleware_options o;
    o.log_events = true;
    mw::middleware<test_limiter, decltype(identify)> m(o, identify);
    m.add(*lim);
    auto req = make_request(http::verb::get, "/api/items");
    CHECK(m.check(req, addr("192.0.2.1")).allowed());
    CHECK(m.stats().identify_failures == 1);
    REQUIRE(sink.size() == 1);
    CHECK(sink.events()[0].key == "rule:items:ip:192.0.2.1");
    CHECK(sink.events()[0].user_id == std::nullopt);
}

TEST_CASE("a throwing sink never changes a multi-route decision", "[beast][middleware][events]") {
    using broken_limiter =
        srl::limiter<mw::request_key, srl::in_memory_storage<>, throwing_sink, srl::manual_clock>;
    auto clock = minute_clock();
    broken_limiter a(mw::request_key::ip(), {{"a", "2/m"}}, {}, {}, throwing_sink{}, clock);
    broken_limiter b(mw::request_key::ip(), {{"b", "5/m"}}, {}, {}, throwing_sink{}, clock);
    mw::middleware_options o;
    o.log_events = true;
    mw::middleware<broken_limiter> m(o);
    m.add(a, {"/", {}}).add(b, {"/x", {}});
    auto req = make_request(http::verb::get, "/x");
    CHECK(m.check(req, addr("192.0.2.1")).allowed());
    CHECK(m.check(req, addr("192.0.2.1")).allowed());
    CHECK_FALSE(m.check(req, addr("192.0.2.1")).allowed());
    CHECK(m.stats().sink_failures == 6);
    // Single route: the limiter catches and counts.
    mw::middleware<broken_limiter> single(o);
    single.add(b, {"/y", {}});
    auto y = make_request(http::verb::get, "/y");
    CHECK(single.check(y, addr("192.0.2.1")).allowed());
    CHECK(b.sink_failures() == 1);
}

TEST_CASE("requests no route matches skip the identify policy", "[beast][middleware]") {
    login_fixture f;
    auto calls = std::make_shared<int>(0);
    auto identify = [calls](const http::request_header<>&) -> std::optional<std::string> {
        ++*calls;
        return std::string("u1");
    };
    mw::middleware<test_limiter, decltype(identify)> m({}, identify);
    m.add(*f.lim, {"/api/login", {http::verb::post}});
    auto unmatched = make_request(http::verb::get, "/static/app.js");
    CHECK(m.check(unmatched, addr("192.0.2.1")).status() == mw::limit_status::unlimited);
    CHECK(*calls == 0);
    auto matched = make_request(http::verb::post, "/api/login");
    CHECK(m.check(matched, addr("192.0.2.1")).status() == mw::limit_status::allowed);
    CHECK(*calls == 1);
}

TEST_CASE("header values longer than the inline buffer and many routes' rules come out whole",
          "[beast][middleware]") {
    recording_sink sink;
    auto clock = minute_clock();
    // Ten routes of one rule each, with long names: more rules than one verdict
    // holds and header values far past the formatter's inline capacity.
    std::vector<std::unique_ptr<test_limiter>> lims;
    mw::middleware<test_limiter> m;
    std::string policy, remaining;
    for (int i = 0; i < 10; ++i) {
        const std::string name = "rule-with-a-rather-long-name-" + std::to_string(i);
        lims.push_back(make_limiter(mw::request_key::ip(), {{name, std::to_string(10 + i) + "/m"}},
                                    sink, clock));
        m.add(*lims.back(), {"/api", {}});
        if (i != 0) policy += ", ", remaining += ", ";
        policy += "\"" + name + "\";q=" + std::to_string(10 + i) + ";w=60";
        remaining += "\"" + name + "\";r=" + std::to_string(9 + i) + ";t=60";
    }
    const auto r = m.check(make_request(http::verb::get, "/api/items"), addr("203.0.113.5"));
    REQUIRE(r.allowed());
    REQUIRE(r.rules().size() == 10);
    http::response<http::string_body> res;
    r.apply(res);
    REQUIRE(policy.size() > 300);
    CHECK(field(res, "RateLimit-Policy") == policy);
    CHECK(field(res, "RateLimit") == remaining);
    CHECK(field(res, "X-RateLimit-Limit") == "10");  // the rule closest to its limit
    // A copy of the result (the async paths move and copy results) dresses alike.
    const mw::limit_result copy = r;
    http::response<http::string_body> res2;
    copy.apply(res2);
    CHECK(field(res2, "RateLimit-Policy") == policy);
}

TEST_CASE("rate-limit fields already on a response are replaced, not repeated",
          "[beast][middleware]") {
    login_fixture f;
    mw::middleware<test_limiter> m;
    m.add(*f.lim, {"/api/login", {http::verb::post}});
    const auto r = m.check(make_request(http::verb::post, "/api/login"), addr("203.0.113.5"));
    http::response<http::string_body> res{http::status::ok, 11};
    res.insert("ratelimit-policy", "stale");
    res.insert("X-RATELIMIT-LIMIT", "stale");
    res.insert("X-RateLimit-Limit", "stale again");
    r.apply(res);
    CHECK(res.count("RateLimit-Policy") == 1);
    CHECK(res.count("X-RateLimit-Limit") == 1);
    CHECK(field(res, "RateLimit-Policy") == "\"login\";q=5;w=60");
    CHECK(field(res, "X-RateLimit-Limit") == "5");
}

namespace {

using field_list = std::vector<std::pair<std::string, std::string>>;

field_list visited(const mw::limit_result& r) {
    field_list out;
    r.for_each_field([&](std::string_view n, std::string_view v) { out.emplace_back(n, v); });
    return out;
}

// The header lines append_fields writes, split back into (name, value) pairs.
field_list appended(const mw::limit_result& r) {
    std::string text;
    r.append_fields(text);
    field_list out;
    std::size_t at = 0;
    while (at < text.size()) {
        const auto eol = text.find("\r\n", at);
        REQUIRE(eol != std::string::npos);  // every line ends in CRLF
        const std::string line = text.substr(at, eol - at);
        const auto colon = line.find(": ");
        REQUIRE(colon != std::string::npos);
        out.emplace_back(line.substr(0, colon), line.substr(colon + 2));
        at = eol + 2;
    }
    return out;
}

field_list dressed(const mw::limit_result& r) {
    http::response<http::string_body> res;
    r.apply(res);
    field_list out;
    for (const auto& f : res) out.emplace_back(f.name_string(), f.value());
    return out;
}

}  // namespace

TEST_CASE("for_each_field and append_fields give exactly the fields apply sets, in order",
          "[beast][middleware]") {
    login_fixture f;
    auto items = make_limiter(mw::request_key::ip(), {{"items", "100/m"}}, f.sink, f.clock);
    for (const bool draft : {true, false})
        for (const bool legacy : {true, false}) {
            mw::middleware_options o;
            o.headers.draft_headers = draft;
            o.headers.legacy_headers = legacy;
            mw::middleware<test_limiter> m(o);
            m.add(*f.lim, {"/api/login", {http::verb::post}});
            m.add(*items, {"/api", {}});
            // One route (its preformatted policy) and two routes (formatted per request).
            for (const auto verb : {http::verb::get, http::verb::post}) {
                const auto r = m.check(make_request(verb, "/api/login"), addr("203.0.113.5"));
                REQUIRE(r.rules().size() == (verb == http::verb::get ? 1u : 2u));
                const field_list v = visited(r);
                CHECK(v == dressed(r));
                CHECK(appended(r) == v);
                CHECK(v.size() == (draft ? 2u : 0u) + (legacy ? 3u : 0u));
            }
        }
    login_fixture fresh;  // the loops above spent four of f's five logins
    mw::middleware<test_limiter> m;
    m.add(*fresh.lim, {"/api/login", {http::verb::post}});
    const auto unlimited =
        m.check(make_request(http::verb::get, "/elsewhere"), addr("203.0.113.5"));
    CHECK(visited(unlimited).empty());
    CHECK(visited(mw::limit_result{}).empty());
    CHECK(appended(unlimited).empty());
    CHECK(appended(mw::limit_result{}).empty());
    // A denied result reports the same fields its 429 carries.
    auto req = make_request(http::verb::post, "/api/login");
    for (int i = 0; i < 5; ++i) REQUIRE(m.check(req, addr("203.0.113.5")).allowed());
    const auto denied = m.check(req, addr("203.0.113.5"));
    REQUIRE_FALSE(denied.allowed());
    const auto res = denied.make_response(req);
    for (const auto& [name, value] : visited(denied)) CHECK(field(res, name) == value);
    CHECK(appended(denied) == visited(denied));
}

TEST_CASE("header numbers are the decimal text of every width", "[beast][headers]") {
    std::vector<std::uint64_t> values{0,
                                      1,
                                      9,
                                      10,
                                      11,
                                      99,
                                      100,
                                      101,
                                      999,
                                      1000,
                                      65535,
                                      1795937008,
                                      std::numeric_limits<std::uint64_t>::max() - 1,
                                      std::numeric_limits<std::uint64_t>::max()};
    for (std::uint64_t p = 1; p <= 10'000'000'000'000'000'000ull; p *= 10) {
        values.push_back(p - 1);
        values.push_back(p);
        if (p > std::numeric_limits<std::uint64_t>::max() / 10) break;
    }
    for (const auto v : values) CHECK(mw::detail::decimal(v).view() == std::to_string(v));
}

TEST_CASE("policy names are sf-strings: quotes and backslashes escaped, controls dropped",
          "[beast][middleware]") {
    const mw::rule_status odd[] = {
        {"a\"b\\c\x01"
         "d",
         5, 4, std::chrono::seconds(60), std::chrono::seconds(30)},
        {"", 7, 7, std::chrono::seconds(1), std::chrono::milliseconds(1)},
    };
    CHECK(mw::format_ratelimit_policy(odd) == "\"a\\\"b\\\\cd\";q=5;w=60, \"default\";q=7;w=1");
    CHECK(mw::format_ratelimit(odd, "anon") == "\"a\\\"b\\\\cd\";r=4;t=30, \"anon\";r=7;t=1");
}

TEST_CASE("the coarse wall clock agrees with the precise one to well under a second",
          "[beast][middleware]") {
    // X-RateLimit-Reset counts from it (whole seconds); a clock without it falls back.
    const srl::steady_clock c;
    const auto precise = c.wall_now();
    const auto coarse = srl::wall_now_coarse(c);
    CHECK(std::chrono::abs(coarse - precise) < std::chrono::milliseconds(500));
    const srl::manual_clock m;
    CHECK(srl::wall_now_coarse(m) == m.wall_now());
}

TEST_CASE("RATELIMIT_LOG_EVENTS in a settings file turns the middleware's event log off and on",
          "[beast][middleware][settings]") {
    srl_test::temp_dir dir("settings");
    for (const bool on : {false, true}) {
        const std::string file = (dir.path() / (on ? "on.json" : "off.json")).string();
        std::ofstream(file) << "{\"RATELIMIT_LOG_EVENTS\": " << (on ? "true" : "false")
                            << ", \"RATELIMIT_FAIL_OPEN\": " << (on ? "true" : "false") << "}";
        const srl::settings s = srl::load_settings(file, srl::environment_map{});
        recording_sink sink;
        auto lim = make_limiter(mw::request_key::ip(), {{"login", "5/m"}}, sink, minute_clock(), {},
                                srl::limiter_options_from(s));
        mw::middleware<test_limiter> m(mw::middleware_options_from(s));
        m.add(*lim);
        const auto req = make_request(http::verb::post, "/api/login");
        CHECK(m.check(req, addr("192.0.2.1")).status() == mw::limit_status::allowed);
        CHECK(sink.size() == (on ? 1u : 0u));
        CHECK(lim->options().on_store_failure ==
              (on ? srl::failure_policy::fail_open : srl::failure_policy::fail_closed));
    }
    // The environment wins over the file, as everywhere.
    const std::string file = (dir.path() / "off.json").string();
    const srl::settings s =
        srl::load_settings(file, srl::environment_map{{"RATELIMIT_LOG_EVENTS", "true"}});
    CHECK(mw::middleware_options_from(s).log_events);
}
