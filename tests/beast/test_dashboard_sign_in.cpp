// tests/beast/test_dashboard_sign_in.cpp
// The dashboard's sign-in, over a real loopback socket and through handle() with a
// manual clock: the cookie is a random server-side session id (never the staff
// token), sign-out revokes it, the form and the sign-out carry CSRF tokens, failed
// attempts are throttled per client, sessions expire and the table is bounded.
#include <catch2/catch.hpp>

#include <smart_ratelimit/beast/dashboard.hpp>
#include <smart_ratelimit/sinks/ring_buffer_sink.hpp>

#include "dashboard_test_server.hpp"

#include <atomic>
#include <cctype>
#include <chrono>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace srl = smart_ratelimit;
namespace sb = smart_ratelimit::beast;
using srl_test::fetch;
using srl_test::get;
namespace http = boost::beast::http;

namespace {

constexpr const char* staff_token = "s3cret-staff-token-0123";

auto ring_source(const srl::ring_buffer_sink_mt& sink) {
    return sb::event_range_source{[&sink] { return sink.snapshot(); }};
}

using ring_source_t = decltype(ring_source(std::declval<const srl::ring_buffer_sink_mt&>()));
using staff_dashboard = sb::dashboard<ring_source_t, sb::staff_token_authorizer>;
using response = http::response<http::string_body>;

/// The value of cookie `name` set by `res` ("" when none).
std::string set_cookie_value(const response& res, std::string_view name) {
    for (auto [it, end] = res.equal_range(http::field::set_cookie); it != end; ++it) {
        const std::string line(it->value());
        if (line.rfind(std::string(name) + "=", 0) == 0)
            return line.substr(name.size() + 1, line.find(';') - name.size() - 1);
    }
    return {};
}

/// The whole Set-Cookie line for cookie `name` ("" when none).
std::string set_cookie_line(const response& res, std::string_view name) {
    for (auto [it, end] = res.equal_range(http::field::set_cookie); it != end; ++it) {
        const std::string line(it->value());
        if (line.rfind(std::string(name) + "=", 0) == 0) return line;
    }
    return {};
}

/// The value of the hidden form field `name` in an HTML page ("" when none).
std::string hidden_field(const std::string& html, std::string_view name) {
    const std::string marker = "name=\"" + std::string(name) + "\" value=\"";
    const auto at = html.find(marker);
    if (at == std::string::npos) return {};
    const auto start = at + marker.size();
    return html.substr(start, html.find('"', start) - start);
}

/// What a browser does: fetch the form (keeping its CSRF cookie), post the token with
/// the form's hidden field. `extra` goes on both requests (e.g. X-Forwarded-For).
response sign_in(unsigned short port, const std::string& token,
                 const srl_test::header_list& extra = {},
                 const std::string& prefix = "/ratelimit/") {
    const auto form = get(port, prefix + "signin", extra);
    REQUIRE(form.result_int() == 200);
    srl_test::header_list headers = extra;
    const std::string csrf_cookie = set_cookie_value(form, "srl_staff_csrf");
    if (!csrf_cookie.empty()) headers.emplace_back("Cookie", "srl_staff_csrf=" + csrf_cookie);
    std::string body = "token=" + token;
    const std::string csrf = hidden_field(form.body(), "csrf");
    if (!csrf.empty()) body += "&csrf=" + csrf;
    return fetch(port, http::verb::post, prefix + "signin", headers, body);
}

srl_test::header_list session_cookie(const std::string& id) {
    return {{"Cookie", "srl_staff=" + id}};
}

}  // namespace

