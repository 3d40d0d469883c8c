// tests/redis/script_work.hpp
// What one call of a rate-limit script costs Redis, counted without a clock: the
// script runs through EVAL inside a wrapper that counts every redis.call and the
// elements its reply hands to Lua (an array's length, 1 for anything else). Used by
// the sliding-window tests and by benchmarks/bench_sliding_window.cpp.
#pragma once

#include <smart_ratelimit/redis/connection.hpp>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace srl_test {

/// One counted script call: the six reply values, the calls and the elements read.
struct script_work {
    long long allowed = 0, retryable = 0, count = 0, remaining = 0, reset_after_us = 0,
              retry_after_us = 0;
    long long calls = 0;     ///< redis.call invocations
    long long elements = 0;  ///< elements the replies handed to the script
};

/// `source` wrapped so that its reply gains two elements: calls, then elements.
inline std::string counting_script(std::string_view source) {
    std::string s =
        "local real, calls, elements = redis, 0, 0\n"
        "local redis = setmetatable({call = function(...)\n"
        "  local r = real.call(...)\n"
        "  calls = calls + 1\n"
        "  if type(r) == 'table' then elements = elements + #r else elements = elements + 1 end\n"
        "  return r\n"
        "end}, {__index = real})\n"
        "local function body()\n";
    s += source;
    s += "\nend\n"
         "local r = body()\n"
         "r[#r + 1] = calls\n"
         "r[#r + 1] = elements\n"
         "return r\n";
    return s;
}

/// Runs `source` counted on `keys` with the storage's arguments (mode 0 acquire,
/// 1 peek, 2 release; the period in microseconds). Throws on an error reply.
inline script_work run_counted(smart_ratelimit::redis::connection& c, std::string_view source,
                               const std::vector<std::string>& keys, int mode, std::uint64_t limit,
                               std::uint64_t period_us, std::uint64_t cost) {
    smart_ratelimit::redis::command_args args;
    args << "EVAL" << counting_script(source) << static_cast<unsigned long long>(keys.size());
    for (const auto& k : keys) args << k;
    args << static_cast<unsigned long long>(mode) << static_cast<unsigned long long>(limit)
         << static_cast<unsigned long long>(period_us) << static_cast<unsigned long long>(cost);
    const auto r = c.run(args);
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 8)
        throw std::runtime_error(
            "counted script: unexpected reply" +
            (r->type == REDIS_REPLY_ERROR ? ": " + std::string(r->str, r->len) : std::string()));
    long long v[8];
    for (std::size_t i = 0; i < 8; ++i) v[i] = r->element[i]->integer;
    return {v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7]};
}

}  // namespace srl_test
