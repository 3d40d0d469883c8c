// tests/alerts/test_delivery.cpp
// Alerts delivered to real receivers on 127.0.0.1: the aiosmtpd SMTP server and a
// Beast HTTP(S) server. Checks the e-mail and the webhook payload as received,
// byte for byte where the format is fixed, and every failure kind (refused, 500,
// silence until the timeout, untrusted or mismatched certificates, bad auth).
#include "support/receivers.hpp"

#include <smart_ratelimit/alerts.hpp>
#include <smart_ratelimit/beast/webhook_client.hpp>
#include <smart_ratelimit/smtp.hpp>

#include <chrono>
#include <string>
#include <vector>

namespace srl = smart_ratelimit;
using namespace srl_alerts_test;
using namespace std::chrono_literals;

namespace {

const srl::event_time now =
    srl::event_time(std::chrono::sys_days(std::chrono::year(2026) / 3 / 14).time_since_epoch());

std::vector<srl::event> blocked(std::string key, int n,
                                srl::event_time at = now - std::chrono::hours(1)) {
    std::vector<srl::event> out;
    for (int i = 0; i < n; ++i)
        out.push_back(srl::make_event(at, key, "/login", "POST", false, 11, 10));
    return out;
}

std::vector<srl::event> sample_events() {
    std::vector<srl::event> ev;
    for (auto& e : blocked("ip:203.0.113.5", 5)) ev.push_back(std::move(e));
    for (auto& e : blocked("ip:198.51.100.7", 3)) ev.push_back(std::move(e));
    for (auto& e : blocked("ip:192.0.2.1", 2)) ev.push_back(std::move(e));
    ev.push_back(srl::make_event(now - 1h, "ip:192.0.2.1", "/", "GET", true, 1, 10));
    return ev;
}

srl::alert_request request(std::int64_t threshold, std::vector<std::string> to, std::string url) {
    srl::alert_request r;
    r.threshold = threshold;
    r.days = 1;
    r.email_to = std::move(to);
    r.webhook_url = std::move(url);
    r.from = "alerts@example.org";
    r.now = now;
    return r;
}

srl::smtp::curl_mailer mailer_for(const std::string& url, std::chrono::milliseconds timeout = 30s,
                                  std::string ca = {}) {
    return srl::smtp::curl_mailer(srl::smtp::smtp_options{url, timeout, std::move(ca)});
}

srl::beast::webhook_client webhook_for(std::chrono::milliseconds timeout = 30s, std::string ca = {},
                                       std::string secret = {}) {
    return srl::beast::webhook_client(
        srl::beast::webhook_options{timeout, std::move(secret), std::move(ca)});
}

/// The body of a received message: everything after the first blank line.
std::string body_of(const std::string& message) {
    const auto sep = message.find("\r\n\r\n");
    REQUIRE(sep != std::string::npos);
    return message.substr(sep + 4);
}

std::string headers_of(const std::string& message) {
    const auto sep = message.find("\r\n\r\n");
    REQUIRE(sep != std::string::npos);
    return message.substr(0, sep + 2);
}

std::string shell_quote(const std::string& s) {
    std::string out = "'";
    for (const char c : s) {
        if (c == '\'')
            out += "'\\''";
        else
            out += c;
    }
    return out + "'";
}

}  // namespace

