// tests/analytics/test_analytics.cpp
// The in-memory analytics: the original library's worked examples, window
// edges, orders and tie-breaks, limits, the offenders CSV, a user-defined event
// type through event_traits, and single-pass input ranges.
#include <catch2/catch.hpp>

#include "support/analytics_support.hpp"
#include "support/temp_dir.hpp"

#include <cstdlib>
#include <deque>
#include <fstream>
#include <list>
#include <map>
#include <random>
#include <set>
#include <stdexcept>

using namespace srl_test;

namespace {

// A user's own row type with other member names, adapted through event_traits.
struct access_log_row {
    std::int64_t micros;
    std::string client;
    bool denied;
    const char* route;
};

}  // namespace

template <>
struct smart_ratelimit::event_traits<access_log_row> {
    static event_time timestamp(const access_log_row& r) {
        return event_time{std::chrono::microseconds{r.micros}};
    }
    static const std::string& key(const access_log_row& r) { return r.client; }
    static std::string_view rule_name(const access_log_row& r) { return rule_name_of(r.client); }
    static std::string_view path(const access_log_row& r) { return r.route; }
    static std::string_view method(const access_log_row&) { return "GET"; }
    static bool allowed(const access_log_row& r) { return !r.denied; }
    static int count(const access_log_row&) { return 3; }
    static int limit(const access_log_row&) { return 2; }
};

// Shaped like `event` without being it: the default traits apply.
struct lookalike {
    srl::event_time timestamp;
    std::string key, rule_name, path, method;
    bool allowed;
    int count, limit;
};

static_assert(srl::event_range<std::vector<srl::event>>);
static_assert(srl::event_range<const std::deque<srl::event>&>);
static_assert(srl::event_range<std::vector<access_log_row>>);
static_assert(srl::event_range<std::list<lookalike>>);
static_assert(srl::event_range<one_pass_events>);
static_assert(!srl::event_range<std::vector<int>>);
static_assert(!srl::event_range<std::vector<std::string>>);
static_assert(!srl::event_range<srl::event>);

TEST_CASE("two allowed and three blocked events give total 5 and block rate 0.6", "[analytics]") {
    std::vector<srl::event> events;
    for (int i = 0; i < 2; ++i) events.push_back(ev(test_now - 1h, "ip:1", true));
    for (int i = 0; i < 3; ++i) events.push_back(ev(test_now - 2h, "ip:1", false));
    const auto s = srl::get_traffic_summary(events, 1, test_now);
    CHECK(s == srl::traffic_summary{1, 5, 2, 3, 0.6});
    CHECK(s.block_rate == 3.0 / 5.0);
}

TEST_CASE("an empty window has block rate 0.0 and no offenders", "[analytics]") {
    const std::vector<srl::event> none;
    CHECK(srl::get_traffic_summary(none, 7, test_now) == srl::traffic_summary{7, 0, 0, 0, 0.0});
    CHECK(srl::get_top_offenders(none, 7, 100, test_now).empty());
    CHECK(srl::get_rule_hit_counts(none, 7, 50, test_now).empty());
    CHECK(srl::offenders_csv(none, 7, 1000, test_now) == "key,blocked_count\r\n");
}

TEST_CASE("events 40 days old are outside a 7-day window", "[analytics]") {
    std::vector<srl::event> events{ev(test_now - 24h * 40, "ip:old", false),
                                   ev(test_now - 24h, "ip:new", false)};
    const auto s = srl::get_traffic_summary(events, 7, test_now);
    CHECK(s.total == 1);
    const auto top = srl::get_top_offenders(events, 7, 100, test_now);
    REQUIRE(top.size() == 1);
    CHECK(top[0] == srl::offender{"ip:new", 1});
    CHECK(srl::get_traffic_summary(events, 41, test_now).total == 2);
}

