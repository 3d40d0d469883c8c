// tests/analytics/test_analytics_json.cpp
// The JSON adapter of the analytics (analytics/json.hpp): shapes and key orders
//, block_rate as a plain decimal, RFC 3339 timestamps with Z, escaping
// of hostile keys; and the text helpers (decimal, RFC 3339 parse/format).
#include <catch2/catch.hpp>

#include "support/analytics_support.hpp"

#include <boost/json/parse.hpp>

#include <smart_ratelimit/analytics/json.hpp>

#include <cmath>
#include <random>

using namespace srl_test;

namespace {

std::vector<std::string> keys_of(const boost::json::object& o) {
    std::vector<std::string> out;
    for (const auto& kv : o) out.emplace_back(kv.key());
    return out;
}

}  // namespace

TEST_CASE("traffic summary JSON has the original library's keys in order and a plain block rate",
          "[analytics][json]") {
    const srl::traffic_summary s{1, 5, 2, 3, 0.6};
    CHECK(srl::to_json_string(s) ==
          R"({"days":1,"total":5,"allowed":2,"blocked":3,"block_rate":0.6,"degraded":0})");
    CHECK(srl::to_json_string(srl::traffic_summary{7, 0, 0, 0, 0.0}) ==
          R"({"days":7,"total":0,"allowed":0,"blocked":0,"block_rate":0.0,"degraded":0})");
    CHECK(srl::to_json_string(srl::traffic_summary{1, 1, 0, 1, 1.0})
              .find("\"block_rate\":1.0,\"degraded\":0}") != std::string::npos);
    // Boost.JSON itself would print 6E-1: the adapter must not.
    CHECK(srl::to_json_string(s).find('E') == std::string::npos);
}

TEST_CASE("block rates print as the shortest plain decimal that reads back exactly",
          "[analytics][json]") {
    CHECK(srl::format_plain_decimal(0.6) == "0.6");
    CHECK(srl::format_plain_decimal(0.0) == "0.0");
    CHECK(srl::format_plain_decimal(1.0) == "1.0");
    CHECK(srl::format_plain_decimal(0.777) == "0.777");
    CHECK(srl::format_plain_decimal(1.0 / 3.0) == "0.3333333333333333");
    CHECK(srl::format_plain_decimal(1e-7) == "0.0000001");
    CHECK(srl::format_plain_decimal(12345.0) == "12345.0");
    CHECK(srl::format_plain_decimal(std::nan("")) == "null");
    std::mt19937_64 rng(5);
    for (int i = 0; i < 10000; ++i) {
        const auto total = static_cast<std::int64_t>(rng() % 1'000'000 + 1);
        const auto blocked =
            static_cast<std::int64_t>(rng() % static_cast<std::uint64_t>(total + 1));
        const double rate = static_cast<double>(blocked) / static_cast<double>(total);
        const std::string text = srl::format_plain_decimal(rate);
        REQUIRE(text.find_first_of("eE") == std::string::npos);
        REQUIRE(std::strtod(text.c_str(), nullptr) == rate);
        // (Boost.JSON 1.81's parser is not always correctly rounded: compare the text.)
        const std::string json =
            srl::to_json_string(srl::traffic_summary{1, total, total - blocked, blocked, rate});
        REQUIRE(json.find("\"block_rate\":" + text + ",\"degraded\":0}") != std::string::npos);
    }
}

TEST_CASE("offenders and rule hits serialize as arrays of ordered objects", "[analytics][json]") {
    const std::vector<srl::offender> top{{"ip:203.0.113.5", 412}, {"user:42", 87}};
    CHECK(srl::to_json_string(top) ==
          R"([{"key":"ip:203.0.113.5","blocked_count":412},{"key":"user:42","blocked_count":87}])");
    const std::vector<srl::rule_hits> rules{{"login", 900, 412}};
    CHECK(srl::to_json_string(rules) == R"([{"rule_name":"login","hits":900,"blocked":412}])");
    CHECK(srl::to_json_string(std::vector<srl::offender>{}) == "[]");
}

