// smart_ratelimit/metrics.hpp
// The metrics umbrella, standard headers only: the Prometheus text exposition,
// counters, gauges and histograms with per-thread cells, the registry a `/metrics`
// endpoint scrapes, the decision_metrics observer, and the collectors for async
// sinks, storages, alerts and the build.
#pragma once
#include <smart_ratelimit/metrics/collectors.hpp>
#include <smart_ratelimit/metrics/counter.hpp>
#include <smart_ratelimit/metrics/decision_metrics.hpp>
#include <smart_ratelimit/metrics/exposition.hpp>
#include <smart_ratelimit/metrics/gauge.hpp>
#include <smart_ratelimit/metrics/histogram.hpp>
#include <smart_ratelimit/metrics/registry.hpp>
