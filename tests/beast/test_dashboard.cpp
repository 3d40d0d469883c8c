// tests/beast/test_dashboard.cpp
// The staff dashboard over a real loopback socket: authorization (403 identical
// for anonymous and non-staff, tokens never from the query string or a cookie,
// bearer tokens, a throwing authorizer), every endpoint (page, CSV, drill-down as
// JSON and HTML, timeline JSON, live.js, health, metrics), `?days=` edge cases,
// escaping of hostile keys and paths in HTML, JSON and CSV, security headers; plus
// the pure helpers (timeline buckets with degraded counts, the SVG). The sign-in
// form, its sessions and throttle are in test_dashboard_sign_in.cpp.
#include <catch2/catch.hpp>

#include <boost/json/parse.hpp>

#include <smart_ratelimit/beast/dashboard.hpp>
#include <smart_ratelimit/sinks/ring_buffer_sink.hpp>

#include "dashboard_test_server.hpp"

#include <atomic>
#include <chrono>
#include <memory>
#include <stdexcept>
#include <string>
#include <tuple>
#include <vector>

namespace srl = smart_ratelimit;
namespace sb = smart_ratelimit::beast;
using srl_test::fetch;
using srl_test::get;
namespace http = boost::beast::http;

namespace {

constexpr const char* staff_token = "s3cret-staff-token-0123";
constexpr const char* script_payload = "<script>alert(1)</script>";
constexpr const char* img_payload = "\"><img src=x onerror=alert(1)>";

srl::event_time ago(std::chrono::microseconds d) { return srl::event_clock_now() - d; }

// A ring buffer with a little of everything: a normal offender, hostile keys and
// paths, a formula-looking key, rule hits, an old event outside every window.
void fill(srl::ring_buffer_sink_mt& sink) {
    using namespace std::chrono;
    for (int i = 0; i < 5; ++i)
        sink.record(srl::make_event(ago(hours(1)), "rule:login:ip:203.0.113.5", "/api/login",
                                    "POST", i < 2, i + 1, 2, "203.0.113.5"));
    for (int i = 0; i < 3; ++i)
        sink.record(srl::make_event(ago(hours(2)), std::string("ip:") + script_payload, img_payload,
                                    "GET", false, 9, 5));
    for (int i = 0; i < 2; ++i)
        sink.record(srl::make_event(ago(hours(3)), std::string("user:") + img_payload,
                                    script_payload, "GET", false, 9, 5, {},
                                    std::string_view(img_payload)));
    sink.record(srl::make_event(ago(hours(4)), "=HYPERLINK(\"http://x\")", "/api/items", "GET",
                                false, 7, 5));
    sink.record(
        srl::make_event(ago(hours(72)), "ip:198.51.100.7", "/api/items", "GET", false, 101, 100));
    sink.record(
        srl::make_event(ago(hours(24 * 40)), "ip:192.0.2.99", "/old", "GET", false, 101, 100));
}

auto ring_source(const srl::ring_buffer_sink_mt& sink) {
    return sb::event_range_source{[&sink] { return sink.snapshot(); }};
}

using ring_source_t = decltype(ring_source(std::declval<const srl::ring_buffer_sink_mt&>()));
using staff_dashboard = sb::dashboard<ring_source_t, sb::staff_token_authorizer>;

srl_test::header_list bearer(const std::string& t) { return {{"Authorization", "Bearer " + t}}; }

void require_security_headers(const http::response<http::string_body>& res) {
    const std::string csp(res["Content-Security-Policy"]);
    INFO("CSP: " << csp);
    CHECK(csp.find("default-src 'none'") != std::string::npos);
    CHECK(csp.find("frame-ancestors 'none'") != std::string::npos);
    CHECK(csp.find("unsafe-inline") == std::string::npos);
    CHECK(csp.find("script-src") == std::string::npos);
    CHECK(res["X-Content-Type-Options"] == "nosniff");
    CHECK(res["Cache-Control"] == "no-store");
    CHECK(res["Referrer-Policy"] == "no-referrer");
    CHECK(res["X-Frame-Options"] == "DENY");
}

int json_days(unsigned short port, const std::string& days_query) {
    const auto res = get(port, "/ratelimit/dashboard/offender/?key=ip:1.2.3.4" + days_query,
                         bearer(staff_token));
    REQUIRE(res.result_int() == 200);
    return static_cast<int>(boost::json::parse(res.body()).as_object().at("days").as_int64());
}

}  // namespace

TEST_CASE("anonymous and non-staff requests get the same 403 with no data", "[beast][dashboard]") {
    srl::ring_buffer_sink_mt sink(1000);
    fill(sink);
    const staff_dashboard dash(ring_source(sink), sb::staff_token_authorizer(staff_token));
    srl_test::dashboard_server server(dash);
    for (const std::string target :
         {"/ratelimit/dashboard/", "/ratelimit/dashboard/offenders.csv",
          "/ratelimit/dashboard/offender/?key=ip:198.51.100.7", "/ratelimit/dashboard/?days=30"}) {
        INFO(target);
        const auto anon = get(server.port(), target);
        const auto wrong_bearer = get(server.port(), target, bearer("not-the-staff-token"));
        const auto wrong_cookie =
            get(server.port(), target, {{"Cookie", "srl_staff=s3cret-staff-token-0124"}});
        const auto prefix_of_token = get(server.port(), target, bearer("s3cret-staff-token-012"));
        const auto query_token =
            get(server.port(), target + (target.find('?') == std::string::npos ? "?" : "&") +
                                   "token=" + staff_token);
        for (const auto* res :
             {&anon, &wrong_bearer, &wrong_cookie, &prefix_of_token, &query_token}) {
            CHECK(res->result_int() == 403);
            CHECK(res->body() == "Forbidden");
            CHECK((*res)[http::field::content_type] == anon[http::field::content_type]);
            CHECK(!res->count(http::field::set_cookie));
            require_security_headers(*res);
        }
    }
}

TEST_CASE("a dashboard without an authorizer denies everyone", "[beast][dashboard]") {
    srl::ring_buffer_sink_mt sink(10);
    const sb::dashboard<ring_source_t> dash(ring_source(sink));
    srl_test::dashboard_server server(dash);
    CHECK(get(server.port(), "/ratelimit/dashboard/", bearer(staff_token)).result_int() == 403);
    CHECK(get(server.port(), "/ratelimit/signin").result_int() == 404);
    CHECK(get(server.port(), "/elsewhere").body() == "app");
}