TEST_CASE("signing in sets a random session id as the cookie, never the staff token",
          "[beast][dashboard][sign-in]") {
    srl::ring_buffer_sink_mt sink(10);
    const staff_dashboard dash(ring_source(sink), sb::staff_token_authorizer(staff_token));
    srl_test::dashboard_server server(dash);
    const auto p = server.port();

    const auto form = get(p, "/ratelimit/signin");
    REQUIRE(form.result_int() == 200);
    CHECK(form.body().find("<form method=\"post\" action=\"/ratelimit/signin\">") !=
          std::string::npos);
    CHECK(form.body().find("name=\"token\"") != std::string::npos);
    CHECK(std::string(form["Content-Security-Policy"]).find("default-src 'none'") !=
          std::string::npos);
    CHECK(form["Cache-Control"] == "no-store");
    CHECK(form["X-Frame-Options"] == "DENY");

    // A wrong token, no token, a body over max_form_bytes: the anonymous 403, no cookie.
    const auto anon = get(p, "/ratelimit/dashboard/");
    const auto wrong = sign_in(p, "wrong-token-123");
    CHECK(wrong.result_int() == 403);
    CHECK(wrong.body() == anon.body());
    CHECK(set_cookie_value(wrong, "srl_staff").empty());
    const std::string csrf = set_cookie_value(form, "srl_staff_csrf");
    const srl_test::header_list csrf_cookie{{"Cookie", "srl_staff_csrf=" + csrf}};
    CHECK(fetch(p, http::verb::post, "/ratelimit/signin", csrf_cookie, "other=1&csrf=" + csrf)
              .result_int() == 403);
    CHECK(fetch(p, http::verb::post, "/ratelimit/signin", csrf_cookie,
                std::string("csrf=") + csrf + "&token=" + staff_token + std::string(5000, 'x'))
              .result_int() == 403);
    CHECK(fetch(p, http::verb::put, "/ratelimit/signin", csrf_cookie).result_int() == 405);

    const auto ok = sign_in(p, staff_token);
    REQUIRE(ok.result_int() == 303);
    CHECK(ok[http::field::location] == "/ratelimit/dashboard/");
    const std::string line = set_cookie_line(ok, "srl_staff");
    INFO("Set-Cookie: " << line);
    CHECK(line.find(staff_token) == std::string::npos);
    CHECK(line.find("; HttpOnly") != std::string::npos);
    CHECK(line.find("; SameSite=Strict") != std::string::npos);
    CHECK(line.find("; Path=/ratelimit/") != std::string::npos);
    CHECK(line.find("; Max-Age=28800") != std::string::npos);
    CHECK(line.find("Secure") == std::string::npos);
    const std::string id = set_cookie_value(ok, "srl_staff");
    CHECK(id.size() >= 32);  // at least 128 bits, hex or base64url
    CHECK(id.find_first_not_of("0123456789abcdef") == std::string::npos);

    const auto again = sign_in(p, staff_token);
    REQUIRE(again.result_int() == 303);
    CHECK(set_cookie_value(again, "srl_staff") != id);

    const auto page = get(p, "/ratelimit/dashboard/", {{"Cookie", "theme=dark; srl_staff=" + id}});
    CHECK(page.result_int() == 200);
    CHECK(page.body().find("action=\"/ratelimit/signout\"") != std::string::npos);
    CHECK(get(p, "/ratelimit/dashboard/offenders.csv", session_cookie(id)).result_int() == 200);
    CHECK(get(p, "/ratelimit/dashboard/", session_cookie(id + "0")).result_int() == 403);
    CHECK(get(p, "/ratelimit/dashboard/", session_cookie(id.substr(1))).result_int() == 403);
}

TEST_CASE("the staff token itself is no cookie: only a session id or a bearer token is staff",
          "[beast][dashboard][sign-in]") {
    srl::ring_buffer_sink_mt sink(10);
    sb::dashboard_options opt;
    opt.metrics = [] { return std::string("up 1\n"); };
    const staff_dashboard dash(ring_source(sink), sb::staff_token_authorizer(staff_token), opt);
    srl_test::dashboard_server server(dash);
    const auto p = server.port();
    const std::string raw = std::string("srl_staff=") + staff_token;
    CHECK(get(p, "/ratelimit/dashboard/", {{"Cookie", raw}}).result_int() == 403);
    CHECK(get(p, "/metrics", {{"Cookie", raw}}).result_int() == 403);
    CHECK(get(p, "/ratelimit/health", {{"Cookie", raw}}).body() == "{\"status\":\"ok\"}");
    // A Prometheus scrape needs no session.
    CHECK(get(p, "/metrics", {{"Authorization", std::string("Bearer ") + staff_token}}).body() ==
          "up 1\n");
}

