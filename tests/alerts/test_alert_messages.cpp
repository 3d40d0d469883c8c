// tests/alerts/test_alert_messages.cpp
// The alert texts (subject, body, webhook payload), the RFC 5322 message
// around them, and the JSON of the result: exact bytes, and safety for keys that
// hold CR/LF, dots, quotes, control characters or invalid UTF-8.
#include <catch2/catch.hpp>

#include <smart_ratelimit/alerts.hpp>
#include <smart_ratelimit/smtp/message.hpp>

#include <string>
#include <vector>

namespace srl = smart_ratelimit;

TEST_CASE("the subject and body follow the original library's wording", "[alerts]") {
    const std::vector<srl::offender> offenders{{"ip:203.0.113.5", 412}, {"user:42", 100}};
    CHECK(srl::alert_subject(2) == "[smart-ratelimit] 2 offender(s) alert");
    CHECK(srl::alert_body(offenders, 100, 1) ==
          "2 rate-limit offender(s) exceeded 100 blocked requests in the last 1 day(s):\n"
          "\n"
          "ip:203.0.113.5: 412 blocked\n"
          "user:42: 100 blocked\n");
    CHECK(srl::alert_body({}, 5, 7) ==
          "0 rate-limit offender(s) exceeded 5 blocked requests in the last 7 day(s):\n\n");
}

TEST_CASE("the webhook payload is the spec's JSON, keys escaped", "[alerts]") {
    const std::vector<srl::offender> offenders{{"ip:203.0.113.5", 412},
                                               {"q\"b\\s\x01\x7f</script>", 3}};
    CHECK(srl::alert_webhook_payload(offenders, 100, 1) ==
          "{\"threshold\": 100, \"days\": 1, \"offenders\": ["
          "{\"key\": \"ip:203.0.113.5\", \"blocked_count\": 412}, "
          "{\"key\": \"q\\\"b\\\\s\\u0001\\u007f\\u003c/script\\u003e\", \"blocked_count\": 3}]}");
    CHECK(srl::alert_webhook_payload({}, 1, 30) ==
          "{\"threshold\": 1, \"days\": 30, \"offenders\": []}");
}

TEST_CASE("an offender is always exactly one body line", "[alerts]") {
    const std::vector<srl::offender> offenders{
        {"a\r\nb", 1}, {"\n.\n", 2}, {"t\tz\x1b[31m", 3}, {"bad\xC3(", 4}};
    CHECK(srl::alert_body(offenders, 1, 1) ==
          "4 rate-limit offender(s) exceeded 1 blocked requests in the last 1 day(s):\n\n"
          "a\\r\\nb: 1 blocked\n"
          "\\n.\\n: 2 blocked\n"
          "t\\tz\\x1b[31m: 3 blocked\n"
          "bad\xEF\xBF\xBD(: 4 blocked\n");
}

TEST_CASE("invalid UTF-8 never reaches a message", "[alerts]") {
    using srl::detail::printable_line;
    CHECK(printable_line("Zo\xC3\xAB \xE2\x82\xAC \xF0\x9F\x98\x80") ==
          "Zo\xC3\xAB \xE2\x82\xAC \xF0\x9F\x98\x80");
    CHECK(printable_line("\xC0\xAF") == "\xEF\xBF\xBD\xEF\xBF\xBD");                  // overlong
    CHECK(printable_line("\xED\xA0\x80") == "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");  // surrogate
    CHECK(printable_line("\xF4\x90\x80\x80") ==
          "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");        // > U+10FFFF
    CHECK(printable_line("\xE2\x82") == "\xEF\xBF\xBD\xEF\xBF\xBD");  // truncated
}

