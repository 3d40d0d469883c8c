// tests/support/analytics_support.hpp
// Shared by the analytics tests: event builders at exact microsecond times, a
// seeded random event generator full of ties, window edges and hostile strings,
// and a single-pass input range to prove the functions never walk twice.
#pragma once

#include <chrono>
#include <cstdint>
#include <iterator>
#include <random>
#include <string>
#include <vector>

#include <smart_ratelimit/analytics.hpp>

namespace srl_test {

namespace srl = smart_ratelimit;
using namespace std::chrono_literals;

/// 2026-05-08T00:00:00Z: a fixed "now" for every test.
inline constexpr srl::event_time test_now{
    std::chrono::sys_days{std::chrono::year{2026} / 5 / 8}.time_since_epoch()};

inline srl::event ev(srl::event_time ts, std::string key, bool allowed,
                     std::string path = "/api/login", std::string method = "POST",
                     std::int64_t count = 1, std::int64_t limit = 10) {
    srl::event e = srl::make_event(ts, key, path, method, allowed, count, limit);
    return e;
}

/// Keys that try to break CSV, JSON, HTML and SQL quoting.
inline const std::vector<std::string>& hostile_keys() {
    static const std::vector<std::string> keys{
        "ip:203.0.113.5",
        "ip:203.0.113.6",
        "user:42",
        "rule:login:ip:198.51.100.7",
        "rule:api-v2:user:7",
        "rule:search_1:ip:192.0.2.1",
        "header:X-Key:a,b",
        "header:X-Key:say \"hi\"",
        "header:X-Key:line1\nline2",
        "header:X-Key:cr\rhere",
        "=HYPERLINK(\"http://evil\")",
        "+1+1",
        "-2",
        "@SUM(A1)",
        "\tTAB",
        "<script>alert(1)</script>",
        "user:J\xC3\xBCrgen",             // Jürgen
        "user:\xE6\x97\xA5\xE6\x9C\xAC",  // 日本
        "user:\xF0\x9F\x98\x80",          // emoji
        "'; DROP TABLE ratelimit_event; --",
        "user:a",
        "user:B",
        "user:b",
    };
    return keys;
}

/// `n` seeded random events around `now`: timestamps concentrated on the window
/// edges of `edge_days` (exactly on, 1 us before, 1 us after), on hour boundaries
/// and spread over +-45 days; few distinct keys, paths and rules so counts tie.
/// Outcomes are allowed or blocked; with `every_outcome`, also shadow_blocked and
/// degraded (the same seed without it gives the same events as ever).
inline std::vector<srl::event> random_events(std::uint64_t seed, std::size_t n, srl::event_time now,
                                             const std::vector<int>& edge_days,
                                             bool every_outcome = false) {
    std::mt19937_64 rng(seed);
    auto pick = [&](std::size_t size) { return static_cast<std::size_t>(rng() % size); };
    const auto& keys = hostile_keys();
    static const std::vector<std::string> paths{"/api/login", "/api/search",  "/a,b", "/\"q\"",
                                                "/=cmd",      "/caf\xC3\xA9", "/"};
    static const std::vector<std::string> methods{"GET", "POST", "DELETE"};
    std::vector<srl::event> out;
    out.reserve(n);
    for (std::size_t i = 0; i < n; ++i) {
        srl::event_time ts;
        switch (pick(5)) {
            case 0: {  // on a window edge, or a microsecond around it
                const int d = edge_days[pick(edge_days.size())];
                const auto off = std::chrono::microseconds{static_cast<std::int64_t>(pick(3)) - 1};
                ts = now - std::chrono::hours{24} * d + off;
                break;
            }
            case 1: {  // on an hour boundary, or a microsecond around it
                const auto h = std::chrono::hours{static_cast<std::int64_t>(pick(24 * 40)) - 24};
                const auto off = std::chrono::microseconds{static_cast<std::int64_t>(pick(3)) - 1};
                ts = std::chrono::floor<std::chrono::hours>(now) - h + off;
                break;
            }
            case 2:  // a few repeated instants (timestamp ties)
                ts = now - std::chrono::minutes{static_cast<std::int64_t>(pick(4)) * 90};
                break;
            default:  // anywhere in [-45 d, +2 d]
                ts = now -
                     std::chrono::microseconds{
                         static_cast<std::int64_t>(rng() % (47ULL * 86'400'000'000ULL))} +
                     std::chrono::hours{48};
        }
        const std::string& key = keys[pick(keys.size())];
        srl::outcome_kind outcome;
        if (every_outcome) {
            static constexpr srl::outcome_kind kinds[] = {
                srl::outcome_kind::allowed,        srl::outcome_kind::allowed,
                srl::outcome_kind::allowed,        srl::outcome_kind::blocked,
                srl::outcome_kind::blocked,        srl::outcome_kind::blocked,
                srl::outcome_kind::shadow_blocked, srl::outcome_kind::shadow_blocked,
                srl::outcome_kind::degraded,       srl::outcome_kind::degraded};
            outcome = kinds[pick(std::size(kinds))];
        } else {
            outcome = srl::outcome_of_allowed(pick(5) < 2);
        }
        out.push_back(srl::make_event(ts, key, paths[pick(paths.size())],
                                      methods[pick(methods.size())], outcome,
                                      static_cast<std::int64_t>(pick(20)), 10));
    }
    return out;
}

/// Events with timestamp <= end: the in-memory equivalent of an as-of bound.
inline std::vector<srl::event> up_to(const std::vector<srl::event>& events, srl::event_time end) {
    std::vector<srl::event> out;
    for (const auto& e : events)
        if (e.timestamp <= end) out.push_back(e);
    return out;
}

/// A single-pass input range over a vector that hands out copies (prvalues):
/// the functions must copy what they keep and never iterate twice.
class one_pass_events {
public:
    explicit one_pass_events(const std::vector<srl::event>& v) : v_(&v) {}
    struct iterator {
        using value_type = srl::event;
        using difference_type = std::ptrdiff_t;
        using iterator_concept = std::input_iterator_tag;
        one_pass_events* owner;
        srl::event operator*() const { return (*owner->v_)[owner->pos_]; }
        iterator& operator++() {
            ++owner->pos_;
            return *this;
        }
        void operator++(int) { ++owner->pos_; }
        friend bool operator==(const iterator& it, std::default_sentinel_t) {
            return it.owner->done();
        }
    };
    iterator begin() {
        ++begins_;
        return iterator{this};
    }
    std::default_sentinel_t end() const { return {}; }
    int begins() const { return begins_; }
    bool done() const { return pos_ >= v_->size(); }

private:
    const std::vector<srl::event>* v_;
    std::size_t pos_ = 0;
    int begins_ = 0;
};

}  // namespace srl_test