TEST_CASE("staff see the page with summaries, offenders, rule hits, selector, CSV link and chart",
          "[beast][dashboard]") {
    srl::ring_buffer_sink_mt sink(1000);
    fill(sink);
    const staff_dashboard dash(ring_source(sink), sb::staff_token_authorizer(staff_token));
    srl_test::dashboard_server server(dash);
    const auto res = get(server.port(), "/ratelimit/dashboard/", bearer(staff_token));
    REQUIRE(res.result_int() == 200);
    CHECK(res[http::field::content_type] == "text/html; charset=utf-8");
    require_security_headers(res);
    const std::string& b = res.body();
    CHECK(b.find("id=\"summary-today\"") != std::string::npos);
    CHECK(b.find("id=\"summary-window\"") != std::string::npos);
    CHECK(b.find("Last 7 days") != std::string::npos);
    for (const char* d : {"?days=1\"", "?days=7\"", "?days=30\"", "?days=90\""})
        CHECK(b.find(std::string("/ratelimit/dashboard/") + d) != std::string::npos);
    CHECK(b.find("href=\"/ratelimit/dashboard/offenders.csv?days=7\"") != std::string::npos);
    CHECK(b.find("<svg") != std::string::npos);
    CHECK(b.find("class=\"blocked\"") != std::string::npos);
    CHECK(b.find("class=\"allowed\"") != std::string::npos);
    // The offender links to its drill-down page, query-encoded.
    CHECK(b.find("href=\"/ratelimit/dashboard/"
                 "offender.html?key=rule%3Alogin%3Aip%3A203.0.113.5&amp;days=7\"") !=
          std::string::npos);
    CHECK(b.find("<code>login</code>") != std::string::npos);
    // The 40-day-old event is outside the 7-day window, the 3-day-old one inside it but not today.
    CHECK(b.find("192.0.2.99") == std::string::npos);
    CHECK(b.find("198.51.100.7") != std::string::npos);
    CHECK(get(server.port(), "/ratelimit/dashboard/?days=1", bearer(staff_token))
              .body()
              .find("198.51.100.7") == std::string::npos);
    CHECK(get(server.port(), "/ratelimit/dashboard/?days=90", bearer(staff_token))
              .body()
              .find("192.0.2.99") != std::string::npos);
    // No script anywhere, and the inline style carries the CSP nonce.
    CHECK(b.find("<script") == std::string::npos);
    CHECK(b.find("<img") == std::string::npos);
    const std::string csp(res["Content-Security-Policy"]);
    const auto n = csp.find("'nonce-");
    REQUIRE(n != std::string::npos);
    const std::string nonce = csp.substr(n + 7, csp.find('\'', n + 7) - (n + 7));
    CHECK(nonce.size() >= 16);
    CHECK(b.find("<style nonce=\"" + nonce + "\">") != std::string::npos);
    // A fresh nonce per response.
    CHECK(get(server.port(), "/ratelimit/dashboard/",
              bearer(staff_token))["Content-Security-Policy"] != csp);
}

TEST_CASE("hostile keys, paths and user ids never come back unescaped", "[beast][dashboard]") {
    srl::ring_buffer_sink_mt sink(1000);
    fill(sink);
    const staff_dashboard dash(ring_source(sink), sb::staff_token_authorizer(staff_token));
    srl_test::dashboard_server server(dash);
    const auto page = get(server.port(), "/ratelimit/dashboard/", bearer(staff_token));
    REQUIRE(page.result_int() == 200);
    CHECK(page.body().find(script_payload) == std::string::npos);
    CHECK(page.body().find("<img") == std::string::npos);
    CHECK(page.body().find("ip:&lt;script&gt;alert(1)&lt;/script&gt;") != std::string::npos);
    CHECK(page.body().find("user:&quot;&gt;&lt;img src=x onerror=alert(1)&gt;") !=
          std::string::npos);
    CHECK(page.body().find("?key=ip%3A%3Cscript%3Ealert%281%29%3C%2Fscript%3E&amp;days=7") !=
          std::string::npos);

    for (const std::string& key :
         {std::string("ip:") + script_payload, std::string("user:") + img_payload}) {
        const auto res = get(
            server.port(), "/ratelimit/dashboard/offender/?key=" + sb::detail::query_component(key),
            bearer(staff_token));
        REQUIRE(res.result_int() == 200);
        CHECK(res[http::field::content_type] == "application/json");
        require_security_headers(res);
        CHECK(res.body().find('<') == std::string::npos);
        CHECK(res.body().find('>') == std::string::npos);
        const auto v = boost::json::parse(res.body()).as_object();
        CHECK(v.at("key").as_string() == key);
        CHECK(v.at("blocked").as_int64() > 0);
        const auto& paths = v.at("by_path").as_array();
        REQUIRE(paths.size() == 1);
        const std::string path(paths[0].as_object().at("path").as_string());
        CHECK((path == script_payload || path == img_payload));
    }
    // A hostile key that is not in the log is echoed back in JSON escaped too.
    const auto miss =
        get(server.port(), "/ratelimit/dashboard/offender/?key=%3Cscript%3E", bearer(staff_token));
    CHECK(miss.body().find("<script>") == std::string::npos);
    CHECK(boost::json::parse(miss.body()).as_object().at("key").as_string() == "<script>");
}

TEST_CASE("the CSV export is an attachment with formula cells defused", "[beast][dashboard]") {
    srl::ring_buffer_sink_mt sink(1000);
    fill(sink);
    const staff_dashboard dash(ring_source(sink), sb::staff_token_authorizer(staff_token));
    srl_test::dashboard_server server(dash);
    const auto res =
        get(server.port(), "/ratelimit/dashboard/offenders.csv?days=30", bearer(staff_token));
    REQUIRE(res.result_int() == 200);
    CHECK(res[http::field::content_type] == "text/csv; charset=utf-8");
    CHECK(std::string(res[http::field::content_disposition]).rfind("attachment;", 0) == 0);
    require_security_headers(res);
    const std::string& b = res.body();
    CHECK(b.rfind("key,blocked_count\r\n", 0) == 0);
    CHECK(b.find("rule:login:ip:203.0.113.5,3\r\n") != std::string::npos);
    CHECK(b.find("\"'=HYPERLINK(\"\"http://x\"\")\",1\r\n") != std::string::npos);
    CHECK(b.find("\r\n=") == std::string::npos);
    CHECK(b.find("ip:198.51.100.7,1\r\n") != std::string::npos);
    CHECK(b.find("192.0.2.99") == std::string::npos);
}

