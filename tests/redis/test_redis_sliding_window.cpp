// tests/redis/test_redis_sliding_window.cpp
// The exact sliding window on Redis: a denied request costs the same few commands
// and elements at limit 10 and at limit 20,000 (counted inside the script, no clock);
// the wait it reports is the in-memory algorithm's on the same log; keys written by
// the previous script (no index) keep their count, and the previous and the current
// script agree on one key while a rolling upgrade runs both.
#include <catch2/catch.hpp>

#include "script_work.hpp"
#include "support/redis_server.hpp"

#include <smart_ratelimit/algorithms/sliding_window.hpp>
#include <smart_ratelimit/redis.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <unistd.h>
#include <vector>

namespace srl = smart_ratelimit;
namespace rds = smart_ratelimit::redis;
using namespace std::chrono_literals;

namespace {

srl_test::redis_server& server() {
    static srl_test::redis_server s;
    return s;
}

rds::redis_storage make_storage(const char* what) {
    static std::atomic<int> n{0};
    auto o = rds::redis_options_from_url(server().url(), 5000ms, 5000ms, 2);
    o.prefix = std::string("test:") + what + ":" + std::to_string(::getpid()) + ":" +
               std::to_string(n++) + ":";
    o.errors = rds::on_error::raise;
    return rds::redis_storage(o);
}

// The sliding window's keys, in the order the script takes them: the log, its hash
// and the index the current script keeps (the previous one takes only the first two).
std::vector<std::string> sw_keys(const rds::redis_storage& s, const std::string& key,
                                 const srl::any_algorithm& a) {
    const std::string log = s.redis_key(key, a);
    return {log, log + ":n", log + ":c"};
}

// The sliding-window script before the index (redis/scripts.hpp at commit
// 9b1ab5b): a sorted set of "seq:units" scored by admission time and a hash
// {t = units in the log, s = sequence}. A denial read every entry of the window.
constexpr std::string_view previous_sliding_window_body = R"lua(
local zk, hk = KEYS[1], KEYS[2]
local cutoff = now - period
local function units(m) return tonumber(string.match(m, ':(%d+)$')) end
local total = tonumber(redis.call('HGET', hk, 't') or '0')
local old = redis.call('ZRANGEBYSCORE', zk, '-inf', n(cutoff))
for i = 1, #old do total = total - units(old[i]) end
if total < 0 then total = 0 end
local function reset()
  local r = redis.call('ZREVRANGE', zk, 0, 0, 'WITHSCORES')
  if #r == 0 or tonumber(r[2]) <= cutoff then return 0 end
  return tonumber(r[2]) + period - now
end
local function save()
  if #old > 0 then redis.call('ZREMRANGEBYSCORE', zk, '-inf', n(cutoff)) end
  redis.call('HSET', hk, 't', n(total)); ttl(zk, period); ttl(hk, period)
end
if mode == 2 then
  local left = cost
  local e = redis.call('ZREVRANGEBYSCORE', zk, '+inf', '(' .. n(cutoff), 'WITHSCORES')
  local i = 1
  while left > 0 and i < #e do
    local u = units(e[i])
    local take = math.min(left, u)
    redis.call('ZREM', zk, e[i])
    if take < u then redis.call('ZADD', zk, e[i + 1], string.match(e[i], '^(%d+):') .. ':' .. n(u - take)) end
    total = total - take; left = left - take; i = i + 2
  end
  if total < 0 then total = 0 end
  if left < cost or #old > 0 then save() end
  return out(1, 1, total, reset(), 0)
end
if cost > limit then return out(0, 0, total, reset(), -1) end
if cost <= limit - total then
  if mode == 0 then
    if cost > 0 then
      local seq = redis.call('HINCRBY', hk, 's', 1)
      redis.call('ZADD', zk, n(now), n(seq) .. ':' .. n(cost))
      total = total + cost
    end
    save()
    return out(1, 1, total, period, 0)
  end
  -- peek reports what an acquire would: the window with this request admitted
  if cost > 0 then return out(1, 1, total + cost, period, 0) end
  return out(1, 1, total, reset(), 0)
end
local need = total - (limit - cost)
local e = redis.call('ZRANGEBYSCORE', zk, '(' .. n(cutoff), '+inf', 'WITHSCORES')
local freed, at = 0, now
for i = 1, #e, 2 do
  freed = freed + units(e[i]); at = tonumber(e[i + 1])
  if freed >= need then break end
end
local r = reset()
if mode == 0 and #old > 0 then save() end
return out(0, 1, total, r, math.max(1, at + period - now))
)lua";