TEST_CASE("signing out revokes the session: the old cookie replayed is refused",
          "[beast][dashboard][sign-in]") {
    srl::ring_buffer_sink_mt sink(10);
    const staff_dashboard dash(ring_source(sink), sb::staff_token_authorizer(staff_token));
    srl_test::dashboard_server server(dash);
    const auto p = server.port();

    const std::string id = set_cookie_value(sign_in(p, staff_token), "srl_staff");
    const std::string other = set_cookie_value(sign_in(p, staff_token), "srl_staff");
    const auto page = get(p, "/ratelimit/dashboard/", session_cookie(id));
    REQUIRE(page.result_int() == 200);
    const std::string csrf = hidden_field(page.body(), "csrf");

    const auto out =
        fetch(p, http::verb::post, "/ratelimit/signout", session_cookie(id), "csrf=" + csrf);
    CHECK(out.result_int() == 303);
    CHECK(out[http::field::location] == "/ratelimit/signin");
    CHECK(set_cookie_line(out, "srl_staff").find("srl_staff=; Path=/ratelimit/; Max-Age=0") == 0);

    // The browser forgot the cookie; someone who copied it gets nothing from it.
    CHECK(get(p, "/ratelimit/dashboard/", session_cookie(id)).result_int() == 403);
    CHECK(get(p, "/ratelimit/dashboard/offenders.csv", session_cookie(id)).result_int() == 403);
    // Another session is not affected.
    CHECK(get(p, "/ratelimit/dashboard/", session_cookie(other)).result_int() == 200);
}

TEST_CASE("a sign-in without the form's CSRF token, or with another one, opens no session",
          "[beast][dashboard][sign-in]") {
    srl::ring_buffer_sink_mt sink(10);
    const staff_dashboard dash(ring_source(sink), sb::staff_token_authorizer(staff_token));
    srl_test::dashboard_server server(dash);
    const auto p = server.port();

    const auto form = get(p, "/ratelimit/signin");
    REQUIRE(form.result_int() == 200);
    const std::string cookie = set_cookie_value(form, "srl_staff_csrf");
    const std::string field = hidden_field(form.body(), "csrf");
    REQUIRE(!field.empty());
    CHECK(cookie == field);
    CHECK(set_cookie_line(form, "srl_staff_csrf").find("; HttpOnly; SameSite=Strict") !=
          std::string::npos);
    CHECK(form.body().find("<input type=\"hidden\" name=\"csrf\" value=\"" + field + "\">") !=
          std::string::npos);

    const std::string token = std::string("token=") + staff_token;
    const srl_test::header_list with_cookie{{"Cookie", "srl_staff_csrf=" + cookie}};
    const std::string other(field.size(), field[0] == 'a' ? 'b' : 'a');
    for (const auto& [headers, body] : std::vector<std::pair<srl_test::header_list, std::string>>{
             {{}, token},                                          // neither
             {with_cookie, token},                                 // no field
             {{}, token + "&csrf=" + field},                       // no cookie
             {with_cookie, token + "&csrf=" + other},              // another field
             {with_cookie, token + "&csrf="},                      // an empty field
             {{{"Cookie", "srl_staff_csrf="}}, token + "&csrf="},  // both empty
             {{{"Cookie", "srl_staff_csrf=" + other}}, token + "&csrf=" + field}}) {
        INFO(body);
        const auto res = fetch(p, http::verb::post, "/ratelimit/signin", headers, body);
        CHECK(res.result_int() == 403);
        CHECK(res.body() == "Forbidden");
        CHECK(set_cookie_value(res, "srl_staff").empty());
    }
    const auto ok =
        fetch(p, http::verb::post, "/ratelimit/signin", with_cookie, token + "&csrf=" + field);
    CHECK(ok.result_int() == 303);
    CHECK(!set_cookie_value(ok, "srl_staff").empty());
}