TEST_CASE("an event exactly on the cutoff is inside, one microsecond earlier is outside",
          "[analytics]") {
    const auto cutoff = test_now - 24h * 7;
    std::vector<srl::event> events{ev(cutoff, "ip:on", false), ev(cutoff - 1us, "ip:before", false),
                                   ev(cutoff + 1us, "ip:after", false)};
    const auto top = srl::get_top_offenders(events, 7, 100, test_now);
    std::set<std::string> keys;
    for (const auto& o : top) keys.insert(o.key);
    CHECK(keys == std::set<std::string>{"ip:on", "ip:after"});
    CHECK(srl::get_traffic_summary(events, 7, test_now).total == 2);
    CHECK(srl::window_start(test_now, 7) == cutoff);
}

TEST_CASE("days is not clamped: zero starts at now, negative starts in the future", "[analytics]") {
    std::vector<srl::event> events{
        ev(test_now - 1us, "ip:past", false), ev(test_now, "ip:now", false),
        ev(test_now + 24h, "ip:tomorrow", false), ev(test_now + 48h, "ip:later", false)};
    CHECK(srl::get_traffic_summary(events, 0, test_now).total == 3);
    const auto s = srl::get_traffic_summary(events, -1, test_now);
    CHECK(s.days == -1);
    CHECK(s.total == 2);  // stamped at or after now + 24h
    CHECK(srl::get_traffic_summary(events, -3, test_now).total == 0);
    // Huge windows saturate instead of overflowing.
    CHECK(srl::get_traffic_summary(events, std::numeric_limits<int>::max(), test_now).total == 4);
    CHECK(srl::get_traffic_summary(events, std::numeric_limits<int>::min(), test_now).total == 0);
    CHECK(srl::window_start(srl::event_time::max(), -1) == srl::event_time::max());
    CHECK(srl::window_start(srl::event_time::min(), 1) == srl::event_time::min());
}

TEST_CASE("the default now is the system clock", "[analytics]") {
    std::vector<srl::event> events{ev(srl::event_clock_now() - 1h, "ip:1", false)};
    CHECK(srl::get_traffic_summary(events).total == 1);
    CHECK(srl::get_traffic_summary(events).days == 1);
    CHECK(srl::get_top_offenders(events).size() == 1);
    CHECK(srl::find_alertable_offenders(events, 1).size() == 1);
}

TEST_CASE("top offenders count blocked events only, count desc then key asc", "[analytics]") {
    std::vector<srl::event> events;
    auto add = [&](const std::string& key, int blocked, int allowed) {
        for (int i = 0; i < blocked; ++i) events.push_back(ev(test_now - 1h, key, false));
        for (int i = 0; i < allowed; ++i) events.push_back(ev(test_now - 1h, key, true));
    };
    add("ip:c", 3, 0);
    add("ip:b", 5, 1);
    add("ip:a", 3, 9);
    add("ip:z", 0, 50);  // never blocked: not an offender
    add("ip:B", 3, 0);   // upper case sorts before lower case (bytewise)
    const auto top = srl::get_top_offenders(events, 7, 100, test_now);
    const std::vector<srl::offender> want{{"ip:b", 5}, {"ip:B", 3}, {"ip:a", 3}, {"ip:c", 3}};
    CHECK(top == want);
    CHECK(srl::get_top_offenders(events, 7, 2, test_now) ==
          std::vector<srl::offender>{{"ip:b", 5}, {"ip:B", 3}});
    CHECK(srl::get_top_offenders(events, 7, 0, test_now).empty());
    CHECK_THROWS_AS(srl::get_top_offenders(events, 7, -1, test_now), std::invalid_argument);
    CHECK_THROWS_WITH(srl::get_top_offenders(events, 7, -5, test_now), Catch::Contains("limit"));
}

