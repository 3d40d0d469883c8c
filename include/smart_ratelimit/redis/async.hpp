// smart_ratelimit/redis/async.hpp
// async_acquire: one Redis decision as an Asio asynchronous operation. The blocking
// script call runs on a work executor (e.g. an asio::thread_pool) and completes on
// the handler's executor, so a Beast I/O thread never waits on Redis. Completes
// with an error_code first, as Asio's operations do; needs Boost.Asio (link
// smart_ratelimit::beast too).
#pragma once

#include <smart_ratelimit/beast/async_check.hpp>
#include <smart_ratelimit/beast/error.hpp>
#include <smart_ratelimit/concepts.hpp>
#include <smart_ratelimit/decision.hpp>
#include <smart_ratelimit/storage/failure_policy.hpp>

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>

#include <boost/asio/async_result.hpp>
#include <boost/system/error_code.hpp>

namespace smart_ratelimit::redis {

/// Runs storage.acquire(key, algorithm, 0, cost) on `work` and completes with
/// `void(boost::system::error_code, outcome)`. A storage that degrades (the Redis
/// default, on_error::degrade) answers degraded_outcome() with no error. The error
/// is beast::error::storage_failed when the storage threw (on_error::raise; the
/// exception's text is not carried) and beast::error::work_rejected when `work`
/// threw instead of taking the job; the outcome is then degraded_outcome().
/// `storage` and `algorithm` must outlive the operation; the key is copied. Works
/// with callbacks (bind an executor), asio::use_future and asio::use_awaitable.
/// Thread safety: as the storage's acquire (Redis storages: any thread).
template <storage_backend Storage, class WorkExecutor, class CompletionToken>
auto async_acquire(Storage& storage, std::string_view key,
                   const typename Storage::algorithm_type& algorithm, std::uint64_t cost,
                   const WorkExecutor& work, CompletionToken&& token) {
    auto fn = [&storage, &algorithm, k = std::string(key), cost]() -> outcome {
        return storage.acquire(k, algorithm, std::chrono::nanoseconds(0), cost);
    };
    return boost::asio::async_initiate<CompletionToken, void(boost::system::error_code, outcome)>(
        [](auto handler, auto fn, WorkExecutor work) {
            smart_ratelimit::beast::detail::start_blocking(
                std::move(handler), std::move(fn), work,
                [](auto handler, smart_ratelimit::beast::detail::blocking_status status,
                   outcome o) {
                    namespace sb = smart_ratelimit::beast;
                    boost::system::error_code ec;
                    if (status.exception) {
                        ec = status.rejected ? sb::error::work_rejected : sb::error::storage_failed;
                        o = degraded_outcome();
                    }
                    std::move(handler)(ec, o);
                });
        },
        token, std::move(fn), work);
}

}  // namespace smart_ratelimit::redis