TEST_CASE("the drill-down needs a key and has the JSON shape of the analytics",
          "[beast][dashboard]") {
    srl::ring_buffer_sink_mt sink(1000);
    fill(sink);
    const staff_dashboard dash(ring_source(sink), sb::staff_token_authorizer(staff_token));
    srl_test::dashboard_server server(dash);
    for (const char* t :
         {"/ratelimit/dashboard/offender/", "/ratelimit/dashboard/offender/?key=",
          "/ratelimit/dashboard/offender/?days=3", "/ratelimit/dashboard/offender/?key&days=3"}) {
        INFO(t);
        const auto res = get(server.port(), t, bearer(staff_token));
        CHECK(res.result_int() == 400);
        CHECK(res.body() == "{\"error\": \"missing ?key= parameter\"}");
        CHECK(res[http::field::content_type] == "application/json");
        require_security_headers(res);
    }
    const auto res =
        get(server.port(), "/ratelimit/dashboard/offender/?key=rule%3Alogin%3Aip%3A203.0.113.5",
            bearer(staff_token));
    REQUIRE(res.result_int() == 200);
    const auto v = boost::json::parse(res.body()).as_object();
    const std::vector<std::string> keys{"key",       "days",       "total",        "allowed",
                                        "blocked",   "block_rate", "degraded",     "first_seen",
                                        "last_seen", "by_path",    "recent_events"};
    std::vector<std::string> got;
    for (const auto& kv : v) got.emplace_back(kv.key());
    CHECK(got == keys);
    CHECK(v.at("total").as_int64() == 5);
    CHECK(v.at("blocked").as_int64() == 3);
    CHECK(v.at("block_rate").as_double() == Approx(0.6));
    CHECK(v.at("recent_events").as_array().size() == 5);
    CHECK(v.at("by_path").as_array().at(0).as_object().at("path").as_string() == "/api/login");
}

TEST_CASE("days is 7 when absent or not an integer, then clamped to 1..365", "[beast][dashboard]") {
    srl::ring_buffer_sink_mt sink(10);
    const staff_dashboard dash(ring_source(sink), sb::staff_token_authorizer(staff_token));
    srl_test::dashboard_server server(dash);
    const auto p = server.port();
    CHECK(json_days(p, "") == 7);
    CHECK(json_days(p, "&days=abc") == 7);
    CHECK(json_days(p, "&days=") == 7);
    CHECK(json_days(p, "&days=7.5") == 7);
    CHECK(json_days(p, "&days=1e3") == 7);
    CHECK(json_days(p, "&days=%2030") == 7);
    CHECK(json_days(p, "&days=0") == 1);
    CHECK(json_days(p, "&days=-5") == 1);
    CHECK(json_days(p, "&days=400") == 365);
    CHECK(json_days(p, "&days=99999999999999999999999") == 365);
    CHECK(json_days(p, "&days=-99999999999999999999999") == 1);
    CHECK(json_days(p, "&days=30") == 30);
    CHECK(json_days(p, "&days=365") == 365);
    CHECK(json_days(p, "&days=1") == 1);
    CHECK(json_days(p, "&days=2&days=9") == 2);
    // The page and the CSV follow the same rule.
    CHECK(get(p, "/ratelimit/dashboard/?days=400", bearer(staff_token))
              .body()
              .find("Last 365 days") != std::string::npos);
    CHECK(
        get(p, "/ratelimit/dashboard/?days=abc", bearer(staff_token)).body().find("Last 7 days") !=
        std::string::npos);
    CHECK(get(p, "/ratelimit/dashboard/?days=-5", bearer(staff_token)).body().find("Last 1 day<") !=
          std::string::npos);
    CHECK(std::string(get(p, "/ratelimit/dashboard/offenders.csv?days=0",
                          bearer(staff_token))[http::field::content_disposition])
              .find("offenders-1d.csv") != std::string::npos);
}

TEST_CASE("staff requests other than GET are refused with 405", "[beast][dashboard]") {
    srl::ring_buffer_sink_mt sink(10);
    const staff_dashboard dash(ring_source(sink), sb::staff_token_authorizer(staff_token));
    srl_test::dashboard_server server(dash);
    const auto res =
        fetch(server.port(), http::verb::post, "/ratelimit/dashboard/", bearer(staff_token), "a=1");
    CHECK(res.result_int() == 405);
    CHECK(res[http::field::allow] == "GET");
    // Non-staff get the 403 whatever the method.
    CHECK(fetch(server.port(), http::verb::post, "/ratelimit/dashboard/", {}, "a=1").result_int() ==
          403);
}

TEST_CASE("the page template and the prefix can be replaced", "[beast][dashboard]") {
    srl::ring_buffer_sink_mt sink(100);
    fill(sink);
    auto renderer = [](const sb::dashboard_context& c) {
        std::string s = "<p>custom " + std::to_string(c.window.blocked) + "</p>";
        for (const auto& o : c.top_offenders)
            s += "<a href=\"" + c.html(c.offender_url(o.key)) + "\">" + c.html(o.key) + "</a>";
        return s;
    };
    sb::dashboard_options opt;
    opt.prefix = "/admin/limits/";
    const sb::dashboard<ring_source_t, sb::staff_token_authorizer, decltype(renderer)> dash(
        ring_source(sink), sb::staff_token_authorizer(staff_token), opt, renderer);
    srl_test::dashboard_server server(dash);
    const auto res = get(server.port(), "/admin/limits/dashboard/?days=30", bearer(staff_token));
    REQUIRE(res.result_int() == 200);
    CHECK(res.body().rfind("<p>custom 10</p>", 0) == 0);
    CHECK(res.body().find("href=\"/admin/limits/dashboard/offender/?key=") != std::string::npos);
    CHECK(res.body().find(script_payload) == std::string::npos);
    require_security_headers(res);
    CHECK(get(server.port(), "/ratelimit/dashboard/", bearer(staff_token)).body() == "app");
}

TEST_CASE("bad dashboard configuration is rejected with a message naming it",
          "[beast][dashboard]") {
    srl::ring_buffer_sink_mt sink(10);
    sb::dashboard_options opt;
    opt.prefix = "ratelimit";
    CHECK_THROWS_WITH(
        (sb::dashboard<ring_source_t>(ring_source(sink), {}, opt)),
        Catch::Contains("prefix must start and end with '/'") && Catch::Contains("ratelimit"));
    opt.prefix = "/a\"b/";
    CHECK_THROWS_AS((sb::dashboard<ring_source_t>(ring_source(sink), {}, opt)), srl::config_error);
    CHECK_THROWS_WITH(sb::staff_token_authorizer("short"), Catch::Contains("8 to 512"));
    CHECK_THROWS_WITH(sb::staff_token_authorizer("has;semicolon"),
                      Catch::Contains("visible ASCII"));
    CHECK_THROWS_WITH(sb::staff_token_authorizer(std::vector<std::string>{}),
                      Catch::Contains("at least one"));
}

