// tests/core/test_rate.cpp
// Rate strings: every accepted form parses to the right limit and period;
// every rejected form throws config_error quoting the string.
#include <catch2/catch.hpp>

#include <smart_ratelimit/rate.hpp>

#include <chrono>
#include <string>
#include <utility>
#include <vector>

namespace srl = smart_ratelimit;
using namespace std::chrono_literals;

TEST_CASE("every accepted rate form parses to its limit and period", "[rate]") {
    const std::vector<std::pair<std::string, srl::rate>> cases = {
        {"1/s", {1, 1s}},
        {"10/sec", {10, 1s}},
        {"10/second", {10, 1s}},
        {"100/m", {100, 60s}},
        {"100/min", {100, 60s}},
        {"100/minute", {100, 60s}},
        {"5/h", {5, 1h}},
        {"5/hr", {5, 1h}},
        {"5/hour", {5, 1h}},
        {"7/d", {7, 24h}},
        {"7/day", {7, 24h}},
        {"10/30s", {10, 30s}},
        {"100/5m", {100, 5min}},
        {"3/2h", {3, 2h}},
        {"10000/7d", {10000, 7 * 24h}},
        {"1000000000/s", {1'000'000'000, 1s}},
        {"1/365d", {1, 365 * 24h}},
        {"1/8760h", {1, 8760h}},
        {"1/525600m", {1, 525600min}},
        {"1/31536000s", {1, 31536000s}},
    };
    for (const auto& [text, expected] : cases) {
        INFO(text);
        CHECK(srl::parse_rate(text) == expected);
    }
}

TEST_CASE("every rejected rate form throws a config_error quoting the string", "[rate]") {
    const std::vector<std::string> rejected = {
        "",  // empty
        " ",
        "10/m ",
        " 10/m",
        "10 /m",
        "10/ m",
        "10/m\n",
        "\t10/m",  // whitespace
        "+10/m",
        "-10/m",
        "10/+5m",
        "10/-5m",  // signs
        "1.5/m",
        "10/1.5m",
        "10.0/s",  // decimals
        "0x10/m",
        "10/0x5s",
        "0xA/s",  // hex
        "1e3/m",
        "10/1e3s",
        "1E3/s",  // exponents
        "0/m",
        "00/s",  // zero limit
        "10/0m",
        "10/0s",
        "10/00d",  // zero period
        "10/mins",
        "10/minutes",
        "10/seconds",
        "10/secs",
        "10/hours",
        "10/days",
        "10/hrs",  // plurals
        "10/M",
        "10/S",
        "10/Min",
        "10/HOUR",
        "10/Day",
        "10/5M",  // upper case
        "10/mx",
        "10/m/",
        "10/m1",
        "10/s!",
        "10/m;",
        "10//m",  // trailing junk
        "10",
        "/m",
        "10/",
        "/",
        "m",
        "ten/m",
        "10/minute2",  // shape
        "10/30sec",
        "10/5min",
        "10/2hour",
        "10/5ms",
        "10/w",
        "10/y",
        "10/5",  // bad units
        "1000000001/s",
        "99999999999999999999/s",  // limit over 10^9
        "10/366d",
        "10/8761h",
        "10/525601m",
        "10/31536001s",  // period over 365 days
        "10/99999999999999999999s",
        "10/18446744073709551616d",  // 64-bit overflow
        "10/1000000000000d",
        std::string("10/m\0", 5),      // embedded NUL
        "\xef\xbc\x91\xef\xbc\x90/m",  // full-width digits
    };
    for (const auto& text : rejected) {
        INFO("input: \"" << text << "\"");
        try {
            (void)srl::parse_rate(text);
            FAIL("accepted");
        } catch (const srl::config_error& e) {
            std::string quoted;
            for (const char c : text) {
                if (c == '\n')
                    quoted += "\\n";
                else if (c == '\t')
                    quoted += "\\t";
                else if (c == '\0')
                    quoted += "\\x00";
                else
                    quoted += c;
            }
            const std::string msg = e.what();
            CHECK(msg.find("\"" + quoted + "\"") != std::string::npos);
        }
    }
}

TEST_CASE("make_rate checks the same ranges as parse_rate", "[rate]") {
    CHECK(srl::make_rate(5, 1s) == srl::rate{5, 1s});
    CHECK_THROWS_AS(srl::make_rate(0, 1s), srl::config_error);
    CHECK_THROWS_AS(srl::make_rate(1'000'000'001, 1s), srl::config_error);
    CHECK_THROWS_AS(srl::make_rate(1, 0s), srl::config_error);
    CHECK_THROWS_AS(srl::make_rate(1, -1s), srl::config_error);
    CHECK_THROWS_AS(srl::make_rate(1, 366 * 24h), srl::config_error);
    CHECK(srl::make_rate(1'000'000'000, 365 * 24h).limit == 1'000'000'000);
}
