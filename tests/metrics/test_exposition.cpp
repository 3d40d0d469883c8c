// tests/metrics/test_exposition.cpp
// The text exposition format: names checked, label values and HELP escaped (invalid
// UTF-8 replaced), numbers, exact text of counters, gauges and cumulative histogram
// buckets, families merged across collectors, and a failing collector left out.
#include <catch2/catch.hpp>

#include <smart_ratelimit/metrics.hpp>

#include <limits>
#include <stdexcept>
#include <string>

namespace srl = smart_ratelimit;
namespace m = smart_ratelimit::metrics;

namespace {
// The collector archetype: only collect(out).
struct archetype_collector {
    void collect(m::exposition& out) const {
        out.declare("archetype_total", m::metric_type::counter, "An archetype.");
        out.sample("archetype_total", {}, std::uint64_t{7});
    }
};
static_assert(m::collector<archetype_collector>);
static_assert(m::collector<m::counter> && m::collector<m::gauge> && m::collector<m::histogram>);
static_assert(m::collector<m::labeled_counter> && m::collector<m::decision_metrics>);
static_assert(m::collector<m::event_sink_metrics> && m::collector<m::storage_metrics>);
static_assert(m::collector<m::alert_metrics> && m::collector<m::build_info>);
static_assert(!m::collector<int>);
}  // namespace

TEST_CASE("metric and label names are checked as the format defines them", "[metrics]") {
    CHECK(m::is_valid_metric_name("smart_ratelimit_decisions_total"));
    CHECK(m::is_valid_metric_name("a:b_c9"));
    CHECK_FALSE(m::is_valid_metric_name(""));
    CHECK_FALSE(m::is_valid_metric_name("9lives"));
    CHECK_FALSE(m::is_valid_metric_name("with-dash"));
    CHECK(m::is_valid_label_name("rule"));
    CHECK_FALSE(m::is_valid_label_name("__name"));
    CHECK_FALSE(m::is_valid_label_name("a:b"));
    CHECK_THROWS_AS(m::counter("bad name", "h"), srl::config_error);
    CHECK_THROWS_AS(m::counter("ok_total", "h", {{"bad-label", "v"}}), srl::config_error);
    CHECK_THROWS_AS(m::labeled_counter("ok_total", "h", {"a", "a"}), srl::config_error);
    CHECK_THROWS_AS(m::histogram("h_seconds", "h", {1.0, 0.5}), srl::config_error);
}

TEST_CASE("label values escape backslash, quote and newline, and replace invalid UTF-8",
          "[metrics]") {
    std::string out;
    m::append_label_value(out, "a\\b\"c\nd");
    CHECK(out == "a\\\\b\\\"c\\nd");
    out.clear();
    m::append_label_value(out, "caf\xC3\xA9 \xFF\xC0\xAF \xED\xA0\x80");
    CHECK(out ==
          "caf\xC3\xA9 \xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD \xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");
    out.clear();
    m::append_help(out, "say \"hi\"\\\n");
    CHECK(out == "say \"hi\"\\\\\\n");
}

TEST_CASE("numbers are written as the shortest round-trip text, with +Inf and NaN", "[metrics]") {
    auto num = [](double v) {
        std::string s;
        m::append_number(s, v);
        return s;
    };
    CHECK(num(0.1) == "0.1");
    CHECK(num(1.0) == "1");
    CHECK(num(2.5e-6) == "2.5e-06");
    CHECK(num(std::numeric_limits<double>::infinity()) == "+Inf");
    CHECK(num(-std::numeric_limits<double>::infinity()) == "-Inf");
    CHECK(num(std::numeric_limits<double>::quiet_NaN()) == "NaN");
    std::string s;
    m::append_number(s, std::uint64_t{18446744073709551615u});
    CHECK(s == "18446744073709551615");
}

TEST_CASE("a counter, a gauge and a labeled counter are written exactly", "[metrics]") {
    m::registry reg;
    m::counter c("jobs_total", "Jobs \"done\".", {{"queue", "a\"b"}});
    c.inc();
    c.inc(4);
    m::gauge g("temperature", "Degrees.");
    g.set(21.5);
    g.add(-1);
    m::labeled_counter lc("alerts_total", "Alerts.", {"channel", "result"});
    lc.add({"webhook", "sent"});
    lc.add({"email", "failed"}, 2);
    CHECK_THROWS_AS(lc.add({"email"}), srl::config_error);
    reg.add(c);
    reg.add(g);
    reg.add(lc);
    CHECK(reg.scrape() ==
          "# HELP jobs_total Jobs \"done\".\n"
          "# TYPE jobs_total counter\n"
          "jobs_total{queue=\"a\\\"b\"} 5\n"
          "# HELP temperature Degrees.\n"
          "# TYPE temperature gauge\n"
          "temperature 20.5\n"
          "# HELP alerts_total Alerts.\n"
          "# TYPE alerts_total counter\n"
          "alerts_total{channel=\"email\",result=\"failed\"} 2\n"
          "alerts_total{channel=\"webhook\",result=\"sent\"} 1\n");
}