TEST_CASE("an alert e-mail and webhook arrive exactly as the spec writes them",
          "[alerts][smtp][webhook]") {
    smtp_receiver smtp;
    http_receiver http(200);
    auto mailer = mailer_for(smtp.url());
    auto webhook = webhook_for();
    const auto req =
        request(3, {"ops@example.com", "sec@example.com"}, http.url("127.0.0.1", "/hook?team=ops"));

    const auto result = srl::send_offender_alerts(sample_events(), req, mailer, webhook);

    REQUIRE(result.ok());
    CHECK(srl::to_json(result) ==
          "{\"enabled\": true, \"threshold\": 3, \"days\": 1, \"offenders\": ["
          "{\"key\": \"ip:203.0.113.5\", \"blocked_count\": 5}, "
          "{\"key\": \"ip:198.51.100.7\", \"blocked_count\": 3}], \"channels\": {"
          "\"email\": {\"sent\": true, \"to\": [\"ops@example.com\", \"sec@example.com\"]}, "
          "\"webhook\": {\"sent\": true, \"url\": \"" +
              req.webhook_url + "\"}}}");

    REQUIRE(smtp.count() == 1);
    const std::string msg = smtp.message(1);
    CHECK(body_of(msg) ==
          "2 rate-limit offender(s) exceeded 3 blocked requests in the last 1 day(s):\r\n"
          "\r\n"
          "ip:203.0.113.5: 5 blocked\r\n"
          "ip:198.51.100.7: 3 blocked\r\n");
    const std::string headers = headers_of(msg);
    CHECK(headers.find("\r\nSubject: [smart-ratelimit] 2 offender(s) alert\r\n") !=
          std::string::npos);
    CHECK(headers.find("\r\nFrom: alerts@example.org\r\n") != std::string::npos);
    CHECK(headers.find("\r\nTo: ops@example.com,\r\n sec@example.com\r\n") != std::string::npos);
    CHECK(headers.find("\r\nContent-Type: text/plain; charset=utf-8\r\n") != std::string::npos);
    CHECK(headers.find("\r\nMIME-Version: 1.0\r\n") != std::string::npos);
    CHECK(headers.find("\r\nMessage-ID: <") != std::string::npos);
    CHECK(headers.find("@example.org>\r\n") != std::string::npos);
    CHECK(headers.rfind("Date: ", 0) == 0);
    CHECK(headers.find(" +0000\r\n") != std::string::npos);
    CHECK(smtp.envelope(1) ==
          "{\"mail_from\": \"alerts@example.org\", \"rcpt_tos\": [\"ops@example.com\", "
          "\"sec@example.com\"], "
          "\"authenticated\": false}");

    const auto reqs = http.requests();
    REQUIRE(reqs.size() == 1);
    CHECK(reqs[0].method == "POST");
    CHECK(reqs[0].target == "/hook?team=ops");
    CHECK(reqs[0].headers.at("content-type") == "application/json");
    CHECK(reqs[0].headers.at("host") == "127.0.0.1:" + std::to_string(http.port()));
    CHECK(reqs[0].headers.count("x-smart-ratelimit-signature") == 0);
    CHECK(reqs[0].body ==
          "{\"threshold\": 3, \"days\": 1, \"offenders\": ["
          "{\"key\": \"ip:203.0.113.5\", \"blocked_count\": 5}, "
          "{\"key\": \"ip:198.51.100.7\", \"blocked_count\": 3}]}");
}

TEST_CASE(
    "keys holding CR/LF or a lone dot cannot inject headers, recipients or end the message early",
    "[alerts][smtp][webhook]") {
    smtp_receiver smtp;
    http_receiver http(200);
    auto mailer = mailer_for(smtp.url());
    auto webhook = webhook_for();
    std::vector<srl::event> ev;
    for (auto& e : blocked("x\r\nBcc: victim@example.net\r\n\r\nfake body", 4))
        ev.push_back(std::move(e));
    for (auto& e : blocked(".", 3)) ev.push_back(std::move(e));
    for (auto& e : blocked("a\r\n.\r\nRCPT TO:<victim@example.net>\r\n", 2))
        ev.push_back(std::move(e));
    const auto req = request(2, {"ops@example.com"}, http.url());

    const auto result = srl::send_offender_alerts(ev, req, mailer, webhook);
    REQUIRE(result.ok());

    REQUIRE(smtp.count() == 1);
    CHECK(smtp.envelope(1).find("victim") == std::string::npos);
    const std::string msg = smtp.message(1);
    CHECK(headers_of(msg).find("Bcc") == std::string::npos);
    CHECK(body_of(msg) ==
          "3 rate-limit offender(s) exceeded 2 blocked requests in the last 1 day(s):\r\n"
          "\r\n"
          "x\\r\\nBcc: victim@example.net\\r\\n\\r\\nfake body: 4 blocked\r\n"
          ".: 3 blocked\r\n"
          "a\\r\\n.\\r\\nRCPT TO:<victim@example.net>\\r\\n: 2 blocked\r\n");

    const auto reqs = http.requests();
    REQUIRE(reqs.size() == 1);
    CHECK(
        reqs[0].body ==
        "{\"threshold\": 2, \"days\": 1, \"offenders\": ["
        "{\"key\": \"x\\r\\nBcc: victim@example.net\\r\\n\\r\\nfake body\", \"blocked_count\": 4}, "
        "{\"key\": \".\", \"blocked_count\": 3}, "
        "{\"key\": \"a\\r\\n.\\r\\nRCPT TO:\\u003cvictim@example.net\\u003e\\r\\n\", "
        "\"blocked_count\": 2}]}");
}

