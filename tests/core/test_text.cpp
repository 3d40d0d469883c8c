// tests/core/test_text.cpp
// The shared text helpers, each tested once at its one home: UTF-8 sequences and
// truncation (detail/utf8.hpp), the JSON string escaper (detail/json_escape.hpp),
// trim, case folding, hex digits, percent-decoding and printable lines
// (detail/text.hpp), the RFC 3339 parser
// (analytics/format.hpp) and the trusted-proxy check of the settings (keys/cidr.hpp).
// The cases are the edges where the former copies disagreed.
#include <smart_ratelimit/analytics/format.hpp>
#include <smart_ratelimit/detail/json_escape.hpp>
#include <smart_ratelimit/detail/text.hpp>
#include <smart_ratelimit/detail/utf8.hpp>
#include <smart_ratelimit/keys/cidr.hpp>
#include <smart_ratelimit/rate.hpp>
#include <smart_ratelimit/settings.hpp>

#include <catch2/catch.hpp>

#include <chrono>
#include <string>
#include <string_view>

namespace srl = smart_ratelimit;
using namespace std::string_view_literals;

TEST_CASE("utf8_sequence gives 1 for every ASCII byte, NUL included", "[text][utf8]") {
    for (int c = 0; c < 0x80; ++c) {
        const char b = static_cast<char>(c);
        CHECK(srl::detail::utf8_sequence(std::string_view(&b, 1)) == 1);
    }
    CHECK(srl::detail::utf8_sequence("ab"sv, 1) == 1);
}

TEST_CASE("utf8_sequence accepts exactly the well-formed sequences", "[text][utf8]") {
    using srl::detail::utf8_sequence;
    // Lead bytes that can never start a sequence.
    CHECK(utf8_sequence("\x80"sv) == 0);      // lone continuation byte
    CHECK(utf8_sequence("\xC0\x80"sv) == 0);  // overlong NUL
    CHECK(utf8_sequence("\xC1\xBF"sv) == 0);  // overlong
    CHECK(utf8_sequence("\xF5\x80\x80\x80"sv) == 0);
    CHECK(utf8_sequence("\xFF"sv) == 0);
    // The first and last code point of each length, and the ranges' edges.
    CHECK(utf8_sequence("\xC2\x80"sv) == 2);          // U+0080
    CHECK(utf8_sequence("\xDF\xBF"sv) == 2);          // U+07FF
    CHECK(utf8_sequence("\xE0\x9F\xBF"sv) == 0);      // overlong U+07FF
    CHECK(utf8_sequence("\xE0\xA0\x80"sv) == 3);      // U+0800
    CHECK(utf8_sequence("\xED\x9F\xBF"sv) == 3);      // U+D7FF
    CHECK(utf8_sequence("\xED\xA0\x80"sv) == 0);      // U+D800, a surrogate
    CHECK(utf8_sequence("\xED\xBF\xBF"sv) == 0);      // U+DFFF, a surrogate
    CHECK(utf8_sequence("\xEE\x80\x80"sv) == 3);      // U+E000
    CHECK(utf8_sequence("\xEF\xBF\xBF"sv) == 3);      // U+FFFF
    CHECK(utf8_sequence("\xF0\x8F\xBF\xBF"sv) == 0);  // overlong U+FFFF
    CHECK(utf8_sequence("\xF0\x90\x80\x80"sv) == 4);  // U+10000
    CHECK(utf8_sequence("\xF4\x8F\xBF\xBF"sv) == 4);  // U+10FFFF
    CHECK(utf8_sequence("\xF4\x90\x80\x80"sv) == 0);  // above U+10FFFF
    // Truncated or interrupted sequences.
    CHECK(utf8_sequence("\xE2\x82"sv) == 0);
    CHECK(utf8_sequence("\xE2\x82\x41"sv) == 0);
    CHECK(utf8_sequence("\xF0\x9F\x98"sv) == 0);
    CHECK(utf8_sequence("x\xE2\x82\xAC"sv, 1) == 3);
    CHECK(srl::detail::valid_utf8("Zo\xC3\xAB \xE2\x82\xAC \xF0\x9F\x98\x80"));
    CHECK_FALSE(srl::detail::valid_utf8("ok\xC3("));
}

TEST_CASE("capped truncates on a character boundary", "[text][utf8]") {
    using srl::detail::capped;
    const std::string euro = "\xE2\x82\xAC";  // 3 bytes
    CHECK(capped("abc", 3) == "abc");
    CHECK(capped("abcd", 3) == "abc");
    CHECK(capped("a" + euro, 3) == "a");
    CHECK(capped("a" + euro, 4) == "a" + euro);
    CHECK(capped(euro + euro, 5) == euro);
    CHECK(capped(euro, 0).empty());
    CHECK(srl::detail::utf8_boundary(euro + "x", 2) == 0);
    CHECK(srl::detail::utf8_boundary(euro + "x", 3) == 3);
    CHECK(srl::detail::utf8_boundary(euro, 3) == 3);
}