TEST_CASE("a histogram writes cumulative buckets, +Inf, _sum and _count", "[metrics]") {
    m::histogram h("latency_seconds", "Latency.", {0.25, 0.5, 1}, {{"route", "/x"}});
    h.observe(0.125);
    h.observe(0.25);  // on the bound: le is inclusive
    h.observe(0.75);
    h.observe(std::chrono::milliseconds(2000));
    h.observe(std::numeric_limits<double>::quiet_NaN());  // ignored
    m::exposition out;
    h.collect(out);
    CHECK(out.str() ==
          "# HELP latency_seconds Latency.\n"
          "# TYPE latency_seconds histogram\n"
          "latency_seconds_bucket{route=\"/x\",le=\"0.25\"} 2\n"
          "latency_seconds_bucket{route=\"/x\",le=\"0.5\"} 2\n"
          "latency_seconds_bucket{route=\"/x\",le=\"1\"} 3\n"
          "latency_seconds_bucket{route=\"/x\",le=\"+Inf\"} 4\n"
          "latency_seconds_sum{route=\"/x\"} 3.125\n"
          "latency_seconds_count{route=\"/x\"} 4\n");
}

TEST_CASE("the default latency buckets span 1 us to 10 s", "[metrics]") {
    const auto b = m::latency_buckets();
    CHECK(b.front() == 1e-6);
    CHECK(b.back() == 10.0);
    CHECK(b.size() == 22);
}

TEST_CASE("collectors reporting one family share its HELP and TYPE", "[metrics]") {
    m::registry reg;
    m::storage_metrics a("redis", [] {
        return m::storage_health{srl::breaker_state::open, {{"failure", 3}}};
    });
    m::storage_metrics b("sql", [] { return m::storage_health{std::nullopt, {{"failure", 1}}}; });
    reg.add(a);
    reg.add(b);
    CHECK(reg.scrape() ==
          "# HELP smart_ratelimit_storage_breaker_state The storage's circuit breaker: 0 closed, 1 "
          "half-open, 2 open.\n"
          "# TYPE smart_ratelimit_storage_breaker_state gauge\n"
          "smart_ratelimit_storage_breaker_state{storage=\"redis\"} 2\n"
          "# HELP smart_ratelimit_storage_errors_total Storage calls that failed, by kind.\n"
          "# TYPE smart_ratelimit_storage_errors_total counter\n"
          "smart_ratelimit_storage_errors_total{storage=\"redis\",kind=\"failure\"} 3\n"
          "smart_ratelimit_storage_errors_total{storage=\"sql\",kind=\"failure\"} 1\n");
}

TEST_CASE("a collector that throws is left out of the scrape and counted", "[metrics]") {
    m::registry reg;
    reg.add(archetype_collector{});
    const auto bad = reg.add_callback([](m::exposition& out) {
        out.declare("archetype_total", m::metric_type::counter, "An archetype.");
        out.sample("archetype_total", {{"half", "written"}}, std::uint64_t{1});
        out.declare("other", m::metric_type::gauge, "Never seen.");
        throw std::runtime_error("broken collector");
    });
    const auto clash = reg.add_callback([](m::exposition& out) {
        out.declare("archetype_total", m::metric_type::gauge, "A type clash.");
    });
    const std::string good =
        "# HELP archetype_total An archetype.\n"
        "# TYPE archetype_total counter\n"
        "archetype_total 7\n";
    CHECK(reg.scrape() == good);
    CHECK(reg.collector_failures() == 2);
    CHECK(reg.remove(bad));
    CHECK(reg.remove(clash));
    CHECK_FALSE(reg.remove(clash));
    CHECK(reg.scrape() == good);
    CHECK(reg.collector_failures() == 2);
}

TEST_CASE("build_info reports the library version", "[metrics]") {
    m::exposition out;
    m::build_info{}.collect(out);
    CHECK(
        out.str() ==
        std::string(
            "# HELP smart_ratelimit_build_info The smart_ratelimit version, as a label; always 1.\n"
            "# TYPE smart_ratelimit_build_info gauge\n"
            "smart_ratelimit_build_info{version=\"") +
            srl::version_string + "\"} 1\n");
}
