// smart_ratelimit/beast.hpp
// The Boost.Beast adapter (target smart_ratelimit::beast): HTTP key extractors,
// the rate-limit response fields, the middleware for synchronous, callback and
// coroutine servers, and the asynchronous check for blocking storage. Not part of
// the core umbrella: it needs Boost.Beast and Boost.Asio.
#pragma once

#include <smart_ratelimit/beast/async_check.hpp>
#include <smart_ratelimit/beast/denied_response.hpp>
#include <smart_ratelimit/beast/headers.hpp>
#include <smart_ratelimit/beast/keys.hpp>
#include <smart_ratelimit/beast/middleware.hpp>