TEST_CASE("the JSON escaper is safe in HTML and JavaScript", "[text][json]") {
    using srl::detail::json_string;
    CHECK(json_string("") == R"("")");
    CHECK(json_string("q\"b\\s/") == R"("q\"b\\s/")");
    CHECK(json_string("\n\r\t\b\f") == R"("\n\r\t\b\f")");
    CHECK(json_string(std::string("\0\x01\x1f\x7f", 4)) == R"("\u0000\u0001\u001f\u007f")");
    CHECK(json_string("</script><!--&amp;") == R"("\u003c/script\u003e\u003c!--\u0026amp;")");
    CHECK(json_string("a\xE2\x80\xA8"
                      "b\xE2\x80\xA9"
                      "c") == R"("a\u2028b\u2029c")");
    CHECK(json_string("\xE2\x80\xA7") == "\"\xE2\x80\xA7\"");  // U+2027 is copied
    CHECK(json_string("Zo\xC3\xAB \xF0\x9F\x98\x80") == "\"Zo\xC3\xAB \xF0\x9F\x98\x80\"");
    // One \ufffd per byte that is not valid UTF-8.
    CHECK(json_string("bad\xC3(") == R"("bad\ufffd(")");
    CHECK(json_string("\xED\xA0\x80") == R"("\ufffd\ufffd\ufffd")");
    CHECK(json_string("\xE2\x80") == R"("\ufffd\ufffd")");
    std::string out = "[";
    srl::detail::append_json_string(out, "x");
    CHECK(out == R"(["x")");
}

TEST_CASE("trim removes spaces and tabs only", "[text]") {
    using srl::detail::trim;
    CHECK(trim("") == "");
    CHECK(trim(" \t ") == "");
    CHECK(trim("\t a b \t") == "a b");
    CHECK(trim("\na\r") == "\na\r");
    static_assert(trim("  x ") == "x");
}

TEST_CASE("iequals ignores ASCII case only", "[text]") {
    using srl::detail::iequals;
    CHECK(iequals("Bearer", "bEARER"));
    CHECK(iequals("", ""));
    CHECK_FALSE(iequals("bearer", "bearer "));
    CHECK_FALSE(iequals("\xC3\x89", "\xC3\xA9"));  // no Unicode folding
    CHECK_FALSE(iequals("[", "{"));                // '[' + 32 is '{', not a letter
}

TEST_CASE("percent_decode decodes each escape once and keeps malformed ones", "[text]") {
    using srl::detail::hex_value;
    using srl::detail::percent_decode;
    static_assert(hex_value('0') == 0 && hex_value('9') == 9 && hex_value('a') == 10 &&
                  hex_value('F') == 15 && hex_value('g') == -1 && hex_value('/') == -1);
    CHECK(percent_decode("/api%2Flogin", false) == "/api/login");
    CHECK(percent_decode("%41%62%63", false) == "Abc");
    CHECK(percent_decode("%252F", false) == "%2F");  // once, not twice
    CHECK(percent_decode("%zz %4 %", false) == "%zz %4 %");
    CHECK(percent_decode("%00", false) == std::string(1, '\0'));
    CHECK(percent_decode("a+b%2B", false) == "a+b+");
    CHECK(percent_decode("a+b%2B", true) == "a b+");  // forms: '+' is a space
}

TEST_CASE("a printable line has no control characters and valid UTF-8", "[text]") {
    using srl::detail::printable_line;
    CHECK(printable_line("a\r\nb\tc") == "a\\r\\nb\\tc");
    CHECK(printable_line(std::string("\0\x1b[31m\x7f", 7)) == "\\x00\\x1b[31m\\x7f");
    CHECK(printable_line("back\\slash \"q\"") == "back\\slash \"q\"");
    CHECK(printable_line("\xC0\xAF") == "\xEF\xBF\xBD\xEF\xBF\xBD");
    CHECK(printable_line("Zo\xC3\xAB") == "Zo\xC3\xAB");
}

TEST_CASE("error messages quote user input as one printable line", "[text]") {
    auto message = [](std::string_view text) {
        try {
            (void)srl::parse_rate(text);
        } catch (const srl::config_error& e) {
            return std::string(e.what());
        }
        return std::string();
    };
    CHECK(message("10/\x01m\xff").find("\"10/\\x01m\xEF\xBF\xBD\"") != std::string::npos);
    srl::settings s;
    try {
        srl::apply_setting(s, "RATELIMIT_LOG_EVENTS", "yes\nno", "--log-events");
        FAIL("accepted");
    } catch (const srl::config_error& e) {
        CHECK(std::string(e.what()).find("\"yes\\nno\"") != std::string::npos);
    }
}

TEST_CASE("RFC 3339: any number of fraction digits, truncated to microseconds", "[text][time]") {
    using namespace std::chrono;
    using srl::parse_rfc3339;
    const srl::event_time second{sys_days{year{2026} / 5 / 7} + 22h + 41min + 55s};
    CHECK(parse_rfc3339("2026-05-07T22:41:55.1Z") == second + 100000us);
    CHECK(parse_rfc3339("2026-05-07T22:41:55.123456Z") == second + 123456us);
    CHECK(parse_rfc3339("2026-05-07T22:41:55.1234564Z") == second + 123456us);
    CHECK(parse_rfc3339("2026-05-07T22:41:55.1234569Z") ==
          second + 123456us);  // truncated, not rounded
    CHECK(parse_rfc3339("2026-05-07T22:41:55.000000999999999999Z") == second);
    // Truncation never carries into the next second, day or year.
    const srl::event_time new_year{sys_days{year{2027} / 1 / 1}};
    CHECK(parse_rfc3339("2026-12-31T23:59:59.9999999Z") == new_year - 1us);
    CHECK(parse_rfc3339("2026-12-31T23:59:59.999999999999Z") == new_year - 1us);
    CHECK(parse_rfc3339("2027-01-01T01:00:00.0000009+01:00") == new_year);
    CHECK_FALSE(parse_rfc3339("2026-05-07T22:41:55.Z").has_value());
    CHECK_FALSE(parse_rfc3339("2026-05-07T22:41:55.12a4Z").has_value());
    // The formatter's 6 digits read back exactly.
    const srl::event_time t = second + 7us;
    CHECK(parse_rfc3339(srl::format_rfc3339(t, 6)) == t);
}

TEST_CASE("RFC 3339: an offset may not carry the instant outside years 0000-9999", "[text][time]") {
    // Found by fuzz/fuzz_rfc3339: these parsed, and formatted as text that did not.
    CHECK_FALSE(srl::parse_rfc3339("0000-01-01T00:00:06+02:00").has_value());
    CHECK_FALSE(srl::parse_rfc3339("9999-12-31T23:59:59.5-00:01").has_value());
    const auto first = srl::parse_rfc3339("0000-01-01T02:00:00+02:00");
    REQUIRE(first.has_value());
    CHECK(srl::format_rfc3339(*first) == "0000-01-01T00:00:00.000Z");
    const auto last = srl::parse_rfc3339("9999-12-31T23:59:59.999999Z");
    REQUIRE(last.has_value());
    CHECK(srl::parse_rfc3339(srl::format_rfc3339(*last, 6)) == last);
}

TEST_CASE("RFC 3339: a leap second reads as :59, the grammar's ranges hold", "[text][time]") {
    using namespace std::chrono;
    using srl::parse_rfc3339;
    const srl::event_time last{sys_days{year{2016} / 12 / 31} + 23h + 59min + 59s};
    CHECK(parse_rfc3339("2016-12-31T23:59:60Z") == last);
    CHECK(parse_rfc3339("2016-12-31T23:59:60.5Z") == last + 500000us);
    CHECK_FALSE(parse_rfc3339("2016-12-31T23:59:61Z").has_value());
    CHECK(parse_rfc3339("0000-01-01T00:00:00Z").has_value());
    CHECK(parse_rfc3339("9999-12-31T23:59:59.999999Z").has_value());
    CHECK_FALSE(parse_rfc3339("2026-05-07T22:41:55+24:00").has_value());
    CHECK_FALSE(parse_rfc3339("2026-05-07T22:41:55+02:60").has_value());
    CHECK(parse_rfc3339("2026-05-07T22:41:55-23:59") ==
          srl::event_time{sys_days{year{2026} / 5 / 8} + 22h + 40min + 55s});
}

TEST_CASE("settings accept exactly the trusted proxies the middleware parses", "[text][settings]") {
    for (const char* text : {"10.0.0.0/8", "192.0.2.1", "2001:db8::/32", "::1",
                             "::ffff:10.0.0.0/104", "0.0.0.0/0", "::/0"}) {
        INFO(text);
        CHECK(srl::detail::valid_cidr(text));
        CHECK(srl::cidr::parse(text).has_value());
    }
    // Accepted by the settings' former own parser, rejected by cidr_list: now rejected by both.
    for (const char* text : {"10.0.0.1/8", "2001:db8::1/32", "::ffff:10.0.0.0/8", "10.0.0.0/",
                             "10.0.0.0/033", "1.2.3", "01.2.3.4", "1::2::3", "fe80::1%eth0", ""}) {
        INFO(text);
        CHECK_FALSE(srl::detail::valid_cidr(text));
        CHECK_FALSE(srl::cidr::parse(text).has_value());
    }
    srl::settings s;
    CHECK_THROWS_AS(srl::apply_setting(s, "RATELIMIT_TRUSTED_PROXIES", "10.0.0.1/8", "env"),
                    srl::config_error);
    srl::apply_setting(s, "RATELIMIT_TRUSTED_PROXIES", " 10.0.0.0/8 , ::1", "env");
    CHECK_NOTHROW(srl::cidr_list::from_strings(s.trusted_proxies));
}