TEST_CASE("rule hits count every event with a rule name, hits desc then rule name asc",
          "[analytics]") {
    std::vector<srl::event> events{
        ev(test_now - 1h, "rule:login:ip:1", false),   ev(test_now - 1h, "rule:login:ip:2", true),
        ev(test_now - 1h, "rule:api:ip:1", true),      ev(test_now - 1h, "rule:api:ip:1", false),
        ev(test_now - 1h, "rule:zeta:ip:1", true),     ev(test_now - 1h, "ip:1", false),
        ev(test_now - 24h * 9, "rule:zeta:ip:1", true)};
    const auto hits = srl::get_rule_hit_counts(events, 7, 50, test_now);
    const std::vector<srl::rule_hits> want{{"api", 2, 1}, {"login", 2, 1}, {"zeta", 1, 0}};
    CHECK(hits == want);
    CHECK(srl::get_rule_hit_counts(events, 7, 1, test_now) ==
          std::vector<srl::rule_hits>{{"api", 2, 1}});
    CHECK_THROWS_AS(srl::get_rule_hit_counts(events, 7, -1, test_now), std::invalid_argument);
}

TEST_CASE("alertable offenders apply the limit first, then the threshold", "[analytics]") {
    std::vector<srl::event> events;
    for (int i = 0; i < 5; ++i) events.push_back(ev(test_now - 1h, "ip:five", false));
    for (int i = 0; i < 4; ++i) events.push_back(ev(test_now - 1h, "ip:four", false));
    for (int i = 0; i < 4; ++i) events.push_back(ev(test_now - 1h, "ip:four-b", false));
    for (int i = 0; i < 9; ++i) events.push_back(ev(test_now - 24h * 2, "ip:old", false));
    CHECK(srl::find_alertable_offenders(events, 4, 1, 100, test_now) ==
          std::vector<srl::offender>{{"ip:five", 5}, {"ip:four", 4}, {"ip:four-b", 4}});
    CHECK(srl::find_alertable_offenders(events, 5, 1, 100, test_now) ==
          std::vector<srl::offender>{{"ip:five", 5}});
    // limit 2 keeps ip:five and ip:four; ip:four-b was cut before the threshold.
    CHECK(srl::find_alertable_offenders(events, 4, 1, 2, test_now) ==
          std::vector<srl::offender>{{"ip:five", 5}, {"ip:four", 4}});
    CHECK(srl::find_alertable_offenders(events, 6, 1, 100, test_now).empty());
    CHECK(srl::find_alertable_offenders(events, 9, 3, 100, test_now) ==
          std::vector<srl::offender>{{"ip:old", 9}});
}

TEST_CASE("offender detail: totals, first and last seen, blocked paths and newest events",
          "[analytics]") {
    const std::string key = "ip:203.0.113.5";
    std::vector<srl::event> events{
        ev(test_now - 24h * 8, key, false, "/old"),  // outside the 7-day window
        ev(test_now - 5h, key, false, "/b", "POST", 11, 10),
        ev(test_now - 4h, key, false, "/a", "POST", 12, 10),
        ev(test_now - 3h, "ip:other", false, "/a"),
        ev(test_now - 3h, key, true, "/c", "GET", 3, 10),
        ev(test_now - 2h, key, false, "/b", "PUT", 13, 10),
        ev(test_now - 1h, key, false, "/a", "POST", 14, 10),
    };
    const auto d = srl::get_offender_detail(events, key, 7, 3, test_now);
    CHECK(d.key == key);
    CHECK(d.days == 7);
    CHECK(d.total == 5);
    CHECK(d.allowed == 1);
    CHECK(d.blocked == 4);
    CHECK(d.block_rate == 0.8);
    CHECK(d.first_seen == test_now - 5h);
    CHECK(d.last_seen == test_now - 1h);
    CHECK(d.by_path == std::vector<srl::path_count>{{"/a", 2}, {"/b", 2}});
    REQUIRE(d.recent_events.size() == 3);
    CHECK(d.recent_events[0] == srl::recent_event{test_now - 1h, "/a", "POST", false, 14, 10, "",
                                                  srl::outcome_kind::blocked});
    CHECK(d.recent_events[1].timestamp == test_now - 2h);
    CHECK(d.recent_events[1].method == "PUT");
    CHECK(d.recent_events[2] == srl::recent_event{test_now - 3h, "/c", "GET", true, 3, 10, ""});
    CHECK(srl::get_offender_detail(events, key, 7, 0, test_now).recent_events.empty());
    CHECK(srl::get_offender_detail(events, key, 7, 50, test_now).recent_events.size() == 5);
    CHECK_THROWS_WITH(srl::get_offender_detail(events, key, 7, -1, test_now),
                      Catch::Contains("recent"));
}