TEST_CASE("sign-out needs the session's CSRF token and answers GET with 405",
          "[beast][dashboard][sign-in]") {
    srl::ring_buffer_sink_mt sink(10);
    const staff_dashboard dash(ring_source(sink), sb::staff_token_authorizer(staff_token));
    srl_test::dashboard_server server(dash);
    const auto p = server.port();

    const std::string id = set_cookie_value(sign_in(p, staff_token), "srl_staff");
    const std::string other = set_cookie_value(sign_in(p, staff_token), "srl_staff");
    const std::string other_csrf =
        hidden_field(get(p, "/ratelimit/dashboard/", session_cookie(other)).body(), "csrf");

    const auto get_out = get(p, "/ratelimit/signout", session_cookie(id));
    CHECK(get_out.result_int() == 405);
    CHECK(get_out[http::field::allow] == "POST");
    for (const std::string& body :
         {std::string("x=1"), std::string("csrf="), "csrf=" + other_csrf}) {
        INFO(body);
        const auto res = fetch(p, http::verb::post, "/ratelimit/signout", session_cookie(id), body);
        CHECK(res.result_int() == 403);
        CHECK(set_cookie_value(res, "srl_staff").empty());
    }
    CHECK(get(p, "/ratelimit/dashboard/", session_cookie(id)).result_int() == 200);
    CHECK(get(p, "/ratelimit/dashboard/", session_cookie(other)).result_int() == 200);
}

TEST_CASE("failed sign-ins are throttled per client, a correct token too, with Retry-After",
          "[beast][dashboard][sign-in]") {
    srl::ring_buffer_sink_mt sink(10);
    const staff_dashboard dash(ring_source(sink), sb::staff_token_authorizer(staff_token));
    srl_test::dashboard_server server(dash);
    const auto p = server.port();

    for (int i = 0; i < 5; ++i) CHECK(sign_in(p, "wrong-token-123").result_int() == 403);
    const auto throttled = sign_in(p, staff_token);
    CHECK(throttled.result_int() == 429);
    CHECK(set_cookie_value(throttled, "srl_staff").empty());
    const std::string retry(throttled[http::field::retry_after]);
    INFO("Retry-After: " << retry);
    CHECK(!retry.empty());
    CHECK(retry.find_first_not_of("0123456789") == std::string::npos);
    CHECK(sign_in(p, "wrong-token-123").result_int() == 429);
}

namespace {

using manual_dashboard = sb::dashboard<ring_source_t, sb::staff_token_authorizer,
                                       sb::default_dashboard_page, srl::manual_clock>;

srl::ip_address address(std::string_view text) { return srl::ip_address::parse(text).value(); }

manual_dashboard::request_type request(http::verb method, const std::string& target,
                                       const srl_test::header_list& headers = {},
                                       const std::string& body = {}) {
    manual_dashboard::request_type req{method, target, 11};
    for (const auto& [k, v] : headers) req.insert(k, v);
    req.body() = body;
    req.prepare_payload();
    return req;
}

/// The browser's sign-in through handle(req, peer), on the calling thread.
response sign_in(const manual_dashboard& dash, const std::string& token,
                 const srl::ip_address& peer, const srl_test::header_list& extra = {}) {
    const auto form = dash.handle(request(http::verb::get, "/ratelimit/signin", extra), peer);
    REQUIRE(form.result_int() == 200);
    srl_test::header_list headers = extra;
    headers.emplace_back("Cookie", "srl_staff_csrf=" + set_cookie_value(form, "srl_staff_csrf"));
    return dash.handle(request(http::verb::post, "/ratelimit/signin", headers,
                               "token=" + token + "&csrf=" + hidden_field(form.body(), "csrf")),
                       peer);
}

int status_with_session(const manual_dashboard& dash, const std::string& id) {
    return dash.handle(request(http::verb::get, "/ratelimit/dashboard/", session_cookie(id)))
        .result_int();
}

}  // namespace

