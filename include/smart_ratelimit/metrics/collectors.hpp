// smart_ratelimit/metrics/collectors.hpp
// Collectors for what other components already count, read at scrape time (no cost
// on the request path): an async sink's events and queue depth, a storage's breaker
// state and errors (resilient_storage, or any storage through a callback), the
// alerts sent by channel and result, and the build's version.
#pragma once

#include <smart_ratelimit/metrics/counter.hpp>
#include <smart_ratelimit/metrics/exposition.hpp>
#include <smart_ratelimit/sinks/sink_stats.hpp>
#include <smart_ratelimit/storage/resilient_storage.hpp>
#include <smart_ratelimit/version.hpp>

#include <concepts>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace smart_ratelimit::metrics {

/// `smart_ratelimit_build_info{version="0.1.0"} 1`. A collector.
struct build_info {
    void collect(exposition& out) const {
        constexpr std::string_view name = "smart_ratelimit_build_info";
        out.declare(name, metric_type::gauge, "The smart_ratelimit version, as a label; always 1.");
        out.sample(name, {{"version", version_string}}, std::uint64_t{1});
    }
};

/// A sink whose `stats()` gives async_sink_stats (async_sink).
template <class S>
concept has_sink_stats = requires(const S& s) {
    { s.stats() } -> std::convertible_to<async_sink_stats>;
};

/// A result listing channels, each with `channel` and `sent` (alert_result).
template <class R>
concept channel_results = requires(const R& r) {
    r.channels.begin()->channel;
    { r.channels.begin()->sent } -> std::convertible_to<bool>;
};

/// An event sink's counters, read at each scrape:
/// `smart_ratelimit_events_total{result}` (result: offered, written,
/// dropped_queue_full, dropped_write_error, dropped_invalid) and the gauge
/// `smart_ratelimit_event_queue_depth` (events offered but neither written nor
/// dropped yet). With a non-empty `name` each sample also carries sink="name" (give
/// each of several sinks its own). A collector; it refers to the sink, which must
/// outlive its registration (registry::remove it first).
/// Thread safety: the sink's stats() is safe to call from the scraping thread.
class event_sink_metrics {
public:
    /// From a sink with `stats()` -> async_sink_stats (async_sink).
    template <has_sink_stats Sink>
    explicit event_sink_metrics(const Sink& sink, std::string name = {})
        : read_([&sink] { return async_sink_stats(sink.stats()); }), name_(std::move(name)) {}

    /// From any function returning the counters.
    explicit event_sink_metrics(std::function<async_sink_stats()> read, std::string name = {})
        : read_(std::move(read)), name_(std::move(name)) {}

    void collect(exposition& out) const {
        constexpr std::string_view events = "smart_ratelimit_events_total";
        constexpr std::string_view depth = "smart_ratelimit_event_queue_depth";
        const async_sink_stats s = read_();
        out.declare(events, metric_type::counter,
                    "Events offered to the event sink, and what became of them (written or "
                    "dropped, by reason).");
        const std::pair<std::string_view, std::uint64_t> results[] = {
            {"offered", s.offered},
            {"written", s.written},
            {"dropped_queue_full", s.dropped_queue_full},
            {"dropped_write_error", s.dropped_write_error},
            {"dropped_invalid", s.dropped_invalid_row},
        };
        for (const auto& [result, n] : results) {
            const label l[] = {{"sink", name_}, {"result", result}};
            out.sample(events, labels(l), n);
        }
        out.declare(depth, metric_type::gauge,
                    "Events offered to the event sink and not yet written or dropped.");
        const label l[] = {{"sink", name_}};
        out.sample(depth, labels(std::span<const label>(l, 1)), s.in_flight());
    }

private:
    // Without a name, the sink label is left out.
    std::span<const label> labels(std::span<const label> l) const {
        return name_.empty() ? l.subspan(1) : l;
    }

    std::function<async_sink_stats()> read_;
    std::string name_;
};

/// What a storage reports about its health: its breaker's state, when it has one,
/// and error counts by kind (monotonic).
struct storage_health {
    std::optional<breaker_state> breaker;
    std::vector<std::pair<std::string, std::uint64_t>> errors;
};