TEST_CASE("offender detail of an unknown key has null first and last seen", "[analytics]") {
    std::vector<srl::event> events{ev(test_now - 1h, "ip:1", false)};
    const auto d = srl::get_offender_detail(events, "ip:2", 7, 50, test_now);
    CHECK(d.total == 0);
    CHECK(d.block_rate == 0.0);
    CHECK_FALSE(d.first_seen.has_value());
    CHECK_FALSE(d.last_seen.has_value());
    CHECK(d.by_path.empty());
    CHECK(d.recent_events.empty());
}

TEST_CASE("offender detail lists at most 20 paths and breaks timestamp ties by position",
          "[analytics]") {
    std::vector<srl::event> events;
    for (int p = 0; p < 30; ++p)
        for (int i = 0; i <= p % 4; ++i)
            events.push_back(ev(test_now - 1h, "k", false, "/p" + std::to_string(100 + p)));
    const auto d = srl::get_offender_detail(events, "k", 7, 5, test_now);
    REQUIRE(d.by_path.size() == 20);
    for (std::size_t i = 1; i < d.by_path.size(); ++i) {
        const auto& a = d.by_path[i - 1];
        const auto& b = d.by_path[i];
        CHECK((a.blocked_count > b.blocked_count ||
               (a.blocked_count == b.blocked_count && a.path < b.path)));
    }
    CHECK(d.by_path.front() == srl::path_count{"/p103", 4});
    // All at the same instant: the later element is the newer one.
    REQUIRE(d.recent_events.size() == 5);
    CHECK(d.recent_events[0].path == "/p129");
    CHECK(d.recent_events[2].path == "/p128");
    CHECK(d.recent_events[4].path == "/p127");
}

TEST_CASE("offenders CSV: CRLF, RFC 4180 quoting and formula injection defused",
          "[analytics][csv]") {
    std::vector<srl::event> events;
    auto add = [&](const std::string& key, int n) {
        for (int i = 0; i < n; ++i) events.push_back(ev(test_now - 1h, key, false));
    };
    add("ip:203.0.113.5", 9);
    add("a,b", 8);
    add("say \"hi\"", 7);
    add("line1\nline2", 6);
    add("=HYPERLINK(\"x\")", 5);
    add("+1", 4);
    add("-1", 4);
    add("@SUM(A1)", 3);
    add("\tTAB", 2);
    add("\rCR", 1);
    const std::string csv = srl::offenders_csv(events, 7, 1000, test_now);
    const std::string want =
        "key,blocked_count\r\n"
        "ip:203.0.113.5,9\r\n"
        "\"a,b\",8\r\n"
        "\"say \"\"hi\"\"\",7\r\n"
        "\"line1\nline2\",6\r\n"
        "\"'=HYPERLINK(\"\"x\"\")\",5\r\n"
        "'+1,4\r\n"
        "'-1,4\r\n"
        "'@SUM(A1),3\r\n"
        "'\tTAB,2\r\n"
        "\"'\rCR\",1\r\n";
    CHECK(csv == want);
    CHECK(srl::offenders_csv(events, 7, 2, test_now) ==
          "key,blocked_count\r\nip:203.0.113.5,9\r\n\"a,b\",8\r\n");
    std::string cell;
    srl::append_csv_cell(cell, "");
    CHECK(cell.empty());
}