TEST_CASE("a failing data source gives 503 without details", "[beast][dashboard]") {
    auto broken = sb::event_range_source{
        []() -> std::vector<srl::event> { throw std::runtime_error("db password=x"); }};
    const sb::dashboard<decltype(broken), sb::staff_token_authorizer> dash(
        broken, sb::staff_token_authorizer(staff_token));
    srl_test::dashboard_server server(dash);
    const auto res = get(server.port(), "/ratelimit/dashboard/", bearer(staff_token));
    CHECK(res.result_int() == 503);
    CHECK(res.body() == "Service Unavailable");
    require_security_headers(res);
}

TEST_CASE("parse_days follows the days table", "[beast][dashboard]") {
    CHECK(sb::parse_days(std::nullopt) == 7);
    CHECK(sb::parse_days("") == 7);
    CHECK(sb::parse_days("abc") == 7);
    CHECK(sb::parse_days("7.5") == 7);
    CHECK(sb::parse_days("+") == 7);
    CHECK(sb::parse_days(" 3") == 7);
    CHECK(sb::parse_days("0") == 1);
    CHECK(sb::parse_days("-5") == 1);
    CHECK(sb::parse_days("+30") == 30);
    CHECK(sb::parse_days("400") == 365);
    CHECK(sb::parse_days("365") == 365);
}

TEST_CASE("escaping helpers cover their contexts", "[beast][dashboard]") {
    CHECK(sb::detail::html_escape("<a href=\"x\" title='y'>&`</a>") ==
          "&lt;a href=&quot;x&quot; title=&#39;y&#39;&gt;&amp;&#96;&lt;/a&gt;");
    CHECK(sb::detail::html_escape(std::string("a\0b", 3)) ==
          "a\xEF\xBF\xBD"
          "b");
    CHECK(sb::detail::query_component("a b&c=d+e/f?#%~") == "a%20b%26c%3Dd%2Be%2Ff%3F%23%25~");
    CHECK(sb::detail::constant_time_equals("abcdefgh", "abcdefgh"));
    CHECK(!sb::detail::constant_time_equals("abcdefg", "abcdefgh"));
    CHECK(!sb::detail::constant_time_equals("abcdefghi", "abcdefgh"));
    CHECK(!sb::detail::constant_time_equals("", "abcdefgh"));
    CHECK(!sb::detail::constant_time_equals("abcdefgX", "abcdefgh"));
}

TEST_CASE("the traffic timeline adds up to the traffic summary", "[beast][dashboard][analytics]") {
    using namespace std::chrono;
    for (const auto offset : {minutes(0), minutes(17), minutes(60 * 7 + 3)}) {
        const srl::event_time now = srl::event_time{} + hours(24 * 20000) + offset;
        INFO("now offset " << offset.count() << " min");
        std::vector<srl::event> events;
        for (int i = 0; i < 500; ++i)
            events.push_back(
                srl::make_event(now - minutes(i * 37), "k", "/p", "GET", i % 3 != 0, 1, 1));
        events.push_back(
            srl::make_event(now + seconds(5), "k", "/p", "GET", false, 1, 1));  // clock skew
        events.push_back(
            srl::make_event(now - hours(24), "k", "/p", "GET", true, 1, 1));  // on the cutoff
        for (const int days : {1, 2, 7}) {
            const auto width = srl::default_timeline_width(days);
            const auto layout = srl::timeline_layout::make(now, days, width);
            const auto t = srl::get_traffic_timeline(events, days, hours(0), now);
            REQUIRE(t.size() == layout.buckets);
            CHECK(t.size() == static_cast<std::size_t>(days * 24 / width.count() + 1));
            const auto s = srl::get_traffic_summary(events, days, now);
            std::int64_t allowed = 0, blocked = 0;
            for (const auto& b : t) {
                allowed += b.allowed;
                blocked += b.blocked;
            }
            CHECK(allowed == s.allowed);
            CHECK(blocked == s.blocked);
            CHECK(t.front().start == srl::window_start(now, days));
            for (std::size_t i = 1; i < t.size(); ++i) {
                CHECK(t[i].start.time_since_epoch() % duration_cast<microseconds>(width) ==
                      microseconds(0));
                CHECK(t[i].start > t[i - 1].start);
            }
        }
        const auto day = srl::get_traffic_timeline(events, 1, hours(1), now);
        CHECK(day.front().allowed >= 1);  // the event on the cutoff is in the first bucket
        CHECK(day.back().blocked >= 1);   // the skewed one in the last
    }
    const srl::event_time now = srl::event_time{} + hours(24 * 20000);
    std::vector<srl::event> none;
    CHECK_THROWS_AS(srl::get_traffic_timeline(none, 0, hours(1), now), srl::config_error);
    CHECK_THROWS_AS(srl::get_traffic_timeline(none, 1, hours(24 * 400), now), srl::config_error);
}

TEST_CASE("the SVG chart draws one stacked bar per non-empty bucket", "[beast][dashboard]") {
    using namespace std::chrono;
    std::vector<srl::traffic_bucket> t(4);
    for (std::size_t i = 0; i < t.size(); ++i)
        t[i].start = srl::event_time{} + hours(static_cast<int>(i));
    t[1] = {t[1].start, 10, 0};
    t[3] = {t[3].start, 5, 5};
    const std::string svg = sb::render_traffic_svg(t);
    CHECK(svg.rfind("<svg xmlns=\"http://www.w3.org/2000/svg\"", 0) == 0);
    CHECK(svg.find("</svg>") == svg.size() - 6);
    auto count = [&](const std::string& what) {
        std::size_t n = 0;
        for (auto p = svg.find(what); p != std::string::npos; p = svg.find(what, p + 1)) ++n;
        return n;
    };
    CHECK(count("class=\"allowed\"") == 2);
    CHECK(count("class=\"blocked\"") == 1);
    CHECK(svg.find("1970-01-01 03:00 UTC: 5 allowed, 0 degraded, 5 blocked") != std::string::npos);
    CHECK(svg.find("style=") == std::string::npos);
}

namespace {

// Degraded decisions next to allowed and blocked ones, all in the last few hours.
std::vector<srl::event> mixed_outcomes(srl::event_time now) {
    using namespace std::chrono;
    std::vector<srl::event> v;
    for (int i = 0; i < 4; ++i)
        v.push_back(srl::make_event(now - minutes(10), "ip:10.9.9.9", "/a", "GET",
                                    srl::outcome_kind::degraded, 0, 5));
    for (int i = 0; i < 3; ++i)
        v.push_back(srl::make_event(now - minutes(70), "ip:10.9.9.9", "/a", "GET",
                                    srl::outcome_kind::blocked, 9, 5));
    for (int i = 0; i < 2; ++i)
        v.push_back(srl::make_event(now - minutes(70), "ip:10.9.9.9", "/a", "GET",
                                    srl::outcome_kind::allowed, 1, 5));
    v.push_back(srl::make_event(now - minutes(130), "ip:10.9.9.9", "/b", "GET",
                                srl::outcome_kind::shadow_blocked, 9, 5));
    return v;
}

struct throwing_authorizer {
    bool is_staff(const http::request_header<>&) const {
        throw std::runtime_error("session store down");
    }
};

std::string csp_nonce(const std::string& csp, std::string_view directive) {
    const auto d = csp.find(directive);
    if (d == std::string::npos) return {};
    const auto n = csp.find("'nonce-", d);
    if (n == std::string::npos) return {};
    return csp.substr(n + 7, csp.find('\'', n + 7) - (n + 7));
}

}  // namespace