TEST_CASE("the sign-in throttle counts failures per client address over a sliding minute",
          "[beast][dashboard][sign-in]") {
    using namespace std::chrono_literals;
    srl::ring_buffer_sink_mt sink(10);
    srl::manual_clock clock;
    const manual_dashboard dash(ring_source(sink), sb::staff_token_authorizer(staff_token), {}, {},
                                clock);
    const auto a = address("203.0.113.5"), b = address("198.51.100.7");

    // A correct token gives its attempt back: signing in often is not throttled.
    for (int i = 0; i < 8; ++i) CHECK(sign_in(dash, staff_token, a).result_int() == 303);

    for (int i = 0; i < 5; ++i) {
        CHECK(sign_in(dash, "wrong-token-123", a).result_int() == 403);
        clock.advance(1s);
    }
    // t = 5 s: the first failure (t = 0) counts until t = 60 s.
    auto refused = sign_in(dash, staff_token, a);
    CHECK(refused.result_int() == 429);
    CHECK(refused[http::field::retry_after] == "55");
    CHECK(set_cookie_value(refused, "srl_staff").empty());
    CHECK(refused.body() == "Too Many Requests");
    // Another client is not affected, nor is another address of the same /64 spared.
    CHECK(sign_in(dash, staff_token, b).result_int() == 303);

    clock.advance(54s);  // t = 59 s
    CHECK(sign_in(dash, staff_token, a).result_int() == 429);
    clock.advance(1s);  // t = 60 s: one failure has left the window
    CHECK(sign_in(dash, staff_token, a).result_int() == 303);
    CHECK(sign_in(dash, "wrong-token-123", a).result_int() == 403);
    CHECK(sign_in(dash, staff_token, a).result_int() == 429);

    // IPv6 clients are grouped by /64, as ip_key does.
    const auto v6 = address("2001:db8:1:2::1"), v6_same = address("2001:db8:1:2::ffff");
    for (int i = 0; i < 5; ++i) CHECK(sign_in(dash, "wrong-token-123", v6).result_int() == 403);
    CHECK(sign_in(dash, staff_token, v6_same).result_int() == 429);
    CHECK(sign_in(dash, staff_token, address("2001:db8:1:3::1")).result_int() == 303);
}

TEST_CASE("the sign-in throttle rate is configurable and follows trusted proxies",
          "[beast][dashboard][sign-in]") {
    using namespace std::chrono_literals;
    srl::ring_buffer_sink_mt sink(10);
    srl::manual_clock clock;
    sb::dashboard_options opt;
    opt.sign_in_rate = "2/h";
    opt.trusted_proxies = srl::cidr_list::from_strings(std::vector<std::string>{"10.0.0.0/8"});
    const manual_dashboard dash(ring_source(sink), sb::staff_token_authorizer(staff_token), opt, {},
                                clock);
    const auto proxy = address("10.1.2.3");
    const srl_test::header_list client_a{{"X-Forwarded-For", "203.0.113.5"}};
    const srl_test::header_list client_b{{"X-Forwarded-For", "203.0.113.6"}};
    CHECK(sign_in(dash, "wrong-token-123", proxy, client_a).result_int() == 403);
    CHECK(sign_in(dash, "wrong-token-123", proxy, client_a).result_int() == 403);
    const auto refused = sign_in(dash, staff_token, proxy, client_a);
    CHECK(refused.result_int() == 429);
    CHECK(refused[http::field::retry_after] == "3600");
    CHECK(sign_in(dash, staff_token, proxy, client_b).result_int() == 303);
    // An untrusted peer's X-Forwarded-For is not believed: the peer is the client.
    const auto stranger = address("192.0.2.1");
    CHECK(sign_in(dash, "wrong-token-123", stranger, client_b).result_int() == 403);
    CHECK(sign_in(dash, "wrong-token-123", stranger, client_b).result_int() == 403);
    CHECK(sign_in(dash, staff_token, stranger, client_b).result_int() == 429);
    CHECK(sign_in(dash, staff_token, proxy, client_b).result_int() == 303);
    clock.advance(1h);
    CHECK(sign_in(dash, staff_token, proxy, client_a).result_int() == 303);
}