std::string previous_script() {
    return std::string(rds::detail::script_prelude) + std::string(previous_sliding_window_body);
}

std::string current_script() { return rds::script_source(rds::script_id::sliding_window); }

constexpr std::uint64_t hour_us = 3'600'000'000;

// Redis's clock in microseconds.
long long server_time_us(rds::connection& c) {
    rds::command_args t;
    t << "TIME";
    const auto r = c.run(t);
    REQUIRE(r->type == REDIS_REPLY_ARRAY);
    return std::stoll(std::string(r->element[0]->str, r->element[0]->len)) * 1'000'000 +
           std::stoll(std::string(r->element[1]->str, r->element[1]->len));
}

void run(rds::connection& c, std::initializer_list<std::string> words) {
    rds::command_args args;
    for (const auto& w : words) args << w;
    const auto r = c.run(args);
    REQUIRE(r->type != REDIS_REPLY_ERROR);
}

}  // namespace

TEST_CASE("redis: a denied sliding-window request reads as much at limit 20,000 as at limit 10",
          "[redis][storage][sliding_window][cost]") {
    auto s = make_storage("swcost");
    auto c = s.pool().acquire();
    struct work_at {
        srl_test::script_work acquire_1, acquire_7, peek_1;
    };
    const auto denials_at = [&](std::uint64_t limit) {
        const srl::any_algorithm a("sliding_window", srl::rate{limit, 1h});
        const std::string key = "k" + std::to_string(limit);
        // The window filled in pipelines, one unit per admission.
        for (std::uint64_t done = 0; done < limit;) {
            const std::uint64_t n = std::min<std::uint64_t>(limit - done, 1000);
            std::vector<rds::redis_storage::request> reqs(n, {key, &a, 1, rds::op::acquire});
            std::vector<srl::outcome> out(n);
            s.acquire_many(reqs, out);
            REQUIRE(out.back().allowed);
            done += n;
        }
        const auto keys = sw_keys(s, key, a);
        work_at w{srl_test::run_counted(*c, current_script(), keys, 0, limit, hour_us, 1),
                  srl_test::run_counted(*c, current_script(), keys, 0, limit, hour_us, 7),
                  srl_test::run_counted(*c, current_script(), keys, 1, limit, hour_us, 1)};
        for (const auto& d : {w.acquire_1, w.acquire_7, w.peek_1}) {
            REQUIRE(d.allowed == 0);
            CHECK(d.count == static_cast<long long>(limit));
            CHECK(d.retry_after_us > 0);
        }
        return w;
    };
    const auto small = denials_at(10);
    const auto big = denials_at(20'000);
    INFO("limit 10: " << small.acquire_1.calls << " calls, " << small.acquire_1.elements
                      << " elements; limit 20,000: " << big.acquire_1.calls << " calls, "
                      << big.acquire_1.elements << " elements");
    CHECK(big.acquire_1.elements == small.acquire_1.elements);
    CHECK(big.acquire_1.calls == small.acquire_1.calls);
    CHECK(big.acquire_7.elements == small.acquire_7.elements);
    CHECK(big.peek_1.elements == small.peek_1.elements);
    CHECK(big.acquire_1.elements <= 24);
    CHECK(big.acquire_7.elements <= 24);
}

TEST_CASE("redis: a denied sliding-window request waits as long as the in-memory algorithm says",
          "[redis][storage][sliding_window]") {
    auto s = make_storage("swwait");
    auto c = s.pool().acquire();
    const srl::rate r{14, 1h};
    const srl::any_algorithm a("sliding_window", r);
    const auto keys = sw_keys(s, "w", a);
    // A log in the previous layout (no index): one entry already out of the window,
    // then 14 units over the last 50 minutes.
    struct entry {
        std::chrono::minutes ago;
        std::uint64_t units;
    };
    const entry log[] = {{70min, 2}, {50min, 3}, {40min, 1}, {30min, 4}, {20min, 1}, {10min, 5}};
    const long long now_us = server_time_us(*c);
    std::uint64_t t = 0, seq = 0;
    const srl::sliding_window memory(r);
    srl::sliding_window::state_type state;
    const auto t0 = std::chrono::nanoseconds(1000h);
    for (const auto& e : log) {
        const long long at = now_us - std::chrono::microseconds(e.ago).count();
        run(*c, {"ZADD", keys[0], std::to_string(at),
                 std::to_string(++seq) + ":" + std::to_string(e.units)});
        t += e.units;
        REQUIRE(memory.try_acquire(state, t0 - e.ago, e.units).allowed);
    }
    run(*c, {"HSET", keys[1], "t", std::to_string(t), "s", std::to_string(seq)});
    run(*c, {"PEXPIRE", keys[0], "7200000"});
    run(*c, {"PEXPIRE", keys[1], "7200000"});
    for (const std::uint64_t cost : {1u, 2u, 4u, 5u, 9u, 10u, 14u, 15u}) {
        const auto want = memory.peek(state, t0, cost);
        const auto got = s.acquire("w", a, 0ns, cost);
        INFO("cost " << cost << ": in memory retry " << want.retry_after.count() << " ns, redis "
                     << got.retry_after.count() << " ns");
        CHECK(got.allowed == want.allowed);
        CHECK(got.retryable == want.retryable);
        CHECK(got.count == want.count);
        CHECK(got.remaining == want.remaining);
        // Redis's clock moved on by the time of the call: a few milliseconds.
        if (want.retry_after == srl::never) {
            CHECK(got.retry_after == srl::never);
        } else {
            CHECK(got.retry_after <= want.retry_after);
            CHECK(got.retry_after > want.retry_after - 2s);
        }
        CHECK(got.reset_after <= want.reset_after);
        CHECK(got.reset_after > want.reset_after - 2s);
    }
}

TEST_CASE(
    "redis: a sliding-window key written by the previous script keeps its count, and both "
    "scripts agree on it during a rolling upgrade",
    "[redis][storage][sliding_window][upgrade]") {
    auto s = make_storage("swupgrade");
    auto c = s.pool().acquire();
    const srl::any_algorithm a("sliding_window", srl::rate{10, 1h});
    const auto keys = sw_keys(s, "u", a);
    const std::vector<std::string> two(keys.begin(), keys.begin() + 2);
    const auto previous = [&](int mode, std::uint64_t cost) {
        return srl_test::run_counted(*c, previous_script(), two, mode, 10, hour_us, cost);
    };
    // Written before the upgrade.
    CHECK(previous(0, 2).count == 2);
    CHECK(previous(0, 1).count == 3);
    // Both versions, one key.
    CHECK(s.peek("u", a, 0ns, 1).count == 4);
    auto o = s.acquire("u", a, 0ns, 3);
    CHECK(o.allowed);
    CHECK(o.count == 6);
    auto w = previous(0, 2);
    CHECK(w.allowed == 1);
    CHECK(w.count == 8);
    o = s.acquire("u", a, 0ns, 2);
    CHECK(o.allowed);
    CHECK(o.count == 10);
    CHECK_FALSE(s.acquire("u", a, 0ns, 1).allowed);
    CHECK(previous(0, 1).allowed == 0);
    // Releases from either side take the newest units back.
    CHECK(previous(2, 3).count == 7);
    s.release("u", a, 0ns, 2);
    CHECK(previous(1, 1).count == 6);
    o = s.acquire("u", a, 0ns, 5);
    CHECK(o.allowed);
    CHECK(o.count == 10);
    const auto d = s.acquire("u", a, 0ns, 4);
    CHECK_FALSE(d.allowed);
    CHECK(d.count == 10);
    CHECK(d.retry_after > 0ns);
    CHECK(d.retry_after <= 1h);
    w = previous(0, 4);
    CHECK(w.allowed == 0);
    CHECK(w.count == 10);
    // The previous script's wait is the current one's, give or take the clock moving on.
    CHECK(std::chrono::microseconds(w.retry_after_us) <= d.retry_after);
    CHECK(std::chrono::microseconds(w.retry_after_us) > d.retry_after - 2s);
    // An index lost on its own (evicted, expired) is rebuilt from the log.
    run(*c, {"DEL", keys[2]});
    CHECK(s.peek("u", a, 0ns, 0).count == 10);
    s.release("u", a, 0ns, 1);
    o = s.acquire("u", a, 0ns, 1);
    CHECK(o.allowed);
    CHECK(o.count == 10);
}