TEST_CASE("libcurl dot-stuffs body lines so a lone dot arrives intact", "[alerts][smtp]") {
    smtp_receiver smtp;
    auto mailer = mailer_for(smtp.url());
    const srl::mail m{"alerts@example.org",
                      {"ops@example.com"},
                      "dots\r\nX-Injected: 1",
                      "first\n.\n..two\n.three\nlast\n"};
    const auto st = mailer.send(m);
    REQUIRE(st.ok);
    REQUIRE(smtp.count() == 1);
    const std::string msg = smtp.message(1);
    CHECK(body_of(msg) == "first\r\n.\r\n..two\r\n.three\r\nlast\r\n");
    CHECK(headers_of(msg).find("\r\nSubject: dots  X-Injected: 1\r\n") != std::string::npos);
    CHECK(headers_of(msg).find("\r\nX-Injected") == std::string::npos);
}

TEST_CASE("non-ASCII and invalid UTF-8 keys arrive as valid UTF-8", "[alerts][smtp][webhook]") {
    smtp_receiver smtp;
    http_receiver http(200);
    auto mailer = mailer_for(smtp.url());
    auto webhook = webhook_for();
    std::vector<srl::event> ev = blocked("user:Zo\xC3\xAB", 3);
    for (auto& e : blocked("header:X-Id:\xFF\xFE", 2)) ev.push_back(std::move(e));
    const auto result =
        srl::send_offender_alerts(ev, request(1, {"ops@example.com"}, http.url()), mailer, webhook);
    REQUIRE(result.ok());
    REQUIRE(smtp.count() == 1);
    CHECK(body_of(smtp.message(1)) ==
          "2 rate-limit offender(s) exceeded 1 blocked requests in the last 1 day(s):\r\n\r\n"
          "user:Zo\xC3\xAB: 3 blocked\r\n"
          "header:X-Id:\xEF\xBF\xBD\xEF\xBF\xBD: 2 blocked\r\n");
    REQUIRE(http.requests().size() == 1);
    CHECK(http.requests()[0].body ==
          "{\"threshold\": 1, \"days\": 1, \"offenders\": ["
          "{\"key\": \"user:Zo\xC3\xAB\", \"blocked_count\": 3}, "
          "{\"key\": \"header:X-Id:\\ufffd\\ufffd\", \"blocked_count\": 2}]}");  // U+FFFD, escaped
}

TEST_CASE("nothing is sent when alerting is disabled or nobody reaches the threshold",
          "[alerts][smtp][webhook]") {
    smtp_receiver smtp;
    http_receiver http(200);
    auto mailer = mailer_for(smtp.url());
    auto webhook = webhook_for();

    const auto disabled = srl::send_offender_alerts(
        sample_events(), request(0, {"ops@example.com"}, http.url()), mailer, webhook);
    CHECK(srl::to_json(disabled) == "{\"enabled\": false, \"offenders\": [], \"channels\": {}}");

    const auto quiet = srl::send_offender_alerts(
        sample_events(), request(6, {"ops@example.com"}, http.url()), mailer, webhook);
    CHECK(quiet.enabled);
    CHECK(quiet.offenders.empty());
    CHECK(quiet.channels.empty());
    CHECK(
        srl::to_json(quiet) ==
        "{\"enabled\": true, \"threshold\": 6, \"days\": 1, \"offenders\": [], \"channels\": {}}");

    // A later successful send proves the receivers were up and would have counted.
    const auto sent = srl::send_offender_alerts(
        sample_events(), request(5, {"ops@example.com"}, http.url()), mailer, webhook);
    REQUIRE(sent.ok());
    CHECK(smtp.count() == 1);
    CHECK(http.requests().size() == 1);
}

TEST_CASE("a refused SMTP connection is reported and the webhook is still sent",
          "[alerts][smtp][webhook]") {
    http_receiver http(200);
    auto mailer = mailer_for("smtp://127.0.0.1:" + std::to_string(refused_port()));
    auto webhook = webhook_for();
    const auto r = srl::send_offender_alerts(
        sample_events(), request(3, {"ops@example.com"}, http.url()), mailer, webhook);
    REQUIRE(r.channels.size() == 2);
    CHECK(r.channels[0].channel == "email");
    CHECK_FALSE(r.channels[0].sent);
    CHECK(r.channels[0].error.find("connect") != std::string::npos);
    CHECK(r.channels[1].sent);
    CHECK(http.requests().size() == 1);
    CHECK_FALSE(r.ok());
}

