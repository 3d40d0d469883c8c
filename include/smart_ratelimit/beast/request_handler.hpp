// smart_ratelimit/beast/request_handler.hpp
// The request_handler concept: what middleware::handle and async_handle accept as
// the application. A handler returns a Beast response, whose rate-limit fields the
// middleware adds, or a type-erased http::message_generator, which it cannot dress:
// such a handler takes the limit_result and applies the fields itself.
#pragma once

#include <smart_ratelimit/beast/limit_result.hpp>

#include <boost/beast/http/message.hpp>
#include <boost/beast/http/message_generator.hpp>

#include <concepts>
#include <functional>
#include <type_traits>
#include <utility>

namespace smart_ratelimit::beast {

namespace detail {

template <class T>
inline constexpr bool is_response_v = false;
template <class Body, class Fields>
inline constexpr bool is_response_v<http::response<Body, Fields>> = true;

template <class H, class Body>
inline constexpr bool takes_result_v =
    std::is_invocable_v<H&, http::request<Body>&, const limit_result&>;

// What the handler returns: the two-argument form when it has one.
template <class H, class Body, bool = takes_result_v<H, Body>>
struct handler_answer {
    using type =
        std::remove_cvref_t<std::invoke_result_t<H&, http::request<Body>&, const limit_result&>>;
};
template <class H, class Body>
struct handler_answer<H, Body, false> {
    using type = std::remove_cvref_t<std::invoke_result_t<H&, http::request<Body>&>>;
};

}  // namespace detail

/// request_handler: the application behind the middleware, for requests of `Body`.
///
/// | expression | returns | meaning |
/// |------------|---------|---------|
/// | `h(req)`    | `http::response<B, F>` | the answer; the middleware adds the rate-limit fields |
/// | `h(req, r)` | `http::response<B, F>` | the same, seeing the decision `r` (a `const limit_result&`) |
/// | `h(req, r)` | `http::message_generator` | an answer of any type; the handler adds the fields, `r.apply(res)`, before erasing it |
///
/// `req` is an `http::request<Body>&`. The two-argument form is used when a handler
/// has both. A one-argument handler returning a message_generator is rejected: the
/// fields could not be added and would silently be missing.
template <class H, class Body>
concept request_handler =
    (detail::takes_result_v<H, Body> || std::is_invocable_v<H&, http::request<Body>&>)&&(
        detail::is_response_v<typename detail::handler_answer<H, Body>::type> ||
        (detail::takes_result_v<H, Body> &&
         std::same_as<typename detail::handler_answer<H, Body>::type, http::message_generator>));

/// handles<H, Body>: request_handler<std::remove_reference_t<H>, Body>, with the
/// handler type first, to constrain it in place (`template <class Body, handles<Body> H>`).
template <class H, class Body>
concept handles = request_handler<std::remove_reference_t<H>, Body>;

namespace detail {

// The handler's answer to an allowed request as a message, with the fields of `r`.
template <class Body, class H>
http::message_generator answer(H& handler, http::request<Body>& req, const limit_result& r) {
    if constexpr (takes_result_v<H, Body>) {
        auto res = std::invoke(handler, req, r);
        if constexpr (is_response_v<decltype(res)>) r.apply(res);
        return http::message_generator(std::move(res));
    } else {
        auto res = std::invoke(handler, req);
        r.apply(res);
        return http::message_generator(std::move(res));
    }
}

}  // namespace detail

}  // namespace smart_ratelimit::beast