TEST_CASE("offenders CSV of random hostile keys reads back through Python's csv module",
          "[analytics][csv][property]") {
    // Keys built from the bytes CSV readers trip on; Python's csv.reader (the excel
    // dialect, newline='') must give back every key, formula-defused, and its count.
    std::mt19937_64 rng(4180);
    static constexpr std::string_view pieces[] = {
        "a",    "7",      ",", "\"", "\"\"", "\r", "\n", "\r\n",     "=",
        "+",    "-",      "@", "\t", " ",    "'",  ";",  "\xc3\xa9", "\xf0\x9f\x98\x80",
        "\xff", "rule:x:"};
    std::vector<srl::event> events;
    std::map<std::string, std::int64_t> blocked;
    while (blocked.size() < 300) {
        std::string key;
        const std::size_t n = 1 + rng() % 12;
        for (std::size_t i = 0; i < n; ++i) key += pieces[rng() % std::size(pieces)];
        if (blocked.count(key) != 0) continue;
        const std::int64_t times = 1 + static_cast<std::int64_t>(rng() % 5);
        for (std::int64_t i = 0; i < times; ++i) events.push_back(ev(test_now - 1h, key, false));
        blocked[key] = times;
    }
    temp_dir dir("csv");
    const auto csv_path = dir.path() / "offenders.csv";
    const auto out_path = dir.path() / "read.txt";
    {
        std::ofstream f(csv_path, std::ios::binary);
        f << srl::offenders_csv(events, 7, 1000, test_now);
    }
    // One line per row: the key's bytes in hex, a space, the count.
    const std::string script =
        "import csv,sys\n"
        "with open(sys.argv[1], newline='', encoding='utf-8', errors='surrogateescape') as f:\n"
        "    rows = list(csv.reader(f))\n"
        "with open(sys.argv[2], 'w') as out:\n"
        "    for r in rows[1:]:\n"
        "        out.write(r[0].encode('utf-8', 'surrogateescape').hex() + ' ' + r[1] + '\\n')\n";
    const auto script_path = dir.path() / "read.py";
    std::ofstream(script_path) << script;
    const std::string cmd = "python3 '" + script_path.string() + "' '" + csv_path.string() + "' '" +
                            out_path.string() + "'";
    REQUIRE(std::system(cmd.c_str()) == 0);
    std::ifstream in(out_path);
    std::map<std::string, std::int64_t> read;
    std::string hex;
    std::int64_t count = 0;
    while (in >> hex >> count) {
        std::string key;
        for (std::size_t i = 0; i + 1 < hex.size(); i += 2)
            key += static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16));
        read[key] = count;
    }
    std::map<std::string, std::int64_t> want;
    for (const auto& [key, n] : blocked) {
        const bool formula = std::string_view("=+-@\t\r").find(key.front()) != std::string::npos;
        want[formula ? "'" + key : key] = n;
    }
    CHECK(read.size() == want.size());
    CHECK(read == want);
}