TEST_CASE("without the socket peer, every sign-in attempt shares one budget",
          "[beast][dashboard][sign-in]") {
    srl::ring_buffer_sink_mt sink(10);
    srl::manual_clock clock;
    const manual_dashboard dash(ring_source(sink), sb::staff_token_authorizer(staff_token), {}, {},
                                clock);
    auto attempt = [&](const std::string& token, const std::string& client) {
        const srl_test::header_list xff{{"X-Forwarded-For", client}};
        const auto form = dash.handle(request(http::verb::get, "/ratelimit/signin", xff));
        const std::string csrf = hidden_field(form.body(), "csrf");
        return dash
            .handle(request(http::verb::post, "/ratelimit/signin",
                            {{"X-Forwarded-For", client}, {"Cookie", "srl_staff_csrf=" + csrf}},
                            "token=" + token + "&csrf=" + csrf))
            .result_int();
    };
    for (int i = 0; i < 5; ++i)
        CHECK(attempt("wrong-token-123", "203.0.113." + std::to_string(i)) == 403);
    CHECK(attempt(staff_token, "198.51.100.7") == 429);
    // With the peer, a client has its own budget.
    CHECK(sign_in(dash, staff_token, address("198.51.100.7")).result_int() == 303);
}

TEST_CASE("over the socket, throttled clients are told apart through a trusted proxy",
          "[beast][dashboard][sign-in]") {
    srl::ring_buffer_sink_mt sink(10);
    sb::dashboard_options opt;
    opt.trusted_proxies = srl::cidr_list::from_strings(std::vector<std::string>{"127.0.0.1/32"});
    const staff_dashboard dash(ring_source(sink), sb::staff_token_authorizer(staff_token), opt);
    srl_test::dashboard_server server(dash);
    const auto p = server.port();
    const srl_test::header_list a{{"X-Forwarded-For", "203.0.113.5"}};
    for (int i = 0; i < 5; ++i) CHECK(sign_in(p, "wrong-token-123", a).result_int() == 403);
    CHECK(sign_in(p, staff_token, a).result_int() == 429);
    CHECK(sign_in(p, staff_token, {{"X-Forwarded-For", "203.0.113.6"}}).result_int() == 303);
}

TEST_CASE("sessions end at cookie_max_age, after the idle timeout, and at revoke_all",
          "[beast][dashboard][sign-in]") {
    using namespace std::chrono_literals;
    srl::ring_buffer_sink_mt sink(10);
    srl::manual_clock clock;
    sb::dashboard_options opt;
    opt.cookie_max_age = 2h;
    opt.session_idle_timeout = 30min;
    const manual_dashboard dash(ring_source(sink), sb::staff_token_authorizer(staff_token), opt, {},
                                clock);
    const auto peer = address("203.0.113.5");
    const auto ok = sign_in(dash, staff_token, peer);
    CHECK(set_cookie_line(ok, "srl_staff").find("; Max-Age=7200;") != std::string::npos);
    const std::string busy = set_cookie_value(ok, "srl_staff");
    const std::string idle = set_cookie_value(sign_in(dash, staff_token, peer), "srl_staff");
    CHECK(dash.sessions().size() == 2);
    // Used every 29 minutes, `busy` lives until its two hours are up; `idle` does not.
    for (int i = 0; i < 4; ++i) {
        clock.advance(29min);
        CHECK(status_with_session(dash, busy) == 200);
    }
    CHECK(status_with_session(dash, idle) == 403);
    clock.advance(119min - 4 * 29min);  // 1 h 59 min after sign-in
    CHECK(status_with_session(dash, busy) == 200);
    clock.advance(1min);
    CHECK(status_with_session(dash, busy) == 403);
    CHECK(dash.sessions().size() == 0);

    const std::string one = set_cookie_value(sign_in(dash, staff_token, peer), "srl_staff");
    const std::string two = set_cookie_value(sign_in(dash, staff_token, peer), "srl_staff");
    CHECK(status_with_session(dash, one) == 200);
    dash.sessions().revoke_all();
    CHECK(status_with_session(dash, one) == 403);
    CHECK(status_with_session(dash, two) == 403);
}