TEST_CASE("offender detail JSON matches the original library's drill-down shape",
          "[analytics][json]") {
    using namespace std::chrono;
    srl::offender_detail d;
    d.key = "ip:203.0.113.5";
    d.days = 7;
    d.total = 530;
    d.allowed = 118;
    d.blocked = 412;
    d.block_rate = 412.0 / 530.0;
    d.first_seen = srl::event_time{sys_days{year{2026} / 5 / 1} + 8h + 14min + 2s + 123456us};
    d.last_seen = srl::event_time{sys_days{year{2026} / 5 / 7} + 22h + 41min + 55s};
    d.by_path = {{"/api/login", 300}};
    d.recent_events = {
        {*d.last_seen, "/api/login", "POST", false, 11, 10, "login", srl::outcome_kind::blocked}};
    const std::string text = srl::to_json_string(d);
    const auto v = boost::json::parse(text).as_object();
    CHECK(keys_of(v) == std::vector<std::string>{"key", "days", "total", "allowed", "blocked",
                                                 "block_rate", "degraded", "first_seen",
                                                 "last_seen", "by_path", "recent_events"});
    CHECK(v.at("first_seen").as_string() == "2026-05-01T08:14:02.123Z");
    CHECK(v.at("last_seen").as_string() == "2026-05-07T22:41:55.000Z");
    CHECK(text.find("\"block_rate\":0.7773584905660378,") != std::string::npos);
    CHECK(keys_of(v.at("by_path").as_array().at(0).as_object()) ==
          std::vector<std::string>{"path", "blocked_count"});
    const auto& recent = v.at("recent_events").as_array().at(0).as_object();
    CHECK(keys_of(recent) == std::vector<std::string>{"timestamp", "path", "method", "allowed",
                                                      "count", "limit", "rule_name", "outcome"});
    CHECK(recent.at("allowed").as_bool() == false);
    CHECK(recent.at("count").as_int64() == 11);
    CHECK(
        text.find(
            R"("recent_events":[{"timestamp":"2026-05-07T22:41:55.000Z","path":"/api/login","method":"POST","allowed":false,"count":11,"limit":10,"rule_name":"login","outcome":"blocked"}])") !=
        std::string::npos);

    srl::offender_detail none;
    none.key = "ip:nobody";
    none.days = 7;
    CHECK(
        srl::to_json_string(none) ==
        R"({"key":"ip:nobody","days":7,"total":0,"allowed":0,"blocked":0,"block_rate":0.0,"degraded":0,)"
        R"("first_seen":null,"last_seen":null,"by_path":[],"recent_events":[]})");
}

TEST_CASE("hostile keys are escaped: quotes, control characters, HTML, invalid UTF-8",
          "[analytics][json]") {
    for (const auto& key : hostile_keys()) {
        const std::string text = srl::to_json_string(std::vector<srl::offender>{{key, 1}});
        CHECK(text.find('<') == std::string::npos);
        CHECK(text.find('>') == std::string::npos);
        CHECK(text.find('\n') == std::string::npos);
        CHECK(text.find('\r') == std::string::npos);
        CHECK(text.find('\t') == std::string::npos);
        // Valid UTF-8 round-trips exactly through a JSON parser.
        CHECK(boost::json::parse(text).as_array().at(0).at("key").as_string() == key);
    }
    CHECK(srl::to_json_string(std::vector<srl::offender>{{"<script>&</script>", 1}}) ==
          R"([{"key":"\u003cscript\u003e\u0026\u003c/script\u003e","blocked_count":1}])");
    CHECK(srl::to_json_string(std::vector<srl::offender>{{std::string("a\xFF"
                                                                      "b\xC3",
                                                                      4),
                                                          1}}) ==
          R"([{"key":"a\ufffdb\ufffd","blocked_count":1}])");
    CHECK(srl::to_json_string(std::vector<srl::offender>{{std::string("nul\0x", 5), 1}}) ==
          R"([{"key":"nul\u0000x","blocked_count":1}])");
    CHECK(srl::to_json_string(std::vector<srl::offender>{{"\xE2\x80\xA8", 1}}) ==
          R"([{"key":"\u2028","blocked_count":1}])");
}

