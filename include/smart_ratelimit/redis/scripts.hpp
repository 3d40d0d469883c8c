// smart_ratelimit/redis/scripts.hpp
// The Lua scripts that run each algorithm inside Redis, one round trip per
// decision. Every script reads the time from Redis (`TIME`, microseconds), so all
// clients share one clock; every key it writes gets a TTL (PEXPIRE / SET PX).
// ARGV: mode (0 acquire, 1 peek, 2 release), limit, period in µs, cost.
// Reply: {allowed, retryable, count, remaining, reset_after µs, retry_after µs or -1}.
#pragma once

#include <string>
#include <string_view>

namespace smart_ratelimit::redis {

/// The scripts, one per built-in algorithm.
enum class script_id {
    fixed_window,
    sliding_window,
    sliding_window_approx,
    token_bucket,
    leaky_bucket
};
inline constexpr int script_count = 5;

namespace detail {

// Shared prelude: server time, arguments, number formatting (Lua's default "%.14g"
// would round microsecond timestamps), TTL and reply helpers.
inline constexpr std::string_view script_prelude = R"lua(
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local mode = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
local period = tonumber(ARGV[3])
local cost = tonumber(ARGV[4])
local function n(x) return string.format('%.0f', x) end
local function ttl(key, us) redis.call('PEXPIRE', key, n(math.ceil(math.max(us, 0) / 1000) + 1000)) end
local function out(allowed, retryable, count, reset, retry)
  if count > limit then count = limit end
  if count < 0 then count = 0 end
  return {allowed, retryable, count, limit - count, math.ceil(math.max(reset, 0)), retry}
end
)lua";

// Fixed window: hash {w = window start, c = count}.
inline constexpr std::string_view fixed_window_body = R"lua(
local k = KEYS[1]
local w = now - (now % period)
local s = redis.call('HMGET', k, 'w', 'c')
local c = 0
if s[1] then
  local sw = tonumber(s[1])
  if sw >= w then c = tonumber(s[2]); w = sw end
end
local function reset(cc) if cc == 0 then return 0 end return w + period - now end
if mode == 2 then
  if c > 0 then
    c = c - math.min(c, cost)
    redis.call('HSET', k, 'w', n(w), 'c', n(c)); ttl(k, w + period - now)
  end
  return out(1, 1, c, reset(c), 0)
end
if cost > limit then return out(0, 0, c, reset(c), -1) end
if cost <= limit - c then
  c = c + cost
  if mode == 0 then redis.call('HSET', k, 'w', n(w), 'c', n(c)); ttl(k, w + period - now) end
  return out(1, 1, c, reset(c), 0)
end
return out(0, 1, c, reset(c), math.max(1, w + period - now))
)lua";