TEST_CASE("an SMTP server that never answers times out and the webhook is still sent",
          "[alerts][smtp][webhook]") {
    silent_listener silent;
    http_receiver http(200);
    auto mailer = mailer_for("smtp://127.0.0.1:" + std::to_string(silent.port()), 300ms);
    auto webhook = webhook_for();
    const auto r = srl::send_offender_alerts(
        sample_events(), request(3, {"ops@example.com"}, http.url()), mailer, webhook);
    REQUIRE(r.channels.size() == 2);
    CHECK_FALSE(r.channels[0].sent);
    CHECK(r.channels[0].error.find("timeout") != std::string::npos);
    CHECK(r.channels[1].sent);
    CHECK(http.requests().size() == 1);
}

TEST_CASE("a webhook answering 500 is a failure and the e-mail is still sent",
          "[alerts][smtp][webhook]") {
    smtp_receiver smtp;
    http_receiver http(500);
    auto mailer = mailer_for(smtp.url());
    auto webhook = webhook_for();
    const auto r = srl::send_offender_alerts(
        sample_events(), request(3, {"ops@example.com"}, http.url()), mailer, webhook);
    REQUIRE(r.channels.size() == 2);
    CHECK(r.channels[0].sent);
    CHECK_FALSE(r.channels[1].sent);
    CHECK(r.channels[1].error == "webhook: HTTP 500 Internal Server Error");
    CHECK(smtp.count() == 1);
    CHECK(http.requests().size() == 1);
    CHECK(srl::to_json(r).find("\"webhook\": {\"sent\": false, \"error\": \"webhook: HTTP 500 "
                               "Internal Server Error\"}") != std::string::npos);
}

TEST_CASE("only a 2xx status is a delivery; a redirect is not followed", "[alerts][webhook]") {
    auto webhook = webhook_for();
    for (const unsigned ok : {200u, 202u, 204u, 299u}) {
        http_receiver http(ok);
        CHECK(webhook.post(http.url(), "{}").ok);
    }
    {
        // The hook moved: one request, not delivered, and the report says where to.
        http_receiver target(200);
        http_receiver moved(302, {}, {}, target.url());
        const auto st = webhook.post(moved.url(), "{}");
        CHECK_FALSE(st.ok);
        CHECK(st.error ==
              "webhook: HTTP 302 Found (redirects are not followed; configure the "
              "final URL: Location " +
                  target.url() + ")");
        CHECK(moved.requests().size() == 1);
        CHECK(target.requests().empty());
    }
    for (const unsigned bad : {301u, 304u, 307u, 308u, 399u, 400u, 500u}) {
        http_receiver http(bad);
        const auto st = webhook.post(http.url(), "{}");
        INFO(bad);
        CHECK_FALSE(st.ok);
        CHECK(st.error.find("HTTP " + std::to_string(bad)) != std::string::npos);
    }
    {
        // A hostile Location is quoted as one capped printable line.
        http_receiver http(307, {}, {}, "http://x/\x01" + std::string(3000, '\xff'));
        const auto st = webhook.post(http.url(), "{}");
        CHECK_FALSE(st.ok);
        CHECK(st.error.find('\x01') == std::string::npos);
        CHECK(st.error.size() < 400);
    }
}

TEST_CASE("webhook failures: refused, silence until the timeout, bad URLs", "[alerts][webhook]") {
    smtp_receiver smtp;
    auto mailer = mailer_for(smtp.url());
    SECTION("refused") {
        auto webhook = webhook_for();
        const auto r = srl::send_offender_alerts(
            sample_events(),
            request(3, {"ops@example.com"},
                    "http://127.0.0.1:" + std::to_string(refused_port()) + "/"),
            mailer, webhook);
        REQUIRE(r.channels.size() == 2);
        CHECK(r.channels[0].sent);
        CHECK_FALSE(r.channels[1].sent);
        CHECK(r.channels[1].error.find("refused") != std::string::npos);
    }
    SECTION("a receiver that accepts and never answers") {
        silent_listener silent;
        auto webhook = webhook_for(300ms);
        const auto r = srl::send_offender_alerts(
            sample_events(),
            request(3, {"ops@example.com"},
                    "http://127.0.0.1:" + std::to_string(silent.port()) + "/"),
            mailer, webhook);
        REQUIRE(r.channels.size() == 2);
        CHECK(r.channels[0].sent);
        CHECK_FALSE(r.channels[1].sent);
        CHECK(r.channels[1].error.find("timed out") != std::string::npos);
    }
    SECTION("URLs the client refuses") {
        auto webhook = webhook_for();
        CHECK(webhook.post("ftp://127.0.0.1/", "{}").error ==
              "webhook URL must be http:// or https://");
        CHECK(webhook.post("http://user:pw@127.0.0.1/", "{}").error ==
              "webhook URL must not contain user information");
        CHECK_FALSE(webhook.post("not a url", "{}").ok);
    }
}