TEST_CASE("serialize_json prints any Boost.JSON value with plain decimals", "[analytics][json]") {
    boost::json::value v = {
        {"summary", boost::json::value_from(srl::traffic_summary{1, 5, 2, 3, 0.6})},
        {"list", {1, 2.5, nullptr, true, "x"}},
        {"u", std::uint64_t{18446744073709551615ULL}}};
    CHECK(
        srl::serialize_json(v) ==
        R"({"summary":{"days":1,"total":5,"allowed":2,"blocked":3,"block_rate":0.6,"degraded":0},)"
        R"("list":[1,2.5,null,true,"x"],"u":18446744073709551615})");
}

TEST_CASE("RFC 3339 timestamps format in UTC with Z and parse back", "[analytics][time]") {
    using namespace std::chrono;
    const srl::event_time t{sys_days{year{2026} / 5 / 7} + 22h + 41min + 55s + 123456us};
    CHECK(srl::format_rfc3339(t) == "2026-05-07T22:41:55.123Z");
    CHECK(srl::format_rfc3339(t, 6) == "2026-05-07T22:41:55.123456Z");
    CHECK(srl::format_rfc3339(t, 0) == "2026-05-07T22:41:55Z");
    CHECK(srl::format_rfc3339(srl::event_time{}) == "1970-01-01T00:00:00.000Z");
    CHECK(srl::format_rfc3339(srl::event_time{} - 1us, 6) == "1969-12-31T23:59:59.999999Z");
    CHECK(srl::parse_rfc3339("2026-05-07T22:41:55.123456Z") == t);
    CHECK(srl::parse_rfc3339("2026-05-07T22:41:55Z") == t - 123456us);
    CHECK(srl::parse_rfc3339("2026-05-08T00:41:55.123456+02:00") == t);
    CHECK(srl::parse_rfc3339("2026-05-07t22:41:55.1z") == t - 23456us);
    CHECK(srl::parse_rfc3339("2026-05-07 22:41:55Z") == t - 123456us);
    CHECK(srl::parse_rfc3339("2026-05-07T22:41:55.1234569Z") == t);  // truncated to microseconds
    for (const char* bad :
         {"", "2026-05-07", "2026-05-07T22:41:55", "2026-02-30T00:00:00Z", "2026-05-07T24:00:00Z",
          "2026-05-07T22:41:55.Z", "2026-05-07T22:41:55Zjunk", "26-05-07T22:41:55Z",
          "2026-05-07T22:41:55+2:00", "now"})
        CHECK_FALSE(srl::parse_rfc3339(bad).has_value());
    std::mt19937_64 rng(9);
    for (int i = 0; i < 2000; ++i) {
        const srl::event_time x{
            microseconds{static_cast<std::int64_t>(rng() % 4'000'000'000'000'000ULL)}};
        REQUIRE(srl::parse_rfc3339(srl::format_rfc3339(x, 6)) == x);
    }
}

TEST_CASE("the std-only JSON text equals the Boost.JSON value serialized",
          "[analytics][json][property]") {
    const std::vector<int> edges{1, 7};
    const auto events = random_events(77, 3000, test_now, edges);
    for (int days : {0, 1, 7, 30}) {
        const auto s = srl::get_traffic_summary(events, days, test_now);
        CHECK(srl::to_json_string(s) == srl::serialize_json(srl::to_json(s)));
        const auto top = srl::get_top_offenders(events, days, 100, test_now);
        CHECK(srl::to_json_string(top) == srl::serialize_json(srl::to_json(top)));
        const auto rules = srl::get_rule_hit_counts(events, days, 50, test_now);
        CHECK(srl::to_json_string(rules) == srl::serialize_json(srl::to_json(rules)));
        for (const auto& key : hostile_keys()) {
            const auto d = srl::get_offender_detail(events, key, days, 50, test_now);
            const std::string text = srl::to_json_string(d);
            CHECK(text == srl::serialize_json(srl::to_json(d)));
            CHECK(boost::json::parse(text).at("key").as_string() == key);
        }
    }
}
