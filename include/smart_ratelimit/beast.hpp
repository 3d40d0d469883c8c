// smart_ratelimit/beast.hpp
// The Boost.Beast adapter (target smart_ratelimit::beast): HTTP key extractors,
// the rate-limit response fields, the middleware for synchronous, callback and
// coroutine servers, the asynchronous check for blocking storage, the limits that keep
// a server's connections from being held open (server_limits), and the staff
// dashboard. Not part of the core umbrella: it needs Boost.Beast and Boost.Asio.
// The webhook client (OpenSSL) and the SOCI dashboard source have their own headers.
#pragma once

#include <smart_ratelimit/beast/async_check.hpp>
#include <smart_ratelimit/beast/denied_response.hpp>
#include <smart_ratelimit/beast/error.hpp>
#include <smart_ratelimit/beast/headers.hpp>
#include <smart_ratelimit/beast/keys.hpp>
#include <smart_ratelimit/beast/middleware.hpp>
#include <smart_ratelimit/beast/request_handler.hpp>
#include <smart_ratelimit/beast/server_limits.hpp>
#include <smart_ratelimit/beast/authorizer.hpp>
#include <smart_ratelimit/beast/dashboard_source.hpp>
#include <smart_ratelimit/beast/dashboard_page.hpp>
#include <smart_ratelimit/beast/svg_chart.hpp>
#include <smart_ratelimit/beast/traffic_timeline.hpp>
#include <smart_ratelimit/beast/dashboard.hpp>