TEST_CASE("the timeline is hourly up to two days and daily beyond", "[beast][dashboard]") {
    using namespace std::chrono;
    CHECK(srl::default_timeline_width(1) == hours(1));
    CHECK(srl::default_timeline_width(2) == hours(1));
    CHECK(srl::default_timeline_width(3) == hours(24));
    CHECK(srl::default_timeline_width(365) == hours(24));
    const srl::event_time now = srl::event_time{} + hours(24 * 20000) + minutes(17);
    const std::vector<srl::event> none;
    CHECK(srl::get_traffic_timeline(none, 2, hours(0), now).size() == 49);
    CHECK(srl::get_traffic_timeline(none, 3, hours(0), now).size() == 4);

    srl::ring_buffer_sink_mt sink(1000);
    fill(sink);
    const staff_dashboard dash(ring_source(sink), sb::staff_token_authorizer(staff_token));
    srl_test::dashboard_server server(dash);
    for (const auto& [days, bucket, count] :
         {std::tuple{1, "hour", 25u}, std::tuple{2, "hour", 49u}, std::tuple{3, "day", 4u},
          std::tuple{30, "day", 31u}}) {
        INFO("days " << days);
        const auto res =
            get(server.port(), "/ratelimit/dashboard/timeline.json?days=" + std::to_string(days),
                bearer(staff_token));
        REQUIRE(res.result_int() == 200);
        const auto v = boost::json::parse(res.body()).as_object();
        CHECK(v.at("bucket").as_string() == bucket);
        CHECK(v.at("buckets").as_array().size() == count);
    }
}

TEST_CASE("degraded events are a series of their own in the timeline",
          "[beast][dashboard][analytics]") {
    using namespace std::chrono;
    const srl::event_time now = srl::event_time{} + hours(24 * 20000) + minutes(30);
    const auto events = mixed_outcomes(now);
    const auto t = srl::get_traffic_timeline(events, 1, hours(1), now);
    const auto s = srl::get_traffic_summary(events, 1, now);
    std::int64_t allowed = 0, blocked = 0, degraded = 0, total = 0;
    for (const auto& b : t) {
        allowed += b.allowed;
        blocked += b.blocked;
        degraded += b.degraded;
        total += b.total();
    }
    CHECK(degraded == 4);
    CHECK(blocked == 4);  // shadow-blocked counts as blocked
    CHECK(allowed == 2);
    CHECK(degraded == s.degraded);
    CHECK(blocked == s.blocked);
    CHECK(allowed == s.allowed);
    CHECK(total == s.total);
    CHECK(t.back().degraded == 4);
    CHECK(t.back().allowed == 0);

    // The event range source gives the same, and the page shows the series.
    const auto source = sb::event_range_source{[&] { return events; }};
    CHECK(source.timeline(1, hours(1), now) == t);
    const std::string svg = sb::render_traffic_svg(t);
    CHECK(svg.find("class=\"degraded\"") != std::string::npos);
    CHECK(svg.find(">degraded</text>") != std::string::npos);  // the legend
    CHECK(svg.find("Allowed 2, degraded 4, blocked 4") != std::string::npos);
    CHECK(svg.find(": 0 allowed, 4 degraded, 0 blocked</title>") != std::string::npos);
    CHECK(svg.find("aria-label=\"Allowed, degraded and blocked requests over time\"") !=
          std::string::npos);
}

TEST_CASE("timeline.json has its exact shape, is staff only and follows the days rule",
          "[beast][dashboard]") {
    using namespace std::chrono;
    const auto events = mixed_outcomes(srl::event_clock_now());
    auto source = sb::event_range_source{[&] { return events; }};
    const sb::dashboard<decltype(source), sb::staff_token_authorizer> dash(
        source, sb::staff_token_authorizer(staff_token));
    srl_test::dashboard_server server(dash);
    const auto p = server.port();
    const auto res = get(p, "/ratelimit/dashboard/timeline.json?days=1", bearer(staff_token));
    REQUIRE(res.result_int() == 200);
    CHECK(res[http::field::content_type] == "application/json");
    require_security_headers(res);
    const std::string& b = res.body();
    CHECK(b.rfind("{\"days\":1,\"bucket\":\"hour\",\"buckets\":[{\"start\":\"", 0) == 0);
    const auto v = boost::json::parse(b).as_object();
    std::vector<std::string> keys;
    for (const auto& kv : v) keys.emplace_back(kv.key());
    CHECK(keys == std::vector<std::string>{"days", "bucket", "buckets"});
    const auto& buckets = v.at("buckets").as_array();
    REQUIRE(buckets.size() == 25);
    std::int64_t total = 0, blocked = 0, degraded = 0;
    for (const auto& e : buckets) {
        const auto& o = e.as_object();
        std::vector<std::string> bk;
        for (const auto& kv : o) bk.emplace_back(kv.key());
        CHECK(bk == std::vector<std::string>{"start", "total", "blocked", "degraded"});
        const std::string start(o.at("start").as_string());
        CHECK(start.size() == 24);  // YYYY-MM-DDTHH:MM:SS.mmmZ
        CHECK(start[10] == 'T');
        CHECK(start.back() == 'Z');
        total += o.at("total").as_int64();
        blocked += o.at("blocked").as_int64();
        degraded += o.at("degraded").as_int64();
    }
    CHECK(total == 10);
    CHECK(blocked == 4);
    CHECK(degraded == 4);
    // Every bucket after the first starts on a whole hour.
    CHECK(std::string(buckets.at(1).as_object().at("start").as_string()).substr(13) ==
          ":00:00.000Z");

    CHECK(boost::json::parse(
              get(p, "/ratelimit/dashboard/timeline.json?days=400", bearer(staff_token)).body())
              .as_object()
              .at("days")
              .as_int64() == 365);
    CHECK(boost::json::parse(
              get(p, "/ratelimit/dashboard/timeline.json?days=abc", bearer(staff_token)).body())
              .as_object()
              .at("days")
              .as_int64() == 7);
    CHECK(boost::json::parse(
              get(p, "/ratelimit/dashboard/timeline.json?days=-3", bearer(staff_token)).body())
              .as_object()
              .at("days")
              .as_int64() == 1);
    const auto anon = get(p, "/ratelimit/dashboard/timeline.json");
    const auto wrong = get(p, "/ratelimit/dashboard/timeline.json", bearer("not-the-staff-token"));
    for (const auto* r : {&anon, &wrong}) {
        CHECK(r->result_int() == 403);
        CHECK(r->body() == "Forbidden");
    }
}