TEST_CASE("https webhooks verify the certificate and the host name", "[alerts][webhook][tls]") {
    temp_dir dir;
    const tls_material tls(dir.path());
    smtp_receiver smtp;
    auto mailer = mailer_for(smtp.url());

    SECTION("a certificate from the trusted CA, by IP and by name") {
        http_receiver https(200, tls.cert("good"), tls.key("good"));
        auto webhook = webhook_for(30s, tls.ca());
        CHECK(webhook.post(https.url("127.0.0.1"), "{\"a\": 1}").error == "");
        CHECK(webhook.post(https.url("localhost"), "{\"a\": 2}").error == "");
        const auto reqs = https.requests();
        REQUIRE(reqs.size() == 2);
        CHECK(reqs[0].body == "{\"a\": 1}");
        CHECK(reqs[1].headers.at("host") == "localhost:" + std::to_string(https.port()));
    }
    SECTION("a self-signed certificate is not trusted; the e-mail still goes") {
        http_receiver https(200, tls.cert("self_signed"), tls.key("self_signed"));
        auto webhook = webhook_for(30s, tls.ca());
        const auto r = srl::send_offender_alerts(
            sample_events(), request(3, {"ops@example.com"}, https.url()), mailer, webhook);
        REQUIRE(r.channels.size() == 2);
        CHECK(r.channels[0].sent);
        CHECK_FALSE(r.channels[1].sent);
        CHECK(r.channels[1].error.find("certificate") != std::string::npos);
        CHECK(https.requests().empty());
    }
    SECTION("a trusted certificate for another host name is refused") {
        http_receiver https(200, tls.cert("wrong_host"), tls.key("wrong_host"));
        auto webhook = webhook_for(30s, tls.ca());
        const auto st = webhook.post(https.url("127.0.0.1"), "{}");
        CHECK_FALSE(st.ok);
        CHECK(st.error.find("certificate") != std::string::npos);
        CHECK(https.requests().empty());
    }
    SECTION("without the test CA the system trust store rejects it") {
        http_receiver https(200, tls.cert("good"), tls.key("good"));
        auto webhook = webhook_for(30s);
        CHECK_FALSE(webhook.post(https.url(), "{}").ok);
        CHECK(https.requests().empty());
    }
}

TEST_CASE("a signed webhook carries a timestamp and an HMAC-SHA256 the receiver can verify",
          "[alerts][webhook]") {
    http_receiver http(200);
    auto webhook = webhook_for(30s, {}, "s3cr3t key");
    const auto before = std::chrono::duration_cast<std::chrono::seconds>(
                            std::chrono::system_clock::now().time_since_epoch())
                            .count();
    const std::string body = "{\"threshold\": 3, \"days\": 1, \"offenders\": []}";
    REQUIRE(webhook.post(http.url(), body).ok);
    const auto reqs = http.requests();
    REQUIRE(reqs.size() == 1);
    const std::string ts = reqs[0].headers.at("x-smart-ratelimit-timestamp");
    const std::string sig = reqs[0].headers.at("x-smart-ratelimit-signature");
    CHECK(std::stoll(ts) >= before);
    CHECK(std::stoll(ts) <= before + 600);
    // Recompute independently with the openssl command-line tool.
    temp_dir dir;
    const auto out = dir.path() / "mac";
    run_or_fail("printf '%s' " + shell_quote(ts + "." + body) + " | openssl dgst -sha256 -hmac " +
                shell_quote("s3cr3t key") + " -r > " + out.string());
    const std::string expected = read_file(out).substr(0, 64);
    CHECK(sig == "sha256=" + expected);
    CHECK(srl::beast::webhook_signature("s3cr3t key", std::stoll(ts), body) == sig);
    CHECK(srl::beast::webhook_signature("other key", std::stoll(ts), body) != sig);
}