TEST_CASE("a session cookie is staff for health and metrics too", "[beast][dashboard][sign-in]") {
    srl::ring_buffer_sink_mt sink(10);
    srl::manual_clock clock;
    sb::dashboard_options opt;
    opt.metrics = [] { return std::string("up 1\n"); };
    const manual_dashboard dash(ring_source(sink), sb::staff_token_authorizer(staff_token), opt, {},
                                clock);
    const std::string id =
        set_cookie_value(sign_in(dash, staff_token, address("203.0.113.5")), "srl_staff");
    CHECK(dash.handle(request(http::verb::get, "/ratelimit/health", session_cookie(id))).body() ==
          "{\"status\":\"ok\",\"checks\":[]}");
    CHECK(dash.handle(request(http::verb::get, "/metrics", session_cookie(id))).body() == "up 1\n");
    // A bearer token sees the page without a sign-out form: it has no session to end.
    const auto page =
        dash.handle(request(http::verb::get, "/ratelimit/dashboard/",
                            {{"Authorization", std::string("Bearer ") + staff_token}}));
    CHECK(page.result_int() == 200);
    CHECK(page.body().find("signout") == std::string::npos);
}

TEST_CASE("with secure_cookie and another prefix, both cookies are Secure and scoped to it",
          "[beast][dashboard][sign-in]") {
    srl::ring_buffer_sink_mt sink(10);
    sb::dashboard_options opt;
    opt.prefix = "/admin/limits/";
    opt.secure_cookie = true;
    opt.session_cookie = "staff_session";
    const staff_dashboard dash(ring_source(sink), sb::staff_token_authorizer(staff_token), opt);
    srl_test::dashboard_server server(dash);
    const auto p = server.port();
    const auto form = get(p, "/admin/limits/signin");
    const std::string csrf_line = set_cookie_line(form, "staff_session_csrf");
    INFO(csrf_line);
    CHECK(csrf_line.find("; Path=/admin/limits/signin; ") != std::string::npos);
    CHECK(csrf_line.find("; Secure") != std::string::npos);
    const std::string csrf = set_cookie_value(form, "staff_session_csrf");
    const auto ok = fetch(
        p, http::verb::post, "/admin/limits/signin", {{"Cookie", "staff_session_csrf=" + csrf}},
        std::string("token=") + staff_token + "&csrf=" + hidden_field(form.body(), "csrf"));
    REQUIRE(ok.result_int() == 303);
    CHECK(ok[http::field::location] == "/admin/limits/dashboard/");
    const std::string line = set_cookie_line(ok, "staff_session");
    INFO(line);
    CHECK(line.find("; Path=/admin/limits/; ") != std::string::npos);
    CHECK(line.find("; Secure") != std::string::npos);
    // The form's CSRF cookie is spent.
    CHECK(set_cookie_line(ok, "staff_session_csrf").find("Max-Age=0;") != std::string::npos);
    CHECK(get(p, "/admin/limits/dashboard/",
              {{"Cookie", "staff_session=" + set_cookie_value(ok, "staff_session")}})
              .result_int() == 200);
}

TEST_CASE("bad sign-in settings are refused with a message naming them",
          "[beast][dashboard][sign-in]") {
    using namespace std::chrono_literals;
    srl::ring_buffer_sink_mt sink(10);
    auto make = [&](sb::dashboard_options o) {
        return staff_dashboard(ring_source(sink), sb::staff_token_authorizer(staff_token),
                               std::move(o));
    };
    sb::dashboard_options o;
    o.sign_in_rate = "5 per minute";
    CHECK_THROWS_WITH(make(o), Catch::Contains("sign_in_rate") && Catch::Contains("5 per minute"));
    o = {};
    o.session_cookie = "a;b";
    CHECK_THROWS_WITH(make(o), Catch::Contains("session_cookie"));
    o.session_cookie = "a=b";
    CHECK_THROWS_AS(make(o), srl::config_error);
    o.session_cookie = "";
    CHECK_THROWS_AS(make(o), srl::config_error);
    o = {};
    o.max_sessions = 0;
    CHECK_THROWS_WITH(make(o), Catch::Contains("max_sessions"));
    o = {};
    o.cookie_max_age = 0s;
    CHECK_THROWS_WITH(make(o), Catch::Contains("cookie_max_age"));
    o = {};
    o.session_idle_timeout = -1s;
    CHECK_THROWS_WITH(make(o), Catch::Contains("idle"));
    // A dashboard without a sign-in form does not look at them.
    o.sign_in_rate = "junk";
    CHECK_NOTHROW(sb::dashboard<ring_source_t>(ring_source(sink), {}, o));
}