TEST_CASE("a user-defined row type is analysed in place through event_traits",
          "[analytics][traits]") {
    const std::int64_t now_us = test_now.time_since_epoch().count();
    const std::int64_t hour = 3'600'000'000;
    std::vector<access_log_row> rows{{now_us - hour, "rule:login:ip:1", true, "/login"},
                                     {now_us - hour, "rule:login:ip:1", true, "/login"},
                                     {now_us - hour, "ip:2", true, "/x"},
                                     {now_us - hour, "ip:2", false, "/x"},
                                     {now_us - 30 * 24 * hour, "ip:2", true, "/x"}};
    CHECK(srl::get_traffic_summary(rows, 1, test_now) == srl::traffic_summary{1, 4, 1, 3, 0.75});
    CHECK(srl::get_top_offenders(rows, 7, 10, test_now) ==
          std::vector<srl::offender>{{"rule:login:ip:1", 2}, {"ip:2", 1}});
    CHECK(srl::get_rule_hit_counts(rows, 7, 10, test_now) ==
          std::vector<srl::rule_hits>{{"login", 2, 2}});
    const auto d = srl::get_offender_detail(rows, "ip:2", 7, 10, test_now);
    CHECK(d.total == 2);
    REQUIRE(d.recent_events.size() == 2);
    CHECK(d.recent_events[0].count == 3);
    CHECK(d.recent_events[0].limit == 2);
    CHECK(d.recent_events[0].method == "GET");

    std::list<lookalike> looks{{test_now - 1h, "k", "r", "/p", "GET", false, 5, 4}};
    CHECK(srl::get_rule_hit_counts(looks, 1, 10, test_now) ==
          std::vector<srl::rule_hits>{{"r", 1, 1}});
}

TEST_CASE("single-pass input ranges of prvalues give the same results as the vector",
          "[analytics][property]") {
    const std::vector<int> edges{1, 7, 30};
    const auto events = random_events(11, 5000, test_now, edges);
    for (int days : {0, 1, 7, 30}) {
        {
            one_pass_events once(events);
            CHECK(srl::get_top_offenders(once, days, 10, test_now) ==
                  srl::get_top_offenders(events, days, 10, test_now));
            CHECK(once.begins() == 1);
        }
        {
            one_pass_events once(events);
            CHECK(srl::get_rule_hit_counts(once, days, 50, test_now) ==
                  srl::get_rule_hit_counts(events, days, 50, test_now));
        }
        {
            one_pass_events once(events);
            CHECK(srl::get_offender_detail(once, "user:a", days, 7, test_now) ==
                  srl::get_offender_detail(events, "user:a", days, 7, test_now));
        }
        {
            one_pass_events once(events);
            CHECK(srl::get_traffic_summary(once, days, test_now) ==
                  srl::get_traffic_summary(events, days, test_now));
        }
    }
}

TEST_CASE("random events agree with a straightforward reference implementation",
          "[analytics][property]") {
    const std::vector<int> edges{1, 7, 30};
    for (std::uint64_t seed : {1u, 2u, 3u}) {
        const auto events = random_events(seed, 4000, test_now, edges);
        for (int days : {-1, 0, 1, 7, 30, 90}) {
            const auto start = test_now - std::chrono::hours{24} * days;
            std::map<std::string, std::int64_t> blocked_by_key;
            std::map<std::string, std::pair<std::int64_t, std::int64_t>> by_rule;
            std::int64_t total = 0, blocked = 0;
            for (const auto& e : events) {
                if (e.timestamp < start) continue;
                ++total;
                if (!e.allowed) {
                    ++blocked;
                    ++blocked_by_key[e.key];
                }
                if (!e.rule_name.empty()) {
                    ++by_rule[e.rule_name].first;
                    by_rule[e.rule_name].second += !e.allowed;
                }
            }
            const auto s = srl::get_traffic_summary(events, days, test_now);
            CHECK(s.total == total);
            CHECK(s.blocked == blocked);
            std::vector<srl::offender> want;
            for (const auto& [k, n] : blocked_by_key) want.push_back({k, n});
            std::stable_sort(want.begin(), want.end(), [](const auto& a, const auto& b) {
                return a.blocked_count > b.blocked_count;
            });
            CHECK(srl::get_top_offenders(events, days, 1000, test_now) == want);
            want.resize(std::min<std::size_t>(want.size(), 5));
            CHECK(srl::get_top_offenders(events, days, 5, test_now) == want);
            std::vector<srl::rule_hits> rules;
            for (const auto& [r, c] : by_rule) rules.push_back({r, c.first, c.second});
            std::stable_sort(rules.begin(), rules.end(),
                             [](const auto& a, const auto& b) { return a.hits > b.hits; });
            CHECK(srl::get_rule_hit_counts(events, days, 50, test_now) == rules);
        }
    }
}