TEST_CASE("the RFC 5322 message has the required headers and CRLF lines", "[alerts][smtp]") {
    const srl::mail m{"alerts@example.org",
                      {"ops@example.com", "sec@example.com"},
                      "[smart-ratelimit] 1 offender(s) alert",
                      "line one\n\nlast\n"};
    const auto date = std::chrono::sys_seconds(
        std::chrono::sys_days(std::chrono::year(2026) / 3 / 14).time_since_epoch() +
        std::chrono::hours(9) + std::chrono::minutes(5) + std::chrono::seconds(7));
    CHECK(srl::smtp::build_message(m, date, 42) ==
          "Date: Sat, 14 Mar 2026 09:05:07 +0000\r\n"
          "From: alerts@example.org\r\n"
          "To: ops@example.com,\r\n sec@example.com\r\n"
          "Subject: [smart-ratelimit] 1 offender(s) alert\r\n"
          "Message-ID: <1773479107.42.smart-ratelimit@example.org>\r\n"
          "MIME-Version: 1.0\r\n"
          "Content-Type: text/plain; charset=utf-8\r\n"
          "Content-Transfer-Encoding: 8bit\r\n"
          "\r\n"
          "line one\r\n\r\nlast\r\n");
}

TEST_CASE("header values cannot inject headers", "[alerts][smtp]") {
    CHECK(srl::smtp::header_value("a\r\nBcc: x@y") == "a  Bcc: x@y");
    CHECK(srl::smtp::header_value("a\nb\rc\0d") == "a b c");
    const srl::mail m{
        "x@y.z\r\nBcc: evil@example.net", {"o@e.com\nCc: evil@example.net"}, "s\r\nX-A: 1", "b"};
    const std::string text = srl::smtp::build_message(m, std::chrono::sys_seconds{}, 1);
    const std::string headers = text.substr(0, text.find("\r\n\r\n") + 2);
    CHECK(headers.find("\r\nBcc") == std::string::npos);
    CHECK(headers.find("\r\nCc") == std::string::npos);
    CHECK(headers.find("\r\nX-A") == std::string::npos);
    CHECK(text.substr(text.size() - 5) == "\r\nb\r\n");
}

TEST_CASE("body line ends are normalized to CRLF", "[alerts][smtp]") {
    CHECK(srl::smtp::crlf_lines("a\nb\r\nc\rd") == "a\r\nb\r\nc\r\nd");
    CHECK(srl::smtp::rfc5322_date(std::chrono::sys_seconds{}) == "Thu, 01 Jan 1970 00:00:00 +0000");
}

TEST_CASE("the result JSON has the original library's shape", "[alerts]") {
    CHECK(srl::to_json(srl::alert_result{}) ==
          "{\"enabled\": false, \"offenders\": [], \"channels\": {}}");
    srl::alert_result r;
    r.enabled = true;
    r.threshold = 100;
    r.days = 1;
    r.offenders = {{"ip:203.0.113.5", 412}};
    r.channels = {{"email", true, {"ops@example.com"}, {}, {}},
                  {"webhook", false, {}, {}, "webhook: HTTP 500 Internal Server Error"}};
    CHECK(
        srl::to_json(r) ==
        "{\"enabled\": true, \"threshold\": 100, \"days\": 1, "
        "\"offenders\": [{\"key\": \"ip:203.0.113.5\", \"blocked_count\": 412}], "
        "\"channels\": {\"email\": {\"sent\": true, \"to\": [\"ops@example.com\"]}, "
        "\"webhook\": {\"sent\": false, \"error\": \"webhook: HTTP 500 Internal Server Error\"}}}");
    r.channels = {{"webhook", true, {}, "https://hooks.example.com/x", {}}};
    r.error = "db \"down\"";
    CHECK(
        srl::to_json(r) ==
        "{\"enabled\": true, \"threshold\": 100, \"days\": 1, "
        "\"offenders\": [{\"key\": \"ip:203.0.113.5\", \"blocked_count\": 412}], "
        "\"channels\": {\"webhook\": {\"sent\": true, \"url\": \"https://hooks.example.com/x\"}}, "
        "\"error\": \"db \\\"down\\\"\"}");
}