TEST_CASE("session ids are 48 hex digits from the system's CSPRNG, each one new",
          "[beast][sign-in]") {
    sb::staff_sessions<> sessions(sb::staff_session_options{5000});
    std::set<std::string> ids, tokens;
    for (int i = 0; i < 2000; ++i) {
        const auto s = sessions.create();
        CHECK(s.id.size() == 48);
        CHECK(s.id.find_first_not_of("0123456789abcdef") == std::string::npos);
        CHECK(s.csrf_token.size() == 32);
        CHECK(s.csrf_token.find_first_not_of("0123456789abcdef") == std::string::npos);
        ids.insert(s.id);
        tokens.insert(s.csrf_token);
        CHECK(sessions.find(s.id) == s.csrf_token);
    }
    CHECK(ids.size() == 2000);
    CHECK(tokens.size() == 2000);
    CHECK(sessions.size() == 2000);

    const std::string id = *ids.begin();
    std::string upper = id;
    for (auto& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    std::string flipped = id;
    flipped.back() = flipped.back() == '0' ? '1' : '0';
    for (const std::string& bad : {std::string(), id.substr(0, 47), id + "0", upper, flipped,
                                   id.substr(0, 16) + std::string(32, '0'), std::string(48, 'g')}) {
        INFO(bad);
        CHECK(!sessions.find(bad));
        CHECK(!sessions.revoke(bad));
    }
    CHECK(sessions.revoke(id));
    CHECK(!sessions.find(id));
    CHECK(!sessions.revoke(id));
    CHECK(sessions.size() == 1999);
}

TEST_CASE("the session table is bounded: the least recently used session ends first",
          "[beast][sign-in]") {
    using namespace std::chrono_literals;
    srl::manual_clock clock;
    sb::staff_sessions<srl::manual_clock> sessions(sb::staff_session_options{3, 8h, 0s}, clock);
    const auto a = sessions.create();
    clock.advance(1s);
    const auto b = sessions.create();
    clock.advance(1s);
    const auto c = sessions.create();
    clock.advance(1s);
    CHECK(sessions.find(a.id));  // a is now the most recently used
    clock.advance(1s);
    const auto d = sessions.create();
    CHECK(sessions.size() == 3);
    CHECK(sessions.find(a.id));
    CHECK(!sessions.find(b.id));
    CHECK(sessions.find(c.id));
    CHECK(sessions.find(d.id));
    // Expired sessions go before live ones.
    clock.advance(8h);
    const auto e = sessions.create();
    CHECK(sessions.size() == 1);
    CHECK(sessions.find(e.id));
    CHECK_THROWS_AS(sb::staff_sessions<>(sb::staff_session_options{0}), srl::config_error);
}

TEST_CASE("sessions may be created, found and revoked from many threads at once",
          "[beast][sign-in]") {
    sb::staff_sessions<> sessions(sb::staff_session_options{64});
    std::vector<std::thread> threads;
    std::atomic<int> found{0};
    for (int t = 0; t < 4; ++t)
        threads.emplace_back([&] {
            for (int i = 0; i < 200; ++i) {
                const auto s = sessions.create();
                if (sessions.find(s.id)) found.fetch_add(1);
                if (i % 2 == 0) sessions.revoke(s.id);
                (void)sessions.size();
            }
        });
    for (auto& t : threads) t.join();
    CHECK(found.load() > 0);
    CHECK(sessions.size() <= 64);
}
