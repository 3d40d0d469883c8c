// smart_ratelimit/redis/async.hpp
// async_acquire: one Redis decision as an Asio asynchronous operation. The blocking
// script call runs on a work executor (e.g. an asio::thread_pool) and completes on
// the handler's executor, so a Beast I/O thread never waits on Redis. Built on
// beast::async_run_blocking; needs Boost.Asio (link smart_ratelimit::beast too).
#pragma once

#include <smart_ratelimit/beast/async_check.hpp>
#include <smart_ratelimit/concepts.hpp>
#include <smart_ratelimit/decision.hpp>

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>

namespace smart_ratelimit::redis {

/// Runs storage.acquire(key, algorithm, 0, cost) on `work` and completes with
/// `void(std::exception_ptr, outcome)`. `storage` and `algorithm` must outlive the
/// operation; the key is copied. Works with callbacks (bind an executor),
/// asio::use_future and asio::use_awaitable.
/// Thread safety: as the storage's acquire (Redis storages: any thread).
template <storage_backend Storage, class WorkExecutor, class CompletionToken>
auto async_acquire(Storage& storage, std::string_view key, const typename Storage::algorithm_type& algorithm,
                   std::uint64_t cost, const WorkExecutor& work, CompletionToken&& token) {
    return smart_ratelimit::beast::async_run_blocking(
        work,
        [&storage, &algorithm, k = std::string(key), cost]() -> outcome {
            return storage.acquire(k, algorithm, std::chrono::nanoseconds(0), cost);
        },
        std::forward<CompletionToken>(token));
}

}  // namespace smart_ratelimit::redis
