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

#include <concepts>
#include <exception>
#include <memory>
#include <optional>
#include <type_traits>
#include <utility>

namespace smart_ratelimit::beast {

namespace detail {

/// How a blocking job ended: `exception` is set when the job threw or, with
/// `rejected`, when the work executor threw instead of accepting it.
struct blocking_status {
    std::exception_ptr exception;
    bool rejected = false;
};

// Invokes `fn` (a nullary callable returning R) on `work`, then
// `complete(std::move(handler), blocking_status, R)` on the handler's associated
// executor, which is kept busy (outstanding work) until then so its io_context does
// not run out of work. R is default-constructed when fn threw or `work` refused the
// job; `complete` never runs inside this call.
template <class Handler, class Fn, class WorkExecutor, class Complete>
void start_blocking(Handler handler, Fn fn, const WorkExecutor& work, Complete complete) {
    using result_type = std::invoke_result_t<Fn&>;
    using done_executor = std::decay_t<decltype(boost::asio::prefer(
        boost::asio::get_associated_executor(handler),
        boost::asio::execution::outstanding_work.tracked))>;
    struct op {
        Handler handler;
        Fn fn;
        Complete complete;
        done_executor done_ex;
    };
    auto done_ex = boost::asio::prefer(boost::asio::get_associated_executor(handler),
                                       boost::asio::execution::outstanding_work.tracked);
    // Shared with the job, so the handler is still here when the executor refuses it.
    auto o = std::make_shared<op>(
        op{std::move(handler), std::move(fn), std::move(complete), std::move(done_ex)});
    auto finish = [](std::shared_ptr<op> o, blocking_status status, result_type result) {
        auto ex = o->done_ex;
        boost::asio::post(std::move(ex), [o = std::move(o), status = std::move(status),
                                          result = std::move(result)]() mutable {
            std::move(o->complete)(std::move(o->handler), std::move(status), std::move(result));
        });
    };
    try {
        boost::asio::post(work, [o, finish]() mutable {
            blocking_status status;
            std::optional<result_type> result;
            try {
                result.emplace(o->fn());
            } catch (...) {
                status.exception = std::current_exception();
            }
            if (!result) result.emplace();
            finish(std::move(o), std::move(status), std::move(*result));
        });
    } catch (...) {
        finish(std::move(o), blocking_status{std::current_exception(), true}, result_type{});
    }
}

}  // namespace detail

/// blocking_job: a function object run on a work executor, whose result can be
/// default-constructed (the value handed on when the job cannot run).
template <class Fn>
concept blocking_job =
    std::invocable<Fn&> && std::is_default_constructible_v<std::invoke_result_t<Fn&>>;

/// Runs `fn()` on `work` (an executor; e.g. a thread_pool's) and completes with
/// `void(std::exception_ptr, R)` where R = fn's result (default-constructed on an
/// error). Like asio::co_spawn, which also runs arbitrary code, the error is the
/// exception itself: the one `fn` threw, or the one `work` threw when it refused
/// the job. The handler runs on its associated executor: the coroutine's executor
/// with asio::use_awaitable (co_await rethrows the exception), the executor bound
/// with asio::bind_executor for a callback. An unbound callback runs on the system
/// executor, so bind it. The operation is not cancellable.
/// Thread safety: `fn` runs on a `work` thread; whatever it captures must allow that.
template <class WorkExecutor, blocking_job Fn, class CompletionToken>
auto async_run_blocking(const WorkExecutor& work, Fn fn, CompletionToken&& token) {
    using result_type = std::invoke_result_t<Fn&>;
    return boost::asio::async_initiate<CompletionToken, void(std::exception_ptr, result_type)>(
        [](auto handler, Fn fn, WorkExecutor work) {
            detail::start_blocking(std::move(handler), std::move(fn), work,
                                   [](auto handler, detail::blocking_status status, result_type r) {
                                       std::move(handler)(std::move(status.exception),
                                                          std::move(r));
                                   });
        },
        token, std::move(fn), work);
}

}  // namespace smart_ratelimit::beast
