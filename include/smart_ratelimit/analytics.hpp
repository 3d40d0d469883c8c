// smart_ratelimit/analytics.hpp
// Analytics umbrella (standard headers only): the event_range concept and
// event_traits customization point, the result types, the functions
// and the offenders CSV. JSON lives in analytics/json.hpp (Boost.JSON), the SQL
// overloads for the SOCI event store in soci/analytics.hpp.
#pragma once

#include <smart_ratelimit/analytics/csv.hpp>
#include <smart_ratelimit/analytics/event_range.hpp>
#include <smart_ratelimit/analytics/functions.hpp>
#include <smart_ratelimit/analytics/results.hpp>