// Exact sliding log. KEYS[1]: sorted set of "seq:units" scored by admission time
// (the log); KEYS[2]: hash {t = units in the log, s = sequence, c = units ever
// admitted, v = "s:t" as this script last wrote them}; KEYS[3]: the same members
// scored by the running total of units up to and including each one (the index), so
// "the entry where the oldest `need` units end" is one ZRANGEBYSCORE ... LIMIT 0 1.
// Admission times never decrease (an admission is stamped no earlier than the newest
// entry), so expiry removes a prefix of both sets. A denial costs O(log n); trimming
// costs O(log n + removed). The log and hash are the previous script's layout: that
// script still reads and writes them correctly, and a write of its (or an expired
// index) shows as v ~= s:t or as the two sets' sizes differing, on which the index is
// rebuilt from the log once (O(n)); so is an index whose totals near 2^53, where
// doubles stop counting units exactly.
inline constexpr std::string_view sliding_window_body = R"lua(
local zk, hk, ck = KEYS[1], KEYS[2], KEYS[3]
local cutoff = now - period
local function units(m) return tonumber(string.match(m, ':(%d+)$')) end
local h = redis.call('HMGET', hk, 't', 's', 'c', 'v')
local t, seq, c = tonumber(h[1] or '0'), tonumber(h[2] or '0'), tonumber(h[3] or '0')
local size = redis.call('ZCARD', zk)
local function stamp() return n(seq) .. ':' .. n(t) end
local function ttls() ttl(zk, period); ttl(hk, period); ttl(ck, period) end
if size ~= redis.call('ZCARD', ck) or (size > 0 and (h[4] ~= stamp() or c > 1e15)) then
  redis.call('DEL', ck)
  local e = redis.call('ZRANGE', zk, 0, -1)
  local batch = {}
  c = 0
  for i = 1, #e do
    c = c + units(e[i])
    seq = math.max(seq, tonumber(string.match(e[i], '^(%d+):')))
    batch[#batch + 1] = n(c); batch[#batch + 1] = e[i]
    if #batch == 1000 or i == #e then redis.call('ZADD', ck, unpack(batch)); batch = {} end
  end
  t = c
  redis.call('HSET', hk, 't', n(t), 's', n(seq), 'c', n(c), 'v', stamp()); ttls()
end
-- the expired entries are the first `gone` of both sets; the window holds c minus
-- the running total at the last of them
local gone = redis.call('ZCOUNT', zk, '-inf', n(cutoff))
local total = t
if gone > 0 then total = c - tonumber(redis.call('ZRANGE', ck, gone - 1, gone - 1, 'WITHSCORES')[2]) end
local function newest()
  local r = redis.call('ZRANGE', zk, -1, -1, 'WITHSCORES')
  if #r == 0 then return nil end
  return tonumber(r[2])
end
local function reset()
  local at = newest()
  if at == nil or at <= cutoff then return 0 end
  return at + period - now
end
local function save()
  if gone > 0 then
    redis.call('ZREMRANGEBYRANK', zk, 0, gone - 1); redis.call('ZREMRANGEBYRANK', ck, 0, gone - 1)
    gone = 0
  end
  t = total
  redis.call('HSET', hk, 't', n(t), 's', n(seq), 'c', n(c), 'v', stamp()); ttls()
end
if mode == 2 then
  -- the newest units go back first
  local left = cost
  while left > 0 and total > 0 do
    local e = redis.call('ZRANGE', ck, -1, -1)
    local m = e[1]
    local u = units(m)
    local take = math.min(left, u)
    local at = redis.call('ZSCORE', zk, m)
    redis.call('ZREM', zk, m); redis.call('ZREM', ck, m)
    if take < u then
      local rest = string.match(m, '^(%d+):') .. ':' .. n(u - take)
      redis.call('ZADD', zk, at, rest); redis.call('ZADD', ck, n(c - take), rest)
    end
    c = c - take; total = total - take; left = left - take
  end
  if left < cost or gone > 0 then save() end
  return out(1, 1, total, reset(), 0)
end
if cost > limit then return out(0, 0, total, reset(), -1) end
if cost <= limit - total then
  if mode == 0 then
    if cost > 0 then
      local at = newest()
      if at == nil or at < now then at = now end
      seq = seq + 1; c = c + cost; total = total + cost
      local m = n(seq) .. ':' .. n(cost)
      redis.call('ZADD', zk, n(at), m); redis.call('ZADD', ck, n(c), m)
    end
    save()
    return out(1, 1, total, period, 0)
  end
  -- peek reports what an acquire would: the window with this request admitted
  if cost > 0 then return out(1, 1, total + cost, period, 0) end
  return out(1, 1, total, reset(), 0)
end
-- denied: wait until the oldest units up to the one that makes room have expired,
-- i.e. for the first entry whose running total reaches c - (limit - cost)
local e = redis.call('ZRANGEBYSCORE', ck, n(c - (limit - cost)), '+inf', 'LIMIT', 0, 1)
local at = now
if #e > 0 then at = tonumber(redis.call('ZSCORE', zk, e[1])) end
local r = reset()
if mode == 0 and gone > 0 then save() end
return out(0, 1, total, r, math.max(1, at + period - now))
)lua";

// Weighted-counter sliding window: hash {w = current window start, c = current, p = previous}.
inline constexpr std::string_view sliding_window_approx_body = R"lua(
local k = KEYS[1]
local w = now - (now % period)
local s = redis.call('HMGET', k, 'w', 'c', 'p')
local cur, prev = 0, 0
if s[1] then
  local sw = tonumber(s[1])
  if sw >= w then w = sw; cur = tonumber(s[2]); prev = tonumber(s[3])
  elseif sw == w - period then prev = tonumber(s[2]) end
end
local function est()
  local el = math.min(math.max(now - w, 0), period)
  local e = math.floor(prev * (period - el) / period) + cur
  if e > limit then e = limit end
  return e
end
local function reset()
  if cur > 0 then return w + 2 * period - now elseif prev > 0 then return w + period - now end
  return 0