TEST_CASE("SMTP with STARTTLS and authentication from the URL", "[alerts][smtp][tls]") {
    temp_dir dir;
    const tls_material tls(dir.path());
    smtp_receiver smtp({"--tls", tls.cert("good"), tls.key("good"), "--auth", "alerts:p@ss word"});

    SECTION("trusted certificate and the right password") {
        auto mailer = mailer_for(
            "smtp://alerts:p%40ss%20word@127.0.0.1:" + std::to_string(smtp.port()), 30s, tls.ca());
        const auto st = mailer.send({"alerts@example.org", {"ops@example.com"}, "s", "hello\n"});
        CHECK(st.error == "");
        REQUIRE(smtp.count() == 1);
        CHECK(smtp.envelope(1).find("\"authenticated\": true") != std::string::npos);
        CHECK(body_of(smtp.message(1)) == "hello\r\n");
    }
    SECTION("STARTTLS can be required") {
        auto mailer =
            mailer_for("smtp://alerts:p%40ss%20word@127.0.0.1:" + std::to_string(smtp.port()) +
                           "?starttls=required",
                       30s, tls.ca());
        CHECK(mailer.send({"alerts@example.org", {"ops@example.com"}, "s", "hello\n"}).error == "");
        CHECK(smtp.count() == 1);
    }
    SECTION("a wrong password is reported") {
        auto mailer = mailer_for("smtp://alerts:wrong@127.0.0.1:" + std::to_string(smtp.port()),
                                 30s, tls.ca());
        const auto st = mailer.send({"alerts@example.org", {"ops@example.com"}, "s", "hello\n"});
        CHECK_FALSE(st.ok);
        CHECK(smtp.count() == 0);
    }
    SECTION("an untrusted certificate is refused before any credentials are sent") {
        auto mailer =
            mailer_for("smtp://alerts:p%40ss%20word@127.0.0.1:" + std::to_string(smtp.port()), 30s);
        const auto st = mailer.send({"alerts@example.org", {"ops@example.com"}, "s", "hello\n"});
        CHECK_FALSE(st.ok);
        CHECK(smtp.count() == 0);
    }
}

TEST_CASE("STARTTLS required against a server without it fails", "[alerts][smtp][tls]") {
    smtp_receiver smtp;
    auto mailer = mailer_for(smtp.url() + "?starttls=required");
    const auto st = mailer.send({"alerts@example.org", {"ops@example.com"}, "s", "hello\n"});
    CHECK_FALSE(st.ok);
    CHECK(smtp.count() == 0);
}

TEST_CASE("addresses that could smuggle SMTP commands are refused", "[alerts][smtp]") {
    smtp_receiver smtp;
    auto mailer = mailer_for(smtp.url());
    CHECK(mailer.send({"alerts@example.org", {"ops@example.com\r\nRCPT TO:<x@y>"}, "s", "b\n"})
              .error.find("invalid recipient") != std::string::npos);
    CHECK(mailer.send({"a@b\r\nDATA", {"ops@example.com"}, "s", "b\n"})
              .error.find("invalid sender") != std::string::npos);
    CHECK(mailer.send({"a@b.c", {}, "s", "b\n"}).error == "no recipients");
    CHECK(smtp.count() == 0);
}

TEST_CASE("the cool-down suppresses a repeat alert to real receivers", "[alerts][smtp][webhook]") {
    smtp_receiver smtp;
    http_receiver http(200);
    auto mailer = mailer_for(smtp.url());
    auto webhook = webhook_for();
    srl::memory_alert_log log;
    auto req = request(3, {"ops@example.com"}, http.url());
    req.cooldown = 30min;

    const auto first = srl::send_offender_alerts(sample_events(), req, mailer, webhook, log);
    CHECK(first.offenders.size() == 2);
    CHECK(first.suppressed == 0);
    req.now = now + 10min;
    const auto second = srl::send_offender_alerts(sample_events(), req, mailer, webhook, log);
    CHECK(second.offenders.empty());
    CHECK(second.suppressed == 2);
    CHECK(second.channels.empty());
    CHECK(srl::to_json(second) ==
          "{\"enabled\": true, \"threshold\": 3, \"days\": 1, \"offenders\": [], \"channels\": {}, "
          "\"suppressed\": 2}");
    CHECK(smtp.count() == 1);
    CHECK(http.requests().size() == 1);
}