TEST_CASE("live refresh adds one nonce'd external script; without it there is none",
          "[beast][dashboard]") {
    srl::ring_buffer_sink_mt sink(1000);
    fill(sink);
    {
        const staff_dashboard dash(ring_source(sink), sb::staff_token_authorizer(staff_token));
        srl_test::dashboard_server server(dash);
        const auto page = get(server.port(), "/ratelimit/dashboard/", bearer(staff_token));
        REQUIRE(page.result_int() == 200);
        require_security_headers(page);  // no script-src at all
        CHECK(page.body().find("<script") == std::string::npos);
        CHECK(page.body().find("data-refresh-ms") == std::string::npos);
        CHECK(!dash.matches("/ratelimit/dashboard/live.js"));
        CHECK(
            get(server.port(), "/ratelimit/dashboard/live.js", bearer(staff_token)).result_int() ==
            404);
    }
    sb::dashboard_options opt;
    opt.live_refresh = true;
    opt.live_refresh_interval = std::chrono::milliseconds(1500);
    const staff_dashboard dash(ring_source(sink), sb::staff_token_authorizer(staff_token), opt);
    srl_test::dashboard_server server(dash);
    const auto page = get(server.port(), "/ratelimit/dashboard/?days=2", bearer(staff_token));
    REQUIRE(page.result_int() == 200);
    const std::string csp(page["Content-Security-Policy"]);
    INFO("CSP: " << csp);
    CHECK(csp.find("unsafe-inline") == std::string::npos);
    CHECK(csp.find("connect-src 'self'") != std::string::npos);
    const std::string nonce = csp_nonce(csp, "script-src");
    REQUIRE(nonce.size() >= 16);
    CHECK(nonce != csp_nonce(csp, "style-src"));
    const std::string& b = page.body();
    CHECK(b.find("<script src=\"/ratelimit/dashboard/live.js\" nonce=\"" + nonce +
                 "\" defer></script>") != std::string::npos);
    std::size_t scripts = 0;
    for (auto at = b.find("<script"); at != std::string::npos; at = b.find("<script", at + 1))
        ++scripts;
    CHECK(scripts == 1);
    CHECK(b.find("data-timeline-url=\"/ratelimit/dashboard/timeline.json?days=2\"") !=
          std::string::npos);
    CHECK(b.find("data-refresh-ms=\"1500\"") != std::string::npos);

    const auto js = get(server.port(), "/ratelimit/dashboard/live.js", bearer(staff_token));
    REQUIRE(js.result_int() == 200);
    CHECK(js[http::field::content_type] == "text/javascript");
    CHECK(js["X-Content-Type-Options"] == "nosniff");
    CHECK(js["Cache-Control"] == "no-store");
    CHECK(js.body().find("fetch(url") != std::string::npos);
    CHECK(js.body().find("innerHTML") == std::string::npos);
    CHECK(js.body().find("eval(") == std::string::npos);
    CHECK(get(server.port(), "/ratelimit/dashboard/live.js").result_int() == 403);

    opt.live_refresh_interval = std::chrono::milliseconds(10);
    CHECK_THROWS_WITH(
        staff_dashboard(ring_source(sink), sb::staff_token_authorizer(staff_token), opt),
        Catch::Contains("live_refresh_interval"));
}

TEST_CASE("the offender page shows the drill-down escaped, with outcomes and the JSON link",
          "[beast][dashboard]") {
    srl::ring_buffer_sink_mt sink(1000);
    fill(sink);
    for (const auto& e : mixed_outcomes(srl::event_clock_now())) sink.record(e);
    const staff_dashboard dash(ring_source(sink), sb::staff_token_authorizer(staff_token));
    srl_test::dashboard_server server(dash);
    const auto p = server.port();

    const auto res =
        get(p, "/ratelimit/dashboard/offender.html?key=ip%3A10.9.9.9&days=1", bearer(staff_token));
    REQUIRE(res.result_int() == 200);
    CHECK(res[http::field::content_type] == "text/html; charset=utf-8");
    require_security_headers(res);
    const std::string& b = res.body();
    CHECK(b.find("<code id=\"offender-key\">ip:10.9.9.9</code>") != std::string::npos);
    CHECK(b.find("<tr><th>Total</th><td class=\"n\">10</td></tr>") != std::string::npos);
    CHECK(b.find("<tr><th>Degraded</th><td class=\"n\">4</td></tr>") != std::string::npos);
    CHECK(b.find("<tr><th>Blocked</th><td class=\"n\">4</td></tr>") != std::string::npos);
    CHECK(b.find("id=\"json-link\" "
                 "href=\"/ratelimit/dashboard/offender/?key=ip%3A10.9.9.9&amp;days=1\"") !=
          std::string::npos);
    CHECK(b.find("<td class=\"outcome-degraded\">degraded</td>") != std::string::npos);
    CHECK(b.find("<td class=\"outcome-shadow_blocked\">shadow_blocked</td>") != std::string::npos);
    CHECK(b.find("First seen") != std::string::npos);
    CHECK(b.find("<script") == std::string::npos);

    const std::string hostile = std::string("user:") + img_payload;
    const auto h =
        get(p, "/ratelimit/dashboard/offender.html?key=" + sb::detail::query_component(hostile),
            bearer(staff_token));
    REQUIRE(h.result_int() == 200);
    CHECK(h.body().find("<img") == std::string::npos);
    CHECK(h.body().find(script_payload) == std::string::npos);
    CHECK(h.body().find("user:&quot;&gt;&lt;img src=x onerror=alert(1)&gt;") != std::string::npos);
    CHECK(h.body().find("<code>&lt;script&gt;alert(1)&lt;/script&gt;</code>") !=
          std::string::npos);  // its path
    CHECK(h.body().find(
              "?key=user%3A%22%3E%3Cimg%20src%3Dx%20onerror%3Dalert%281%29%3E&amp;days=7") !=
          std::string::npos);

    for (const char* t :
         {"/ratelimit/dashboard/offender.html", "/ratelimit/dashboard/offender.html?key=&days=3"}) {
        INFO(t);
        const auto bad = get(p, t, bearer(staff_token));
        CHECK(bad.result_int() == 400);
        CHECK(bad[http::field::content_type] == "text/html; charset=utf-8");
        CHECK(bad.body().find("?key=") != std::string::npos);
        require_security_headers(bad);
    }
    const auto anon = get(p, "/ratelimit/dashboard/offender.html?key=ip%3A10.9.9.9");
    CHECK(anon.result_int() == 403);
    CHECK(anon.body() == "Forbidden");
}