end
local function save() redis.call('HSET', k, 'w', n(w), 'c', n(cur), 'p', n(prev)); ttl(k, w + 2 * period - now) end
local function needed(pv, budget)
  if pv <= budget then return 0 end
  local left = math.ceil((budget + 1) * period / pv) - 1
  if left >= period then return 0 end
  return period - left
end
if mode == 2 then
  if s[1] and cur > 0 then cur = cur - math.min(cur, cost); save() end
  return out(1, 1, est(), reset(), 0)
end
local e = est()
if cost > limit then return out(0, 0, e, reset(), -1) end
if cost <= limit - e then
  if mode == 0 then cur = cur + cost; save() end
  return out(1, 1, e + cost, w + 2 * period - now, 0)
end
local retry
if cur <= limit - cost then
  retry = math.max(1, w + needed(prev, limit - cost - cur) - now)
else
  retry = math.max(1, w + period + needed(cur, limit - cost) - now)
end
return out(0, 1, e, reset(), math.ceil(retry))
)lua";

// Token bucket: hash {tk = tokens (fractional), ts = last refill}. A new key is full.
inline constexpr std::string_view token_bucket_body = R"lua(
local k = KEYS[1]
local s = redis.call('HMGET', k, 'tk', 'ts')
local tokens = limit
if s[1] then
  tokens = tonumber(s[1])
  local ts = tonumber(s[2])
  if now > ts then tokens = math.min(limit, tokens + (now - ts) * limit / period) end
end
local eps = 1e-6
local function used(tk) local u = math.ceil(limit - tk - eps); if u < 0 then u = 0 end return u end
local function full_in(tk) return (limit - tk) * period / limit end
local function save(tk)
  redis.call('HSET', k, 'tk', string.format('%.17g', tk), 'ts', n(now)); ttl(k, full_in(tk))
end
if mode == 2 then
  if s[1] then tokens = math.min(limit, tokens + cost); save(tokens) end
  return out(1, 1, used(tokens), full_in(tokens), 0)
end
if cost > limit then return out(0, 0, used(tokens), full_in(tokens), -1) end
if cost <= tokens + eps then
  tokens = math.max(0, tokens - cost)
  if mode == 0 then save(tokens) end
  return out(1, 1, used(tokens), full_in(tokens), 0)
end
return out(0, 1, used(tokens), full_in(tokens), math.max(1, math.ceil((cost - tokens) * period / limit)))
)lua";

// GCRA leaky bucket: string = theoretical arrival time (µs, fractional).
inline constexpr std::string_view leaky_bucket_body = R"lua(
local k = KEYS[1]
local T = period / limit
local tat = tonumber(redis.call('GET', k) or '0')
if tat < now then tat = now end
local function level(x) local c = math.ceil((x - now) / T - 1e-9); if c < 0 then c = 0 end return c end
local function save(x) redis.call('SET', k, string.format('%.17g', x), 'PX', n(math.ceil((x - now) / 1000) + 1000)) end
if mode == 2 then
  if tat > now then tat = math.max(now, tat - cost * T); save(tat) end
  return out(1, 1, level(tat), tat - now, 0)
end
if cost > limit then return out(0, 0, level(tat), tat - now, -1) end
local nt = tat + cost * T
if nt - now <= period + 1e-6 then
  if mode == 0 then save(nt) end
  return out(1, 1, level(nt), nt - now, 0)
end
return out(0, 1, level(tat), tat - now, math.max(1, math.ceil(nt - now - period)))
)lua";

}  // namespace detail

/// The full source of a script.
inline std::string script_source(script_id id) {
    std::string s(detail::script_prelude);
    switch (id) {
        case script_id::fixed_window:
            s += detail::fixed_window_body;
            break;
        case script_id::sliding_window:
            s += detail::sliding_window_body;
            break;
        case script_id::sliding_window_approx:
            s += detail::sliding_window_approx_body;
            break;
        case script_id::token_bucket:
            s += detail::token_bucket_body;
            break;
        case script_id::leaky_bucket:
            s += detail::leaky_bucket_body;
            break;
    }
    return s;
}

/// The key suffix of an algorithm's state (so two algorithms never share a key).
inline std::string_view script_suffix(script_id id) noexcept {
    switch (id) {
        case script_id::fixed_window:
            return ":fw";
        case script_id::sliding_window:
            return ":sw";
        case script_id::sliding_window_approx:
            return ":sa";
        case script_id::token_bucket:
            return ":tb";
        case script_id::leaky_bucket:
            return ":lb";
    }
    return ":x";
}

}  // namespace smart_ratelimit::redis