TEST_CASE(
    "degraded events are never blocked: summary, offenders, rules, CSV, drill-down and alerts",
    "[analytics][degraded]") {
    namespace srl = smart_ratelimit;
    const auto de = [](srl::event_time ts, std::string key, std::string path = "/api/login") {
        return srl::make_event(ts, key, path, "POST", srl::outcome_kind::degraded, 0, 10);
    };
    // "rule:api:user:innocent" was only degraded (the store was down); "ip:abuser" was blocked.
    std::vector<srl::event> events;
    for (int i = 0; i < 50; ++i) events.push_back(de(test_now - 1h, "rule:api:user:innocent"));
    for (int i = 0; i < 3; ++i) events.push_back(ev(test_now - 2h, "rule:api:ip:abuser", false));
    events.push_back(srl::make_event(test_now - 2h, "rule:api:ip:abuser", "/s", "GET",
                                     srl::outcome_kind::shadow_blocked, 11, 10));
    events.push_back(ev(test_now - 3h, "rule:api:user:innocent", true));

    const auto s = srl::get_traffic_summary(events, 1, test_now);
    CHECK(s.total == 55);
    CHECK(s.blocked == 4);  // shadow denials count as blocked, as they always did
    CHECK(s.degraded == 50);
    CHECK(s.allowed == 1);
    CHECK(s.block_rate == Approx(4.0 / 55.0));

    CHECK(srl::get_top_offenders(events, 1, 100, test_now) ==
          std::vector<srl::offender>{{"rule:api:ip:abuser", 4}});
    CHECK(srl::find_alertable_offenders(events, 1, 1, 100, test_now) ==
          std::vector<srl::offender>{{"rule:api:ip:abuser", 4}});
    CHECK(srl::offenders_csv(events, 1, 1000, test_now) ==
          "key,blocked_count\r\nrule:api:ip:abuser,4\r\n");
    CHECK(srl::get_rule_hit_counts(events, 1, 50, test_now) ==
          std::vector<srl::rule_hits>{{"api", 55, 4}});

    const auto d = srl::get_offender_detail(events, "rule:api:user:innocent", 1, 2, test_now);
    CHECK(d.total == 51);
    CHECK(d.blocked == 0);
    CHECK(d.degraded == 50);
    CHECK(d.allowed == 1);
    CHECK(d.block_rate == 0.0);
    CHECK(d.by_path.empty());
    REQUIRE(d.recent_events.size() == 2);
    CHECK(d.recent_events[0].outcome == srl::outcome_kind::degraded);
    CHECK(d.recent_events[0].allowed);

    const auto a = srl::get_offender_detail(events, "rule:api:ip:abuser", 1, 10, test_now);
    CHECK(a.blocked == 4);
    CHECK(a.degraded == 0);
    CHECK(a.recent_events.size() == 4);
}

TEST_CASE("a row type without an outcome reads as before: allowed or blocked",
          "[analytics][degraded]") {
    const std::vector<access_log_row> rows{
        {test_now.time_since_epoch().count() - 1, "ip:a", true, "/x"},
        {test_now.time_since_epoch().count() - 2, "ip:b", false, "/x"}};
    const auto s = smart_ratelimit::get_traffic_summary(rows, 1, test_now);
    CHECK(s.total == 2);
    CHECK(s.blocked == 1);
    CHECK(s.allowed == 1);
    CHECK(s.degraded == 0);
    CHECK(smart_ratelimit::outcome_of(rows[0]) ==
          smart_ratelimit::outcome_kind::blocked);  // denied
    CHECK(smart_ratelimit::outcome_of(rows[1]) == smart_ratelimit::outcome_kind::allowed);
}