TEST_CASE("health answers 200 or 503, with detail for staff only, and survives a throwing check",
          "[beast][dashboard]") {
    srl::ring_buffer_sink_mt sink(10);
    SECTION("without a callable the process reports itself up") {
        const staff_dashboard dash(ring_source(sink), sb::staff_token_authorizer(staff_token));
        srl_test::dashboard_server server(dash);
        const auto anon = get(server.port(), "/ratelimit/health");
        CHECK(anon.result_int() == 200);
        CHECK(anon.body() == "{\"status\":\"ok\"}");
        CHECK(anon[http::field::content_type] == "application/json");
        CHECK(anon["Cache-Control"] == "no-store");
        CHECK(get(server.port(), "/ratelimit/health", bearer(staff_token)).body() ==
              "{\"status\":\"ok\",\"checks\":[]}");
        CHECK(fetch(server.port(), http::verb::post, "/ratelimit/health", {}, "a=1").result_int() ==
              405);
    }
    SECTION("the report decides the status; anonymous callers see no check") {
        auto healthy = std::make_shared<std::atomic<bool>>(true);
        sb::dashboard_options opt;
        opt.health = [healthy] {
            srl::health_report r;
            r.add("database", healthy->load(),
                  healthy->load() ? "reachable" : "connection refused <10.0.0.5>");
            return r;
        };
        const staff_dashboard dash(ring_source(sink), sb::staff_token_authorizer(staff_token), opt);
        srl_test::dashboard_server server(dash);
        auto staff = get(server.port(), "/ratelimit/health", bearer(staff_token));
        CHECK(staff.result_int() == 200);
        CHECK(staff.body() ==
              "{\"status\":\"ok\",\"checks\":[{\"name\":\"database\",\"ok\":true,\"detail\":"
              "\"reachable\"}]}");
        CHECK(get(server.port(), "/ratelimit/health").body() == "{\"status\":\"ok\"}");
        *healthy = false;
        const auto anon = get(server.port(), "/ratelimit/health");
        CHECK(anon.result_int() == 503);
        CHECK(anon.body() == "{\"status\":\"unhealthy\"}");
        CHECK(anon["Cache-Control"] == "no-store");
        staff = get(server.port(), "/ratelimit/health", bearer(staff_token));
        CHECK(staff.result_int() == 503);
        CHECK(staff.body().find("connection refused \\u003c10.0.0.5\\u003e") != std::string::npos);
        CHECK(get(server.port(), "/ratelimit/health", bearer("not-the-staff-token")).body() ==
              "{\"status\":\"unhealthy\"}");
    }
    SECTION("a throwing callable is a 503 with a generic body") {
        sb::dashboard_options opt;
        opt.health = []() -> srl::health_report { throw std::runtime_error("password=hunter2"); };
        const staff_dashboard dash(ring_source(sink), sb::staff_token_authorizer(staff_token), opt);
        srl_test::dashboard_server server(dash);
        for (const auto& headers : {srl_test::header_list{}, bearer(staff_token)}) {
            const auto res = get(server.port(), "/ratelimit/health", headers);
            CHECK(res.result_int() == 503);
            CHECK(res.body().find("hunter2") == std::string::npos);
            CHECK(res.body().rfind("{\"status\":\"unhealthy\"", 0) == 0);
        }
        CHECK(get(server.port(), "/ratelimit/health").result_int() == 503);  // still serving
    }
}

TEST_CASE("metrics are served to staff bearers at an absolute path, 404 without a callable",
          "[beast][dashboard]") {
    srl::ring_buffer_sink_mt sink(10);
    {
        const staff_dashboard dash(ring_source(sink), sb::staff_token_authorizer(staff_token));
        CHECK(!dash.matches("/metrics"));
        srl_test::dashboard_server server(dash);
        CHECK(get(server.port(), "/metrics", bearer(staff_token)).result_int() == 404);
        staff_dashboard::request_type req{http::verb::get, "/metrics", 11};
        req.set(http::field::authorization, std::string("Bearer ") + staff_token);
        CHECK(dash.handle(req).result_int() == 404);
    }
    const std::string text =
        "# TYPE ratelimit_requests_total counter\nratelimit_requests_total 3\n";
    sb::dashboard_options opt;
    opt.metrics = [&text] { return text; };
    {
        const staff_dashboard dash(ring_source(sink), sb::staff_token_authorizer(staff_token), opt);
        srl_test::dashboard_server server(dash);
        const auto p = server.port();
        const auto ok = get(p, "/metrics", bearer(staff_token));
        REQUIRE(ok.result_int() == 200);
        CHECK(ok.body() == text);
        CHECK(ok[http::field::content_type] == "text/plain; version=0.0.4; charset=utf-8");
        CHECK(ok["Cache-Control"] == "no-store");
        CHECK(get(p, "/metrics", {{"Authorization", std::string("bearer  ") + staff_token}})
                  .result_int() == 200);
        const auto anon = get(p, "/metrics");
        for (const auto& res :
             {anon, get(p, "/metrics", bearer("not-the-staff-token")),
              get(p, "/metrics", {{"Cookie", std::string("srl_staff=") + staff_token}}),
              get(p, "/metrics", bearer(std::string(staff_token) + "x")),
              get(p, "/metrics", {{"Authorization", std::string("Basic ") + staff_token}}),
              get(p, std::string("/metrics?token=") + staff_token),
              get(p, std::string("/metrics?access_token=") + staff_token)}) {
            CHECK(res.result_int() == 403);
            CHECK(res.body() == anon.body());
        }
        CHECK(get(p, "/ratelimit/metrics", bearer(staff_token)).body() == "app");
    }
    opt.metrics_path = "/internal/prometheus";
    {
        const staff_dashboard dash(ring_source(sink), sb::staff_token_authorizer(staff_token), opt);
        srl_test::dashboard_server server(dash);
        CHECK(get(server.port(), "/internal/prometheus", bearer(staff_token)).body() == text);
        CHECK(get(server.port(), "/metrics", bearer(staff_token)).body() == "app");
    }
    opt.metrics_path.clear();
    CHECK(!staff_dashboard(ring_source(sink), sb::staff_token_authorizer(staff_token), opt)
               .matches("/metrics"));
    opt.metrics_path = "metrics";
    CHECK_THROWS_WITH(
        staff_dashboard(ring_source(sink), sb::staff_token_authorizer(staff_token), opt),
        Catch::Contains("metrics_path"));
    opt.metrics_path = "/metrics";
    opt.metrics = []() -> std::string { throw std::runtime_error("registry locked"); };
    const staff_dashboard dash(ring_source(sink), sb::staff_token_authorizer(staff_token), opt);
    srl_test::dashboard_server server(dash);
    const auto res = get(server.port(), "/metrics", bearer(staff_token));
    CHECK(res.result_int() == 503);
    CHECK(res.body() == "Service Unavailable");
}