/// The health of a resilient_storage. Error kinds: failure (the primary threw),
/// slow_call, timed_out, workers_exhausted, short_circuited (refused while open),
/// failover_failure.
template <class Primary, class Failover, class Clock>
storage_health health_of(const resilient_storage<Primary, Failover, Clock>& s) {
    const resilience_stats st = s.stats();
    storage_health h;
    h.breaker = s.state();
    h.errors = {{"failure", st.failures},
                {"slow_call", st.slow_calls},
                {"timed_out", st.timed_out},
                {"workers_exhausted", st.workers_exhausted},
                {"short_circuited", st.short_circuited},
                {"failover_failure", st.failover_failures}};
    return h;
}

/// The value of smart_ratelimit_storage_breaker_state: 0 closed, 1 half-open, 2 open.
constexpr std::uint64_t breaker_gauge_value(breaker_state s) noexcept {
    switch (s) {
        case breaker_state::closed:
            return 0;
        case breaker_state::half_open:
            return 1;
        case breaker_state::open:
            return 2;
    }
    return 0;
}

/// A storage's health, read at each scrape: the gauge
/// `smart_ratelimit_storage_breaker_state{storage}` (0 closed, 1 half-open, 2 open;
/// only for storages with a breaker) and `smart_ratelimit_storage_errors_total{storage,kind}`.
/// Built from a resilient_storage (a copy: copies share its breaker and counters, so
/// the collector keeps them alive) or from any function returning storage_health,
/// e.g. one reading a Redis or SQL storage's own stats. A collector.
/// Thread safety: the function is called from the scraping thread.
class storage_metrics {
public:
    storage_metrics(std::string storage, std::function<storage_health()> read)
        : read_(std::move(read)), name_(std::move(storage)) {}

    template <class Primary, class Failover, class Clock>
    storage_metrics(std::string storage, resilient_storage<Primary, Failover, Clock> s)
        : read_([s = std::move(s)] { return health_of(s); }), name_(std::move(storage)) {}

    void collect(exposition& out) const {
        constexpr std::string_view state = "smart_ratelimit_storage_breaker_state";
        constexpr std::string_view errors = "smart_ratelimit_storage_errors_total";
        const storage_health h = read_();
        if (h.breaker) {
            out.declare(state, metric_type::gauge,
                        "The storage's circuit breaker: 0 closed, 1 half-open, 2 open.");
            out.sample(state, {{"storage", name_}}, breaker_gauge_value(*h.breaker));
        }
        out.declare(errors, metric_type::counter, "Storage calls that failed, by kind.");
        for (const auto& [kind, n] : h.errors)
            out.sample(errors, {{"storage", name_}, {"kind", kind}}, n);
    }

private:
    std::function<storage_health()> read_;
    std::string name_;
};

/// `smart_ratelimit_alerts_sent_total{channel,result}`: what the alert sender did,
/// per channel ("email", "webhook") and result ("sent", "failed"). The sender (or
/// the code that calls it) bumps it; alerts are rare, so it is a labeled_counter.
/// A handle: copies share the counts. A collector.
///
/// | expression            | type   | meaning                                          |
/// |-----------------------|--------|--------------------------------------------------|
/// | `a.record(ch, sent)`  | `void` | counts one alert on channel `ch`, sent or failed |
/// | `a.record(r)`         | `void` | counts each channel of an alert_result (`r.channels`, each with `channel` and `sent`) |
/// | `a.value(ch, result)` | `std::uint64_t` | the count                               |
///
/// Thread safety: every member may be called concurrently.
class alert_metrics {
public:
    alert_metrics()
        : counter_("smart_ratelimit_alerts_sent_total",
                   "Offender alerts sent, by channel and result.", {"channel", "result"}) {
        for (std::string_view ch : {"email", "webhook"})
            for (std::string_view r : {"sent", "failed"}) counter_.touch({ch, r});
    }

    void record(std::string_view channel, bool sent) const {
        counter_.add({channel, sent ? std::string_view("sent") : std::string_view("failed")});
    }

    template <channel_results Result>
    void record(const Result& r) const {
        for (const auto& c : r.channels) record(c.channel, c.sent);
    }

    std::uint64_t value(std::string_view channel, std::string_view result) const {
        return counter_.value({channel, result});
    }

    void collect(exposition& out) const { counter_.collect(out); }

private:
    labeled_counter counter_;
};

}  // namespace smart_ratelimit::metrics
