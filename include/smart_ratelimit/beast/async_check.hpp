// smart_ratelimit/beast/async_check.hpp
// Blocking work as an Asio asynchronous operation: `async_run_blocking` runs a
// callable (a limiter check against SQL or Redis storage) on a work executor, such
// as an asio::thread_pool, and completes on the completion handler's executor, so no
// io_context thread waits on storage. Works with callbacks, use_awaitable, use_future.
#pragma once

#include <boost/asio/async_result.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/execution/outstanding_work.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/prefer.hpp>

#include <exception>
#include <optional>
#include <type_traits>
#include <utility>

namespace smart_ratelimit::beast {

namespace detail {

// Invokes `fn` (a nullary callable returning R) and hands the completion handler
// (exception_ptr, R) on the handler's associated executor, which is kept busy
// (outstanding work) until then so its io_context does not run out of work.
template <class Handler, class Fn, class WorkExecutor>
void start_blocking(Handler handler, Fn fn, const WorkExecutor& work) {
    using result_type = std::invoke_result_t<Fn&>;
    auto done_ex = boost::asio::prefer(boost::asio::get_associated_executor(handler),
                                       boost::asio::execution::outstanding_work.tracked);
    boost::asio::post(work, [handler = std::move(handler), fn = std::move(fn),
                             done_ex = std::move(done_ex)]() mutable {
        std::exception_ptr error;
        std::optional<result_type> result;
        try {
            result.emplace(fn());
        } catch (...) {
            error = std::current_exception();
        }
        if (!result) result.emplace();
        auto ex = done_ex;
        boost::asio::post(std::move(ex), [handler = std::move(handler), error,
                                          result = std::move(*result),
                                          guard = std::move(done_ex)]() mutable {
            std::move(handler)(error, std::move(result));
        });
    });
}

}  // namespace detail

/// Runs `fn()` on `work` (an executor; e.g. a thread_pool's) and completes with
/// `void(std::exception_ptr, R)` where R = fn's result (default-constructed when fn
/// threw). The handler runs on its associated executor: the coroutine's executor
/// with asio::use_awaitable (co_await rethrows the exception), the executor bound
/// with asio::bind_executor for a callback. An unbound callback runs on the system
/// executor, so bind it. The operation is not cancellable.
/// Thread safety: `fn` runs on a `work` thread; whatever it captures must allow that.
template <class WorkExecutor, class Fn, class CompletionToken>
    requires std::is_default_constructible_v<std::invoke_result_t<Fn&>>
auto async_run_blocking(const WorkExecutor& work, Fn fn, CompletionToken&& token) {
    using result_type = std::invoke_result_t<Fn&>;
    return boost::asio::async_initiate<CompletionToken, void(std::exception_ptr, result_type)>(
        [](auto handler, Fn fn, WorkExecutor work) {
            detail::start_blocking(std::move(handler), std::move(fn), work);
        },
        token, std::move(fn), work);
}

}  // namespace smart_ratelimit::beast