TEST_CASE("an authorizer that throws gives 503 and never takes the server down",
          "[beast][dashboard]") {
    srl::ring_buffer_sink_mt sink(100);
    fill(sink);
    const sb::dashboard<ring_source_t, throwing_authorizer> dash(ring_source(sink));
    sb::dashboard<ring_source_t, throwing_authorizer>::request_type req{
        http::verb::get, "/ratelimit/dashboard/", 11};
    CHECK(dash.handle(req).result_int() == 503);
    srl_test::dashboard_server server(dash);  // async_handle on a worker pool
    for (const char* t :
         {"/ratelimit/dashboard/", "/ratelimit/dashboard/offenders.csv",
          "/ratelimit/dashboard/timeline.json", "/ratelimit/dashboard/offender.html?key=k"}) {
        INFO(t);
        const auto res = get(server.port(), t);
        CHECK(res.result_int() == 503);
        CHECK(res.body() == "Service Unavailable");
        CHECK(res.body().find("session store") == std::string::npos);
        require_security_headers(res);
    }
    // Health does not depend on the authorizer: the caller is treated as anonymous.
    const auto health = get(server.port(), "/ratelimit/health");
    CHECK(health.result_int() == 200);
    CHECK(health.body() == "{\"status\":\"ok\"}");
}

#if defined(SRL_TEST_DASHBOARD_SOCI)
#include <smart_ratelimit/beast/soci_dashboard_source.hpp>

#include "support/event_store_support.hpp"

namespace {

// Same events, two stores: the SQL source must give what the in-memory one gives.
void compare_sources(const std::string& url) {
    using namespace std::chrono;
    srl::ring_buffer_sink_mt sink(5000);
    fill(sink);
    const srl::event_time base = srl::event_clock_now();
    for (int i = 0; i < 1500; ++i)
        sink.record(srl::make_event(base - minutes(i * 53 + 7),
                                    "ip:10.0.0." + std::to_string(i % 17), i % 5 == 0 ? "/a" : "/b",
                                    "GET", i % 4 != 0, i % 9, 5));
    // Degraded and shadow-blocked decisions too: degraded is its own series, never blocked.
    for (int i = 0; i < 600; ++i)
        sink.record(srl::make_event(
            base - minutes(i * 131 + 11), "ip:10.0.0." + std::to_string(i % 7), "/c", "POST",
            i % 3 == 0 ? srl::outcome_kind::shadow_blocked : srl::outcome_kind::degraded, i % 9,
            5));
    srl::soci::event_store store(url);
    store.migrate();
    const auto events = sink.snapshot();
    const auto written = store.write_batch(events);
    REQUIRE(written.written == events.size());

    const auto mem = ring_source(sink);
    const sb::soci_event_store_source sql(store);
    const srl::event_time now = srl::event_clock_now();
    for (const int days : {1, 2, 7, 30, 90}) {
        INFO("days " << days);
        CHECK(sql.summary(days, now) == mem.summary(days, now));
        CHECK(sql.top_offenders(days, 20, now) == mem.top_offenders(days, 20, now));
        CHECK(sql.rule_hit_counts(days, 20, now) == mem.rule_hit_counts(days, 20, now));
        CHECK(sql.timeline(days, srl::default_timeline_width(days), now) ==
              mem.timeline(days, srl::default_timeline_width(days), now));
        CHECK(sql.drill_down("ip:10.0.0.3", days, 50, now) ==
              mem.drill_down("ip:10.0.0.3", days, 50, now));
    }
    CHECK(sql.summary(30, now).degraded > 0);
    CHECK(sql.drill_down("ip:10.0.0.3", 30, 50, now).degraded > 0);
    // With the hourly rollups the timeline reads them (plus the partial first hour).
    srl::soci::migrate_analytics(store);
    for (const int days : {1, 3, 7, 30}) {
        INFO("rollups, days " << days);
        for (const auto width : {std::chrono::hours(1), std::chrono::hours(24)})
            CHECK(sql.timeline(days, width, now) == mem.timeline(days, width, now));
        CHECK(sql.summary(days, now) == mem.summary(days, now));
    }
    std::int64_t degraded = 0;
    for (const auto& b : sql.timeline(30, std::chrono::hours(24), now)) degraded += b.degraded;
    CHECK(degraded == sql.summary(30, now).degraded);

    // And over the socket: the same CSV and drill-down from both dashboards.
    const sb::dashboard<sb::soci_event_store_source, sb::staff_token_authorizer> sql_dash(
        sql, sb::staff_token_authorizer(staff_token));
    const staff_dashboard mem_dash(ring_source(sink), sb::staff_token_authorizer(staff_token));
    srl_test::dashboard_server sql_server(sql_dash);
    srl_test::dashboard_server mem_server(mem_dash);
    for (const char* target : {"/ratelimit/dashboard/offenders.csv?days=30",
                               "/ratelimit/dashboard/offender/?key=ip%3A10.0.0.3&days=30"}) {
        const auto a = get(sql_server.port(), target, bearer(staff_token));
        const auto b = get(mem_server.port(), target, bearer(staff_token));
        CHECK(a.result_int() == 200);
        CHECK(a.body() == b.body());
    }
    const auto page = get(sql_server.port(), "/ratelimit/dashboard/?days=30", bearer(staff_token));
    CHECK(page.result_int() == 200);
    CHECK(page.body().find("rule%3Alogin%3Aip%3A203.0.113.5") != std::string::npos);
    CHECK(page.body().find(script_payload) == std::string::npos);
    CHECK(page.body().find("class=\"blocked\"") != std::string::npos);
}

}  // namespace

TEST_CASE("the SQLite store source gives the same dashboard as the in-memory one",
          "[beast][dashboard][soci]") {
    srl_test::temp_dir dir;
    compare_sources(dir.sqlite_url());
}

TEST_CASE("the PostgreSQL store source gives the same dashboard as the in-memory one",
          "[beast][dashboard][soci]") {
    srl_test::pg_database db("dashboard");
    if (!db) {
        WARN("SMART_RATELIMIT_TEST_PG_URL not set: PostgreSQL part skipped");
        return;
    }
    compare_sources(db.url());
}
#endif
